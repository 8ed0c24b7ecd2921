"""Kong 3.9's bundled plugins (``plugins = bundled``): names, versions, priorities, schemas.

The schemas come from Kong's own sources: ``plugin_schemas.json`` is the dump
``generate.lua`` makes of every ``kong/plugins/<name>/schema.lua`` listed in
``kong/constants.lua`` (BUNDLED_PLUGINS) at the tag it names. Regenerate with::

    luajit src/bridge/kong/schema/generate.lua <kong git dir> 3.9.1 \\
        > src/bridge/kong/schema/plugin_schemas.json
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from .fields import Field, field_from_kong, kong_field_items

SCHEMA_FILE = Path(__file__).parent / "plugin_schemas.json"


@dataclass(frozen=True)
class PluginSpec:
    """One bundled plugin as the Admin API knows it."""

    name: str
    version: str
    priority: int
    fields: dict[str, Field]  # the plugin's own fields: config, protocols, no_consumer...
    entity_checks: tuple[dict[str, Any], ...]
    schema: dict[str, Any]  # Kong's schema table, for GET /schemas/plugins/{name}


def _spec(name: str, entry: dict[str, Any]) -> PluginSpec:
    schema = entry["schema"]
    fields = {name: field_from_kong(data) for name, data in kong_field_items(schema.get("fields"))}
    return PluginSpec(
        name=name,
        version=entry.get("version") or "",
        priority=int(entry.get("priority") or 0),
        fields=fields,
        entity_checks=tuple(schema.get("entity_checks") or ()),
        schema=schema,
    )


@cache
def bundled() -> dict[str, PluginSpec]:
    """Every bundled plugin, by name (read once from the dump)."""
    data = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    return {name: _spec(name, entry) for name, entry in sorted(data["plugins"].items())}


def plugin(name: object) -> PluginSpec | None:
    return bundled().get(name) if isinstance(name, str) else None


def jsonable_schema(spec: PluginSpec) -> dict[str, Any]:
    """``GET /schemas/plugins/{name}``: Kong's schema table without its Lua functions,
    records marked required as ``Entity.new_subschema`` (make_records_required) does."""
    stripped: dict[str, Any] = _strip_functions(spec.schema)
    _require_records(stripped.get("fields"))
    # api_helpers.schema_to_jsonable keeps only these two keys.
    return {
        "entity_checks": stripped.get("entity_checks") or [],
        "fields": stripped.get("fields") or [],
    }


def _require_records(fields: Any) -> None:
    for _name, data in kong_field_items(fields):
        if data.get("type") == "record":
            data.setdefault("required", True)
            _require_records(data.get("fields"))


_FUNCTION_KEYS = ("custom_validator", "func", "fn", "custom_entity_check")


def _strip_functions(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            key: _strip_functions(item) for key, item in value.items() if key not in _FUNCTION_KEYS
        }
    if isinstance(value, list):
        stripped = [_strip_functions(item) for item in value]
        return [item for item in stripped if item != {}]
    return value
