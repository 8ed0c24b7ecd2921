"""DB-less declarative configuration: parse, migrate, flatten and validate (``POST /config``)."""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass, field
from typing import Any

import yaml

from ...kong.schema.validators import is_uuid
from . import errors as e
from .luafmt import lua_pretty
from .schemas import ENTITIES, FOREIGN_KEYS
from .store import Row, Store

FORMAT_VERSIONS = ("1.1", "2.1", "3.0")
# Parents before children, so references resolve in one pass.
ORDER = tuple(ENTITIES)
# parent kind -> nested list key (the child's entity name) -> foreign key field in the child,
# for every foreign key, as declarative_config.lua's nest_foreign_relationships does.
NESTED: dict[str, dict[str, str]] = {}
for _child, _field, _parent in FOREIGN_KEYS:
    NESTED.setdefault(_parent, {})[_child] = _field
IGNORED_KEYS = ("_format_version", "_transform", "_comment", "_ignore", "_workspace")
OTHER_KINDS = ("ca_certificates", "vaults", "keys", "key_sets")
_ID_NAMESPACE = uuid.UUID("fd02801f-0957-4a15-a8f3-7d6f0a3b1c47")
_PLAIN_PATH = re.compile(r"^[A-Za-z0-9.\-_~/%]*$")


@dataclass
class _Entry:
    kind: str
    data: Row
    where: list[tuple[str, int]]  # path of (list key, index) from the top of the config
    refs: dict[str, Any] = field(default_factory=dict)  # foreign keys as written


@dataclass
class Loaded:
    store: Store
    entities: dict[str, dict[str, Row]] = field(default_factory=dict)


def parse_text(text: str) -> Any:
    """A declarative config as YAML (JSON is YAML too)."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise e.api_error(
            14, f"failed parsing declarative configuration: {exc}", {"error": str(exc)}
        ) from None


def _migrate_path(path: Any) -> Any:
    """1.1/2.1 configs: regex-looking paths gain the 3.x ``~`` prefix."""
    if isinstance(path, str) and not path.startswith("~") and not _PLAIN_PATH.match(path):
        return "~" + path
    return path


def _stable_id(kind: str, data: Row, where: list[tuple[str, int]]) -> str:
    schema = ENTITIES[kind]
    key = data.get(schema.endpoint_key or "name") if schema.endpoint_key else None
    seed = f"{kind}:{key}" if key else f"{kind}:{where}"
    if kind == "targets":
        seed = f"{kind}:{data.get('upstream')}:{data.get('target')}"
    return str(uuid.uuid5(_ID_NAMESPACE, seed))


def _reference(value: Any) -> Any:
    if isinstance(value, str):
        return {"id": value} if is_uuid(value) else {"name": value}
    return value


def _foreign_fields(kind: str) -> list[str]:
    return [name for name, spec in ENTITIES[kind].fields.items() if spec.type == "foreign"]


def _flatten(config: dict[str, Any], migrate: bool) -> list[_Entry]:
    entries: list[_Entry] = []

    def walk(
        kind: str,
        items: Any,
        where: list[tuple[str, int]],
        parent: Row | None,
        parent_key: str | None,
    ) -> None:
        if not isinstance(items, list):
            raise e.api_error(
                14,
                f'declarative config is invalid: {{{kind}="expected an array"}}',
                {kind: "expected an array"},
            )
        for index, raw in enumerate(items):
            here = [*where, (kind, index)]
            if not isinstance(raw, dict):
                entries.append(_Entry(kind, {"__invalid__": raw}, here))
                continue
            data = dict(raw)
            children = {key: data.pop(key) for key in NESTED.get(kind, {}) if key in data}
            if parent is not None and parent_key is not None:
                data[parent_key] = {"id": parent["id"]}
            refs = {
                fk: data[fk]
                for fk in _foreign_fields(kind)
                if data.get(fk) is not None and fk != parent_key
            }
            for fk, value in refs.items():
                data[fk] = _reference(value)
            if migrate and kind == "routes" and isinstance(data.get("paths"), list):
                data["paths"] = [_migrate_path(p) for p in data["paths"]]
            data.setdefault("id", _stable_id(kind, data, here))
            entries.append(_Entry(kind, data, here, refs))
            for child_key, child_items in children.items():
                walk(child_key, child_items, here, data, NESTED[kind][child_key])

    for kind in ORDER:
        if kind in config and config[kind] is not None:
            walk(kind, config[kind], [], None, None)
    order = {kind: i for i, kind in enumerate(ORDER)}
    return sorted(entries, key=lambda entry: order[entry.kind])


def _set_error(errors: dict[str, Any], where: list[tuple[str, int]], value: Any) -> None:
    node: Any = errors
    for depth, (key, index) in enumerate(where):
        items = node.setdefault(key, [])
        while len(items) <= index:
            items.append(None)
        if depth == len(where) - 1:
            items[index] = value
        else:
            if items[index] is None:
                items[index] = {}
            node = items[index]


def _entry_error(entry: _Entry, error: e.KongError) -> Any:
    body = error.body
    if body.get("code") in (3, 5):
        # Stable ids come from the name, so a repeated name collides on the id first.
        key = ENTITIES[entry.kind].endpoint_key
        if key and entry.data.get(key) is not None:
            field_name, value = key, entry.data[key]
        else:
            field_name, value = next(iter(body.get("fields", {"id": entry.data["id"]}).items()))
        return (
            f"uniqueness violation: '{entry.kind}' entity with {field_name} set to "
            f"'{value}' already declared"
        )
    return body.get("fields") or body.get("message")


def _flattened_error(entry: _Entry, error: Any) -> dict[str, Any]:
    messages: list[dict[str, Any]] = []
    if isinstance(error, dict):
        for message in error.get("@entity", []):
            messages.append({"type": "entity", "message": message})
        for key, value in error.items():
            if key != "@entity":
                messages.append({"type": "field", "field": key, "message": str(value)})
    else:
        messages.append({"type": "entity", "message": str(error)})
    data = entry.data
    return {
        "entity_type": entry.kind[:-1] if entry.kind.endswith("s") else entry.kind,
        "entity_id": data.get("id"),
        "entity_name": data.get("name"),
        "entity_tags": data.get("tags"),
        "entity": data,
        "errors": messages,
    }


def load(config: Any, flatten_errors: bool = False) -> Loaded:
    """Validate a whole declarative config into a fresh store, or raise code 14."""
    if not isinstance(config, dict):
        raise e.api_error(14, "expected an object", {"error": "expected an object"})
    top_errors: dict[str, Any] = {}
    version = config.get("_format_version")
    if version is None:
        top_errors["_format_version"] = "required field missing"
    elif version not in FORMAT_VERSIONS:
        top_errors["_format_version"] = "expected one of: " + ", ".join(FORMAT_VERSIONS)
    for key in config:
        if key not in ORDER and key not in IGNORED_KEYS and key not in OTHER_KINDS:
            top_errors[key] = "unknown field"
    if top_errors:
        raise _invalid(top_errors, [])
    entries = _flatten(config, migrate=version != "3.0")
    store = Store()
    errors: dict[str, Any] = {}
    reference_errors: dict[str, dict[str, list[str]]] = {}
    flattened: list[dict[str, Any]] = []
    for entry in entries:
        if "__invalid__" in entry.data:
            _set_error(errors, entry.where, "expected a record")
            continue
        missing = _invalid_references(store, entry)
        if missing:
            reference_errors.setdefault(entry.kind, {})[_reference_site(entry)] = missing
            continue
        try:
            store.insert(entry.kind, entry.data)
        except e.KongError as error:
            detail = _entry_error(entry, error)
            _set_error(errors, entry.where, detail)
            flattened.append(_flattened_error(entry, detail))
    if errors:
        raise _invalid(errors, flattened if flatten_errors else None)
    if reference_errors:  # Kong checks references once the schema is satisfied
        raise _invalid(reference_errors, [] if flatten_errors else None)
    loaded = Loaded(store)
    for kind in ORDER:
        rows = store.all(kind)
        if rows:
            loaded.entities[kind] = {row["id"]: row for row in rows}
    return loaded


def _invalid_references(store: Store, entry: _Entry) -> list[str]:
    """``validate_references``: each reference must name an entry by id or endpoint key."""
    messages = []
    for fk, value in entry.refs.items():
        kind = ENTITIES[entry.kind].fields[fk].reference or ""
        key = value.get("id", value) if isinstance(value, dict) else value
        if isinstance(key, str) and _find(store, kind, key) is not None:
            continue
        shown = value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))
        messages.append(f"invalid reference '{fk}: {shown}' (no such entry in '{kind}')")
    return messages


def _find(store: Store, kind: str, key: str) -> Row | None:
    if is_uuid(key):
        return store.get(kind, {"id": key})
    endpoint = ENTITIES[kind].endpoint_key
    return store.find_unique(kind, endpoint, key) if endpoint else None


def _reference_site(entry: _Entry) -> str:
    """Where Kong files a reference error: the endpoint key's value, else the id."""
    endpoint = ENTITIES[entry.kind].endpoint_key
    value = entry.data.get(endpoint) if endpoint else None
    return str(value if value is not None else entry.data["id"])


def _invalid(fields: dict[str, Any], flattened: list[dict[str, Any]] | None) -> e.KongError:
    error = e.api_error(14, f"declarative config is invalid: {lua_pretty(fields)}", fields)
    if flattened is not None:
        error.body["flattened_errors"] = flattened
    return error


def export(store: Store) -> dict[str, Any]:
    """``GET /config``: the current entities as a 3.0 declarative config."""
    out: dict[str, Any] = {"_format_version": "3.0", "_transform": False}
    for kind in ORDER:
        rows = []
        transient = ENTITIES[kind].transient
        for row in store.all(kind):
            clean = {k: v for k, v in row.items() if v is not None and k not in transient}
            for fk in _foreign_fields(kind):
                if isinstance(clean.get(fk), dict):
                    clean[fk] = clean[fk]["id"]
            rows.append(clean)
        if rows:
            out[kind] = rows
    return out
