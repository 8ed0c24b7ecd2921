"""Desired state vs Kong's owned state -> an ordered list of operations (no I/O here).

Per service, creates and updates go upstream -> targets -> service -> routes,
deletes the other way round. Only fields we manage are compared, with Kong's
defaults already filled in on its side, so an unchanged service plans nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .actual import KongState, OwnedService
from .desired import ServiceState, changed_fields
from .kong.calls import Call
from .kong.calls import segment as seg
from .operation import Operation as Operation  # re-exported: where callers import it
from .plugins_plan import extra_operations

Row = dict[str, Any]
RANK = {
    ("certificates", "create"): 0,
    ("certificates", "update"): 0,
    ("upstreams", "create"): 1,
    ("upstreams", "update"): 1,
    ("targets", "create"): 2,
    ("targets", "update"): 2,
    ("services", "create"): 3,
    ("services", "update"): 3,
    ("routes", "create"): 4,
    ("routes", "update"): 4,
    ("plugins", "create"): 4.5,
    ("plugins", "update"): 4.5,
    ("plugins", "delete"): 4.6,
    ("routes", "delete"): 5,
    ("targets", "delete"): 6,
    ("services", "delete"): 7,
    ("upstreams", "delete"): 8,
    ("certificates", "delete"): 9,
}


@dataclass
class Plan:
    operations: list[Operation] = field(default_factory=list)

    def by_service(self) -> dict[str, list[Operation]]:
        groups: dict[str, list[Operation]] = {}
        for operation in self.operations:
            groups.setdefault(operation.service, []).append(operation)
        return groups

    def deletes(self) -> list[Operation]:
        return [op for op in self.operations if op.action == "delete"]

    def __bool__(self) -> bool:
        return bool(self.operations)


def _update_or_create(
    service: str,
    kind: str,
    name: str,
    desired: Row,
    actual: Row | None,
    create: Call,
    update_path: str,
) -> list[Operation]:
    if actual is None:
        return [Operation(service, kind, "create", name, create)]
    changes = changed_fields(desired, actual)
    if not changes:
        return []
    return [
        Operation(
            service,
            kind,
            "update",
            name,
            Call("PATCH", update_path, changes),
            tuple(sorted(changes)),
        )
    ]


def diff_service(name: str, desired: ServiceState | None, actual: OwnedService) -> list[Operation]:
    """The operations that make Kong's entities for ``name`` equal ``desired``."""
    ops: list[Operation] = []
    up = desired.upstream if desired else None
    # An owned upstream of another name (mode or datacenter changed) is replaced, not renamed.
    current = (
        actual.upstream
        if (actual.upstream is not None and up is not None and actual.upstream["name"] == up.name)
        else None
    )
    if up is not None:
        ops += _update_or_create(
            name,
            "upstreams",
            up.name,
            up.body(),
            current,
            Call("POST", "/upstreams", up.body()),
            f"/upstreams/{current['id']}" if current else "",
        )
        current_targets = actual.targets if current else {}
        wanted = {t.target: t for t in desired.targets} if desired else {}
        for target, spec in wanted.items():
            row = current_targets.get(target)
            body = spec.body()
            path = f"/upstreams/{current['id']}/targets/{row['id']}" if current and row else ""
            ops += _update_or_create(
                name,
                "targets",
                target,
                {k: v for k, v in body.items() if k != "target"},
                row,
                Call("POST", f"/upstreams/{seg(up.name)}/targets", body),
                path,
            )
        if current is not None:
            for target, row in current_targets.items():
                if target not in wanted:
                    ops.append(
                        Operation(
                            name,
                            "targets",
                            "delete",
                            target,
                            Call("DELETE", f"/upstreams/{current['id']}/targets/{row['id']}"),
                        )
                    )
    if actual.upstream is not None and current is None:
        ops.append(
            Operation(
                name,
                "upstreams",
                "delete",
                actual.upstream["name"],
                Call("DELETE", f"/upstreams/{actual.upstream['id']}"),
            )
        )
    if desired is not None:
        svc = desired.service
        ops += _update_or_create(
            name,
            "services",
            svc.name,
            svc.body(),
            actual.service,
            Call("POST", "/services", svc.body()),
            f"/services/{actual.service['id']}" if actual.service else "",
        )
        for route in desired.routes:
            body = route.body()
            row = actual.routes.get(route.name)
            compare = (
                {**body, "service": {"id": actual.service["id"]}} if (actual.service) else body
            )
            ops += _update_or_create(
                name,
                "routes",
                route.name,
                compare,
                row,
                Call("POST", f"/services/{seg(svc.name)}/routes", body),
                f"/routes/{row['id']}" if row else "",
            )
    wanted_routes = {r.name for r in desired.routes} if desired else set()
    for route_name, row in actual.routes.items():
        if route_name not in wanted_routes:
            ops.append(
                Operation(
                    name, "routes", "delete", route_name, Call("DELETE", f"/routes/{row['id']}")
                )
            )
    if desired is None and actual.service is not None:
        ops.append(
            Operation(
                name,
                "services",
                "delete",
                actual.service["name"],
                Call("DELETE", f"/services/{actual.service['id']}"),
            )
        )
    ops += extra_operations(name, desired, actual)
    return sorted(ops, key=lambda op: RANK[(op.kind, op.action)])


def diff(
    desired: Mapping[str, ServiceState | None],
    actual: KongState,
    names: Iterable[str] | None = None,
) -> Plan:
    """A plan over ``names`` (default: every service on either side)."""
    every = sorted(set(desired) | set(actual.services)) if names is None else sorted(set(names))
    plan = Plan()
    for name in every:
        plan.operations += diff_service(
            name, desired.get(name), actual.services.get(name, OwnedService())
        )
    return plan
