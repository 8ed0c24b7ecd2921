"""``/v1/status/*`` and ``/v1/operator/*``: the Raft cluster of a one-server dev agent."""

from __future__ import annotations

from datetime import UTC, datetime

from starlette.requests import Request
from starlette.responses import Response

from .context import CONSUL_VERSION, Context
from .query import BadRequest, Query
from .web import GET, HTTPError, Row, allow, json_object, json_response, uint_param

# serf's answer to a keyring query when gossip is not encrypted (the dev agent's case).
KEYRING_DISABLED = (
    "3 errors occurred:\n"
    "\t* WAN error: 1/1 nodes reported failure\n"
    "\t* {node}.{dc}: Keyring is empty (encryption not enabled)\n"
    "\t* {dc} (LAN) error: 1/1 nodes reported failure\n\n"
)


class OperatorRoutes:
    """Status and operator endpoints (``agent/status_endpoint.go``, ``operator_endpoint.go``)."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.started = datetime.now(UTC)

    async def route(self, request: Request, q: Query, seg: list[str]) -> Response | None:
        method = request.method
        match seg:
            case ["v1", "status", "leader"]:
                allow(method, GET)
                return json_response(200, self.ctx.leader_address())
            case ["v1", "status", "peers"]:
                allow(method, GET)
                return json_response(200, [self._server_address()])
            case ["v1", "operator", "raft", "configuration"]:
                allow(method, GET)
                self.ctx.require_leader(q)
                return json_response(200, self._raft_configuration())
            case ["v1", "operator", "raft", "peer"]:
                allow(method, ("DELETE",))
                return self._remove_peer(q)
            case ["v1", "operator", "raft", "transfer-leader"]:
                allow(method, ("POST",))
                return self._transfer_leader(q)
            case ["v1", "operator", "autopilot", "configuration"]:
                allow(method, ("GET", "HEAD", "PUT"))
                if method == "PUT":
                    return await self._set_autopilot(request, q)
                return json_response(200, self.ctx.autopilot.config)
            case ["v1", "operator", "autopilot", "health"]:
                allow(method, GET)
                health = self._autopilot_health()
                # OperatorServerHealth answers 429 while the cluster is unhealthy.
                return json_response(200 if health["Healthy"] else 429, health)
            case ["v1", "operator", "keyring"]:
                allow(method, ("GET", "HEAD", "POST", "PUT", "DELETE"))
                config = self.ctx.config
                raise HTTPError(
                    500, KEYRING_DISABLED.format(node=config.node, dc=config.datacenter)
                )
            case ["v1", "operator", "usage"]:
                return await self.ctx.read(
                    method, q, lambda: self._usage(q), [("table", "services"), ("table", "nodes")]
                )
        return None

    def _server_address(self) -> str:
        return f"{self.ctx.config.address}:8300"

    # -- raft ------------------------------------------------------------------------------

    def _raft_configuration(self) -> Row:
        ctx = self.ctx
        return {
            "Servers": [
                {
                    "ID": ctx.agent.node_id,
                    "Node": ctx.config.node,
                    "Address": self._server_address(),
                    "Leader": ctx.has_leader,
                    "ProtocolVersion": "3",
                    "Voter": True,
                    "LastIndex": ctx.raft.index,
                }
            ],
            # raft's lock-free GetConfiguration (Consul 1.13.8 on) carries no index.
            "Index": 0,
        }

    def _remove_peer(self, q: Query) -> Response:
        self.ctx.require_write(q)
        if "id" in q.params:
            wanted, field = q.params["id"], "id"
            known = self.ctx.agent.node_id
        elif "address" in q.params:
            wanted, field = q.params["address"], "address"
            known = self._server_address()
        else:
            raise BadRequest(
                "Must specify either ?id with the server's ID or ?address with IP:port of peer "
                "to remove"
            )
        if wanted != known:
            raise HTTPError(500, f'{field} "{wanted}" was not found in the Raft configuration')
        # Removing the only voter would leave no cluster; Raft refuses it.
        raise HTTPError(500, "cannot remove the last voter of the configuration")

    def _transfer_leader(self, q: Query) -> Response:
        self.ctx.require_write(q)
        wanted = q.params.get("id", "")
        if wanted and wanted != self.ctx.agent.node_id:
            raise HTTPError(500, f'cannot find peer with id "{wanted}"')
        raise HTTPError(500, "cannot find peer")  # a single server has nobody to hand over to

    # -- autopilot -------------------------------------------------------------------------

    async def _set_autopilot(self, request: Request, q: Query) -> Response:
        self.ctx.require_write(q)
        body = await json_object(request)
        ok = self.ctx.autopilot.set(body, uint_param(q, "cas"))
        self.ctx.raft.commit()
        return json_response(200, ok)

    def _autopilot_health(self) -> Row:
        ctx = self.ctx
        return {
            "Healthy": ctx.has_leader,
            "FailureTolerance": 0,
            "Servers": [
                {
                    "ID": ctx.agent.node_id,
                    "Name": ctx.config.node,
                    "Address": self._server_address(),
                    "SerfStatus": "alive",
                    "Version": CONSUL_VERSION,
                    "Leader": ctx.has_leader,
                    "LastContact": "0s",
                    "LastTerm": 2,
                    "LastIndex": ctx.raft.index,
                    "Healthy": ctx.has_leader,
                    "Voter": True,
                    "StableSince": self.started.isoformat().replace("+00:00", "Z"),
                }
            ],
        }

    # -- usage -----------------------------------------------------------------------------

    def _usage(self, q: Query) -> tuple[int, Row]:
        """``structs.Usage``: the counts, then its embedded QueryMeta in the body too."""
        catalog = self.ctx.catalog
        kinds = {
            kind: 0
            for kind in (
                "api-gateway",
                "connect-native",
                "connect-proxy",
                "ingress-gateway",
                "mesh-gateway",
                "terminating-gateway",
            )
        }
        billable = 0
        for svc in catalog.services.values():
            if svc["Kind"] in kinds:
                kinds[svc["Kind"]] += 1
            elif (svc["Connect"] or {}).get("Native"):
                kinds["connect-native"] += 1
            if not svc["Kind"] and svc["Service"] != "consul":
                billable += 1
        usage = {
            "Services": len(catalog.services_by_name),
            "ServiceInstances": len(catalog.services),
            "ConnectServiceInstances": kinds,
            "BillableServiceInstances": billable,
            "Nodes": len(catalog.nodes),
        }
        index = max(catalog.table_index["services"], catalog.table_index["nodes"])
        return index, {
            "Usage": {self.ctx.config.datacenter: usage},
            "Index": index,
            "LastContact": 0,
            "KnownLeader": self.ctx.has_leader,
            "ConsistencyLevel": q.consistency,
            "NotModified": False,
            "Backend": 0,  # QueryBackendBlocking, an int in JSON
            "ResultsFilteredByACLs": False,
        }
