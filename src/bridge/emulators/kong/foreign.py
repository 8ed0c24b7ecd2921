"""Foreign keys as Kong reads them (``resolve_foreign`` in ``kong/db/dao/init.lua``).

A foreign value is an object. When it holds a valid primary key (``id``), the rest
of the object is ignored, so a whole entity as GET returned it is a valid reference.
Otherwise each unique or endpoint-key field of the referenced entity that the object
carries is tried in schema order; an unknown value is "foreign key unresolved" (code
13). An object with neither is then validated against the referenced schema
(partially: unknown fields and wrong types), else it is "missing primary key".
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from ...kong.schema import validators as v
from ...kong.schema.fields import EntitySchema, Field, validate_record, validate_value
from . import errors as e
from .luafmt import lua_pretty

Row = dict[str, Any]
# (kind, {field: value}) -> the row, or None
Lookup = Callable[[str, dict[str, Any]], Row | None]


def has_primary_key(value: Any) -> bool:
    return isinstance(value, dict) and isinstance(value.get("id"), str) and v.is_uuid(value["id"])


def _lookup_fields(schema: EntitySchema) -> list[str]:
    names = [name for name in schema.fields if name in schema.unique]
    if schema.endpoint_key and schema.endpoint_key not in names:
        names.append(schema.endpoint_key)
    return [name for name in schema.fields if name in names]


def resolve(
    fields: dict[str, Field], data: Row, entities: dict[str, EntitySchema], lookup: Lookup
) -> Row:
    """References by primary key keep only ``id``; others are resolved or raise code 13."""
    data = dict(data)
    unresolved: dict[str, Any] = {}
    for name, spec in fields.items():
        value = data.get(name)
        if spec.type != "foreign" or not isinstance(value, dict) or spec.reference is None:
            continue
        if has_primary_key(value):
            data[name] = {"id": value["id"]}
            continue
        schema = entities.get(spec.reference)
        if schema is None:
            continue
        failures: dict[str, str] = {}
        for key in _lookup_fields(schema):
            given = value.get(key)
            if given is None or validate_value(schema.fields[key], given)[1] is not None:
                continue
            row = lookup(spec.reference, {key: given})
            if row is not None:
                data[name] = {"id": row["id"]}
                failures = {}
                break
            failures[key] = (
                f"the foreign key cannot be resolved with '{lua_pretty({key: given})}' "
                f"for an existing '{spec.reference}' entity"
            )
        if failures:
            unresolved[name] = failures
    if unresolved:
        raise _unresolved(unresolved)
    return data


def _unresolved(errors: dict[str, dict[str, str]]) -> e.KongError:
    parts = [
        f"{name}.{key}: {message}"
        for name in sorted(errors)
        for key, message in sorted(errors[name].items())
    ]
    if len(parts) == 1:
        message = f"foreign key unresolved ({parts[0]})"
    else:
        message = f"{len(parts)} foreign keys unresolved ({'; '.join(parts)})"
    return e.api_error(13, message, errors)


def reference_errors(value: Row, schema: EntitySchema) -> Any:
    """Errors for a reference without a usable primary key (after ``resolve``)."""
    if has_primary_key(value):
        return None
    partial = {k: spec for k, spec in schema.fields.items() if k in value}
    relaxed = {k: replace(spec, required=False) for k, spec in partial.items()}
    _row, errors = validate_record(relaxed, {k: value[k] for k in value if k in relaxed})
    unknown = {k: "unknown field" for k in value if k not in schema.fields}
    errors = {**errors, **unknown}
    if errors:
        return errors
    return {"id": "missing primary key"}
