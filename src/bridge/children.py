"""Owned parents with children we do not own: never deleted, so nothing is taken by cascade.

Kong deletes an upstream's targets with it, and a service's or a route's
plugins with them (and refuses to delete a service that still has routes).
So before an owned parent goes, its children are read: if any lacks our
owner tag (a target added by hand, a plugin or route someone attached to our
service), our own children go and the parent stays, and the bridge reports
it. Self-registration's unregistration applies the same rule with the same
flows (ownership.py).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from .kong.calls import Call, Flow
from .ownership import CHILD_KINDS, children, describe, is_owned
from .plan import RANK, Operation, Plan


@dataclass(frozen=True)
class KeptParent:
    """A parent deletion that must not happen, why, and what to delete instead."""

    parent: Operation
    unowned: tuple[str, ...]
    instead: tuple[Operation, ...] = ()  # our own children (targets) the cascade would have taken

    @property
    def reason(self) -> str:
        return f"it holds what we do not own ({', '.join(self.unowned)}); delete that first"


def _key(op: Operation) -> tuple[str, str, str, str]:
    return (op.service, op.kind, op.action, op.name)


def parent_deletions(plan: Plan) -> list[Operation]:
    return [op for op in plan.operations if op.action == "delete" and op.kind in CHILD_KINDS]


def read_kept_parents(parents: Iterable[Operation], owner: str) -> Flow[list[KeptParent]]:
    """Read the children of each parent about to be deleted; those holding unowned ones."""
    kept: list[KeptParent] = []
    on_routes: dict[str, list[str]] = {}  # service -> unowned children of its kept routes
    for op in parents:  # in plan order: a service's routes come before the service
        parent_id = op.call.path.rsplit("/", 1)[-1]
        found = yield from children(op.kind, parent_id)
        unowned = tuple(describe(kind, row) for kind, row in found if not is_owned(row, owner))
        if op.kind == "routes" and unowned:
            on_routes.setdefault(op.service, []).extend(f"{u} on route {op.name}" for u in unowned)
        elif op.kind == "services":
            unowned += tuple(on_routes.get(op.service, ()))
        if not unowned:
            continue
        ours = [row for kind, row in found if kind == "targets" and is_owned(row, owner)]
        instead = tuple(
            Operation(
                op.service,
                "targets",
                "delete",
                str(row["target"]),
                Call("DELETE", f"/upstreams/{parent_id}/targets/{row['id']}"),
            )
            for row in ours
        )
        kept.append(KeptParent(op, unowned, instead))
    return kept


def keep_parents(plan: Plan, kept: Iterable[KeptParent]) -> Plan:
    """The plan without the kept parents' deletions, with our children's deletions instead."""
    kept = list(kept)
    dropped = {_key(k.parent) for k in kept}
    operations = [op for op in plan.operations if _key(op) not in dropped]
    operations += [op for k in kept for op in k.instead]
    by_service: dict[str, list[Operation]] = {}
    for op in operations:
        by_service.setdefault(op.service, []).append(op)
    return Plan(
        [
            op
            for ops in by_service.values()
            for op in sorted(ops, key=lambda op: RANK[(op.kind, op.action)])
        ]
    )
