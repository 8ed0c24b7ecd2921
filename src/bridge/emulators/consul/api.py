"""The HTTP API of a one-node ``consul agent -dev`` (Consul 1.20), over the state modules."""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from ..controls import PREFIX, Controls
from .agent import Agent, build_check
from .catalog import STATUSES, Catalog, CatalogError, all_checks, build_service
from .filter import FilterError, Predicate, compile_filter
from .kv import KVStore, SessionError, SessionStore
from .normalize import catalog_body, check_body, service_body, session_body
from .query import DEFAULT_WAIT, MAX_WAIT, BadRequest, Query, parse_query
from .raft import Raft, WatchKey
from .shapes import (
    agent_service_json,
    check_json,
    kv_json,
    node_json,
    node_service_json,
    service_node_json,
)

CONSUL_VERSION = "1.20.1"
KV_MAX_VALUE = 512 * 1024
TOO_MANY_CONNECTIONS = (
    "Your IP is issuing too many concurrent connections, please rate limit your calls\n"
)
Row = dict[str, Any]
Computed = tuple[int, Any]


class HTTPError(Exception):
    """An answer with a plain-text body, as Consul's ``wrap`` writes errors."""

    def __init__(self, status: int, text: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(text)
        self.status = status
        self.text = text
        self.headers = headers or {}


def text_response(status: int, text: str, headers: dict[str, str] | None = None) -> Response:
    return Response(
        text, status_code=status, media_type="text/plain; charset=utf-8", headers=headers
    )


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
        self.datacenter = datacenter
        self.node_name = node
        self.address = address
        self.max_conns_per_client = max_conns_per_client
        self.acl_master_token = acl_master_token
        self.min_session_ttl = min_session_ttl
        self.default_wait = default_wait
        self.max_wait = max_wait
        self.controls = Controls(
            reset_data=self.reset,
            extra={
                "restart": self._restart,
                "leader": self._leader,
                "state": self._state,
            },
        )
        self.controls.error_body = lambda status: text_response(
            status, "rpc error making call: injected by the emulator"
        )
        self.in_flight: Counter[str] = Counter()
        self.no_leader_until = 0.0
        self.generation = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._build()

    def _build(self) -> None:
        self.raft = Raft()
        self.catalog = Catalog(self.raft, self.datacenter)
        self.kv = KVStore(self.raft)
        self.sessions = SessionStore(
            self.raft, self.catalog, self.kv, self.node_name, self.min_session_ttl
        )
        self.agent = Agent(self.raft, self.catalog, self.sessions, self.node_name, self.address)
        self.agent.bootstrap(CONSUL_VERSION)

    def reset(self) -> None:
        self.agent.runner.stop_all()
        self.raft.watchers.notify_all()
        self.generation += 1
        self.no_leader_until = 0.0
        self._build()

    # -- /_emulator/ extras ----------------------------------------------------------------

    async def _restart(self, request: Request) -> Response:
        """Like an agent restart with a snapshot restore: the index goes down, data stays."""
        body = await _json_object(request)
        drop = int(body.get("index_drop", max(1, self.raft.index // 2)))
        down_seconds = float(body.get("down_seconds", 0.2))
        new_index = max(2, self.raft.index - drop)
        for part in (self.catalog, self.kv, self.sessions):
            part.restore_index(new_index)
        self.raft.index = new_index
        self.generation += 1
        self.raft.watchers.notify_all()
        if self.controls.refuse is not None:
            self.controls.refuse(down_seconds)
        return _json(200, {"index": new_index})

    async def _leader(self, request: Request) -> Response:
        body = await _json_object(request)
        self.no_leader_until = time.monotonic() + float(body.get("no_leader_seconds", 0))
        return _json(200, {"no_leader_seconds": max(0.0, self.no_leader_until - time.monotonic())})

    async def _state(self, request: Request) -> Response:
        return _json(
            200,
            {
                "index": self.raft.index,
                "blocked_queries": self.raft.watchers.waiting,
                "wakeups": self.raft.watchers.wakeups,
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

        def abandon() -> None:
            self.generation += 1
            self.raft.watchers.notify_all()

        try:
            done = asyncio.run_coroutine_threadsafe(_call(abandon), loop)
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
            self._check_common(query)
            return await self.route(request, query, segments)
        except BadRequest as exc:
            return text_response(400, str(exc))
        except CatalogError as exc:
            return text_response(400, str(exc))
        except SessionError as exc:
            return text_response(exc.status, str(exc))
        except HTTPError as exc:
            return text_response(exc.status, exc.text, exc.headers)

    def _check_common(self, query: Query) -> None:
        dc = query.params.get("dc")
        if dc and dc != self.datacenter:
            raise HTTPError(500, "No path to datacenter")
        if query.params.get("ns"):
            raise BadRequest(
                'Invalid query parameter: "ns" - Namespaces are a Consul Enterprise feature'
            )
        if query.params.get("partition"):
            raise BadRequest(
                'Invalid query parameter: "partition" - Partitions are a Consul Enterprise feature'
            )
        if self.acl_master_token and query.token and query.token != self.acl_master_token:
            raise HTTPError(403, "ACL not found")

    @property
    def has_leader(self) -> bool:
        return time.monotonic() >= self.no_leader_until

    def _require_leader(self, query: Query) -> None:
        if not self.has_leader and query.consistency != "stale":
            raise HTTPError(500, "No cluster leader")

    def _require_write(self, query: Query) -> None:
        if not self.has_leader:
            raise HTTPError(500, "No cluster leader")
        if self.acl_master_token and query.token != self.acl_master_token:
            raise HTTPError(403, "Permission denied")

    def _anonymous(self, query: Query) -> bool:
        return bool(self.acl_master_token) and query.token != self.acl_master_token

    # -- routing ---------------------------------------------------------------------------

    async def route(self, request: Request, q: Query, seg: list[str]) -> Response:
        method = request.method
        get, put = ("GET", "HEAD"), ("PUT",)
        match seg:
            case ["v1", "status", "leader"]:
                return self._only(method, get, lambda: _json(200, self._leader_address()))
            case ["v1", "status", "peers"]:
                return self._only(method, get, lambda: _json(200, [f"{self.address}:8300"]))
            case ["v1", "agent", "self"]:
                return self._only(method, get, lambda: self._agent_self(q))
            case ["v1", "agent", "members"]:
                return self._only(method, get, lambda: _json(200, [self._member()]))
            case ["v1", "agent", "services"]:
                return self._only(method, get, lambda: self._agent_services(q))
            case ["v1", "agent", "checks"]:
                return self._only(method, get, lambda: self._agent_checks(q))
            case ["v1", "agent", "service", "register"]:
                return await self._only_async(method, put, lambda: self._register(request, q))
            case ["v1", "agent", "service", "deregister", service_id]:
                return self._only(method, put, lambda: self._deregister(q, service_id))
            case ["v1", "agent", "service", "maintenance", service_id]:
                return self._only(method, put, lambda: self._service_maint(q, service_id))
            case ["v1", "agent", "service", service_id]:
                return await self._only_async(
                    method, get, lambda: self._agent_service(q, service_id)
                )
            case ["v1", "agent", "maintenance"]:
                return self._only(method, put, lambda: self._node_maint(q))
            case ["v1", "agent", "check", "register"]:
                return await self._only_async(method, put, lambda: self._register_check(request, q))
            case ["v1", "agent", "check", "deregister", check_id]:
                return self._only(method, put, lambda: self._deregister_check(q, check_id))
            case ["v1", "agent", "check", "pass" | "warn" | "fail" as verb, check_id]:
                return self._only(method, put, lambda: self._ttl(q, check_id, verb))
            case ["v1", "agent", "check", "update", check_id]:
                return await self._only_async(
                    method, put, lambda: self._ttl_update(request, q, check_id)
                )
            case ["v1", "catalog", "register"]:
                return await self._only_async(
                    method, put, lambda: self._catalog_register(request, q)
                )
            case ["v1", "catalog", "deregister"]:
                return await self._only_async(
                    method, put, lambda: self._catalog_deregister(request, q)
                )
            case ["v1", "catalog", "datacenters"]:
                return self._only(method, get, lambda: _json(200, [self.datacenter]))
            case ["v1", "catalog", "nodes"]:
                return await self._read(method, q, self._nodes(q), [("table", "nodes")])
            case ["v1", "catalog", "node", node]:
                return await self._read(method, q, self._node(node), [("node", node)])
            case ["v1", "catalog", "node-services", node]:
                return await self._read(method, q, self._node_services(node), [("node", node)])
            case ["v1", "catalog", "services"]:
                return await self._read(method, q, self._services(q), [("table", "services")])
            case ["v1", "catalog", "service", name]:
                return await self._read(
                    method, q, self._catalog_service(q, name), [("service", name)]
                )
            case ["v1", "health", "service", name]:
                return await self._read(
                    method, q, self._health_service(q, name), [("service", name)]
                )
            case ["v1", "health", "state", state]:
                return await self._read(method, q, self._health_state(q, state), [("state", state)])
            case ["v1", "health", "node", node]:
                return await self._read(method, q, self._health_node(q, node), [("node", node)])
            case ["v1", "health", "checks", name]:
                return await self._read(
                    method, q, self._health_checks(q, name), [("service", name)]
                )
            case ["v1", "kv", *parts]:
                return await self._kv(request, q, "/".join(parts))
            case ["v1", "session", "create"]:
                return await self._only_async(method, put, lambda: self._session_create(request, q))
            case ["v1", "session", "destroy", session_id]:
                return self._only(method, put, lambda: self._session_destroy(q, session_id))
            case ["v1", "session", "renew", session_id]:
                return self._only(method, put, lambda: self._session_renew(q, session_id))
            case ["v1", "session", "info", session_id]:
                return await self._read(
                    method,
                    q,
                    self._sessions(lambda s: s["ID"] == session_id),
                    [("table", "sessions")],
                )
            case ["v1", "session", "node", node]:
                return await self._read(
                    method, q, self._sessions(lambda s: s["Node"] == node), [("table", "sessions")]
                )
            case ["v1", "session", "list"]:
                return await self._read(
                    method, q, self._sessions(lambda s: True), [("table", "sessions")]
                )
        raise HTTPError(404, "404 page not found\n")

    @staticmethod
    def _allowed(method: str, allowed: tuple[str, ...]) -> None:
        if method not in allowed:
            raise HTTPError(
                405,
                f"method {method} not allowed",
                {"Allow": ", ".join(a for a in allowed if a != "HEAD")},
            )

    def _only(
        self, method: str, allowed: tuple[str, ...], handler: Callable[[], Response]
    ) -> Response:
        self._allowed(method, allowed)
        return handler()

    async def _only_async(
        self, method: str, allowed: tuple[str, ...], handler: Callable[[], Awaitable[Response]]
    ) -> Response:
        self._allowed(method, allowed)
        return await handler()

    # -- blocking reads --------------------------------------------------------------------

    async def _read(
        self,
        method: str,
        q: Query,
        compute: Callable[[], Computed],
        keys: list[WatchKey],
        prefixes: tuple[str, ...] = (),
    ) -> Response:
        self._allowed(method, ("GET", "HEAD"))
        self._require_leader(q)
        index, payload = await self.blocking(q, compute, keys, prefixes)
        return _json(200, payload, self._meta(q, index), pretty=q.flag("pretty"))

    async def blocking(
        self,
        q: Query,
        compute: Callable[[], Computed],
        keys: list[WatchKey],
        prefixes: tuple[str, ...] = (),
    ) -> Computed:
        """Hold until the index passes ``?index`` or the (jittered) wait ends."""
        index, payload = compute()
        if q.index == 0 or index > q.index:
            return index, payload
        loop = asyncio.get_running_loop()
        deadline = loop.time() + q.timeout(self.default_wait, self.max_wait)
        generation = self.generation
        while index <= q.index and generation == self.generation:
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            future = self.raft.watchers.register(keys, prefixes)
            try:
                await asyncio.wait_for(future, remaining)
            except TimeoutError:
                pass
            finally:
                self.raft.watchers.unregister(future, keys, prefixes)
            index, payload = compute()
        return index, payload

    def _meta(self, q: Query, index: int) -> dict[str, str]:
        leader = self.has_leader
        return {
            "X-Consul-Index": str(max(1, index)),  # setIndex never sends 0
            "X-Consul-KnownLeader": "true" if leader else "false",
            "X-Consul-LastContact": "0",
            "X-Consul-Effective-Consistency": q.consistency,
            "X-Consul-Default-ACL-Policy": "deny" if self.acl_master_token else "allow",
        }

    # -- catalog ---------------------------------------------------------------------------

    @staticmethod
    def _filter(q: Query) -> Predicate | None:
        text = q.params.get("filter")
        if not text:
            return None
        try:
            return compile_filter(text)
        except FilterError as exc:
            raise BadRequest(f"Failed to create boolean expression evaluator: {exc}") from None

    @staticmethod
    def _node_meta(q: Query) -> list[tuple[str, str]]:
        pairs = []
        for value in q.params.getlist("node-meta"):
            key, _, val = value.partition(":")
            pairs.append((key, val))
        return pairs

    def _nodes(self, q: Query) -> Callable[[], Computed]:
        predicate = self._filter(q)

        def compute() -> Computed:
            rows = [node_json(n) for _name, n in sorted(self.catalog.nodes.items())]
            if predicate is not None:
                rows = [r for r in rows if predicate(r)]
            return self.catalog.table_index["nodes"], [] if self._anonymous(q) else rows

        return compute

    def _node(self, name: str) -> Callable[[], Computed]:
        def compute() -> Computed:
            node = self.catalog.nodes.get(name)
            index = max(self.catalog.table_index["nodes"], self.catalog.table_index["services"])
            if node is None:
                return index, None
            services = {
                key[1]: node_service_json(self.catalog.services[key])
                for key in sorted(self.catalog.services_by_node.get(name, ()))
            }
            return index, {"Node": node_json(node), "Services": services}

        return compute

    def _node_services(self, name: str) -> Callable[[], Computed]:
        def compute() -> Computed:
            node = self.catalog.nodes.get(name)
            index = self.catalog.table_index["services"]
            if node is None:
                return index, None
            services = [
                node_service_json(self.catalog.services[key])
                for key in sorted(self.catalog.services_by_node.get(name, ()))
            ]
            return index, {"Node": node_json(node), "Services": services}

        return compute

    def _service_nodes(self, name: str | None = None) -> list[Row]:
        pairs = (
            self.catalog.instances(name)
            if name is not None
            else [(key[0], svc) for key, svc in sorted(self.catalog.services.items())]
        )
        return [service_node_json(self.catalog.nodes[node], svc) for node, svc in pairs]

    def _services(self, q: Query) -> Callable[[], Computed]:
        predicate = self._filter(q)
        meta = self._node_meta(q)

        def compute() -> Computed:
            index = self.catalog.table_index["services"]
            if self._anonymous(q):
                return index, {}
            if predicate is None and not meta:
                return index, self.catalog.service_names()
            names: dict[str, list[str]] = {}
            for row in self._service_nodes():
                if predicate is not None and not predicate(row):
                    continue
                if any((row["NodeMeta"] or {}).get(k) != v for k, v in meta):
                    continue
                tags = names.setdefault(row["ServiceName"], [])
                tags.extend(t for t in row["ServiceTags"] if t not in tags)
            return index, dict(sorted(names.items()))

        return compute

    def _catalog_service(self, q: Query, name: str) -> Callable[[], Computed]:
        predicate = self._filter(q)
        tags = q.params.getlist("tag")

        def compute() -> Computed:
            index = self.catalog.service_index_for(name)
            if self._anonymous(q):
                return index, []
            rows = [
                r for r in self._service_nodes(name) if all(t in r["ServiceTags"] for t in tags)
            ]
            if predicate is not None:
                rows = [r for r in rows if predicate(r)]
            return index, rows

        return compute

    def _health_service(self, q: Query, name: str) -> Callable[[], Computed]:
        predicate = self._filter(q)
        tags = q.params.getlist("tag")
        passing = q.bool_param("passing")
        meta = self._node_meta(q)

        def compute() -> Computed:
            index = self.catalog.service_index_for(name)
            if self._anonymous(q):
                return index, []
            entries = []
            for node_name, svc in self.catalog.instances(name):
                if not all(t in svc["Tags"] for t in tags):
                    continue
                node = self.catalog.nodes[node_name]
                if any((node["Meta"] or {}).get(k) != v for k, v in meta):
                    continue
                entries.append(
                    {
                        "Node": node_json(node),
                        "Service": node_service_json(svc),
                        "Checks": [
                            check_json(c) for c in self.catalog.checks_for(node_name, svc["ID"])
                        ],
                    }
                )
            if predicate is not None:
                entries = [e for e in entries if predicate(e)]
            if passing:
                entries = _filter_non_passing(entries)
            return index, entries

        return compute

    def _check_list(
        self, q: Query, keep: Callable[[Row], bool], index: Callable[[], int]
    ) -> Callable[[], Computed]:
        """A blocking list of checks (``health/state``, ``health/node``, ``health/checks``)."""
        predicate = self._filter(q)

        def compute() -> Computed:
            rows = [check_json(c) for c in all_checks(self.catalog) if keep(c)]
            if predicate is not None:
                rows = [r for r in rows if predicate(r)]
            return index(), [] if self._anonymous(q) else rows

        return compute

    def _health_state(self, q: Query, state: str) -> Callable[[], Computed]:
        if state not in ("any", *STATUSES):
            raise BadRequest(f'Invalid state: "{state}"')
        return self._check_list(
            q,
            lambda c: state == "any" or c["Status"] == state,
            lambda: self.catalog.table_index["checks"],
        )

    def _health_node(self, q: Query, node: str) -> Callable[[], Computed]:
        return self._check_list(
            q, lambda c: c["Node"] == node, lambda: self.catalog.table_index["checks"]
        )

    def _health_checks(self, q: Query, name: str) -> Callable[[], Computed]:
        return self._check_list(
            q, lambda c: c["ServiceName"] == name, lambda: self.catalog.service_index_for(name)
        )

    async def _catalog_register(self, request: Request, q: Query) -> Response:
        self._require_write(q)
        body = catalog_body(await _json_object(request))
        node = body.get("Node")
        address = body.get("Address")
        if not node:
            raise BadRequest("Must provide node")
        if not address and not body.get("SkipNodeUpdate"):
            raise BadRequest("Must provide address if SkipNodeUpdate is not set")
        service = (
            build_service(body["Service"], add_default_tagged=False)
            if isinstance(body.get("Service"), dict)
            else None
        )
        if not (body.get("SkipNodeUpdate") and node in self.catalog.nodes):
            self.catalog.ensure_node(
                node,
                address or self.catalog.nodes[node]["Address"],
                body.get("ID") or None,
                body.get("TaggedAddresses"),
                body.get("NodeMeta"),
            )
        if service is not None:
            self.catalog.register_service(node, service)
        checks = list(body.get("Checks") or [])
        if isinstance(body.get("Check"), dict):
            checks.insert(0, body["Check"])
        for raw in checks:
            check = check_body(raw)
            owner = None
            if check.get("ServiceID"):
                owner = self.catalog.services.get((node, str(check["ServiceID"])))
                if owner is None:
                    raise BadRequest(
                        f"Unknown service ID '{check['ServiceID']}' for check "
                        f"ID '{check.get('CheckID', '')}'"
                    )
            self.catalog.register_check(
                node,
                build_check(
                    node,
                    check,
                    owner,
                    str(check.get("CheckID") or check.get("Name") or ""),
                    str(check.get("Name") or ""),
                    validate=False,
                ),
            )
        self.raft.commit()
        return _json(200, True)

    async def _catalog_deregister(self, request: Request, q: Query) -> Response:
        self._require_write(q)
        raw = await _json_object(request)
        node = catalog_body(raw).get("Node")
        if not node:
            raise BadRequest("Must provide node")
        service_id = _get_ci(raw, "ServiceID")
        check_id = _get_ci(raw, "CheckID")
        if service_id:
            self.catalog.deregister_service(node, service_id)
        elif check_id:
            self.catalog.deregister_check(node, check_id)
        else:
            self.sessions.invalidate_node(node)
            self.catalog.deregister_node(node)
        self.raft.commit()
        return _json(200, True)

    # -- agent -----------------------------------------------------------------------------

    def _leader_address(self) -> str:
        return f"{self.address}:8300" if self.has_leader else ""

    def _member(self) -> Row:
        return {
            "Name": self.node_name,
            "Addr": self.address,
            "Port": 8301,
            "Tags": {
                "acls": "0",
                "bootstrap": "1",
                "build": f"{CONSUL_VERSION}:emulator",
                "dc": self.datacenter,
                "id": self.agent.node_id,
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

    def _agent_self(self, q: Query) -> Response:
        if self._anonymous(q):
            raise HTTPError(403, "Permission denied")
        config = {
            "Datacenter": self.datacenter,
            "PrimaryDatacenter": self.datacenter,
            "NodeName": self.node_name,
            "NodeID": self.agent.node_id,
            "Revision": "emulator",
            "Server": True,
            "Version": CONSUL_VERSION,
            "BuildDate": "2024-11-20T00:00:00Z",
        }
        return _json(
            200,
            {
                "Config": config,
                "DebugConfig": {
                    "Datacenter": self.datacenter,
                    "NodeName": self.node_name,
                    "DevMode": True,
                    "ACLsEnabled": bool(self.acl_master_token),
                },
                "Coord": {
                    "Vec": [0, 0, 0, 0, 0, 0, 0, 0],
                    "Error": 1.5,
                    "Adjustment": 0,
                    "Height": 1e-05,
                },
                "Member": self._member(),
                "Stats": {
                    "consul": {
                        "server": "true",
                        "leader": str(self.has_leader).lower(),
                        "known_datacenters": "1",
                    }
                },
                "Meta": {"consul-network-segment": "", "consul-version": CONSUL_VERSION},
                "xDS": {"SupportedProxies": {}, "Port": -1, "Ports": {"Plaintext": -1, "TLS": -1}},
            },
        )

    def _agent_services(self, q: Query) -> Response:
        predicate = self._filter(q)
        services = {
            sid: agent_service_json(svc, self.datacenter)
            for sid, svc in self.agent.local_services().items()
        }
        if predicate is not None:
            services = {sid: s for sid, s in services.items() if predicate(s)}
        return _json(200, {} if self._anonymous(q) else services)

    async def _agent_service(self, q: Query, service_id: str) -> Response:
        """Hash-based blocking: ``?hash=`` + ``?wait=`` (``X-Consul-ContentHash``)."""

        def compute() -> tuple[str, Row | None]:
            svc = self.agent.local_services().get(service_id)
            if svc is None:
                return "", None
            body = agent_service_json(svc, self.datacenter)
            digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:16]
            return digest, {**body, "ContentHash": digest}

        digest, body = compute()
        wanted = q.params.get("hash")
        if wanted and digest == wanted:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + q.timeout(self.default_wait, self.max_wait)
            while digest == wanted and loop.time() < deadline:
                future = self.raft.watchers.register([("node", self.node_name)])
                try:
                    await asyncio.wait_for(future, deadline - loop.time())
                except TimeoutError:
                    pass
                finally:
                    self.raft.watchers.unregister(future, [("node", self.node_name)])
                digest, body = compute()
        if body is None:
            raise HTTPError(404, f"unknown service ID: {service_id}")
        return _json(200, body, {"X-Consul-ContentHash": digest})

    def _agent_checks(self, q: Query) -> Response:
        predicate = self._filter(q)
        checks = {
            cid: check_json(c, with_indexes=False) for cid, c in self.agent.local_checks().items()
        }
        if predicate is not None:
            checks = {cid: c for cid, c in checks.items() if predicate(c)}
        return _json(200, {} if self._anonymous(q) else checks)

    async def _register(self, request: Request, q: Query) -> Response:
        self._require_write(q)
        body = service_body(await _json_object(request))
        self.agent.register_service(body, q.bool_param("replace-existing-checks"))
        return _empty()

    def _deregister(self, q: Query, service_id: str) -> Response:
        self._require_write(q)
        self.agent.deregister_service(service_id)
        return _empty()

    def _service_maint(self, q: Query, service_id: str) -> Response:
        self._require_write(q)
        enable = self._enable(q)
        if not self.agent.service_maintenance(service_id, enable, q.params.get("reason", "")):
            raise HTTPError(404, f'Unknown service ID "{service_id}"')
        return _empty()

    def _node_maint(self, q: Query) -> Response:
        self._require_write(q)
        self.agent.node_maintenance(self._enable(q), q.params.get("reason", ""))
        return _empty()

    @staticmethod
    def _enable(q: Query) -> bool:
        if "enable" not in q.params:
            raise BadRequest("Missing value for enable")
        value = q.params["enable"]
        if value not in ("true", "false", "1", "0", "True", "False"):
            raise BadRequest(f'Invalid value for enable: "{value}"')
        return value in ("true", "1", "True")

    async def _register_check(self, request: Request, q: Query) -> Response:
        self._require_write(q)
        self.agent.register_check(check_body(await _json_object(request)))
        return _empty()

    def _deregister_check(self, q: Query, check_id: str) -> Response:
        self._require_write(q)
        self.agent.deregister_check(check_id)
        return _empty()

    def _ttl(self, q: Query, check_id: str, verb: str) -> Response:
        self._require_write(q)
        status = {"pass": "passing", "warn": "warning", "fail": "critical"}[verb]
        if not self.agent.update_ttl(check_id, status, q.params.get("note", "")):
            raise _unknown_check(check_id)
        return _empty()

    async def _ttl_update(self, request: Request, q: Query, check_id: str) -> Response:
        self._require_write(q)
        body = await _json_object(request)
        status = str(_get_ci(body, "Status") or "")
        if status not in STATUSES:
            raise BadRequest(f'Invalid check status: "{status}"')
        if not self.agent.update_ttl(check_id, status, str(_get_ci(body, "Output") or "")):
            raise _unknown_check(check_id)
        return _empty()

    # -- KV --------------------------------------------------------------------------------

    async def _kv(self, request: Request, q: Query, key: str) -> Response:
        method = request.method
        self._allowed(method, ("GET", "HEAD", "PUT", "DELETE"))
        if method in ("GET", "HEAD"):
            return await self._kv_get(q, key)
        self._require_write(q)
        if not key and not (method == "DELETE" and q.flag("recurse")):
            raise BadRequest("Missing key name")
        cas = self._uint(q, "cas")
        if method == "DELETE":
            ok = self.kv.delete(key, recurse=q.flag("recurse"), cas=cas)
        else:
            value = await request.body()
            if len(value) > KV_MAX_VALUE:
                raise HTTPError(
                    413,
                    f"Request body({len(value)} bytes) too large, max size: "
                    f"{KV_MAX_VALUE} bytes. See https://developer.hashicorp."
                    "com/consul/docs/agent/config/config-files#kv_max_value_size.",
                )
            ok = self.kv.put(
                key,
                value,
                flags=self._uint(q, "flags") or 0,
                cas=cas,
                acquire=q.params.get("acquire"),
                release=q.params.get("release"),
                sessions=self.sessions,
            )
        self.raft.commit()
        return _json(200, ok)

    @staticmethod
    def _uint(q: Query, name: str) -> int | None:
        if name not in q.params:
            return None
        raw = q.params[name]
        if not raw.isdigit():
            raise BadRequest(f"Invalid {name} index" if name == "cas" else f"Invalid {name}")
        return int(raw)

    async def _kv_get(self, q: Query, key: str) -> Response:
        self._require_leader(q)
        if self._anonymous(q):
            raise HTTPError(403, "Permission denied")
        listing = q.flag("recurse") or q.flag("keys")

        def compute() -> Computed:
            if listing:
                return self.kv.list(key)
            return self.kv.get(key)

        keys = [] if listing else [("kv", key)]
        index, result = await self.blocking(q, compute, keys, (key,) if listing else ())
        meta = self._meta(q, index)
        if q.flag("keys"):
            return _json(200, _kv_keys(result, key, q.params.get("separator", "")), meta)
        if listing:
            if not result:
                return Response(status_code=404, headers=meta)
            return _json(200, [kv_json(e) for e in result], meta, pretty=q.flag("pretty"))
        if result is None:
            return Response(status_code=404, headers=meta)
        if q.flag("raw"):
            return Response(
                result["Value"] or b"", headers=meta, media_type="text/plain; charset=utf-8"
            )
        return _json(200, [kv_json(result)], meta, pretty=q.flag("pretty"))

    # -- sessions --------------------------------------------------------------------------

    async def _session_create(self, request: Request, q: Query) -> Response:
        self._require_write(q)
        body = session_body(await _json_object(request))
        session_id = self.sessions.create(body)
        self.raft.commit()
        return _json(200, {"ID": session_id})

    def _session_destroy(self, q: Query, session_id: str) -> Response:
        self._require_write(q)
        self.sessions.destroy(session_id)
        self.raft.commit()
        return _json(200, True)

    def _session_renew(self, q: Query, session_id: str) -> Response:
        self._require_write(q)
        session = self.sessions.renew(session_id)
        if session is None:
            raise HTTPError(404, f"Session id '{session_id}' not found")
        return _json(200, [session])

    def _sessions(self, keep: Callable[[Row], bool]) -> Callable[[], Computed]:
        def compute() -> Computed:
            rows = [s for s in self.sessions.sessions.values() if keep(s)]
            return self.sessions.table_index, sorted(rows, key=lambda s: s["CreateIndex"])

        return compute


def _unknown_check(check_id: str) -> HTTPError:
    return HTTPError(
        404,
        f'Unknown check ID "{check_id}". Ensure that the check ID is passed, not the check name.',
    )


async def _call(function: Callable[[], None]) -> None:
    function()


def _filter_non_passing(entries: list[Row]) -> list[Row]:
    """``agent/health_endpoint.go`` filterNonPassing: swap-remove, so order is not kept."""
    entries = list(entries)
    n = len(entries)
    i = 0
    while i < n:
        if any(check["Status"] != "passing" for check in entries[i]["Checks"]):
            entries[i], entries[n - 1] = entries[n - 1], entries[i]
            n -= 1
            continue
        i += 1
    return entries[:n]


def _kv_keys(rows: list[Row], prefix: str, separator: str) -> list[str]:
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


def _get_ci(body: Row, name: str) -> Any:
    wanted = name.lower()
    for key, value in body.items():
        if key.lower().replace("_", "") == wanted:
            return value
    return None


async def _json_object(request: Request) -> Row:
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise BadRequest(f"Request decode failed: {exc}") from None
    if not isinstance(data, dict):
        raise BadRequest("Request decode failed: expected a JSON object")
    return data


def _json(
    status: int, body: Any, headers: dict[str, str] | None = None, pretty: bool = False
) -> Response:
    text = json.dumps(body, indent=4) if pretty else json.dumps(body, separators=(",", ":"))
    return Response(text, status_code=status, media_type="application/json", headers=headers)


def _empty() -> Response:
    return Response(b"", status_code=200)


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
