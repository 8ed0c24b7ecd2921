"""The HTTP API of a one-node ``consul agent -dev`` (Consul 1.20): routing to the endpoint groups.

Each group (agent, catalog/health, KV/sessions, status/operator...) lives in
its own ``*_routes`` module over one shared ``Context``.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Coroutine
from typing import Any, Protocol

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from ..controls import PREFIX, Controls
from .acl_routes import ACLRoutes
from .agent_routes import AgentRoutes
from .catalog import Catalog, CatalogError
from .catalog_routes import CatalogRoutes
from .config_routes import ConfigRoutes
from .connections import ConnectionLimiter
from .context import CONSUL_VERSION, AgentConfig, Context
from .coordinate_routes import CoordinateRoutes
from .events import EventRoutes
from .faults import ConsulFaults
from .kv import SessionError
from .kv_routes import KVRoutes
from .operator_routes import OperatorRoutes
from .query import DEFAULT_WAIT, MAX_WAIT, BadRequest, parse_query
from .raft import Raft
from .snapshot_routes import SnapshotRoutes
from .txn import TxnRoutes
from .web import HTTPError, json_object, json_response, text_response

__all__ = ["CONSUL_VERSION", "ConsulAPI"]

UI_PAGE = (
    "<!DOCTYPE html><html><head><title>Consul by HashiCorp</title></head>"
    "<body>Consul UI (emulated)</body></html>"
)


class Routes(Protocol):
    async def route(self, request: Request, q: Any, seg: list[str]) -> Response | None: ...


class ConsulAPI:
    """An ASGI app answering as Consul's HTTP API (``/v1/...``)."""

    def __init__(
        self,
        datacenter: str = "dc1",
        node: str = "consul-emulator",
        address: str = "127.0.0.1",
        max_conns_per_client: int = 200,
        acl_master_token: str | None = None,
        acl_default_policy: str = "allow",
        min_session_ttl: float = 10.0,
        default_wait: float = DEFAULT_WAIT,
        max_wait: float = MAX_WAIT,
    ) -> None:
        if acl_default_policy not in ("allow", "deny"):
            raise ValueError(f'acl_default_policy is "allow" or "deny", not {acl_default_policy!r}')
        self.ctx = Context(
            AgentConfig(
                datacenter=datacenter,
                node=node,
                address=address,
                max_conns_per_client=max_conns_per_client,
                acl_master_token=acl_master_token,
                acl_default_policy=acl_default_policy,
                min_session_ttl=min_session_ttl,
                default_wait=default_wait,
                max_wait=max_wait,
            )
        )
        self.controls = Controls(
            reset_data=self._reset,
            faults=ConsulFaults(),
            new_faults=ConsulFaults,
            extra={"restart": self._restart, "leader": self._leader, "state": self._state},
        )
        self.controls.error_body = lambda status: text_response(
            status, "rpc error making call: injected by the emulator"
        )
        self.ctx.empty_list_fault = self._empty_list_fault
        self.connections = ConnectionLimiter(self.ctx.config.max_conns_per_client)
        self._loop: asyncio.AbstractEventLoop | None = None
        agent = AgentRoutes(self.ctx)
        catalog = CatalogRoutes(self.ctx)
        kv = KVRoutes(self.ctx)
        operator = OperatorRoutes(self.ctx)
        coordinate = CoordinateRoutes(self.ctx)
        config = ConfigRoutes(self.ctx)
        txn = TxnRoutes(self.ctx)
        self.events = EventRoutes(self.ctx)
        # The group serving each /v1/<family>/... path.
        self.groups: dict[str, Routes] = {
            "agent": agent,
            "catalog": catalog,
            "health": catalog,
            "kv": kv,
            "session": kv,
            "txn": txn,
            "event": self.events,
            "status": operator,
            "operator": operator,
            "coordinate": coordinate,
            "config": config,
            "connect": config,
            "discovery-chain": config,
            "snapshot": SnapshotRoutes(self.ctx),
            "acl": ACLRoutes(self.ctx),
        }

    # The state, for tests and benchmarks that load it directly.
    @property
    def raft(self) -> Raft:
        return self.ctx.raft

    @property
    def catalog(self) -> Catalog:
        return self.ctx.catalog

    def _reset(self) -> None:
        self.ctx.reset()
        self.events.reset()

    # -- /_emulator/ extras ----------------------------------------------------------------

    def _empty_list_fault(self) -> bool:
        faults = self.controls.faults
        return isinstance(faults, ConsulFaults) and faults.take_empty_list()

    async def _restart(self, request: Request) -> Response:
        """Like an agent restart with a snapshot restore: the index goes down, data stays."""
        ctx = self.ctx
        body = await json_object(request)
        drop = int(body.get("index_drop", max(1, ctx.raft.index // 2)))
        down_seconds = float(body.get("down_seconds", 0.2))
        new_index = max(2, ctx.raft.index - drop)
        stores = (ctx.catalog, ctx.kv, ctx.sessions, ctx.coordinates, ctx.autopilot)
        for part in (*stores, ctx.config_entries, ctx.acl):
            part.restore_index(new_index)
        ctx.raft.index = new_index
        ctx.abandon_blocking_queries()
        if self.controls.refuse is not None:
            self.controls.refuse(down_seconds)
        return json_response(200, {"index": new_index})

    async def _leader(self, request: Request) -> Response:
        body = await json_object(request)
        ctx = self.ctx
        ctx.no_leader_until = time.monotonic() + float(body.get("no_leader_seconds", 0))
        return json_response(
            200, {"no_leader_seconds": max(0.0, ctx.no_leader_until - time.monotonic())}
        )

    async def _state(self, request: Request) -> Response:
        watchers = self.ctx.raft.watchers
        return json_response(
            200,
            {
                "index": self.ctx.raft.index,
                "blocked_queries": watchers.waiting,
                "wakeups": watchers.wakeups,
                "open_connections": self.connections.total,
            },
        )

    # -- ASGI ------------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        self._loop = asyncio.get_running_loop()
        request = Request(scope, receive)
        if not _may_block(scope):
            response = await self.handle(request)
        else:
            answered = await _unless_disconnected(request, self.handle(request))
            if answered is None:
                return  # the client went away: its blocking query ends with it
            response = answered
        await response(scope, receive, send)

    def abandon_blocking_queries(self) -> None:
        """From any thread: let every blocked query answer now (before a shutdown)."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        try:
            done = asyncio.run_coroutine_threadsafe(_call(self.ctx.abandon_blocking_queries), loop)
            done.result(timeout=2)
        except (RuntimeError, TimeoutError):
            pass  # the loop is already gone

    async def handle(self, request: Request) -> Response:
        # The percent-decoded path, as Go's URL.Path: "%23" is "#", "%3F" is "?"
        # (request.url would take a decoded "#" for the start of a fragment).
        path: str = request.scope["path"]
        if path.startswith(PREFIX):
            return await self.controls.handle(request)
        return await self._handle(request, path)

    async def _handle(self, request: Request, path: str) -> Response:
        segments = join_tail(path.split("/")[1:])
        self.controls.counters.count(request.method, _endpoint(segments))
        faulted = await self.controls.before_request()
        if faulted is not None:
            return faulted
        try:
            query = parse_query(request.query_params, dict(request.headers))
            self.ctx.check_common(
                query,
                datacenter_scoped=not _agent_local(segments),
                resolve_token=tuple(segments[1:4]) not in TOKEN_UNRESOLVED,
            )
            group = self._group(segments)
            response = None if group is None else await group.route(request, query, segments)
        except BadRequest as exc:
            return text_response(400, str(exc))
        except CatalogError as exc:
            return text_response(exc.status, str(exc))
        except SessionError as exc:
            return text_response(exc.status, str(exc))
        except HTTPError as exc:
            return text_response(exc.status, exc.text, exc.headers)
        if response is None:
            return ui_response(path) or text_response(404, "404 page not found\n")
        return response

    def _group(self, segments: list[str]) -> Routes | None:
        if len(segments) < 2 or segments[0] != "v1":
            return None
        return self.groups.get(segments[1])


# Endpoints that take the rest of the path as one name (Go's strings.TrimPrefix on the
# decoded path), so a service ID or node name may hold "/" ("%2F" once decoded).
TAIL_PREFIXES = sorted(
    (
        ("agent", "service", "deregister"),
        ("agent", "service", "maintenance"),
        ("agent", "service"),
        ("agent", "check", "deregister"),
        ("agent", "check", "pass"),
        ("agent", "check", "warn"),
        ("agent", "check", "fail"),
        ("agent", "check", "update"),
        ("agent", "force-leave"),
        ("agent", "token"),
        ("catalog", "node"),
        ("catalog", "node-services"),
        ("catalog", "service"),
        ("catalog", "connect"),
        ("health", "service"),
        ("health", "checks"),
        ("health", "node"),
        ("health", "state"),
        ("health", "connect"),
        ("health", "ingress"),
        ("session", "destroy"),
        ("session", "renew"),
        ("session", "info"),
        ("session", "node"),
        ("coordinate", "node"),
        ("acl", "policy", "name"),  # builtin/global-read-only
        ("acl", "templated-policy", "name"),  # builtin/service
        ("acl", "templated-policy", "preview"),
    ),
    key=len,
    reverse=True,
)


# Endpoints whose handler never resolves the request's token (an unknown one is no 403).
TOKEN_UNRESOLVED = {("acl", "bootstrap"), ("acl", "login"), ("acl", "token", "self")}


def join_tail(segments: list[str]) -> list[str]:
    """``v1/agent/service/a/b`` -> ``[v1, agent, service, "a/b"]`` for the endpoints above."""
    for prefix in TAIL_PREFIXES:
        size = len(prefix)
        if len(segments) > size + 1 and tuple(segments[1 : size + 1]) == prefix:
            return [*segments[: size + 1], "/".join(segments[size + 1 :])]
    return segments


def _agent_local(segments: list[str]) -> bool:
    """Endpoints the agent answers itself, without an RPC: they never read ``?dc=``."""
    return segments[1:2] == ["agent"] or segments[1:3] == ["event", "list"]


def ui_response(path: str) -> Response | None:
    """The web UI a dev agent serves: ``/`` redirects to ``/ui/``, which answers 200."""
    if path == "/":
        return Response(
            '<a href="/ui/">Moved Permanently</a>.\n\n',
            status_code=301,
            headers={"Location": "/ui/"},
            media_type="text/html; charset=utf-8",
        )
    if path == "/ui" or path.startswith("/ui/"):
        return Response(UI_PAGE, media_type="text/html; charset=utf-8")
    return None


def _may_block(scope: Scope) -> bool:
    """Blocking queries (``?index=``, ``?hash=``) and streams hold their connection."""
    query: bytes = scope.get("query_string", b"")
    return b"index=" in query or b"hash=" in query or scope["path"] == "/v1/agent/monitor"


async def _unless_disconnected(
    request: Request, handling: Coroutine[Any, Any, Response]
) -> Response | None:
    """Run ``handling`` until it answers, or cancel it when the client disconnects."""
    await request.body()  # the body is read first: the only receive() left is the disconnect
    handler = asyncio.ensure_future(handling)
    gone = asyncio.ensure_future(_disconnect(request.receive))
    await asyncio.wait({handler, gone}, return_when=asyncio.FIRST_COMPLETED)
    if handler.done():
        gone.cancel()
        return handler.result()
    handler.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await handler
    return None


async def _disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


async def _call(function: Callable[[], None]) -> None:
    function()


def _endpoint(segments: list[str]) -> str:
    """The endpoint family for the counters: ``health/service``, ``kv``, ``agent/service``..."""
    parts = segments[1:] if segments[:1] == ["v1"] else segments
    if not parts:
        return "root"
    if parts[0] == "kv":
        return "kv"
    if parts[:2] in (["agent", "check"], ["agent", "service"]) and len(parts) > 2:
        return "/".join(parts[:3])
    return "/".join(parts[:2])
