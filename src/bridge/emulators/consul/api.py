"""The HTTP API of a one-node ``consul agent -dev`` (Consul 1.20): routing to the endpoint groups.

Each group (agent, catalog/health, KV/sessions, status/operator...) lives in
its own ``*_routes`` module over one shared ``Context``.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable
from typing import Any, Protocol

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from ..controls import PREFIX, Controls
from .agent_routes import AgentRoutes
from .catalog import CatalogError
from .catalog_routes import CatalogRoutes
from .context import CONSUL_VERSION, AgentConfig, Context
from .kv import SessionError
from .kv_routes import KVRoutes
from .operator_routes import OperatorRoutes
from .query import DEFAULT_WAIT, MAX_WAIT, BadRequest, parse_query
from .web import HTTPError, json_object, json_response, text_response

__all__ = ["CONSUL_VERSION", "ConsulAPI"]
TOO_MANY_CONNECTIONS = (
    "Your IP is issuing too many concurrent connections, please rate limit your calls\n"
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
        min_session_ttl: float = 10.0,
        default_wait: float = DEFAULT_WAIT,
        max_wait: float = MAX_WAIT,
    ) -> None:
        self.ctx = Context(
            AgentConfig(
                datacenter=datacenter,
                node=node,
                address=address,
                max_conns_per_client=max_conns_per_client,
                acl_master_token=acl_master_token,
                min_session_ttl=min_session_ttl,
                default_wait=default_wait,
                max_wait=max_wait,
            )
        )
        self.max_conns_per_client = max_conns_per_client
        self.controls = Controls(
            reset_data=self.ctx.reset,
            extra={"restart": self._restart, "leader": self._leader, "state": self._state},
        )
        self.controls.error_body = lambda status: text_response(
            status, "rpc error making call: injected by the emulator"
        )
        self.in_flight: Counter[str] = Counter()
        self._loop: asyncio.AbstractEventLoop | None = None
        agent = AgentRoutes(self.ctx)
        catalog = CatalogRoutes(self.ctx)
        kv = KVRoutes(self.ctx)
        operator = OperatorRoutes(self.ctx)
        # The group serving each /v1/<family>/... path.
        self.groups: dict[str, Routes] = {
            "agent": agent,
            "catalog": catalog,
            "health": catalog,
            "kv": kv,
            "session": kv,
            "status": operator,
            "operator": operator,
        }

    # The state, for tests and benchmarks that load it directly.
    @property
    def raft(self) -> Any:
        return self.ctx.raft

    @property
    def catalog(self) -> Any:
        return self.ctx.catalog

    # -- /_emulator/ extras ----------------------------------------------------------------

    async def _restart(self, request: Request) -> Response:
        """Like an agent restart with a snapshot restore: the index goes down, data stays."""
        ctx = self.ctx
        body = await json_object(request)
        drop = int(body.get("index_drop", max(1, ctx.raft.index // 2)))
        down_seconds = float(body.get("down_seconds", 0.2))
        new_index = max(2, ctx.raft.index - drop)
        for part in (ctx.catalog, ctx.kv, ctx.sessions):
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
                "in_flight": sum(self.in_flight.values()),
            },
        )

    # -- ASGI ------------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        self._loop = asyncio.get_running_loop()
        request = Request(scope, receive)
        response = await self.handle(request)
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
        path = request.url.path
        if path.startswith(PREFIX):
            return await self.controls.handle(request)
        client = request.client.host if request.client else "unknown"
        if self.in_flight[client] >= self.max_conns_per_client:
            return text_response(429, TOO_MANY_CONNECTIONS)
        self.in_flight[client] += 1
        try:
            return await self._handle(request, path)
        finally:
            self.in_flight[client] -= 1
            if not self.in_flight[client]:
                del self.in_flight[client]

    async def _handle(self, request: Request, path: str) -> Response:
        segments = path.split("/")[1:]
        self.controls.counters.count(request.method, _endpoint(segments))
        faulted = await self.controls.before_request()
        if faulted is not None:
            return faulted
        try:
            query = parse_query(request.query_params, dict(request.headers))
            self.ctx.check_common(query)
            group = (
                self.groups.get(segments[1])
                if segments[:1] == ["v1"] and len(segments) > 1
                else None
            )
            response = None if group is None else await group.route(request, query, segments)
        except BadRequest as exc:
            return text_response(400, str(exc))
        except CatalogError as exc:
            return text_response(400, str(exc))
        except SessionError as exc:
            return text_response(exc.status, str(exc))
        except HTTPError as exc:
            return text_response(exc.status, exc.text, exc.headers)
        if response is None:
            return text_response(404, "404 page not found\n")
        return response

    def _group(self, segments: list[str]) -> Routes | None:
        if len(segments) < 2 or segments[0] != "v1":
            return None
        return self.groups.get(segments[1])


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
