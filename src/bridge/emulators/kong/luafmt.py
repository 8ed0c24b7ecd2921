"""Render values the way Penlight's ``pretty.write(v, "")`` does in Kong's messages."""

from __future__ import annotations

from typing import Any


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, str):
        escaped = value.replace("\\", "\\\\").replace('"', '\\"')
        return f'"{escaped}"'
    return str(value)


def lua_pretty(value: Any) -> str:
    """``{name="foo"}``, ``{{host="required field missing"}}``: compact Lua tables."""
    if isinstance(value, dict):
        items = ",".join(f"{key}={lua_pretty(value[key])}" for key in sorted(value, key=str))
        return "{" + items + "}"
    if isinstance(value, list):
        return "{" + ",".join(lua_pretty(item) for item in value) + "}"
    return _scalar(value)
