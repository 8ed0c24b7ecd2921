"""``/v1/status/*`` and ``/v1/operator/*``: the Raft cluster of a one-server dev agent."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from .context import Context
from .query import Query
from .web import GET, allow, json_response


class OperatorRoutes:
    """Status and operator endpoints (``agent/status_endpoint.go``, ``operator_endpoint.go``)."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    async def route(self, request: Request, q: Query, seg: list[str]) -> Response | None:
        method = request.method
        match seg:
            case ["v1", "status", "leader"]:
                allow(method, GET)
                return json_response(200, self.ctx.leader_address())
            case ["v1", "status", "peers"]:
                allow(method, GET)
                return json_response(200, [f"{self.ctx.config.address}:8300"])
        return None
