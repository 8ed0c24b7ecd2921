"""``/schemas/...``: entity and plugin schemas, and validation without writing.

As ``kong/api/routes/kong.lua`` answers them: ``GET /schemas/{entity}`` (by DAO
name), ``GET /schemas/plugins/{name}``, ``POST /schemas/plugins/validate`` and
``POST /schemas/{entity}/validate`` (200 "schema validation successful" or a schema
violation), plus the deprecated ``GET /plugins/schema/{name}`` (the config record).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from ...kong.schema.fields import NO_DEFAULT, Field
from ...kong.schema.plugins import jsonable_schema, plugin
from . import errors as e
from .responses import json_response
from .schemas import ENTITIES
from .store import Row, Store

BodyReader = Callable[[Request, str], Awaitable[Row]]


def field_to_kong(spec: Field, unique: bool = False) -> dict[str, Any]:
    """A field as Kong's ``schema_to_jsonable`` renders it."""
    out: dict[str, Any] = {"type": spec.type}
    if spec.required:
        out["required"] = True
    if unique:
        out["unique"] = True
    if spec.default is not NO_DEFAULT:
        out["default"] = spec.default
    if spec.auto:
        out["auto"] = True
    if spec.auto == "uuid":
        out["uuid"] = True
    if spec.auto in ("ts", "ts_ms"):
        out["timestamp"] = True
    if spec.reference:
        out["reference"] = spec.reference
    if spec.on_delete:
        out["on_delete"] = spec.on_delete
    for key in ("one_of", "between", "len_min", "len_max", "gt"):
        value = getattr(spec, key)
        if value is not None:
            out[key] = list(value) if isinstance(value, tuple) else value
    if spec.elements is not None:
        out["elements"] = field_to_kong(spec.elements)
    if spec.values is not None:
        out["values"] = field_to_kong(spec.values)
    if spec.fields:
        out["fields"] = [{name: field_to_kong(sub)} for name, sub in spec.fields]
    return out


class SchemasAPI:
    """The ``/schemas`` endpoints of one emulated node."""

    def __init__(self, store: Callable[[], Store], body: BodyReader) -> None:
        self._store = store
        self._body = body

    @staticmethod
    def handles(rest: list[str]) -> bool:
        return len(rest) in (1, 2)

    @staticmethod
    def allowed(rest: list[str]) -> tuple[str, ...]:
        return ("POST",) if rest[-1] == "validate" else ("GET",)

    async def handle(self, request: Request, rest: list[str]) -> Response:
        match rest:
            case ["plugins", "validate"]:
                return await self.validate(request, "plugins")
            case ["plugins", name]:
                return self.plugin_schema(name)
            case [entity, "validate"]:
                return await self.validate(request, entity)
            case [entity]:
                return self.entity_schema(entity)
        raise e.not_found()

    def entity_schema(self, name: str) -> Response:
        schema = ENTITIES.get(name)
        if schema is None:
            return json_response(404, {"message": f"No entity named '{name}'"})
        fields = [
            {key: field_to_kong(spec, unique=key in schema.unique)}
            for key, spec in schema.fields.items()
        ]
        # The emulator's entity checks are Python, not Kong's tables: none are listed.
        return json_response(200, {"entity_checks": [], "fields": fields})

    def plugin_schema(self, name: str) -> Response:
        spec = plugin(name)
        if spec is None:
            return json_response(404, {"message": f"No plugin named '{name}'"})
        return json_response(200, jsonable_schema(spec))

    async def plugin_config_schema(self, name: str) -> Response:
        spec = plugin(name)
        if spec is None:
            return json_response(404, {"message": f"No plugin named '{name}'"})
        for item in jsonable_schema(spec).get("fields", []):
            if "config" in item:
                return json_response(200, item["config"])
        return json_response(200, {"type": "record", "fields": []})

    async def validate(self, request: Request, name: str) -> Response:
        if name not in ENTITIES:
            return json_response(404, {"message": f"No entity named '{name}'"})
        data = await self._body(request, name)
        self._store().validate(name, data, check_references=False)
        return json_response(200, {"message": "schema validation successful"})
