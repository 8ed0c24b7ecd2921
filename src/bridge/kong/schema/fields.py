"""A small schema language mirroring Kong's (``kong/db/schema/init.lua``).

A :class:`Field` knows its type, default and checks; :func:`validate_record`
returns errors shaped exactly as Kong renders them in ``fields``.
"""

from __future__ import annotations

import copy
import secrets
import string as string_module
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from . import lua
from . import validators as v
from .entity_checks import run_entity_checks

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
    auto: str | None = None  # "uuid", "ts" (seconds), "ts_ms" or "random" (a generated string)
    allow_unknown: bool = False
    # Kong's other field validators, as its schema sources spell them.
    gt: float | None = None
    len_max: int | None = None
    len_eq: int | None = None
    eq: Any = NO_DEFAULT
    not_one_of: tuple[Any, ...] | None = None
    starts_with: str | None = None
    match: str | None = None  # a Lua pattern
    match_none: tuple[tuple[str, str], ...] = ()  # (Lua pattern, error message)
    custom: str | None = None  # the Lua name of a custom_validator
    keys: Field | None = None
    entity_checks: tuple[dict[str, Any], ...] = ()  # a record's own checks, Kong's shape
    shorthands: tuple[tuple[str, tuple[str, ...]], ...] = ()  # alias -> replacing path
    on_delete: str | None = None  # "cascade"; otherwise a reference restricts deletes
    # The default, validated once (see validated_default); never compared or copied over.
    _memo: dict[str, tuple[Any, Any]] = field(
        default_factory=dict, init=False, compare=False, hash=False, repr=False
    )

    def fixed_default(self) -> bool:
        """Whether the default is the same every time (no generated key inside)."""
        if self.default is not NO_DEFAULT:
            return True
        if self.auto == "random":
            return False
        if self.type == "record" and (self.fields or self.required):
            return all(spec.fixed_default() for _name, spec in self.fields)
        return True

    def validated_default(self) -> tuple[Any, Any]:
        """``validate_value(self, self.default_value())``: (value, error), a fresh copy.

        A fixed default is validated once: a write that leaves a large record (an
        upstream's ``healthchecks``) to its default then costs a copy, not a validation.
        """
        memo = self._memo.get("default")
        if memo is None:
            memo = validate_value(self, self.default_value())
            if not self.fixed_default():
                return memo
            self._memo["default"] = memo
        value, error = memo
        return _copy_json(value), _copy_json(error)

    def default_value(self) -> Any:
        if self.default is not NO_DEFAULT:
            return copy.deepcopy(self.default)
        if self.auto == "random":
            return random_string()
        if self.type == "record" and (self.fields or self.required):
            return {name: spec.default_value() for name, spec in self.fields}
        return None


_SCALARS = frozenset({str, int, float, bool})


def _copy_json(value: Any) -> Any:
    """A deep copy of JSON-shaped data (dicts, lists, scalars), faster than copy.deepcopy."""
    if value is None or type(value) in _SCALARS:
        return value  # most defaults, and most of a record's leaves
    if isinstance(value, dict):
        return {key: _copy_json(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_copy_json(item) for item in value]
    return value


_ALPHANUMERIC = string_module.ascii_letters + string_module.digits


def random_string() -> str:
    """``kong.tools.rand.random_string``: 32 alphanumeric characters (generated keys)."""
    return "".join(secrets.choice(_ALPHANUMERIC) for _ in range(32))


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


def common_fields(ms: bool = False, updated: bool = True) -> dict[str, Field]:
    """``id``, ``created_at`` and (most entities) ``updated_at``, filled in on writes."""
    kind = "ts_ms" if ms else "ts"
    fields = {
        "id": string(checks=(v.check_uuid,), auto="uuid"),
        "created_at": Field("number" if ms else "integer", auto=kind),
    }
    if updated:
        fields["updated_at"] = Field("number" if ms else "integer", auto=kind)
    return fields


def tags_field() -> Field:
    return string_set(string(checks=(v.check_tag,)))


def _number_text(value: Any) -> str:
    return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)


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
    """Kong's field validators, in the order ``Schema:validate_field`` runs them."""
    if spec.type == "string" and value == "" and spec.len_min is None:
        return "length must be at least 1"
    if spec.between is not None and not spec.between[0] <= value <= spec.between[1]:
        return f"value should be between {spec.between[0]} and {spec.between[1]}"
    if spec.eq is not NO_DEFAULT and value != spec.eq:
        return f"value must be {'null' if spec.eq is None else spec.eq}"
    if spec.gt is not None and not value > spec.gt:
        return f"value must be greater than {_number_text(spec.gt)}"
    if spec.len_eq is not None and lua.length(value) != spec.len_eq:
        return f"length must be {spec.len_eq}"
    if spec.len_min is not None and lua.length(value) < spec.len_min:
        return f"length must be at least {spec.len_min}"
    if spec.len_max is not None and lua.length(value) > spec.len_max:
        return f"length must be at most {spec.len_max}"
    if spec.match is not None and isinstance(value, str) and not v.lua_match(spec.match, value):
        return f"invalid value: {value}"
    for pattern, message in spec.match_none:
        if isinstance(value, str) and v.lua_match(pattern, value):
            return message or f"invalid value: {value}"
    if spec.starts_with is not None and not str(value).startswith(spec.starts_with):
        return f"should start with: {spec.starts_with}"
    if spec.one_of is not None and value not in spec.one_of:
        return "expected one of: " + ", ".join(str(v) for v in spec.one_of)
    if spec.not_one_of is not None and value in spec.not_one_of:
        return "must not be one of: " + ", ".join(str(v) for v in spec.not_one_of)
    for check in spec.checks:
        error = check(value)
        if error:
            return error
    custom = v.CUSTOM_VALIDATORS.get(spec.custom or "")
    if custom is not None and isinstance(value, str):
        return custom(value)
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
        value = expand_shorthands(spec, value)
        value, errors = validate_record(dict(spec.fields), value, spec.allow_unknown)
        if not errors and spec.entity_checks:
            errors = run_entity_checks(spec.entity_checks, value, check_value)
        if errors:
            return value, errors
    if spec.type == "map":
        for key, item in value.items():
            if spec.keys is not None:
                _key, key_error = validate_value(spec.keys, key)
                if key_error:
                    return value, {key: key_error}
            if spec.values is not None:
                _item, item_error = validate_value(spec.values, item)
                if item_error:
                    return value, {key: item_error}
    if spec.type == "foreign":
        # The key was resolved by the store; only an ``eq = null`` (no_consumer) is left.
        if spec.eq is None:
            return value, "value must be null"
        return value, None
    return value, _run_checks(spec, value)


def check_value(spec_data: dict[str, Any], value: Any) -> str | None:
    """Check a value against an ad hoc field (an entity check's ``if_match``/``then_match``)."""
    if value is None:
        return "required field missing" if spec_data.get("required") else None
    spec = field_from_kong(spec_data, default_type=_kong_type_of(value))
    _value, error = validate_value(spec, value)
    if error is None and "contains" in spec_data and spec_data["contains"] not in value:
        return f"expected to contain: {spec_data['contains']}"
    if error is None and "match_any" in spec_data:
        patterns = spec_data["match_any"].get("patterns", [])
        if not any(v.lua_match(p, str(value)) for p in patterns):
            return spec_data["match_any"].get("err") or f"invalid value: {value}"
    return error if isinstance(error, str) or error is None else str(error)


def _kong_type_of(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "record"
    return "string"


def expand_shorthands(spec: Field, value: dict[str, Any]) -> dict[str, Any]:
    """Deprecated aliases (``redis_host``) write into the field that replaced them."""
    present = [(alias, path) for alias, path in spec.shorthands if alias in value]
    if not present:
        return value
    value = dict(value)
    for alias, path in present:
        given = value.pop(alias)
        if given is None or not path:
            continue
        target = value
        for part in path[:-1]:
            nested = target.get(part)
            target[part] = dict(nested) if isinstance(nested, dict) else {}
            target = target[part]
        target.setdefault(path[-1], given)
    return value


_SCALAR_KEYS = ("required", "one_of", "not_one_of", "gt", "len_min", "len_max", "len_eq")


def field_from_kong(data: dict[str, Any], default_type: str = "string") -> Field:
    """A :class:`Field` from a field table as Kong's Lua schema sources write it."""
    kind = data.get("type", default_type)
    default = data.get("default", NO_DEFAULT)
    if kind in ("array", "set") and default == {}:
        default = []
    computed = isinstance(default, dict) and "__stub" in default
    if computed:
        default = NO_DEFAULT  # computed when Kong loads the schema (a random secret)
    kwargs: dict[str, Any] = {k: data[k] for k in _SCALAR_KEYS if k in data}
    for key in ("one_of", "not_one_of"):
        if key in kwargs:
            kwargs[key] = tuple(kwargs[key])
    if "between" in data:
        kwargs["between"] = tuple(data["between"])
    if "eq" in data:
        kwargs["eq"] = data["eq"]
    if isinstance(data.get("match"), str):
        kwargs["match"] = data["match"]
    if isinstance(data.get("match_none"), list):
        kwargs["match_none"] = tuple(
            (item.get("pattern", ""), item.get("err", "")) for item in data["match_none"]
        )
    if isinstance(data.get("starts_with"), str):
        kwargs["starts_with"] = data["starts_with"]
    validator = data.get("custom_validator")
    if isinstance(validator, dict):  # a function of a module the dump did not load
        validator = str(validator.get("__stub", "")).rsplit(".", 1)[-1]
    if isinstance(validator, str):
        kwargs["custom"] = validator
    if (data.get("auto") is True or computed) and kind == "string":
        kwargs["auto"] = "random"
    for key in ("elements", "values", "keys"):
        if isinstance(data.get(key), dict):
            kwargs[key] = field_from_kong(data[key])
    if kind == "record":
        # Kong's Entity.new makes records required unless they say otherwise, so that
        # they come back whole; an optional record without a default is null.
        kwargs["required"] = data.get("required", True)
        if not kwargs["required"] and default is NO_DEFAULT:
            default = None
        kwargs["fields"] = tuple(
            (name, field_from_kong(spec)) for name, spec in kong_field_items(data.get("fields"))
        )
        kwargs["entity_checks"] = tuple(data.get("entity_checks") or ())
        kwargs["shorthands"] = tuple(
            (name, _replaced_path(spec))
            for item in data.get("shorthand_fields") or []
            for name, spec in item.items()
        )
    if kind == "foreign":
        kwargs["reference"] = data.get("reference")
        kwargs["on_delete"] = data.get("on_delete")
    return Field(kind, default=default, **kwargs)


def kong_field_items(fields: Any) -> list[tuple[str, dict[str, Any]]]:
    """``{ {name = {...}}, ... }`` as (name, table) pairs; what is not a field is skipped."""
    if not isinstance(fields, list):
        return []
    return [
        (name, spec)
        for item in fields
        if isinstance(item, dict)
        for name, spec in item.items()
        if isinstance(spec, dict)
    ]


def _replaced_path(spec: dict[str, Any]) -> tuple[str, ...]:
    replaced = (spec.get("deprecation") or {}).get("replaced_with") or []
    if replaced and isinstance(replaced[0], dict):
        return tuple(replaced[0].get("path") or ())
    return ()


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
        if name in data:
            value, error = validate_value(spec, data[name])
        else:
            value, error = spec.validated_default()
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
    # Kong's admin_api_name / admin_api_nested_name: the URL segments, when not ``name``.
    admin_name: str | None = None
    nested_name: str | None = None
    # Kong's ``transformations``: run on the validated row before it is written.
    # (validated row, the body as given) -> row to write.
    on_write: list[Callable[[dict[str, Any], dict[str, Any]], dict[str, Any]]] = field(
        default_factory=list
    )
    # Fields Kong accepts on writes but keeps elsewhere (certificates' ``snis``).
    transient: tuple[str, ...] = ()
    # Kong's ``ttl = true``: a write's ``ttl`` is an expiry, reads show the seconds left.
    ttl: bool = False

    @property
    def url_name(self) -> str:
        return self.admin_name or self.name


def _coerce_scalar(spec: Field, value: Any) -> Any:
    if not isinstance(value, str):
        return value
    if value == "":
        return None  # an empty form value unsets the field
    if spec.type in ("integer", "number"):
        number = lua.tonumber(value)  # kong/api/arguments.lua infers numbers with tonumber
        return value if number is None else number
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
