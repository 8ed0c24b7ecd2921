"""The local agent of a one-node ``consul agent -dev``: its services, checks and maintenance.

Agent registrations reach the catalog at once (a real agent syncs them by
anti-entropy within seconds).
"""

from __future__ import annotations

from typing import Any

from .catalog import STATUSES, Catalog, CatalogError, build_service, new_node_id
from .checks import CheckRunner, check_type, seconds
from .durations import format_duration
from .kv import SessionStore
from .raft import Raft
from .sidecar import SidecarError, sidecar_block, sidecar_id, sidecar_registration

Row = dict[str, Any]
SERF_CHECK = "serfHealth"
CONSUL_SERVICE = "consul"
NODE_MAINT = "_node_maintenance"
SERVICE_MAINT_PREFIX = "_service_maintenance:"
NEEDS_INTERVAL = ("http", "tcp", "udp", "grpc", "h2ping", "script", "docker")


def unknown_service(service_id: str) -> CatalogError:
    """``vetServiceUpdateWithAuthorizer``: the service is not registered with this agent."""
    return CatalogError(
        f'Unknown service ID "{service_id}". Ensure that the service ID is passed, '
        "not the service name.",
        status=404,
    )


def _duration_text(definition: Row, field: str) -> str:
    value = seconds(definition, field)
    return format_duration(value) if value else ""


def health_definition(body: Row) -> Row:
    """``structs.HealthCheckDefinition`` as Consul renders it."""
    return {
        "Interval": _duration_text(body, "Interval") or "0s",
        "Timeout": _duration_text(body, "Timeout") or "0s",
        "DeregisterCriticalServiceAfter": _duration_text(body, "DeregisterCriticalServiceAfter")
        or "0s",
        "HTTP": body.get("HTTP") or "",
        "Header": body.get("Header"),
        "Method": body.get("Method") or "",
        "Body": body.get("Body") or "",
        "TLSServerName": body.get("TLSServerName") or "",
        "TLSSkipVerify": bool(body.get("TLSSkipVerify", False)),
        "TCP": body.get("TCP") or "",
        "TCPUseTLS": False,
        "UDP": body.get("UDP") or "",
        "GRPC": body.get("GRPC") or "",
        "OSService": "",
        "GRPCUseTLS": bool(body.get("GRPCUseTLS", False)),
    }


def build_check(
    node: str,
    body: Row,
    service: Row | None,
    default_id: str,
    default_name: str,
    validate: bool = True,
) -> Row:
    status = body.get("Status") or "critical"  # new checks start critical
    if status not in STATUSES:
        raise CatalogError(f'Invalid check status: "{status}"')
    kind = check_type(body)
    if validate:
        if not kind:
            raise CatalogError(
                "Check is not valid: Must provide TTL or Script/DockerContainerID/"
                "HTTP/TCP/UDP/GRPC/H2PING/AliasNode/AliasService and Interval"
            )
        if kind in NEEDS_INTERVAL and not body.get("Interval"):
            raise CatalogError(
                "Interval must be > 0 for Script, Docker, HTTP, H2PING, TCP or UDP checks"
            )
    try:
        definition = health_definition(body)
    except ValueError as exc:
        raise CatalogError(f"Request decode failed: {exc}") from None
    return {
        "Node": node,
        "CheckID": str(body.get("CheckID") or body.get("ID") or default_id),
        "Name": str(body.get("Name") or default_name),
        "Status": status,
        "Notes": str(body.get("Notes") or ""),
        "Output": str(body.get("Output") or ""),
        "ServiceID": service["ID"] if service else "",
        "ServiceName": service["Service"] if service else "",
        "ServiceTags": list(service["Tags"]) if service else [],
        "Type": kind,
        "Interval": _duration_text(body, "Interval"),
        "Timeout": _duration_text(body, "Timeout"),
        "ExposedPort": 0,
        "Definition": definition,
    }


class Agent:
    def __init__(
        self, raft: Raft, catalog: Catalog, sessions: SessionStore, node: str, address: str
    ) -> None:
        self.raft = raft
        self.catalog = catalog
        self.sessions = sessions
        self.node = node
        self.address = address
        self.node_id = new_node_id()
        self.runner = CheckRunner(raft, catalog, node)

    def bootstrap(self, version: str) -> None:
        tagged = {
            "lan": self.address,
            "lan_ipv4": self.address,
            "wan": self.address,
            "wan_ipv4": self.address,
        }
        self.catalog.ensure_node(
            self.node,
            self.address,
            self.node_id,
            tagged,
            {"consul-network-segment": "", "consul-version": version},
        )
        self.catalog.register_check(
            self.node,
            {
                **build_check(
                    self.node,
                    {"Status": "passing"},
                    None,
                    SERF_CHECK,
                    "Serf Health Status",
                    validate=False,
                ),
                "Output": "Agent alive and reachable",
            },
        )
        # Servers register themselves as the "consul" service (not an agent service).
        self.catalog.register_service(
            self.node,
            build_service(
                {
                    "ID": CONSUL_SERVICE,
                    "Name": CONSUL_SERVICE,
                    "Port": 8300,
                    "Meta": {
                        "non_voter": "false",
                        "raft_version": "3",
                        "read_replica": "false",
                        "serf_protocol_current": "2",
                        "serf_protocol_max": "5",
                        "serf_protocol_min": "1",
                        "version": version,
                    },
                },
                add_default_tagged=False,
            ),
        )
        self.raft.commit()

    # -- services --------------------------------------------------------------------------

    def register_service(self, body: Row, replace_existing_checks: bool = False) -> Row:
        block = sidecar_block(body.get("Connect"))
        if block is not None:
            # The parent keeps no SidecarService: the sidecar is a service of its own.
            connect = {k: v for k, v in body["Connect"].items() if v is not block}
            body = {**body, "Connect": connect}
        service = self._register_one(body, replace_existing_checks)
        if block is not None:
            self.register_service(self._sidecar_body(service, block), replace_existing_checks)
        return service

    def _sidecar_body(self, parent: Row, block: Row) -> Row:
        """The sidecar's registration; its port, when not given, is the one it holds
        already or the first one no other local proxy holds."""
        own = self.catalog.services.get((self.node, sidecar_id(parent["ID"])))
        used = {
            svc["Port"]
            for svc in self.local_services().values()
            if svc["Kind"] == "connect-proxy" and svc is not own
        }
        if own is not None:
            used.discard(own["Port"])
            block = {"Port": own["Port"], **block}
        try:
            return sidecar_registration(parent, block, used)
        except SidecarError as exc:
            raise CatalogError(str(exc)) from None

    def _register_one(self, body: Row, replace_existing_checks: bool) -> Row:
        service = build_service(body)
        definitions = list(body.get("Checks") or [])
        if isinstance(body.get("Check"), dict):
            definitions.insert(0, body["Check"])
        checks = []
        for number, definition in enumerate(definitions, start=1):
            default_id = f"service:{service['ID']}" + (f":{number}" if len(definitions) > 1 else "")
            checks.append(
                (
                    definition,
                    build_check(
                        self.node,
                        definition,
                        service,
                        default_id,
                        f"Service '{service['Service']}' check",
                    ),
                )
            )
        existing = [
            c["CheckID"]
            for c in self._checks_of(service["ID"])
            if not c["CheckID"].startswith(SERVICE_MAINT_PREFIX)
        ]
        self.catalog.register_service(self.node, service)
        new_ids = {check["CheckID"] for _definition, check in checks}
        if replace_existing_checks:
            for check_id in existing:
                if check_id not in new_ids:
                    self.deregister_check(check_id)
        for definition, check in checks:
            current = self.catalog.checks.get((self.node, check["CheckID"]))
            if current is not None and "Status" not in definition:
                check = {**check, "Status": current["Status"], "Output": current["Output"]}
            self.catalog.register_check(self.node, check)
            self.runner.start(check["CheckID"], definition)
        self.runner.refresh_aliases()
        self.raft.commit()
        return service

    def deregister_service(self, service_id: str) -> None:
        if self.local_service(service_id) is None:
            # vetServiceUpdate: the service must be registered with this agent.
            raise unknown_service(service_id)
        for check in self._checks_of(service_id):
            self.runner.stop(check["CheckID"])
        self.catalog.deregister_service(self.node, service_id)
        sidecar = self.local_service(sidecar_id(service_id))
        if sidecar is not None and sidecar["Proxy"].get("DestinationServiceID") == service_id:
            self.deregister_service(sidecar["ID"])  # removeServiceSidecars
        self.runner.refresh_aliases()
        self.raft.commit()

    def _checks_of(self, service_id: str) -> list[Row]:
        return self.catalog.checks_of_instance(self.node, service_id)

    def local_services(self) -> dict[str, Row]:
        keys = sorted(self.catalog.services_by_node.get(self.node, ()))
        return {key[1]: self.catalog.services[key] for key in keys if key[1] != CONSUL_SERVICE}

    # -- checks ----------------------------------------------------------------------------

    def register_check(self, body: Row) -> Row:
        service = None
        if body.get("ServiceID"):
            service = self.catalog.services.get((self.node, str(body["ServiceID"])))
            if service is None:
                raise CatalogError(f'ServiceID "{body["ServiceID"]}" does not exist', status=404)
        name = body.get("Name")
        if not name:
            raise CatalogError("Missing check name")
        check = build_check(self.node, body, service, str(name), str(name))
        self.catalog.register_check(self.node, check)
        self.runner.start(check["CheckID"], body)
        self.runner.refresh_aliases()
        self.raft.commit()
        return check

    def deregister_check(self, check_id: str) -> None:
        if self.local_check(check_id) is None:
            raise CatalogError(
                f'Unknown check ID "{check_id}". Ensure that the check ID is passed, '
                "not the check name.",
                status=404,
            )
        self.runner.stop(check_id)
        self.catalog.deregister_check(self.node, check_id)
        self.runner.refresh_aliases()
        self.raft.commit()

    def update_ttl(self, check_id: str, status: str, output: str) -> bool:
        return self.runner.ttl_update(check_id, status, output)

    def local_service(self, service_id: str) -> Row | None:
        """One service registered with this agent (not the server's own ``consul``)."""
        if service_id == CONSUL_SERVICE:
            return None
        return self.catalog.services.get((self.node, service_id))

    def local_check(self, check_id: str) -> Row | None:
        if check_id == SERF_CHECK:
            return None
        return self.catalog.checks.get((self.node, check_id))

    def local_checks(self) -> dict[str, Row]:
        """The checks registered with this agent: serfHealth belongs to the catalog only."""
        keys = sorted(self.catalog.checks_by_node.get(self.node, ()))
        return {key[1]: self.catalog.checks[key] for key in keys if key[1] != SERF_CHECK}

    # -- maintenance -----------------------------------------------------------------------

    def service_maintenance(self, service_id: str, enable: bool, reason: str) -> bool:
        service = self.catalog.services.get((self.node, service_id))
        if service is None:
            return False
        check_id = SERVICE_MAINT_PREFIX + service_id
        if enable:
            notes = reason or (
                "Maintenance mode is enabled for this service, but no reason "
                "was provided. This is a default message."
            )
            check = build_check(
                self.node,
                {"Status": "critical", "Notes": notes},
                service,
                check_id,
                "Service Maintenance Mode",
                validate=False,
            )
            self.catalog.register_check(self.node, {**check, "Type": "maintenance"})
        else:
            self.catalog.deregister_check(self.node, check_id)
        self.runner.refresh_aliases()
        self.raft.commit()
        return True

    def node_maintenance(self, enable: bool, reason: str) -> None:
        if enable:
            notes = reason or (
                "Maintenance mode is enabled for this node, but no reason was "
                "provided. This is a default message."
            )
            check = build_check(
                self.node,
                {"Status": "critical", "Notes": notes},
                None,
                NODE_MAINT,
                "Node Maintenance Mode",
                validate=False,
            )
            self.catalog.register_check(self.node, {**check, "Type": "maintenance"})
        else:
            self.catalog.deregister_check(self.node, NODE_MAINT)
        self.runner.refresh_aliases()
        self.raft.commit()
