"""The status page at ``/`` on ``--listen``, and the JSON it refreshes from (``/status.json``).

The page is one static HTML file with a little plain JavaScript (package data:
``bridge/static/status.html``; no build step, nothing from a CDN). This module
gathers what it shows from the running bridge, read-only: per opted-in
service its state, Kong entities, instances vs targets, last change and
problems; for the bridge its role, Consul and Kong reachability, held-back
deletions and propagation figures (parsed from ``/metrics``, so this works
with any metrics implementation that keeps the metric names).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from importlib import resources
from typing import Any

from .actual import KongState, OwnedService
from .mapping import ServiceMapping
from .plan import diff
from .reconcile import Bridge
from .report import no_passing_instance
from .settings import without_credentials
from .snapshot import ServiceSnapshot

PATHS = ("/", "/status.json")
# apply.py's wording for a 409 on create: a same-name entity we do not own.
CLASH_MARK = "without our owner tag"
_SAMPLE = re.compile(r'^(?P<name>[a-z_]+)(?:\{le="(?P<le>[^"]+)"\})? (?P<value>\S+)$')


@dataclass
class Entity:
    """One Kong entity of a service, as the page lists it."""

    kind: str
    name: str
    detail: str = ""


@dataclass
class ServiceStatus:
    """One opted-in service (or one Kong still holds for a service gone from Consul)."""

    name: str
    state: str  # in sync, pending, error, held back, clash
    instances: int = 0
    healthy: int = 0
    targets: list[str] = field(default_factory=list)
    entities: list[Entity] = field(default_factory=list)
    pending: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    last_change: str = ""
    applied_at: float | None = None


def _copy(owned: OwnedService) -> OwnedService:
    """A copy whose dicts the bridge's loop thread will not change while we read them."""
    return OwnedService(owned.service, dict(owned.routes), owned.upstream, dict(owned.targets))


def _entities(owned: OwnedService) -> list[Entity]:
    found: list[Entity] = []
    if owned.service:
        found.append(Entity("service", owned.service["name"], f"host {owned.service['host']}"))
    for name, route in sorted(owned.routes.items()):
        matchers = [*(route.get("paths") or []), *(route.get("hosts") or [])]
        methods = " ".join(route.get("methods") or [])
        found.append(Entity("route", name, " ".join([*matchers, methods]).strip()))
    if owned.upstream:
        found.append(Entity("upstream", owned.upstream["name"], f"slots {owned.upstream['slots']}"))
    for target, row in sorted(owned.targets.items()):
        found.append(Entity("target", target, f"weight {row.get('weight')}"))
    return found


def _healthy(snapshot: ServiceSnapshot | None, include_warning: bool) -> tuple[int, int]:
    if snapshot is None:
        return 0, 0
    good = {"passing", "warning"} if include_warning else {"passing"}
    return len(snapshot.instances), sum(1 for i in snapshot.instances if i.status in good)


def _state(problems: list[str], held: bool, pending: list[str], read: bool) -> str:
    """One state per service; the order of the checks says which wins when several apply."""
    if any(CLASH_MARK in problem for problem in problems):
        return "clash"
    if problems:
        return "error"
    if held:
        return "held back"
    if pending or not read:
        return "pending"
    return "in sync"


def service_status(
    bridge: Bridge,
    name: str,
    owned: OwnedService,
    mapping: ServiceMapping | None,
    snapshot: ServiceSnapshot | None,
) -> ServiceStatus:
    """What the page shows for one service, from the bridge's latest view."""
    in_consul = name in bridge.names
    problems = list(bridge.view.errors.get(name, []))
    pending: list[str] = []
    if (mapping is not None and not mapping.skipped) or not in_consul:
        wanted = mapping.state if (mapping is not None and in_consul) else None
        plan = diff({name: wanted}, KongState({name: owned}), [name])
        pending = [str(op) for op in plan.operations]
    instances, healthy = _healthy(snapshot, bridge.options.include_warning)
    warnings = list(bridge.view.notes.get(name, []))
    empty = no_passing_instance(mapping, snapshot) if mapping is not None else None
    if empty:
        warnings.append(empty.removeprefix(f"{name}: "))
    last = bridge.view.last_change.get(name)
    return ServiceStatus(
        name=name,
        state=_state(problems, name in bridge.held_services, pending, snapshot is not None),
        instances=instances,
        healthy=healthy,
        targets=sorted(owned.targets),
        entities=_entities(owned),
        pending=pending,
        problems=problems,
        warnings=warnings,
        last_change=last.change if last else "",
        applied_at=last.at if last else None,
    )


def propagation(metrics_text: str) -> dict[str, Any]:
    """Propagation figures and sync counters from the Prometheus text of ``/metrics``."""
    buckets: list[tuple[float, float]] = []
    values: dict[str, float] = {}
    for line in metrics_text.splitlines():
        match = _SAMPLE.match(line)
        if not match:
            continue
        name, le, value = match["name"], match["le"], float(match["value"])
        if name == "kong_bridge_propagation_seconds_bucket" and le and le != "+Inf":
            buckets.append((float(le), value))
        else:
            values[name] = value
    count = values.get("kong_bridge_propagation_seconds_count", 0.0)

    def under(share: float) -> float | None:  # the bucket bound that holds that share
        return next((bound for bound, n in sorted(buckets) if count and n >= share * count), None)

    total = values.get("kong_bridge_propagation_seconds_sum", 0.0)
    return {
        "count": int(count),
        "mean_seconds": total / count if count else None,
        "p50_under_seconds": under(0.5),
        "p90_under_seconds": under(0.9),
        "syncs": int(values.get("kong_bridge_syncs_total", 0)),
        "last_sync_at": values.get("kong_bridge_last_successful_sync_timestamp_seconds") or None,
    }


class StatusPage:
    """Serves ``/`` (the page) and ``/status.json`` (what it shows) for one bridge."""

    paths = PATHS

    def __init__(
        self,
        bridge: Bridge,
        metrics_text: Callable[[], str],
        consul_addr: str = "",
        kong_url: str = "",
        role: Callable[[], str] = lambda: "single",
    ) -> None:
        self.bridge = bridge
        self.role = role
        self.metrics_text = metrics_text
        self.consul_addr = without_credentials(consul_addr) if consul_addr else ""
        self.kong_url = without_credentials(kong_url) if kong_url else ""

    def render(self, path: str) -> tuple[str, str]:
        """(content type, body) for one of :attr:`paths`."""
        if path == "/status.json":
            return "application/json", json.dumps(self.document(), indent=2) + "\n"
        html = resources.files("bridge").joinpath("static/status.html").read_text("utf-8")
        return "text/html; charset=utf-8", html

    def document(self) -> dict[str, Any]:
        """Everything the page shows, as plain JSON."""
        bridge, view = self.bridge, self.bridge.view
        # Copies: the bridge's loop thread replaces these while we read (each copy is atomic).
        mappings = dict(bridge.mappings)
        snapshots = dict(bridge.snapshots)
        state = bridge.kong_state
        owned = {
            name: _copy(entities)
            for name, entities in (dict(state.services) if state is not None else {}).items()
        }
        names = sorted(set(bridge.names) | set(owned))
        services = [
            service_status(
                bridge,
                name,
                owned.get(name, OwnedService()),
                mappings.get(name),
                snapshots.get(name),
            )
            for name in names
        ]
        return {
            "bridge_id": bridge.options.owner,
            "generated_at": time.time(),
            "role": self.role(),
            "ready": view.ready,
            "consul": {"reachable": view.consul_ok, "address": self.consul_addr},
            "kong": {
                "reachable": view.kong_ok,
                "address": self.kong_url,
                "db_less": bridge.db_less,
            },
            "held_back": {"reason": view.held_back, "services": sorted(bridge.held_services)},
            "propagation": propagation(self.metrics_text()),
            "services": [asdict(service) for service in services],
        }
