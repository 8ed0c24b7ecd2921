"""A small schema language mirroring Kong's (``kong/db/schema/init.lua``).

A :class:`Field` knows its type, default and checks; :func:`validate_record`
returns errors shaped exactly as Kong renders them in ``fields``.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

Check = Callable[[Any], str | None]

_TYPE_ERRORS = {
    "string": "expected a string",
    "integer": "expected an integer",
    "number": "expected a number",
    "boolean": "expected a boolean",
    "set": "expected a set",
    "array": "expected an array",
    "record": "expected a record",
    "map": "expected a map",
    "foreign": "expected a record",
}


class _NoDefault:
    def __repr__(self) -> str:
        return "NO_DEFAULT"


NO_DEFAULT: Any = _NoDefault()


@dataclass(frozen=True)
class Field:
    """One field of an entity schema."""

    type: str
    default: Any = NO_DEFAULT
    required: bool = False
    elements: Field | None = None
    fields: tuple[tuple[str, Field], ...] = ()
    values: Field | None = None
    one_of: tuple[Any, ...] | None = None
    between: tuple[int, int] | None = None
    len_min: int | None = None
    checks: tuple[Check, ...] = ()
    reference: str | None = None
    auto: str | None = None  # "uuid", "ts" (seconds) or "ts_ms"
    allow_unknown: bool = False

    def default_value(self) -> Any:
        if self.default is not NO_DEFAULT:
            return copy.deepcopy(self.default)
        if self.type == "record" and self.fields:
            return {name: spec.default_value() for name, spec in self.fields}
        return None


def record(fields: dict[str, Field], **kwargs: Any) -> Field:
    return Field("record", fields=tuple(fields.items()), **kwargs)


def string(**kwargs: Any) -> Field:
    return Field("string", **kwargs)


def integer(**kwargs: Any) -> Field:
    return Field("integer", **kwargs)


def boolean(default: Any = NO_DEFAULT, **kwargs: Any) -> Field:
    return Field("boolean", default=default, **kwargs)


def string_set(elem: Field | None = None, **kwargs: Any) -> Field:
    return Field("set", elements=elem or string(), **kwargs)


def string_array(elem: Field | None = None, **kwargs: Any) -> Field:
    return Field("array", elements=elem or string(), **kwargs)


def foreign(reference: str, **kwargs: Any) -> Field:
    return Field("foreign", reference=reference, **kwargs)


def _dedupe(items: list[Any]) -> list[Any]:
    seen: list[Any] = []
    for item in items:
        if item not in seen:
            seen.append(item)
    return seen


def _is_int(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return True
    return isinstance(value, float) and value.is_integer()


def _type_ok(spec: Field, value: Any) -> bool:
    kind = spec.type
    if kind == "string":
        return isinstance(value, str)
    if kind == "integer":
        return _is_int(value)
    if kind == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    if kind == "boolean":
        return isinstance(value, bool)
    if kind in ("set", "array"):
        return isinstance(value, list) or (isinstance(value, dict) and not value)
    if kind in ("record", "map", "foreign"):
        return isinstance(value, dict)
    return True


def _run_checks(spec: Field, value: Any) -> str | None:
    if spec.type == "string" and value == "" and spec.len_min is None:
        return "length must be at least 1"
    if spec.one_of is not None and value not in spec.one_of:
        return "expected one of: " + ", ".join(str(v) for v in spec.one_of)
    if spec.between is not None and not spec.between[0] <= value <= spec.between[1]:
        return f"value should be between {spec.between[0]} and {spec.between[1]}"
    if spec.len_min is not None and len(value) < spec.len_min:
        return f"length must be at least {spec.len_min}"
    for check in spec.checks:
        error = check(value)
        if error:
            return error
    return None


def validate_value(spec: Field, value: Any) -> tuple[Any, Any]:
    """Validate (and normalise) one value; returns (value, error or None)."""
    if value is None:
        return None, ("required field missing" if spec.required else None)
    if not _type_ok(spec, value):
        return value, _TYPE_ERRORS.get(spec.type, "invalid value")
    if spec.type == "integer":
        value = int(value)
    if spec.type in ("set", "array"):
        if isinstance(value, dict):
            value = []
        if spec.type == "set":
            value = _dedupe(value)
        assert spec.elements is not None
        element_errors: list[Any] = []
        normalised = []
        for item in value:
            item_value, item_error = validate_value(spec.elements, item)
            normalised.append(item_value)
            element_errors.append(item_error)
        if any(element_errors):
            return value, element_errors
        value = normalised
    if spec.type == "record" and spec.fields:
        value, errors = validate_record(dict(spec.fields), value, spec.allow_unknown)
        if errors:
            return value, errors
    if spec.type == "map" and spec.values is not None:
        for key, item in value.items():
            _item, item_error = validate_value(spec.values, item)
            if item_error:
                return value, {key: item_error}
    if spec.type == "foreign":
        return value, None  # resolved by the store
    return value, _run_checks(spec, value)


def validate_record(
    schema: dict[str, Field], data: dict[str, Any], allow_unknown: bool = False
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Validate a full record; returns (normalised record, errors keyed by field)."""
    errors: dict[str, Any] = {}
    out: dict[str, Any] = {}
    for key in data:
        if key not in schema and not allow_unknown:
            errors[key] = "unknown field"
    for name, spec in schema.items():
        given = data[name] if name in data else spec.default_value()
        value, error = validate_value(spec, given)
        out[name] = value
        if error:
            errors[name] = error
    if allow_unknown:
        for key, value in data.items():
            out.setdefault(key, value)
    return out, errors


@dataclass
class EntitySchema:
    """An entity: its fields, endpoint key, uniques and entity-level checks."""

    name: str
    fields: dict[str, Field]
    endpoint_key: str | None = None
    unique: tuple[str, ...] = ()
    cache_key: tuple[str, ...] = ()
    entity_checks: list[Callable[[dict[str, Any]], dict[str, Any]]] = field(default_factory=list)
    shorthands: list[Callable[[dict[str, Any]], dict[str, Any]]] = field(default_factory=list)


def _coerce_scalar(spec: Field, value: Any) -> Any:
    if not isinstance(value, str):
        return value
    if value == "":
        return None  # an empty form value unsets the field
    if spec.type in ("integer", "number"):
        try:
            number = float(value)
        except ValueError:
            return value
        return int(number) if number.is_integer() else number
    if spec.type == "boolean" and value in ("true", "false"):
        return value == "true"
    return value


def coerce_form(schema: dict[str, Field], data: dict[str, Any]) -> dict[str, Any]:
    """Form bodies carry only strings: give them the types the schema expects.

    ``paths=/a`` becomes ``["/a"]``, ``port=80`` becomes ``80``, and nested
    records (``config.minute=5``, ``service.id=...``) recurse.
    """
    out: dict[str, Any] = {}
    for key, value in data.items():
        spec = schema.get(key)
        if spec is None:
            out[key] = value
        elif spec.type in ("set", "array"):
            items = value if isinstance(value, list) else [value]
            if items == [""]:
                out[key] = None
                continue
            elem = spec.elements or Field("string")
            if elem.type == "record" and elem.fields:
                out[key] = [
                    coerce_form(dict(elem.fields), i) if isinstance(i, dict) else i for i in items
                ]
            else:
                out[key] = [_coerce_scalar(elem, i) for i in items]
        elif spec.type == "record" and isinstance(value, dict):
            out[key] = coerce_form(dict(spec.fields), value) if spec.fields else value
        else:
            out[key] = _coerce_scalar(spec, value[-1] if isinstance(value, list) else value)
    return out


def nest_form_pairs(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """``a.b=1``, ``paths[]=/x``, ``paths[1]=/y`` into nested dicts and lists."""
    out: dict[str, Any] = {}
    for raw_key, value in pairs:
        key = raw_key
        index: int | None = None
        is_list = False
        if key.endswith("]") and "[" in key:
            key, _, inner = key[:-1].partition("[")
            is_list = True
            index = int(inner) if inner.isdigit() else None
        parts = key.split(".")
        target = out
        for part in parts[:-1]:
            target = target.setdefault(part, {})
            if not isinstance(target, dict):
                break
        else:
            leaf = parts[-1]
            existing = target.get(leaf)
            if is_list or leaf in target:
                items = (
                    existing
                    if isinstance(existing, list)
                    else ([] if existing is None else [existing])
                )
                if index is not None:
                    while len(items) < index:
                        items.append(None)
                    items[index - 1] = value
                else:
                    items.append(value)
                target[leaf] = items
            else:
                target[leaf] = value
    return out
