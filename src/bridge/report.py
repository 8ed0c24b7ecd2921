"""What ``plan``, ``sync --once`` and ``lint`` print, and the exit codes they share.

``plan`` shows each change field by field, old value and new (as decK's diff
does), and lists what it would delete. All three report the services that were
skipped (bad tags) and warn about what would not work once applied, such as an
opted-in service with no passing instance (its routes would answer 503).
Rendering only: the data comes from the bridge, nothing here does I/O.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from .actual import KongState
from .guard import HeldDeletion
from .mapping import ServiceMapping
from .plan import Operation, Plan
from .plugins_plan import plugin_key
from .snapshot import ServiceSnapshot

EXIT_OK = 0
EXIT_CANNOT_RUN = 1
EXIT_PENDING = 2
EXIT_PARTIAL = 3
EXIT_CODES_HELP = """\
exit codes (the same for plan, sync --once and lint):
  0  nothing to do, or done
  1  could not run: Consul or Kong unreachable, bad flags or settings
  2  plan: changes pending; lint: problems found
     (plan: deletions held back count as pending)
  3  done, but some services were skipped (bad tags) or failed, or
     deletions were held back (sync --once)"""
MARKS = {"create": "+", "update": "~", "delete": "-"}
# Shown in the entity's heading already, or the owner tags every entity carries.
QUIET_ON_CREATE = frozenset({"name", "target", "tags"})


@dataclass(frozen=True)
class FieldChange:
    """One field of one entity: Kong's value today and the value the plan writes."""

    name: str
    old: Any
    new: Any


@dataclass
class Findings:
    """Problems and warnings about the services read from Consul."""

    errors: dict[str, list[str]] = field(default_factory=dict)  # skipped service -> problems
    warnings: list[str] = field(default_factory=list)
    held_back: str = ""
    held: tuple[HeldDeletion, ...] = ()  # each deletion held, with its reason (guard.py)

    @property
    def partial(self) -> bool:
        """Some services were skipped or failed, or deletions were held back."""
        return bool(self.errors or self.held_back or self.held)


def current_row(op: Operation, state: KongState) -> dict[str, Any] | None:
    """The Kong entity ``op`` changes or deletes, as Kong returned it (None for a create)."""
    owned = state.services.get(op.service)
    if owned is None:
        return None
    if op.kind == "services":
        return owned.service
    if op.kind == "routes":
        return owned.routes.get(op.name)
    if op.kind == "upstreams":
        matches = owned.upstream is not None and owned.upstream.get("name") == op.name
        return owned.upstream if matches else None
    if op.kind == "plugins":
        return owned.plugins.get(plugin_key(op.name))
    if op.kind == "certificates":
        return owned.certificate
    return owned.targets.get(op.name)


def field_changes(op: Operation, state: KongState) -> list[FieldChange]:
    """Old and new value of each field ``op`` writes (a delete writes none).

    Plugin changes are dotted paths (``config.minute``). Values read from Consul
    KV (secrets, private keys) are never shown, old or new.
    """
    body = op.call.body if isinstance(op.call.body, dict) else {}
    if op.action == "create":
        return [
            FieldChange(key, None, _shown(op, key, value))
            for key, value in sorted(body.items())
            if key not in QUIET_ON_CREATE
        ]
    if op.action == "update":
        row = current_row(op, state) or {}
        changes = []
        for key in op.changes:
            old, new = _at(row, key), _at(body, key)
            if _shown(op, key, new) != new:
                old = HIDDEN if old is not None else None
            changes.append(FieldChange(key, old, _shown(op, key, new)))
        return changes
    return []


HIDDEN = "<from Consul KV, not shown>"


def _at(tree: Mapping[str, Any], path: str) -> Any:
    value: Any = tree
    for part in path.split("."):
        value = value.get(part) if isinstance(value, Mapping) else None
    return value


def _shown(op: Operation, key: str, value: Any) -> Any:
    """``value`` with what came from Consul KV hidden (a certificate's key always)."""
    if op.kind == "certificates" and key == "key" and value is not None:
        return HIDDEN
    if isinstance(value, str):
        return HIDDEN if op.redacted(value) != value else value
    if isinstance(value, Mapping):
        return {k: _shown(op, key, v) for k, v in value.items()}
    if isinstance(value, list):
        return [_shown(op, key, v) for v in value]
    return value


def no_passing_instance(mapping: ServiceMapping, snapshot: ServiceSnapshot | None) -> str | None:
    """A warning when an exposed service has nothing for Kong to send requests to."""
    state = mapping.state
    if state is None or mapping.skipped:
        return None
    if state.upstream is not None:
        empty = not state.targets
    else:  # DNS mode: Consul DNS answers with passing instances only
        empty = snapshot is None or not any(i.status == "passing" for i in snapshot.instances)
    if not empty:
        return None
    return (
        f"{mapping.name}: no instance passes its health checks; "
        "its routes would answer 503 until one does"
    )


def findings(
    mappings: Mapping[str, ServiceMapping],
    snapshots: Mapping[str, ServiceSnapshot],
    held_back: str = "",
    errors: Mapping[str, list[str]] | None = None,
    held: tuple[HeldDeletion, ...] = (),
) -> Findings:
    """Errors, disagreement notes and no-passing-instance warnings, by service name.

    ``errors`` (the bridge's, which include failed writes) default to the mappings' errors.
    """
    if errors is None:
        errors = {name: [str(e) for e in m.problems] for name, m in mappings.items() if m.problems}
    result = Findings(errors=dict(sorted(errors.items())), held_back=held_back, held=held)
    for name in sorted(mappings):
        mapping = mappings[name]
        result.warnings += [f"{name}: {note}" for note in mapping.notes]
        warning = no_passing_instance(mapping, snapshots.get(name))
        if warning:
            result.warnings.append(warning)
    return result


def _value(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def _summary(plan: Plan) -> str:
    if not plan:
        return "no changes"
    counts = Counter(op.action for op in plan.operations)
    return (
        f"{len(plan.operations)} change(s) pending: {counts['create']} to create, "
        f"{counts['update']} to update, {counts['delete']} to delete"
    )


def render_findings(found: Findings) -> list[str]:
    """``skipped:``/``warning:`` lines, and the held-back deletions."""
    lines = [f"skipped: {problem}" for problems in found.errors.values() for problem in problems]
    lines += [f"warning: {warning}" for warning in found.warnings]
    if found.held_back:
        lines.append(found.held_back)
    return lines


def render_plan(
    plan: Plan, state: KongState, found: Findings, clashes: set[tuple[str, str]]
) -> str:
    """The plan for a human: per service, each change and its fields, old -> new."""
    lines: list[str] = []
    for service, ops in plan.by_service().items():
        lines.append(f"{service}:")
        for op in ops:
            clash = (
                "  (CLASH: exists in Kong without our owner tag)"
                if (op.kind, op.name) in clashes
                else ""
            )
            lines.append(f"  {MARKS[op.action]} {op.action} {op.kind[:-1]} {op.name}{clash}")
            for change in field_changes(op, state):
                if op.action == "create":
                    lines.append(f"      {change.name}: {_value(change.new)}")
                else:
                    lines.append(
                        f"      {change.name}: {_value(change.old)} -> {_value(change.new)}"
                    )
    deletes = plan.deletes()
    if deletes:
        lines.append("would delete: " + ", ".join(f"{op.kind[:-1]} {op.name}" for op in deletes))
    lines += [f"held: {held}" for held in found.held]
    lines += render_findings(found)
    lines.append(_summary(plan) + _held_summary(found))
    return "\n".join(lines) + "\n"


def _held_summary(found: Findings) -> str:
    if not found.held:
        return ""
    return (
        f"; {len(found.held)} deletion(s) held (release: kong-bridge sync --once "
        "--release-deletes, or kong-bridge release-deletes for a running bridge)"
    )


def plan_document(
    plan: Plan, state: KongState, found: Findings, clashes: set[tuple[str, str]]
) -> dict[str, Any]:
    """The plan for a machine (``plan --json``)."""
    return {
        "changes": [
            {
                "service": op.service,
                "kind": op.kind[:-1],
                "action": op.action,
                "name": op.name,
                "fields": {
                    change.name: {"old": change.old, "new": change.new}
                    for change in field_changes(op, state)
                },
                "method": op.call.method,
                "path": op.call.path,
                "clash": (op.kind, op.name) in clashes,
            }
            for op in plan.operations
        ],
        "deletes": [
            {"service": op.service, "kind": op.kind[:-1], "name": op.name} for op in plan.deletes()
        ],
        "errors": found.errors,
        "warnings": found.warnings,
        "held_back": found.held_back,
        "held": [asdict(held) for held in found.held],
    }


def plan_exit_code(plan: Plan, found: Findings) -> int:
    """2 when changes are pending (held deletions too); else 3 when services were skipped."""
    if plan or found.held:
        return EXIT_PENDING
    return EXIT_PARTIAL if found.partial else EXIT_OK


def render_sync(plan: Plan, found: Findings) -> str:
    """What ``sync --once`` did."""
    lines = [f"{op.service}: {op}" for op in plan.operations]
    lines.append(f"applied {len(plan.operations)} change(s)")
    lines += [f"held: {held}" for held in found.held]
    lines += render_findings(found)
    return "\n".join(lines) + "\n"


def render_lint(checked: int, found: Findings) -> str:
    """Every problem (``error:``) and warning in the opted-in services, then a count."""
    lines = [f"error: {problem}" for problems in found.errors.values() for problem in problems]
    lines += [f"warning: {warning}" for warning in found.warnings]
    problems = sum(len(p) for p in found.errors.values())
    lines.append(
        f"{checked} service(s) checked, {problems} problem(s), {len(found.warnings)} warning(s)"
    )
    return "\n".join(lines) + "\n"


def lint_exit_code(found: Findings) -> int:
    return EXIT_PENDING if found.errors else EXIT_OK
