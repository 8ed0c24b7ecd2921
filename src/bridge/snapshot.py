"""What the watcher saw in Consul, as plain data (it knows nothing of Kong)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

HEALTH_ORDER = {"passing": 0, "warning": 1, "critical": 2}


@dataclass(frozen=True, slots=True)
class Instance:
    """One service instance from ``/v1/health/service/<name>``."""

    id: str
    node: str
    address: str  # ServiceAddress, or the node's Address when empty
    port: int
    tags: tuple[str, ...] = ()
    meta: Mapping[str, str] = field(default_factory=dict)
    weight_passing: int = 1
    weight_warning: int = 1
    status: str = "passing"  # the worst of its node and service checks
    create_index: int = 0


@dataclass(frozen=True, slots=True)
class ServiceSnapshot:
    """All instances of one service at one Consul index."""

    name: str
    instances: tuple[Instance, ...]
    index: int


def worst_status(checks: list[dict[str, Any]]) -> str:
    status = "passing"
    for check in checks:
        candidate = str(check.get("Status", "critical"))
        if HEALTH_ORDER.get(candidate, 2) > HEALTH_ORDER[status]:
            status = candidate if candidate in HEALTH_ORDER else "critical"
    return status


def instance_from_health(entry: dict[str, Any]) -> Instance:
    """An :class:`Instance` from one ``health/service`` entry."""
    node = entry.get("Node") or {}
    service = entry.get("Service") or {}
    weights = service.get("Weights") or {}
    return Instance(
        id=str(service.get("ID", "")),
        node=str(node.get("Node", "")),
        address=str(service.get("Address") or node.get("Address") or ""),
        port=int(service.get("Port") or 0),
        tags=tuple(service.get("Tags") or ()),
        meta=dict(service.get("Meta") or {}),
        weight_passing=int(weights.get("Passing", 1)),
        weight_warning=int(weights.get("Warning", 1)),
        status=worst_status(list(entry.get("Checks") or [])),
        create_index=int(service.get("CreateIndex") or 0),
    )


def snapshot_from_health(name: str, index: int, entries: list[dict[str, Any]]) -> ServiceSnapshot:
    instances = sorted((instance_from_health(e) for e in entries), key=lambda i: (i.node, i.id))
    return ServiceSnapshot(name, tuple(instances), index)
