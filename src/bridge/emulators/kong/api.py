"""The Admin API over HTTP: Kong's endpoints, status codes and bodies, on top of the store."""

from __future__ import annotations

import hashlib
import json
import socket
import time
import uuid
from typing import Any
from urllib.parse import parse_qsl, quote, unquote

import yaml
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from ...kong.schema import lua
from ...kong.schema.fields import coerce_form, nest_form_pairs
from ...kong.schema.plugins import bundled, plugin
from ...kong.schema.validators import is_uuid
from ..controls import PREFIX, Controls
from . import declarative
from . import errors as e
from .endpoints import (
    CHILD_PARENTS,
    EMPTY_COLLECTIONS,
    NESTED,
    TOP_LEVEL,
    kind_of,
    nested_segment,
)
from .responses import KONG_VERSION, empty, json_response
from .schemas import ENTITIES
from .schemas_api import SchemasAPI
from .store import Row, Store
from .tags import tags_page

EMPTY_HASH = "00000000000000000000000000000000"
# libyaml's dumper writes the same text as PyYAML's own, several times faster (GET /config).
SAFE_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
WRITE_VERBS = {"POST": "create", "PUT": "create or update", "PATCH": "update", "DELETE": "remove"}


class KongAdminAPI:
    """An ASGI app answering as a Kong Gateway 3.x Admin API (DB or DB-less)."""

    def __init__(self, db_less: bool = False) -> None:
        self.db_less = db_less
        self.store = Store()
        self.config_hash = EMPTY_HASH
        self.health: dict[str, str] = {}
        self.node_id = str(uuid.uuid4())
        self.started = time.time()
        self.controls = Controls(reset_data=self.reset)
        self.schemas = SchemasAPI(lambda: self.store, self.body)

    def reset(self) -> None:
        self.store = Store()
        self.config_hash = EMPTY_HASH
        self.health = {}

    # -- ASGI ------------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        request = Request(scope, receive)
        response = await self.handle(request)
        if request.method == "HEAD":
            response.body = b""
        await response(scope, receive, send)

    async def handle(self, request: Request) -> Response:
        raw_path = request.scope.get("raw_path") or request.url.path.encode()
        path = raw_path.decode("latin-1").split("?", 1)[0]
        if path.startswith(PREFIX):
            return await self.controls.handle(request)
        segments = [unquote(s) for s in path.strip("/").split("/") if s]
        method = "GET" if request.method == "HEAD" else request.method
        self.controls.counters.count(request.method, kind_of(segments))
        faulted = await self.controls.before_request()
        if faulted is not None:
            return faulted
        try:
            return await self.route(request, method, segments)
        except e.KongError as error:
            return json_response(error.status, error.body)

    # -- routing ---------------------------------------------------------------------------

    async def route(self, request: Request, method: str, seg: list[str]) -> Response:
        allowed, handler = self._match(seg)
        if handler is None:
            raise e.not_found()
        if method == "OPTIONS":
            return empty(204, {"Allow": ", ".join([*allowed, "OPTIONS"])})
        if method not in allowed:
            raise e.method_not_allowed()
        result: Response = await handler(request, method)
        return result

    def _match(self, seg: list[str]) -> tuple[tuple[str, ...], Any]:
        rw = ("GET", "PUT", "PATCH", "DELETE")
        match seg:
            case []:
                return ("GET",), lambda r, m: self.root()
            case ["status"]:
                return ("GET",), lambda r, m: self.status(r)
            case ["config"]:
                return ("GET", "POST"), self.config
            case ["clustering", "data-planes" | "status"]:
                return ("GET",), lambda r, m: self.not_a_control_plane()
            case ["tags"]:
                return ("GET",), lambda r, m: self.tags(r, None)
            case ["tags", tag]:
                return ("GET",), lambda r, m: self.tags(r, tag)
            case ["plugins", "enabled"]:
                return ("GET",), lambda r, m: self.enabled_plugins()
            case ["schemas", *rest] if self.schemas.handles(rest):
                return self.schemas.allowed(rest), lambda r, m: self.schemas.handle(r, rest)
            case ["plugins", "schema", name]:
                return ("GET",), lambda r, m: self.schemas.plugin_config_schema(name)
            case ["consumers", consumer, "acls", group]:
                return rw, lambda r, m: self.consumer_acl(r, m, consumer, group)
            case ["certificates", key]:
                return rw, lambda r, m: self.certificate(r, m, key)
            case [url] if url in TOP_LEVEL:
                return ("GET", "POST"), lambda r, m: self.collection(r, m, TOP_LEVEL[url])
            case [url] if url in EMPTY_COLLECTIONS:
                return ("GET",), lambda r, m: self.empty_list()
            case [url, key] if url in TOP_LEVEL:
                return rw, lambda r, m: self.entity(r, m, TOP_LEVEL[url], key)
            case [url, key, child] if (url, child) in NESTED:
                parent_kind, (kind, fk) = TOP_LEVEL[url], NESTED[(url, child)]
                return ("GET", "POST"), lambda r, m: self.nested_collection(
                    r, m, parent_kind, key, kind, fk
                )
            case [url, key, child, child_key] if (url, child) in NESTED:
                parent_kind, (kind, fk) = TOP_LEVEL[url], NESTED[(url, child)]
                return rw, lambda r, m: self.nested_entity(
                    r, m, parent_kind, key, kind, fk, child_key
                )
            case [url, key, fk] if (url, fk) in CHILD_PARENTS:
                kind = TOP_LEVEL[url]
                return ("GET", "PUT", "PATCH"), lambda r, m: self.parent_of(r, m, kind, key, fk)
            case ["upstreams", upstream, "targets"]:
                return ("GET", "POST"), lambda r, m: self.targets(r, m, upstream)
            case ["upstreams", upstream, "targets", "all"]:
                return ("GET",), lambda r, m: self.targets(r, m, upstream)
            case ["upstreams", upstream, "targets", target]:
                return rw, lambda r, m: self.target(r, m, upstream, target)
            case ["upstreams", upstream, "targets", target, "healthy" | "unhealthy" as state]:
                return ("PUT",), lambda r, m: self.set_health(upstream, target, state)
            case [
                "upstreams",
                upstream,
                "targets",
                target,
                _address,
                "healthy" | "unhealthy" as state,
            ]:
                return ("PUT",), lambda r, m: self.set_health(upstream, target, state)
            case ["upstreams", upstream, "health"]:
                return ("GET",), lambda r, m: self.upstream_health(r, upstream)
        return (), None

    # -- bodies and query options ----------------------------------------------------------

    async def body(self, request: Request, kind: str, stored: Row | None = None) -> Row:
        """The request body as a dict; form values typed by the schema (``stored`` names
        the plugin a PATCH without ``name`` is about, as patch_plugin reads it first)."""
        if len(request.headers.getlist("content-type")) > 1:
            raise e.plain_error(400, "Cannot parse request body: multiple content-type headers")
        mime = request.headers.get("content-type", "").split(";")[0].strip().lower()
        raw = await request.body()
        if mime == "application/json":
            try:
                data = json.loads(raw)
            except ValueError:
                raise e.plain_error(400, "Cannot parse JSON body") from None
            if not isinstance(data, dict):
                raise e.plain_error(400, "Cannot parse JSON body")
            return data
        if mime == "application/x-www-form-urlencoded":
            pairs = parse_qsl(raw.decode(), keep_blank_values=True)
            return self._coerce(kind, nest_form_pairs(pairs), stored)
        if mime == "multipart/form-data":
            form = await request.form()
            pairs = [(k, v) for k, v in form.multi_items() if isinstance(v, str)]
            return self._coerce(kind, nest_form_pairs(pairs), stored)
        if not raw and not mime:
            return {}
        raise e.plain_error(415, "Unsupported Media Type")

    @staticmethod
    def _coerce(kind: str, data: Row, stored: Row | None = None) -> Row:
        if kind not in ENTITIES:
            return data
        fields = dict(ENTITIES[kind].fields)
        name = data.get("name") or (stored or {}).get("name")
        spec = plugin(name) if kind == "plugins" else None
        if spec is not None:
            fields.update(spec.fields)
        return coerce_form(fields, data)

    @staticmethod
    def _size(request: Request) -> int:
        raw = request.query_params.get("size")
        if raw is None:
            return 100
        size = lua.tonumber(raw)  # kong/api/endpoints.lua get_page_size
        if size is None:
            raise e.api_error(9, "size must be a number")
        if not float(size).is_integer() or not 1 <= size <= 1000:
            raise e.api_error(9, "size must be an integer between 1 and 1000")
        return int(size)

    @staticmethod
    def _tags(request: Request) -> tuple[list[str], str] | None:
        if "tags" not in request.query_params:
            return None
        raw = request.query_params["tags"]
        if raw == "":
            raise _invalid_option("tags", "cannot be null")
        if "," in raw and "/" in raw:
            raise _invalid_option("tags", "invalid filter syntax")
        mode, parts = ("or", raw.split("/")) if "/" in raw else ("and", raw.split(","))
        if any(p == "" or any(ord(c) < 0x20 or ord(c) == 0x7F for c in p) for p in parts):
            raise _invalid_option("tags", "invalid filter syntax")
        if len(parts) > 5:
            raise _invalid_option("tags", "cannot query more than 5 tags")
        return parts, mode

    def _list(
        self, request: Request, kind: str, base: str, rows: list[Row] | None = None
    ) -> Response:
        size = self._size(request)
        offset = request.query_params.get("offset")
        # Kong ignores tags on nested lists (14-tags_spec.lua, #6779).
        tags = self._tags(request) if rows is None else None
        page = self.store.page(kind, size, offset, tags, rows)
        body: dict[str, Any] = {"data": page.rows, "next": None}
        if page.offset is not None:
            body["offset"] = page.offset
            link = f"{base}?offset={quote(page.offset, safe='')}"
            if tags is not None:
                link += "&tags=" + quote(request.query_params["tags"], safe="")
            if "size" in request.query_params:
                link += f"&size={size}"
            body["next"] = link
        return json_response(200, body)

    # -- DB-less ---------------------------------------------------------------------------

    def _refuse_write(self, method: str, kind: str, by: str | None = None) -> None:
        if not self.db_less:
            return
        field = f" by '{by}'" if by and by != "id" else ""
        raise e.api_error(
            12, f"cannot {WRITE_VERBS[method]} '{kind}' entities{field} when not using a database"
        )

    # -- top-level entities ----------------------------------------------------------------

    async def collection(self, request: Request, method: str, kind: str) -> Response:
        if method == "GET":
            if kind == "consumers" and "custom_id" in request.query_params:
                return self._consumers_by_custom_id(request)
            return self._list(request, kind, f"/{ENTITIES[kind].url_name}")
        data = await self.body(request, kind)
        if self.db_less:
            self.store.validate(kind, data)
            self._refuse_write(method, kind)
        return json_response(201, self.store.insert(kind, data))

    async def entity(
        self,
        request: Request,
        method: str,
        kind: str,
        segment: str,
        parent: Row | None = None,
        forced: Row | None = None,
    ) -> Response:
        key = self.store.key_for(kind, segment)
        if method == "GET":
            row = self.store.get(kind, key, parent)
            if row is None:
                raise e.not_found()
            return json_response(200, row)
        if method == "DELETE":
            row = self.store.get(kind, key, parent)
            if row is not None:
                self._refuse_write(method, kind, next(iter(key)))
                self.store.delete(kind, row)
            return empty(204)
        stored = self.store.get(kind, key, parent) if method == "PATCH" else None
        data = {**(await self.body(request, kind, stored)), **(forced or {})}
        if method == "PATCH":
            if self.db_less:
                self.store.validate_update(kind, key, data, parent)
                self._refuse_write(method, kind, next(iter(key)))
            return json_response(200, self.store.update(kind, key, data, parent))
        if self.db_less:
            self.store.validate(kind, {**data, **key})
            self._refuse_write(method, kind, next(iter(key)))
        return json_response(200, self.store.upsert(kind, key, data, parent))

    # -- nested entities -------------------------------------------------------------------

    def _parent(self, kind: str, segment: str) -> Row:
        if kind == "certificates" and not is_uuid(segment):
            return self._certificate_of_sni(segment)
        row = self.store.resolve(kind, segment)
        if row is None:
            raise e.not_found()
        return row

    def _certificate_of_sni(self, name: str) -> Row:
        """``prepare_params``: a certificate named by one of its SNIs, or "SNI not found"."""
        sni = self.store.find_unique("snis", "name", name)
        certificate = (
            self.store.get("certificates", {"id": sni["certificate"]["id"]}) if sni else None
        )
        if certificate is None:
            raise e.plain_error(404, "SNI not found")
        return certificate

    async def nested_collection(
        self, request: Request, method: str, parent_kind: str, parent_key: str, kind: str, fk: str
    ) -> Response:
        parent = self._parent(parent_kind, parent_key)
        if method == "GET":
            rows = self.store.children(kind, fk, parent["id"])
            base = f"/{ENTITIES[parent_kind].url_name}/{parent_key}/{nested_segment(kind)}"
            return self._list(request, kind, base, rows)
        data = await self.body(request, kind)
        data[fk] = {"id": parent["id"]}
        if self.db_less:
            self.store.validate(kind, data)
            self._refuse_write(method, kind)
        return json_response(201, self.store.insert(kind, data))

    async def nested_entity(
        self,
        request: Request,
        method: str,
        parent_kind: str,
        parent_key: str,
        kind: str,
        fk: str,
        segment: str,
    ) -> Response:
        parent = self._parent(parent_kind, parent_key)
        key = self.store.key_for(kind, segment)
        row = self.store.get(kind, key)
        belongs = row is not None and (row.get(fk) or {}).get("id") == parent["id"]
        if method in ("GET", "DELETE", "PATCH") and not belongs:
            raise e.not_found()
        if method == "PUT" and row is not None and not belongs:
            raise e.not_found()
        return await self.entity(request, method, kind, segment, forced={fk: {"id": parent["id"]}})

    async def parent_of(
        self, request: Request, method: str, kind: str, key: str, fk: str
    ) -> Response:
        """``/routes/{r}/service``, ``/key-auths/{k}/consumer``: the entity a child points at."""
        child = self._parent(kind, key)
        reference = child.get(fk)
        if not reference:
            raise e.not_found()
        parent_kind = ENTITIES[kind].fields[fk].reference or ""
        return await self.entity(request, method, parent_kind, reference["id"])

    def _consumers_by_custom_id(self, request: Request) -> Response:
        """``GET /consumers?custom_id=`` (``kong/api/routes/consumers.lua``)."""
        values = request.query_params.getlist("custom_id")
        if len(values) != 1 or values[0] == "":
            raise e.plain_error(400, "custom_id must be an unempty string")
        row = self.store.find_unique("consumers", "custom_id", values[0])
        return json_response(200, {"data": [row] if row else [], "next": None})

    async def consumer_acl(
        self, request: Request, method: str, consumer_key: str, group: str
    ) -> Response:
        """``/consumers/{c}/acls/{group}``: a group name finds the consumer's ACL by cache key."""
        if is_uuid(group):
            return await self.nested_entity(
                request, method, "consumers", consumer_key, "acls", "consumer", group
            )
        consumer = self._parent("consumers", consumer_key)
        acl = self.store.find_cache_key("acls", (consumer["id"], group))
        if acl is None and method != "PUT":
            raise e.not_found()
        acl_id = acl["id"] if acl else str(uuid.uuid4())
        forced: Row = {"consumer": {"id": consumer["id"]}}
        if method == "PUT":
            body = await self.body(request, "acls")
            forced["group"] = body.get("group") or group
        return await self.entity(request, method, "acls", acl_id, forced=forced)

    async def certificate(self, request: Request, method: str, key: str) -> Response:
        """``/certificates/{id or sni}``, as kong/api/routes/certificates.lua prepares it."""
        name: str | None = None
        cert_id = key
        if not is_uuid(key):
            name = key
            sni = self.store.find_unique("snis", "name", name)
            if sni is None and method != "PUT":
                raise e.plain_error(404, "SNI not found")
            cert_id = sni["certificate"]["id"] if sni else str(uuid.uuid4())
        forced: Row | None = None
        if method in ("PUT", "PATCH"):
            body = await self.body(request, "certificates")
            names = body.get("snis")
            if isinstance(names, str):
                names = [names]
            # prepare_args: a PUT by SNI adds the URL's name to a given list; a PUT
            # without a list clears them.
            if method == "PUT" and name and isinstance(names, list) and name not in names:
                names = [*names, name]
            forced = {"snis": names} if isinstance(names, list) else None
        return await self.entity(request, method, "certificates", cert_id, forced=forced)

    # -- targets ---------------------------------------------------------------------------

    async def targets(self, request: Request, method: str, upstream_key: str) -> Response:
        upstream = self._parent("upstreams", upstream_key)
        if method == "POST":
            data = await self.body(request, "targets")
            data["upstream"] = {"id": upstream["id"]}
            if self.db_less:
                self.store.validate("targets", data)
                self._refuse_write(method, "targets")
            return json_response(201, self.store.insert("targets", data))
        rows = sorted(
            self.store.children("targets", "upstream", upstream["id"]),
            key=lambda row: row["created_at"],
            reverse=True,
        )
        size = self._size(request)
        raw_offset = request.query_params.get("offset", "0")
        if not raw_offset.isdigit():
            raise e.api_error(7, f"'{raw_offset}' is not a valid offset: bad base64 encoding")
        start = int(raw_offset)
        chosen = rows[start : start + size]
        body: dict[str, Any] = {"data": chosen, "next": None}
        if start + size < len(rows):
            body["offset"] = str(start + size)
            body["next"] = f"/upstreams/{upstream_key}/targets?offset={start + size}"
        return json_response(200, body)

    async def target(
        self, request: Request, method: str, upstream_key: str, segment: str
    ) -> Response:
        upstream = self._parent("upstreams", upstream_key)
        key = self.store.key_for("targets", segment)
        row = self.store.get("targets", key, upstream)
        if row is None or row["upstream"]["id"] != upstream["id"]:
            raise e.not_found()  # PUT is update-only and DELETE of a missing target is 404
        if method == "GET":
            return json_response(200, row)
        if method == "DELETE":
            self._refuse_write(method, "targets", next(iter(key)))
            self.store.delete("targets", row)
            self.health.pop(row["id"], None)
            return empty(204)
        data = await self.body(request, "targets")
        data["upstream"] = {"id": upstream["id"]}
        by_id = {"id": row["id"]}
        if method == "PATCH":
            if self.db_less:
                self.store.validate_update("targets", by_id, data)
                self._refuse_write(method, "targets", next(iter(key)))
            return json_response(200, self.store.update("targets", by_id, data))
        if self.db_less:
            self.store.validate("targets", {**data, "id": row["id"]})
            self._refuse_write(method, "targets", next(iter(key)))
        data.setdefault("target", row["target"])
        return json_response(200, self.store.upsert("targets", by_id, data))

    async def set_health(self, upstream_key: str, target_key: str, state: str) -> Response:
        upstream = self._parent("upstreams", upstream_key)
        row = self.store.get("targets", self.store.key_for("targets", target_key), upstream)
        if row is None:
            raise e.not_found()
        self.health[row["id"]] = state.upper()
        return empty(204)

    def _target_health(self, upstream: Row, row: Row) -> str:
        if row["id"] in self.health:
            return self.health[row["id"]]
        checks = upstream["healthchecks"]
        active, passive = checks["active"], checks["passive"]
        on = (
            active["healthy"]["interval"]
            or active["unhealthy"]["interval"]
            or any(passive["unhealthy"][k] for k in ("tcp_failures", "timeouts", "http_failures"))
        )
        return "HEALTHY" if on else "HEALTHCHECKS_OFF"

    async def upstream_health(self, request: Request, upstream_key: str) -> Response:
        upstream = self._parent("upstreams", upstream_key)
        rows = self.store.children("targets", "upstream", upstream["id"])
        if request.query_params.get("balancer_health") in ("1", "true"):
            healthy = any(self._target_health(upstream, r) != "UNHEALTHY" for r in rows)
            state = "HEALTHY" if healthy or not rows else "UNHEALTHY"
            details = {
                "healthy": healthy,
                "weight": {
                    "total": sum(r["weight"] for r in rows),
                    "available": sum(
                        r["weight"] for r in rows if self._target_health(upstream, r) != "UNHEALTHY"
                    ),
                    "unavailable": sum(
                        r["weight"] for r in rows if self._target_health(upstream, r) == "UNHEALTHY"
                    ),
                },
            }
            return json_response(
                200,
                {
                    "data": {
                        "health": state,
                        "balancer_health": state,
                        "id": upstream["id"],
                        "details": details,
                    },
                    "next": None,
                    "node_id": self.node_id,
                },
            )
        data = []
        for row in rows:
            health = self._target_health(upstream, row)
            host, _, port = row["target"].rpartition(":")
            data.append(
                {
                    **row,
                    "health": health,
                    "data": {
                        "addresses": [
                            {
                                "ip": host.strip("[]"),
                                "port": int(port),
                                "health": health,
                                "weight": row["weight"],
                            }
                        ]
                    },
                }
            )
        return json_response(200, {"data": data, "next": None, "node_id": self.node_id})

    # -- node information ------------------------------------------------------------------

    async def root(self) -> Response:
        enabled = sorted({row["name"] for row in self.store.all("plugins")})
        available = {
            name: {"version": spec.version, "priority": spec.priority}
            for name, spec in bundled().items()
        }
        return json_response(
            200,
            {
                "tagline": "Welcome to kong",
                "version": KONG_VERSION,
                "edition": "community",
                "hostname": socket.gethostname(),
                "node_id": self.node_id,
                "lua_version": "LuaJIT 2.1.0-20231117",
                "timers": {"running": 0, "pending": 9},
                "plugins": {"available_on_server": available, "enabled_in_cluster": enabled},
                "pids": {"master": 1, "workers": [2]},
                "configuration": {
                    "database": "off" if self.db_less else "postgres",
                    "role": "traditional",
                    "router_flavor": "traditional_compatible",
                    "plugins": ["bundled"],
                    "loaded_plugins": {name: True for name in bundled()},
                    "admin_listen": ["0.0.0.0:8001"],
                    "proxy_listen": ["0.0.0.0:8000", "0.0.0.0:8443 ssl"],
                    "dns_order": ["LAST", "SRV", "A", "CNAME"],
                    "dns_resolver": {},
                    "pg_password": "******",
                },
            },
        )

    async def status(self, request: Request) -> Response:
        for option, allowed in (("unit", ("b", "k", "m", "g")), ("scale", None)):
            value = request.query_params.get(option)
            if value is None:
                continue
            if allowed is not None and value not in allowed:
                raise e.plain_error(
                    400, f"invalid unit '{value}' (expected 'k/K', 'm/M', or 'g/G')"
                )
            if allowed is None and not value.isdigit():
                raise e.plain_error(400, f"invalid scale '{value}' (expected a number)")
        body: dict[str, Any] = {
            "memory": {
                "workers_lua_vms": [{"http_allocated_gc": "40.00 MiB", "pid": 2}],
                "lua_shared_dicts": {
                    "kong": {"allocated_slabs": "0.04 MiB", "capacity": "5.00 MiB"}
                },
            },
            "server": {
                "connections_active": 1,
                "connections_reading": 0,
                "connections_writing": 1,
                "connections_waiting": 0,
                "connections_accepted": 1,
                "connections_handled": 1,
                "total_requests": sum(self.controls.counters.by_method.values()),
            },
        }
        if self.db_less:
            body["configuration_hash"] = self.config_hash
        else:
            body["database"] = {"reachable": True}
        return json_response(200, body)

    async def tags(self, request: Request, tag: str | None) -> Response:
        """``/tags`` and ``/tags/{tag}`` (``kong/api/routes/tags.lua``)."""
        page = tags_page(self.store, self._size(request), request.query_params.get("offset"), tag)
        body: dict[str, Any] = {"data": page.rows, "next": None}
        if page.offset is not None:
            base = "/tags" if tag is None else f"/tags/{tag}"
            body["offset"] = page.offset
            body["next"] = f"{base}?offset={quote(page.offset, safe='')}"
            if tag is None and "size" in request.query_params:
                body["next"] += f"&size={self._size(request)}"  # the generic collection's link
        return json_response(200, body)

    async def not_a_control_plane(self) -> Response:
        """``kong/api/routes/clustering.lua`` on a node whose role is not control_plane."""
        message = (
            "this endpoint is only available when Kong is configured to run as "
            "Control Plane for the cluster"
        )
        return json_response(400, {"message": message})

    async def enabled_plugins(self) -> Response:
        return json_response(200, {"enabled_plugins": sorted(bundled())})

    async def empty_list(self) -> Response:
        return json_response(200, {"data": [], "next": None})

    # -- /config ---------------------------------------------------------------------------

    async def config(self, request: Request, method: str) -> Response:
        if not self.db_less:
            raise e.plain_error(
                400, "this endpoint is only available when Kong is configured to not use a database"
            )
        if method == "GET":
            text = yaml.dump(declarative.export(self.store), Dumper=SAFE_DUMPER, sort_keys=False)
            return json_response(200, {"config": text})
        config, source = await self._declarative_input(request)
        new_hash = hashlib.md5(source.encode()).hexdigest() if source is not None else None
        check = request.query_params.get("check_hash") in ("1", "true")
        if check and new_hash is not None and new_hash == self.config_hash:
            return empty(304)
        flatten = request.query_params.get("flatten_errors") in ("1", "true")
        loaded = declarative.load(config, flatten_errors=flatten)
        self.store = loaded.store
        self.health = {}
        self.config_hash = new_hash or EMPTY_HASH
        return json_response(201, loaded.entities)

    async def _declarative_input(self, request: Request) -> tuple[Any, str | None]:
        mime = request.headers.get("content-type", "").split(";")[0].strip().lower()
        raw = await request.body()
        if mime in ("application/yaml", "text/yaml", "application/x-yaml"):
            text = raw.decode()
            return declarative.parse_text(text), text
        try:
            body = await self.body(request, "config")
        except e.KongError:
            if mime == "application/json":
                raise
            body = {}
        if "_format_version" in body:
            return body, None
        text_value = body.get("config")
        if isinstance(text_value, str):
            return declarative.parse_text(text_value), text_value
        if isinstance(text_value, dict):
            return text_value, None
        raise e.plain_error(400, "expected a declarative configuration")


def _invalid_option(option: str, message: str) -> e.KongError:
    return e.api_error(11, f"invalid option ({option}: {message})", {option: message})
