"""Typing, checking and comparing values by Kong's own schemas (bundled plugins, health checks).

A tag value is text; Kong wants numbers, booleans and arrays. The schema of
the field a key names decides the type, so ``kong.plugin.rate-limiting.minute=100``
becomes the number 100 and ``...key_names=apikey,x-api-key`` an array; nothing
is guessed from the text. The schemas are the ones the Kong emulator enforces,
dumped from Kong's sources (``bridge.kong.schema``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from .convention import ValueProblem, parse_bool
from .kong.schema.entity_checks import run_entity_checks
from .kong.schema.fields import NO_DEFAULT, Field, check_value, validate_value
from .kong.schema.plugins import bundled
from .kong.schema.upstreams import HEALTHCHECKS

Tree = dict[str, Any]
PATH_SEPARATOR = "."


def plugin_config_field(plugin: str) -> Field | None:
    """The ``config`` record of a plugin Kong bundles, or None for one we do not know."""
    spec = bundled().get(plugin)
    return spec.fields.get("config") if spec is not None else None


def bundled_plugin_names() -> list[str]:
    return sorted(bundled())


def healthchecks_field() -> Field:
    """The upstream's ``healthchecks`` record (``kong/db/schema/entities/upstreams.lua``)."""
    return HEALTHCHECKS


def field_at(root: Field, path: tuple[str, ...]) -> Field:
    """The field ``path`` names inside the record ``root``; ValueProblem when there is none."""
    spec = root
    for depth, part in enumerate(path):
        fields = dict(spec.fields) if spec.type == "record" else {}
        if part not in fields:
            where = PATH_SEPARATOR.join(path[:depth]) or "the top level"
            known = ", ".join(sorted(fields)) or "nothing"
            raise ValueProblem(f"a known field at {where} ({known})")
        spec = fields[part]
    return spec


def parse_typed(spec: Field, raw: str) -> Any:
    """Text from a tag as the value ``spec`` wants, checked by Kong's rules for that field."""
    value = _convert(spec, raw)
    _normalised, error = validate_value(spec, value)
    if error:
        message = _error_text(error)
        # Kong's messages read "expected a number", "value should be between 0 and 255"...
        if message.startswith("expected "):
            raise ValueProblem(message.removeprefix("expected "))
        raise ValueProblem(f"a value Kong accepts ({message})")
    return value


def _convert(spec: Field, raw: str) -> Any:
    kind = spec.type
    if kind == "string":
        return raw
    if kind == "boolean":
        return parse_bool(raw)
    if kind == "integer":
        try:
            return int(raw.strip())
        except ValueError:
            raise ValueProblem("an integer") from None
    if kind == "number":
        return _number(raw)
    if kind in ("array", "set"):
        if not raw.strip():
            return []
        assert spec.elements is not None
        return [_convert(spec.elements, item.strip()) for item in raw.split(",")]
    if kind == "record":
        raise ValueProblem("a key naming one of this record's fields (it is a record)")
    raise ValueProblem(f"a value tags cannot express (a {kind}): use Service Meta")


def _number(raw: str) -> int | float:
    try:
        value = float(raw.strip())
    except ValueError:
        raise ValueProblem("a number") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise ValueProblem("a finite number")
    # Integral numbers stay integers so that they render (and compare) as Kong returns them.
    return int(value) if value.is_integer() and "." not in raw and "e" not in raw.lower() else value


def _error_text(error: Any) -> str:
    if isinstance(error, str):
        return error
    return "; ".join(f"{path}: {message}" for path, message in flatten_errors(error))


def flatten_errors(errors: Any, prefix: str = "") -> list[tuple[str, str]]:
    """Kong's nested ``fields`` errors as (dotted path, message) pairs."""
    if isinstance(errors, str):
        return [(prefix, errors)]
    found: list[tuple[str, str]] = []
    if isinstance(errors, dict):
        for key, value in errors.items():
            path = str(key) if not prefix else f"{prefix}.{key}"
            found += flatten_errors(value, path)
    elif isinstance(errors, list):
        for index, value in enumerate(errors):
            if value:
                found += flatten_errors(value, f"{prefix}[{index + 1}]")
    return found


def nest(values: Mapping[tuple[str, ...], Any]) -> Tree:
    """``{("redis", "host"): "r"}`` -> ``{"redis": {"host": "r"}}``."""
    tree: Tree = {}
    for path, value in sorted(values.items()):
        node = tree
        for part in path[:-1]:
            child = node.get(part)
            if not isinstance(child, dict):
                child = node[part] = {}
            node = child
        node[path[-1]] = value
    return tree


def deep_merge(base: Mapping[str, Any], top: Mapping[str, Any]) -> Tree:
    """``top`` over ``base``; records (dicts) merge, anything else is replaced."""
    merged: Tree = dict(base)
    for key, value in top.items():
        below = merged.get(key)
        if isinstance(value, Mapping) and isinstance(below, Mapping):
            merged[key] = deep_merge(below, value)
        else:
            merged[key] = value
    return merged


def validate_plugin(name: str, config: Tree, protocols: list[str] | None = None) -> list[str]:
    """What Kong would reject in this plugin's config (empty when fine, or when unknown).

    Runs the field checks and the plugin's entity checks (``at_least_one_of``,
    conditionals...) as Kong's ``Entity.new`` does, with Kong's messages.
    """
    text = json.dumps(config, sort_keys=True)
    return list(_validate(name, text, tuple(protocols) if protocols is not None else None))


@lru_cache(maxsize=4096)
def _validate(name: str, config_json: str, protocols: tuple[str, ...] | None) -> tuple[str, ...]:
    """Cached by value: every resync maps every service, and configs rarely change."""
    return tuple(_validate_uncached(name, json.loads(config_json), protocols))


def _validate_uncached(name: str, config: Tree, protocols: tuple[str, ...] | None) -> list[str]:
    spec = bundled().get(name)
    config_field = spec.fields.get("config") if spec is not None else None
    if spec is None or config_field is None:
        return []
    value, errors = validate_value(config_field, config)
    problems = [f"config.{path}: {message}" for path, message in flatten_errors(errors)]
    if problems:
        return problems
    row: Tree = {"config": value}
    protocols_field = spec.fields.get("protocols")
    if protocols is not None:
        row["protocols"] = list(protocols)
    elif protocols_field is not None:
        row["protocols"] = protocols_field.default_value()
    entity_errors = run_entity_checks(spec.entity_checks, row, check_value)
    return [f"{path or 'config'}: {message}" for path, message in flatten_errors(entity_errors)]


def changed_tree(spec: Field | None, want: Mapping[str, Any], have: Any) -> Tree:
    """The part of ``want`` that Kong's ``have`` lacks: a minimal PATCH body for a record.

    With the schema known, a field we do not set is compared with its default
    (when Kong shows the field), so a value someone changed on our entity, or
    one we set before, goes back to the default. Generated fields (random
    secrets) are never compared.
    """
    have = have if isinstance(have, Mapping) else {}
    fields = dict(spec.fields) if spec is not None and spec.type == "record" else {}
    changes: Tree = {}
    for key in sorted(set(want) | set(fields)):
        field = fields.get(key)
        if key in want:
            target = want[key]
        elif field is not None and key in have and field.auto is None:
            target = _default(field)
            if target is NO_DEFAULT:
                continue
        else:
            continue
        current = have.get(key)
        if isinstance(target, Mapping):
            nested = changed_tree(field, target, current)
            if nested:
                changes[key] = nested
        elif not _same(field, target, current):
            changes[key] = target
    return changes


def _default(field: Field) -> Any:
    if field.type == "record":
        return {} if field.fields else NO_DEFAULT  # compared field by field
    if field.default is NO_DEFAULT:
        return None
    return field.default_value()


def _same(field: Field | None, want: Any, have: Any) -> bool:
    if want == [] and have in (None, {}):
        return True  # Kong renders an empty array as null (or {} from cjson)
    kind = field.type if field is not None else ""
    if kind == "set" and isinstance(want, list) and isinstance(have, list):
        return _as_set(want) == _as_set(have)
    return bool(want == have)


def _as_set(items: list[Any]) -> set[Any]:
    return {repr(item) for item in items}


def defaults_tree(spec: Field) -> Tree:
    """A record with Kong's defaults filled in (generated fields left out)."""
    tree: Tree = {}
    for name, field in spec.fields:
        if field.auto is not None:
            continue
        if field.type == "record" and field.fields:
            tree[name] = defaults_tree(field)
        else:
            tree[name] = None if field.default is NO_DEFAULT else field.default_value()
    return tree
