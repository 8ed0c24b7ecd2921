"""``/v1/catalog/*`` and ``/v1/health/*``: blocking reads of the catalog, and its writes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from .agent import build_check
from .catalog import STATUSES, build_service
from .config_entries import CONFIG_KEY
from .context import Context
from .normalize import catalog_body, check_body
from .query import BadRequest, Query
from .raft import WatchKey
from .shapes import check_json, node_json, node_service_json, service_node_json
from .web import GET, PUT, Computed, Row, allow, get_ci, json_object, json_response


def filter_non_passing(entries: list[Row]) -> list[Row]:
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


def node_meta_pairs(q: Query) -> list[tuple[str, str]]:
    """``?node-meta=key:value`` (repeatable)."""
    pairs = []
    for value in q.params.getlist("node-meta"):
        key, _, val = value.partition(":")
        pairs.append((key, val))
    return pairs


# Reads that accept ?peer=: a dev agent has no peers, so any peer name finds nothing.
PEERED_READS: dict[tuple[str, ...], object] = {
    ("catalog", "services"): {},
    ("catalog", "service"): [],
    ("catalog", "nodes"): [],
    ("catalog", "connect"): [],
    ("health", "service"): [],
    ("health", "connect"): [],
    ("health", "ingress"): [],
    ("health", "checks"): [],
    ("health", "node"): [],
    ("health", "state"): [],
}
# Service-mesh reads: the emulator registers no proxies or gateways, so they are empty.
CONNECT_READS = frozenset({("catalog", "connect"), ("health", "connect"), ("health", "ingress")})


class CatalogRoutes:
    """The catalog and health endpoints (``agent/catalog_endpoint.go``, ``health_endpoint.go``)."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    async def route(self, request: Request, q: Query, seg: list[str]) -> Response | None:
        method = request.method
        read = self.ctx.read
        family = tuple(seg[1:3])
        if (family in CONNECT_READS and len(seg) == 4) or (
            q.params.get("peer") and family in PEERED_READS
        ):
            return await read(method, q, self._nothing(q, PEERED_READS[family]), [])

        async def cached(
            compute: Callable[[], Computed], keys: list[WatchKey], empty: object = None
        ) -> Response:
            return await self.ctx.read_list(method, q, "/".join(seg), compute, keys, empty)

        match seg:
            case ["v1", "catalog", "register"]:
                allow(method, PUT)
                return await self._register(request, q)
            case ["v1", "catalog", "deregister"]:
                allow(method, PUT)
                return await self._deregister(request, q)
            case ["v1", "catalog", "datacenters"]:
                allow(method, GET)
                return json_response(200, [self.ctx.config.datacenter])
            case ["v1", "catalog", "nodes"]:
                return await cached(self._nodes(q), [("table", "nodes")])
            case ["v1", "catalog", "node", node]:
                return await read(method, q, self._node(q, node), [("node", node)])
            case ["v1", "catalog", "node-services", node]:
                by_node = self._node(q, node, as_list=True)
                return await read(method, q, by_node, [("node", node)])
            case ["v1", "catalog", "services"]:
                return await cached(self._services(q), [("table", "services")], {})
            case ["v1", "catalog", "service", name]:
                return await cached(self._catalog_service(q, name), [("service", name)])
            case ["v1", "catalog", "gateway-services", gateway]:
                return await read(method, q, lambda: self._gateway_services(gateway), [CONFIG_KEY])
            case ["v1", "health", "service", name]:
                return await cached(self._health_service(q, name), [("service", name)], [])
            case ["v1", "health", "state", state]:
                return await cached(self._health_state(q, state), [("state", state)], [])
            case ["v1", "health", "node", node]:
                return await cached(self._health_node(q, node), [("node", node)])
            case ["v1", "health", "checks", name]:
                return await cached(self._health_checks(q, name), [("checks", name)])
        return None

    def _nothing(self, q: Query, empty: object) -> Callable[[], Computed]:
        """An empty answer (no mesh, no peers) at the index Consul gives a missing service."""
        self.ctx.filter(q)  # a bad filter is still a 400
        return lambda: (self.ctx.catalog.extinction_index, empty)

    # -- catalog reads ---------------------------------------------------------------------

    def _gateway_services(self, gateway: str) -> Computed:
        """``structs.GatewayService`` rows: the services an ingress or terminating
        gateway's config entry names (wildcards are not expanded here)."""
        store = self.ctx.config_entries
        rows: list[Row] = []
        for kind in ("ingress-gateway", "terminating-gateway"):
            entry = store.get(kind, gateway)
            if entry is not None:
                rows += [_gateway_service(entry, gateway, kind, s) for s in _gated(entry)]
        return store.table_index, sorted(rows, key=lambda row: row["Service"]["Name"])

    def _nodes(self, q: Query) -> Callable[[], Computed]:
        predicate = self.ctx.filter(q)
        catalog = self.ctx.catalog

        def compute() -> Computed:
            rows = [node_json(n) for _name, n in sorted(catalog.nodes.items())]
            if predicate is not None:
                rows = [r for r in rows if predicate(r)]
            return catalog.table_index["nodes"], [] if self.ctx.anonymous(q) else rows

        return compute

    def _node(self, q: Query, name: str, as_list: bool = False) -> Callable[[], Computed]:
        """``catalog/node`` (Services a map) or ``catalog/node-services`` (a list).

        ``?filter=`` applies to the node's services, not to the node.
        """
        catalog = self.ctx.catalog
        predicate = self.ctx.filter(q)

        def compute() -> Computed:
            node = catalog.nodes.get(name)
            index = catalog.table_index["services"]
            if not as_list:
                index = max(catalog.table_index["nodes"], index)
            if node is None:
                return index, None
            rows = [
                node_service_json(catalog.services[key])
                for key in sorted(catalog.services_by_node.get(name, ()))
            ]
            if predicate is not None:
                rows = [row for row in rows if predicate(row)]
            services: Any = rows if as_list else {row["ID"]: row for row in rows}
            return index, {"Node": node_json(node), "Services": services}

        return compute

    def _service_nodes(self, name: str) -> list[Row]:
        catalog = self.ctx.catalog
        return [
            service_node_json(catalog.nodes[node], svc) for node, svc in catalog.instances(name)
        ]

    def _services(self, q: Query) -> Callable[[], Computed]:
        predicate = self.ctx.filter(q)
        text = q.params.get("filter", "")

        def evaluate(node: Row, svc: Row) -> bool:
            return predicate is not None and predicate(service_node_json(node, svc))

        meta = node_meta_pairs(q)
        pretty = q.flag("pretty")
        catalog = self.ctx.catalog

        def tags_of(name: str) -> list[str] | None:
            tags: list[str] | None = None
            for node_name, svc in catalog.instances(name):
                node = catalog.nodes[node_name]
                if any((node["Meta"] or {}).get(k) != v for k, v in meta):
                    continue
                if predicate is not None and not self.ctx.filter_matches.matches(
                    text, node, svc, evaluate, len(catalog.services)
                ):
                    continue
                tags = tags if tags is not None else []
                tags.extend(t for t in svc["Tags"] if t not in tags)
            return tags

        def compute() -> Computed:
            index = catalog.table_index["services"]
            if self.ctx.anonymous(q):
                return index, {}
            if predicate is None and not meta:
                return index, catalog.service_names()
            # A nodes-table write or a restore may change any answer: start over then.
            names = self.ctx.filtered_names.answer(
                (text, tuple(meta)),
                (catalog.table_index["nodes"], catalog.restores),
                catalog.services_moved_since,
                catalog.raft.index,
                tags_of,
            )
            return index, names.ordered() if pretty else names.body()

        return compute

    def _catalog_service(self, q: Query, name: str) -> Callable[[], Computed]:
        predicate = self.ctx.filter(q)
        tags = q.params.getlist("tag")

        def compute() -> Computed:
            index = self.ctx.catalog.service_index_for(name)
            if self.ctx.anonymous(q):
                return index, []
            rows = [
                r for r in self._service_nodes(name) if all(t in r["ServiceTags"] for t in tags)
            ]
            if predicate is not None:
                rows = [r for r in rows if predicate(r)]
            return index, rows

        return compute

    # -- health reads ----------------------------------------------------------------------

    def _health_service(self, q: Query, name: str) -> Callable[[], Computed]:
        predicate = self.ctx.filter(q)
        tags = q.params.getlist("tag")
        passing = q.bool_param("passing")
        meta = node_meta_pairs(q)
        catalog = self.ctx.catalog

        def compute() -> Computed:
            index = catalog.service_index_for(name)
            if self.ctx.anonymous(q):
                return index, []
            entries = []
            for node_name, svc in catalog.instances(name):
                if not all(t in svc["Tags"] for t in tags):
                    continue
                node = catalog.nodes[node_name]
                if any((node["Meta"] or {}).get(k) != v for k, v in meta):
                    continue
                entries.append(
                    {
                        "Node": node_json(node),
                        "Service": node_service_json(svc),
                        "Checks": [check_json(c) for c in catalog.checks_for(node_name, svc["ID"])],
                    }
                )
            if predicate is not None:
                entries = [e for e in entries if predicate(e)]
            if passing:
                entries = filter_non_passing(entries)
            return index, entries

        return compute

    def _check_list(
        self, q: Query, rows: Callable[[], list[Row]], every: bool = False
    ) -> Callable[[], Computed]:
        """A blocking list of checks at the checks-table index (``health/state|node|checks``)."""
        predicate = self.ctx.filter(q)
        pretty = q.flag("pretty")
        catalog = self.ctx.catalog

        def compute() -> Computed:
            index = catalog.table_index["checks"]
            if self.ctx.anonymous(q):
                return index, []
            if predicate is None and not pretty:
                if every:  # health/state/any: kept up to date one check at a time
                    return index, self.ctx.all_checks.render(catalog)
                return index, self.ctx.check_fragments.render_list(rows())
            checks = [check_json(c) for c in rows()]
            if predicate is not None:
                checks = [c for c in checks if predicate(c)]
            return index, checks

        return compute

    def _health_state(self, q: Query, state: str) -> Callable[[], Computed]:
        if state not in ("any", *STATUSES):
            raise BadRequest(f'Invalid state: "{state}"')
        catalog = self.ctx.catalog
        if state == "any":
            return self._check_list(q, catalog.all_checks, every=True)
        return self._check_list(
            q, lambda: [c for c in catalog.all_checks() if c["Status"] == state]
        )

    def _health_node(self, q: Query, node: str) -> Callable[[], Computed]:
        return self._check_list(q, lambda: self.ctx.catalog.checks_on_node(node))

    def _health_checks(self, q: Query, name: str) -> Callable[[], Computed]:
        return self._check_list(q, lambda: self.ctx.catalog.checks_of_service(name))

    # -- catalog writes --------------------------------------------------------------------

    async def _register(self, request: Request, q: Query) -> Response:
        ctx = self.ctx
        ctx.require_write(q)
        body = catalog_body(await json_object(request))
        ctx.check_datacenter(body.get("Datacenter"))
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
        if not (body.get("SkipNodeUpdate") and node in ctx.catalog.nodes):
            ctx.catalog.ensure_node(
                node,
                address or ctx.catalog.nodes[node]["Address"],
                body.get("ID") or None,
                body.get("TaggedAddresses"),
                body.get("NodeMeta"),
            )
        if service is not None:
            ctx.catalog.register_service(node, service)
        checks = list(body.get("Checks") or [])
        if isinstance(body.get("Check"), dict):
            checks.insert(0, body["Check"])
        for raw in checks:
            check = check_body(raw)
            owner = None
            if check.get("ServiceID"):
                owner = ctx.catalog.services.get((node, str(check["ServiceID"])))
                if owner is None:
                    raise BadRequest(
                        f"Unknown service ID '{check['ServiceID']}' for check "
                        f"ID '{check.get('CheckID', '')}'"
                    )
            ctx.catalog.register_check(
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
        ctx.raft.commit()
        return json_response(200, True)

    async def _deregister(self, request: Request, q: Query) -> Response:
        ctx = self.ctx
        ctx.require_write(q)
        raw = await json_object(request)
        ctx.check_datacenter(get_ci(raw, "Datacenter"))
        node = catalog_body(raw).get("Node")
        if not node:
            raise BadRequest("Must provide node")
        service_id = get_ci(raw, "ServiceID")
        check_id = get_ci(raw, "CheckID")
        if service_id:
            ctx.catalog.deregister_service(node, service_id)
        elif check_id:
            ctx.catalog.deregister_check(node, check_id)
        else:
            ctx.deregister_node(node)
        ctx.raft.commit()
        return json_response(200, True)


def _gated(entry: Row) -> list[tuple[Row, Row]]:
    """(service, listener) pairs of a gateway entry; a terminating gateway has no listener."""
    if entry["Kind"] == "terminating-gateway":
        return [(service, {}) for service in entry.get("Services") or []]
    return [
        (service, listener)
        for listener in entry.get("Listeners") or []
        for service in listener.get("Services") or []
    ]


def _gateway_service(entry: Row, gateway: str, kind: str, gated: tuple[Row, Row]) -> Row:
    service, listener = gated
    row: Row = {"Gateway": {"Name": gateway}, "Service": {"Name": service.get("Name", "")}}
    row["GatewayKind"] = kind
    optional = {
        "Port": listener.get("Port"),
        "Protocol": listener.get("Protocol") or ("tcp" if listener else None),
        "Hosts": service.get("Hosts"),
        "CAFile": service.get("CAFile"),
        "CertFile": service.get("CertFile"),
        "KeyFile": service.get("KeyFile"),
        "SNI": service.get("SNI"),
    }
    row.update({key: value for key, value in optional.items() if value})  # omitempty
    row["CreateIndex"], row["ModifyIndex"] = entry["CreateIndex"], entry["ModifyIndex"]
    return row
