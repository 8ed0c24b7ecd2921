"""``/v1/agent/*``: the local agent's identity, members, services, checks and maintenance."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from .agent import unknown_service
from .catalog import STATUSES
from .context import CONSUL_VERSION, Context
from .metrics import metrics_response
from .monitor import LEVELS
from .normalize import check_body, service_body
from .query import BadRequest, Query
from .shapes import agent_service_json, check_json
from .web import (
    GET,
    PUT,
    HTTPError,
    Row,
    allow,
    empty_response,
    enable_param,
    get_ci,
    json_object,
    json_response,
)

TOKEN_KINDS = frozenset(
    {
        "default",
        "agent",
        "agent_recovery",
        "agent_master",
        "replication",
        "acl_token",
        "acl_agent_token",
        "acl_agent_master_token",
        "acl_replication_token",
        "config_file_service_registration",
        "dns_token",
        "dns",
    }
)


def unknown_check(check_id: str) -> HTTPError:
    return HTTPError(
        404,
        f'Unknown check ID "{check_id}". Ensure that the check ID is passed, not the check name.',
    )


class AgentRoutes:
    """The endpoints of the local agent (``agent/agent_endpoint.go``)."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    async def route(self, request: Request, q: Query, seg: list[str]) -> Response | None:
        method = request.method
        match seg:
            case ["v1", "agent", "self"]:
                allow(method, GET)
                return self._self(q)
            case ["v1", "agent", "members"]:
                allow(method, GET)
                wan = bool(q.params.get("wan"))  # any non-empty value asks for the WAN pool
                return json_response(200, [self.member(wan=wan)])
            case ["v1", "agent", "services"]:
                allow(method, GET)
                return self._services(q)
            case ["v1", "agent", "checks"]:
                allow(method, GET)
                return self._checks(q)
            case ["v1", "agent", "service", "register"]:
                allow(method, PUT)
                return await self._register(request, q)
            case ["v1", "agent", "service", "deregister", service_id]:
                allow(method, PUT)
                return self._deregister(q, service_id)
            case ["v1", "agent", "service", "maintenance", service_id]:
                allow(method, PUT)
                return self._service_maintenance(q, service_id)
            case ["v1", "agent", "service", service_id]:
                allow(method, GET)
                return await self._service(q, service_id)
            case ["v1", "agent", "maintenance"]:
                allow(method, PUT)
                return self._node_maintenance(q)
            case ["v1", "agent", "check", "register"]:
                allow(method, PUT)
                return await self._register_check(request, q)
            case ["v1", "agent", "check", "deregister", check_id]:
                allow(method, PUT)
                return self._deregister_check(q, check_id)
            case ["v1", "agent", "check", "pass" | "warn" | "fail" as verb, check_id]:
                allow(method, PUT)
                return self._ttl(q, check_id, verb)
            case ["v1", "agent", "check", "update", check_id]:
                allow(method, PUT)
                return await self._ttl_update(request, q, check_id)
            case ["v1", "agent", "reload"]:
                allow(method, PUT)
                self.ctx.require_write(q)
                self.ctx.logs.log("info", "agent", "Reloading configuration...")
                return empty_response()
            case ["v1", "agent", "leave"]:
                allow(method, PUT)
                return self._leave(q)
            case ["v1", "agent", "force-leave", node]:
                allow(method, PUT)
                return self._force_leave(q, node)
            case ["v1", "agent", "metrics"]:
                allow(method, GET)
                return metrics_response(self.ctx, q)
            case ["v1", "agent", "monitor"]:
                allow(method, GET)
                return self._monitor(q)
            case ["v1", "agent", "token", kind]:
                allow(method, PUT)
                return self._token(q, kind)
        return None

    # -- identity --------------------------------------------------------------------------

    def member(self, wan: bool = False) -> Row:
        """The agent as a Serf member of the LAN pool, or of the WAN pool (``node.dc``)."""
        config = self.ctx.config
        return {
            "Name": f"{config.node}.{config.datacenter}" if wan else config.node,
            "Addr": config.address,
            "Port": 8302 if wan else 8301,
            "Tags": {
                "acls": "1" if self.ctx.acls_enabled else "0",  # structs.ACLMode
                "bootstrap": "1",
                "build": f"{CONSUL_VERSION}:emulator",
                "dc": config.datacenter,
                "id": self.ctx.agent.node_id,
                "port": "8300",
                "raft_vsn": "3",
                "role": "consul",
                "segment": "",
                "vsn": "2",
                "vsn_max": "3",
                "vsn_min": "2",
                "wan_join_port": "8302",
            },
            "Status": 1,
            "ProtocolMin": 1,
            "ProtocolMax": 5,
            "ProtocolCur": 2,
            "DelegateMin": 2,
            "DelegateMax": 5,
            "DelegateCur": 4,
        }

    def _self(self, q: Query) -> Response:
        if self.ctx.anonymous(q):
            raise HTTPError(403, "Permission denied")
        config = self.ctx.config
        return json_response(
            200,
            {
                "Config": {
                    "Datacenter": config.datacenter,
                    "PrimaryDatacenter": config.datacenter,
                    "NodeName": config.node,
                    "NodeID": self.ctx.agent.node_id,
                    "Revision": "emulator",
                    "Server": True,
                    "Version": CONSUL_VERSION,
                    "BuildDate": "2024-11-20T00:00:00Z",
                },
                "DebugConfig": {
                    "Datacenter": config.datacenter,
                    "NodeName": config.node,
                    "DevMode": True,
                    "ACLsEnabled": self.ctx.acls_enabled,
                    "ACLResolverSettings": self._acl_settings(),
                },
                "Coord": {
                    "Vec": [0, 0, 0, 0, 0, 0, 0, 0],
                    "Error": 1.5,
                    "Adjustment": 0,
                    "Height": 1e-05,
                },
                "Member": self.member(),
                "Stats": self._stats(),
                "Meta": {"consul-network-segment": "", "consul-version": CONSUL_VERSION},
                "xDS": {"SupportedProxies": {}, "Port": -1, "Ports": {"Plaintext": -1, "TLS": -1}},
            },
        )

    def _acl_settings(self) -> Row:
        """``RuntimeConfig.ACLResolverSettings`` as ``agent/self`` shows it (sanitized)."""
        config = self.ctx.config
        return {
            "ACLDefaultPolicy": config.acl_default_policy,
            "ACLDownPolicy": "extend-cache",
            "ACLPolicyTTL": "30s",
            "ACLRoleTTL": "30s",
            "ACLTokenTTL": "30s",
            "ACLsEnabled": self.ctx.acls_enabled,
            "Datacenter": config.datacenter,
            "EnterpriseMeta": {},
            "NodeName": config.node,
        }

    def _stats(self) -> dict[str, dict[str, str]]:
        """``Agent.Stats()`` of a server: the sections and keys Consul reports, as strings."""
        ctx = self.ctx
        index = str(ctx.raft.index)
        leader = ctx.has_leader
        local = ctx.agent.local_checks()
        serf = {
            "coordinate_resets": "0",
            "encrypted": "false",
            "event_queue": "0",
            "event_time": "1",
            "failed": "0",
            "health_score": "0",
            "intent_queue": "0",
            "left": "0",
            "member_time": "1",
            "members": "1",
            "query_queue": "0",
            "query_time": "1",
        }
        return {
            "agent": {
                "check_monitors": "0",
                "check_ttls": str(sum(c["Type"] == "ttl" for c in local.values())),
                "checks": str(len(local)),
                "services": str(len(ctx.agent.local_services())),
            },
            "build": {
                "prerelease": "",
                "revision": "emulator",
                "version": CONSUL_VERSION,
                "version_metadata": "",
            },
            "consul": {
                "acl": "enabled" if ctx.acls_enabled else "disabled",
                "bootstrap": "false",
                "known_datacenters": "1",
                "leader": str(leader).lower(),
                "leader_addr": ctx.leader_address(),
                "server": "true",
            },
            "raft": {
                "applied_index": index,
                "commit_index": index,
                "fsm_pending": "0",
                "last_contact": "0",
                "last_log_index": index,
                "last_log_term": "2",
                "last_snapshot_index": "0",
                "last_snapshot_term": "0",
                "latest_configuration": f"[{{Suffrage:Voter ID:{ctx.agent.node_id} "
                f"Address:{ctx.config.address}:8300}}]",
                "latest_configuration_index": "0",
                "num_peers": "0",
                "protocol_version": "3",
                "protocol_version_max": "3",
                "protocol_version_min": "0",
                "snapshot_version_max": "1",
                "snapshot_version_min": "0",
                "state": "Leader" if leader else "Candidate",
                "term": "2",
            },
            "runtime": {
                "arch": "amd64",
                "cpu_count": str(os.cpu_count() or 1),
                "goroutines": "100",
                "max_procs": str(os.cpu_count() or 1),
                "os": "linux",
                "version": "go1.22.7",
            },
            "serf_lan": serf,
            "serf_wan": dict(serf),
        }

    # -- lifecycle -------------------------------------------------------------------------

    def _leave(self, q: Query) -> Response:
        """Leave gracefully, then stop: the answer goes out, then the listener closes."""
        self.ctx.require_write(q)
        self.ctx.logs.log("info", "agent", "Gracefully shutting down agent...")
        if self.ctx.on_leave is not None:
            self.ctx.on_leave()
        return empty_response()

    def _force_leave(self, q: Query, node: str) -> Response:
        self.ctx.require_write(q)
        members = {self.ctx.config.node, f"{self.ctx.config.node}.{self.ctx.config.datacenter}"}
        if node not in members:
            raise HTTPError(500, f"agent: No node found with name '{node}'")
        self.ctx.logs.log("info", "agent", "Force leaving node", node=node)
        return empty_response()

    def _monitor(self, q: Query) -> Response:
        level = (q.params.get("loglevel") or "info").lower()
        if level == "warning":
            level = "warn"
        if level not in LEVELS:
            raise BadRequest(f"Unknown log level: {q.params.get('loglevel')}")
        stream = self.ctx.logs.follow(level, q.flag("logjson"))
        return StreamingResponse(stream, media_type="text/plain; charset=utf-8")

    def _token(self, q: Query, kind: str) -> Response:
        """``agent/token/:type``: only with ACLs on, with ``acl:write``, for the known kinds."""
        if not self.ctx.acls_enabled:
            raise HTTPError(401, "ACL support disabled")
        self.ctx.require_acl(q, "write")
        if kind not in TOKEN_KINDS:
            raise HTTPError(404, f'Token "{kind}" is unknown')
        return empty_response()

    # -- services --------------------------------------------------------------------------

    def _services(self, q: Query) -> Response:
        predicate = self.ctx.filter(q)
        services = {
            sid: agent_service_json(svc, self.ctx.config.datacenter)
            for sid, svc in self.ctx.agent.local_services().items()
        }
        if predicate is not None:
            services = {sid: s for sid, s in services.items() if predicate(s)}
        return json_response(200, {} if self.ctx.anonymous(q) else services)

    async def _service(self, q: Query, service_id: str) -> Response:
        """Hash-based blocking: ``?hash=`` + ``?wait=`` (``X-Consul-ContentHash``)."""
        ctx = self.ctx

        def compute() -> tuple[str, Row | None]:
            svc = ctx.agent.local_service(service_id)
            if svc is None:
                return "", None
            body = agent_service_json(svc, ctx.config.datacenter)
            digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:16]
            return digest, {**body, "ContentHash": digest}

        digest, body = compute()
        wanted = q.params.get("hash")
        if wanted and digest == wanted:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + q.timeout(ctx.config.default_wait, ctx.config.max_wait)
            keys = [("node", ctx.config.node)]
            while digest == wanted and loop.time() < deadline:
                future = ctx.raft.watchers.register(keys)
                try:
                    await asyncio.wait_for(future, deadline - loop.time())
                except TimeoutError:
                    pass
                finally:
                    ctx.raft.watchers.unregister(future, keys)
                digest, body = compute()
        if body is None:
            raise HTTPError(404, f"unknown service ID: {service_id}")
        return json_response(200, body, {"X-Consul-ContentHash": digest})

    async def _register(self, request: Request, q: Query) -> Response:
        self.ctx.require_write(q)
        body = service_body(await json_object(request))
        service = self.ctx.agent.register_service(body, q.bool_param("replace-existing-checks"))
        self.ctx.logs.log("info", "agent", "Synced service", service=service["ID"])
        return empty_response()

    def _deregister(self, q: Query, service_id: str) -> Response:
        self.ctx.require_write(q)
        self.ctx.agent.deregister_service(service_id)
        self.ctx.logs.log("info", "agent", "Deregistered service", service=service_id)
        return empty_response()

    def _service_maintenance(self, q: Query, service_id: str) -> Response:
        self.ctx.require_write(q)
        enable = enable_param(q)
        if not self.ctx.agent.service_maintenance(service_id, enable, q.params.get("reason", "")):
            raise unknown_service(service_id)
        return empty_response()

    def _node_maintenance(self, q: Query) -> Response:
        self.ctx.require_write(q)
        self.ctx.agent.node_maintenance(enable_param(q), q.params.get("reason", ""))
        return empty_response()

    # -- checks ----------------------------------------------------------------------------

    def _checks(self, q: Query) -> Response:
        predicate = self.ctx.filter(q)
        checks = {
            cid: check_json(c, with_indexes=False)
            for cid, c in self.ctx.agent.local_checks().items()
        }
        if predicate is not None:
            checks = {cid: c for cid, c in checks.items() if predicate(c)}
        return json_response(200, {} if self.ctx.anonymous(q) else checks)

    async def _register_check(self, request: Request, q: Query) -> Response:
        self.ctx.require_write(q)
        self.ctx.agent.register_check(check_body(await json_object(request)))
        return empty_response()

    def _deregister_check(self, q: Query, check_id: str) -> Response:
        self.ctx.require_write(q)
        self.ctx.agent.deregister_check(check_id)
        return empty_response()

    def _ttl(self, q: Query, check_id: str, verb: str) -> Response:
        self.ctx.require_write(q)
        status = {"pass": "passing", "warn": "warning", "fail": "critical"}[verb]
        if not self.ctx.agent.update_ttl(check_id, status, q.params.get("note", "")):
            raise unknown_check(check_id)
        return empty_response()

    async def _ttl_update(self, request: Request, q: Query, check_id: str) -> Response:
        self.ctx.require_write(q)
        body = await json_object(request)
        status = str(get_ci(body, "Status") or "")
        if status not in STATUSES:
            raise BadRequest(f'Invalid check status: "{status}"')
        if not self.ctx.agent.update_ttl(check_id, status, str(get_ci(body, "Output") or "")):
            raise unknown_check(check_id)
        return empty_response()
