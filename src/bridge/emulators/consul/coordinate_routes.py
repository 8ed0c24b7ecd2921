"""``/v1/coordinate/*``: Serf network coordinates (``agent/coordinate_endpoint.go``)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from .cluster import COORDINATES_KEY, valid_coordinate
from .context import Context
from .query import Query
from .web import (
    GET,
    PUT,
    Computed,
    HTTPError,
    allow,
    empty_response,
    get_ci,
    json_object,
    json_response,
)


class CoordinateRoutes:
    """LAN coordinates per node, and the WAN coordinates of each datacenter's servers."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    async def route(self, request: Request, q: Query, seg: list[str]) -> Response | None:
        method = request.method
        match seg:
            case ["v1", "coordinate", "datacenters"]:
                allow(method, GET)
                return json_response(200, self._datacenters())
            case ["v1", "coordinate", "nodes"]:
                return await self.ctx.read(method, q, lambda: self._nodes(q), [COORDINATES_KEY])
            case ["v1", "coordinate", "node", node]:
                allow(method, GET)
                self.ctx.require_leader(q)
                index, rows = await self.ctx.blocking(
                    q, lambda: self._node(q, node), [COORDINATES_KEY]
                )
                meta = self.ctx.meta(q, index)
                if not rows:
                    return Response(status_code=404, headers=meta)
                return json_response(200, rows, meta)
            case ["v1", "coordinate", "update"]:
                allow(method, PUT)
                return await self._update(request, q)
        return None

    def _datacenters(self) -> list[dict[str, object]]:
        config = self.ctx.config
        stored = self.ctx.coordinates.coordinates.get(config.node)
        coord = stored["Coord"] if stored else None
        return [
            {
                "Datacenter": config.datacenter,
                "AreaID": "wan",
                "Coordinates": [
                    {"Node": f"{config.node}.{config.datacenter}", "Segment": "", "Coord": coord}
                ],
            }
        ]

    def _nodes(self, q: Query) -> Computed:
        store = self.ctx.coordinates
        segment = q.params.get("segment")
        rows = [r for r in store.listing() if segment is None or r["Segment"] == segment]
        return store.table_index, rows

    def _node(self, q: Query, node: str) -> Computed:
        index, rows = self._nodes(q)
        return index, [r for r in rows if r["Node"] == node]

    async def _update(self, request: Request, q: Query) -> Response:
        ctx = self.ctx
        ctx.require_write(q)
        body = await json_object(request)
        ctx.check_datacenter(get_ci(body, "Datacenter"))
        node = str(get_ci(body, "Node") or "")
        coord = get_ci(body, "Coord")
        if not valid_coordinate(coord):
            raise HTTPError(500, "invalid coordinate")
        # CoordinateBatchUpdate skips nodes the catalog does not know.
        if node in ctx.catalog.nodes:
            ctx.coordinates.update(node, str(get_ci(body, "Segment") or ""), dict(coord))
            ctx.raft.commit()
        return empty_response()
