"""``/v1/kv/*`` and ``/v1/session/*``: the KV store, its locks and the sessions behind them."""

from __future__ import annotations

from collections.abc import Callable

from starlette.requests import Request
from starlette.responses import Response

from .context import Context
from .normalize import session_body
from .query import BadRequest, Query
from .shapes import kv_json
from .web import (
    GET,
    PUT,
    Computed,
    HTTPError,
    Row,
    allow,
    json_object,
    json_response,
    uint_param,
)

KV_MAX_VALUE = 512 * 1024


def kv_keys(rows: list[Row], prefix: str, separator: str) -> list[str]:
    """``?keys``: the keys under ``prefix``, cut after the first ``separator`` past it."""
    keys: list[str] = []
    for row in rows:
        key = row["Key"]
        if separator:
            cut = key.find(separator, len(prefix))
            if cut >= 0:
                key = key[: cut + len(separator)]
        if key not in keys:
            keys.append(key)
    return keys


class KVRoutes:
    """KV and sessions (``agent/kvs_endpoint.go``, ``agent/session_endpoint.go``)."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    async def route(self, request: Request, q: Query, seg: list[str]) -> Response | None:
        method = request.method
        read = self.ctx.read
        sessions = [("table", "sessions")]
        match seg:
            case ["v1", "kv", *parts]:
                return await self._kv(request, q, "/".join(parts))
            case ["v1", "session", "create"]:
                allow(method, PUT)
                return await self._session_create(request, q)
            case ["v1", "session", "destroy", session_id]:
                allow(method, PUT)
                return self._session_destroy(q, session_id)
            case ["v1", "session", "renew", session_id]:
                allow(method, PUT)
                return self._session_renew(q, session_id)
            case ["v1", "session", "info", session_id]:
                return await read(
                    method, q, self._sessions(lambda s: s["ID"] == session_id), sessions
                )
            case ["v1", "session", "node", node]:
                return await read(method, q, self._sessions(lambda s: s["Node"] == node), sessions)
            case ["v1", "session", "list"]:
                return await read(method, q, self._sessions(lambda s: True), sessions)
        return None

    # -- KV --------------------------------------------------------------------------------

    async def _kv(self, request: Request, q: Query, key: str) -> Response:
        method = request.method
        allow(method, ("GET", "HEAD", "PUT", "DELETE"))
        if method in GET:
            return await self._kv_get(q, key)
        ctx = self.ctx
        ctx.require_write(q)
        if not key and not (method == "DELETE" and q.flag("recurse")):
            raise BadRequest("Missing key name")
        cas = uint_param(q, "cas")
        if method == "DELETE":
            ok = ctx.kv.delete(key, recurse=q.flag("recurse"), cas=cas)
        else:
            value = await request.body()
            if len(value) > KV_MAX_VALUE:
                raise HTTPError(
                    413,
                    f"Request body({len(value)} bytes) too large, max size: "
                    f"{KV_MAX_VALUE} bytes. See https://developer.hashicorp."
                    "com/consul/docs/agent/config/config-files#kv_max_value_size.",
                )
            ok = ctx.kv.put(
                key,
                value,
                flags=uint_param(q, "flags") or 0,
                cas=cas,
                acquire=q.params.get("acquire"),
                release=q.params.get("release"),
                sessions=ctx.sessions,
            )
        ctx.raft.commit()
        return json_response(200, ok)

    async def _kv_get(self, q: Query, key: str) -> Response:
        ctx = self.ctx
        ctx.require_leader(q)
        if ctx.anonymous(q):
            raise HTTPError(403, "Permission denied")
        listing = q.flag("recurse") or q.flag("keys")
        if not key and not listing:
            raise BadRequest("Missing key name")

        def compute() -> Computed:
            if listing:
                return ctx.kv.list(key)
            return ctx.kv.get(key)

        keys = [] if listing else [("kv", key)]
        index, result = await ctx.blocking(q, compute, keys, (key,) if listing else ())
        meta = ctx.meta(q, index)
        if q.flag("keys"):
            return json_response(200, kv_keys(result, key, q.params.get("separator", "")), meta)
        if listing:
            if not result:
                return Response(status_code=404, headers=meta)
            return json_response(200, [kv_json(e) for e in result], meta, pretty=q.flag("pretty"))
        if result is None:
            return Response(status_code=404, headers=meta)
        if q.flag("raw"):
            return Response(
                result["Value"] or b"", headers=meta, media_type="text/plain; charset=utf-8"
            )
        return json_response(200, [kv_json(result)], meta, pretty=q.flag("pretty"))

    # -- sessions --------------------------------------------------------------------------

    async def _session_create(self, request: Request, q: Query) -> Response:
        self.ctx.require_write(q)
        body = session_body(await json_object(request))
        session_id = self.ctx.sessions.create(body)
        self.ctx.raft.commit()
        return json_response(200, {"ID": session_id})

    def _session_destroy(self, q: Query, session_id: str) -> Response:
        self.ctx.require_write(q)
        self.ctx.sessions.destroy(session_id)
        self.ctx.raft.commit()
        return json_response(200, True)

    def _session_renew(self, q: Query, session_id: str) -> Response:
        self.ctx.require_write(q)
        session = self.ctx.sessions.renew(session_id)
        if session is None:
            raise HTTPError(404, f"Session id '{session_id}' not found")
        return json_response(200, [session])

    def _sessions(self, keep: Callable[[Row], bool]) -> Callable[[], Computed]:
        store = self.ctx.sessions

        def compute() -> Computed:
            rows = [s for s in store.sessions.values() if keep(s)]
            return store.table_index, sorted(rows, key=lambda s: s["CreateIndex"])

        return compute
