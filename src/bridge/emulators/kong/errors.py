"""Kong's error bodies (``kong/db/errors.lua``) and the HTTP status each maps to."""

from __future__ import annotations

from typing import Any

from .luafmt import lua_pretty

# code -> (name, HTTP status), from kong/db/errors.lua and ERRORS_HTTP_CODES.
ERROR_CODES: dict[int, tuple[str, int]] = {
    1: ("invalid primary key", 400),
    2: ("schema violation", 400),
    3: ("primary key violation", 400),
    4: ("foreign key violation", 400),
    5: ("unique constraint violation", 409),
    6: ("not found", 404),
    7: ("invalid offset", 400),
    8: ("database error", 500),
    9: ("invalid size", 400),
    10: ("invalid unique name", 400),
    11: ("invalid options", 400),
    12: ("operation unsupported", 405),
    13: ("foreign keys unresolved", 400),
    14: ("invalid declarative configuration", 400),
    19: ("referenced by others", 400),
}


class KongError(Exception):
    """An error the Admin API answers with a JSON body and a status code."""

    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(body.get("message", ""))
        self.status = status
        self.body = body


def api_error(code: int, message: str, fields: Any = None, name: str | None = None) -> KongError:
    """An error with Kong's ``{code, name, message, fields}`` body."""
    default_name, status = ERROR_CODES[code]
    body: dict[str, Any] = {"code": code, "name": name or default_name, "message": message}
    if fields is not None:
        body["fields"] = fields
    return KongError(status, body)


def plain_error(status: int, message: str) -> KongError:
    """An error whose body is only ``{"message": ...}`` (not found, method not allowed)."""
    return KongError(status, {"message": message})


def not_found() -> KongError:
    return plain_error(404, "Not found")


def method_not_allowed() -> KongError:
    return plain_error(405, "Method not allowed")


def _sorted_keys(errors: dict[str, Any]) -> list[str]:
    return sorted(errors, key=str)


def schema_violation_message(errors: dict[str, Any]) -> str:
    """Kong's message for a schema violation: entity errors first, then sorted fields."""
    parts: list[str] = list(errors.get("@entity", []))
    for field in _sorted_keys(errors):
        if field == "@entity":
            continue
        value = errors[field]
        if isinstance(value, dict):
            for sub in _sorted_keys(value):
                sub_value = value[sub]
                text = lua_pretty(sub_value) if isinstance(sub_value, dict | list) else sub_value
                parts.append(f"{field}.{sub}: {text}")
        elif isinstance(value, list):
            for index, item in enumerate(value, start=1):
                if item is None:
                    continue
                text = lua_pretty(item) if isinstance(item, dict | list) else item
                parts.append(f"{field}.{index}: {text}")
        else:
            parts.append(f"{field}: {value}")
    if len(parts) == 1:
        return f"schema violation ({parts[0]})"
    return f"{len(parts)} schema violations ({'; '.join(parts)})"


def schema_violation(errors: dict[str, Any]) -> KongError:
    return api_error(2, schema_violation_message(errors), errors)


def key_repr(key: dict[str, Any]) -> str:
    """Render a key the way Kong's messages do: ``{name="foo"}``."""
    return lua_pretty(key)


def unique_violation(key: dict[str, Any]) -> KongError:
    return api_error(5, f"UNIQUE violation detected on '{key_repr(key)}'", key)


def primary_key_violation(entity_id: str) -> KongError:
    key = {"id": entity_id}
    return api_error(3, f"primary key violation on key '{key_repr(key)}'", key)


def not_found_error(key: dict[str, Any]) -> KongError:
    """The code-6 body PATCH answers for a missing entity."""
    if "id" in key:
        message = f"could not find the entity with primary key '{key_repr(key)}'"
    else:
        message = f"could not find the entity with '{key_repr(key)}'"
    return api_error(6, message, key)
