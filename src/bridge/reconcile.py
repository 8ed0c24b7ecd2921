"""The bridge's loop: Consul events -> desired state -> plan -> guarded apply -> Kong.

Safety rules live here: nothing is deleted from a failed, empty-after-non-empty
or index-reset read, and every deletion passes the deletion guard (guard.py:
mass removals over a sliding window, owned parents of unowned children); a
service whose tags are wrong is skipped and
its Kong entities are left as they are; a service whose writes fail is retried
later with backoff while the others proceed.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from .actual import KongState, read_database, read_owned
from .apply import apply_plan, record
from .children import read_kept_parents
from .dbless import post_config, read_config, render
from .desired import ServiceState
from .guard import DeletionGuard, HeldDeletion
from .kong import KongClient, KongClientError
from .kv_watch import KvSeen
from .mapping import MappingOptions, ServiceMapping, map_service
from .metrics import Metrics
from .plan import Operation, Plan, diff
from .snapshot import ServiceSnapshot
from .watch import CatalogSeen, ServiceSeen, WatchFailed, backoff_delay

log = logging.getLogger("bridge")


@dataclass(frozen=True)
class LastChange:
    """The last write applied for a service, and when (Unix time), for the status page."""

    change: str
    at: float


@dataclass
class BridgeView:
    """What the status endpoint and ``lint`` show."""

    ready: bool = False
    consul_ok: bool = False
    kong_ok: bool = False
    errors: dict[str, list[str]] = field(default_factory=dict)  # service -> problems
    notes: dict[str, list[str]] = field(default_factory=dict)
    held_back: str = ""  # one line: what is held and why
    held: tuple[HeldDeletion, ...] = ()  # every held deletion (see guard.py)
    last_change: dict[str, LastChange] = field(default_factory=dict)
    failing_all: bool = False  # the last apply failed for every service it touched


class Bridge:
    """Keeps Kong's owned entities equal to what Consul describes."""

    def __init__(
        self,
        kong: KongClient,
        options: MappingOptions,
        metrics: Metrics,
        *,
        concurrency: int = 8,
        guard: DeletionGuard | None = None,
        may_write: Callable[[], bool] = lambda: True,
    ) -> None:
        self.kong = kong
        self.options = options
        self.metrics = metrics
        self.concurrency = concurrency
        self.guard = guard or DeletionGuard()
        self.names: frozenset[str] = frozenset()
        self.catalog_trusted = False
        self.catalog_seen = False
        self.snapshots: dict[str, ServiceSnapshot] = {}
        self.trusted: dict[str, bool] = {}
        self.seen_at: dict[str, float] = {}
        self.mappings: dict[str, ServiceMapping] = {}
        self.kong_state: KongState | None = None
        self.db_less: bool | None = None  # learnt from Kong at the first read
        self.last_wanted: dict[str, ServiceState | None] = {}
        self.held_services: set[str] = set()
        self.retry_at: dict[str, float] = {}
        self.failures: dict[str, int] = {}
        self.view = BridgeView()
        self.may_write = may_write  # checked right before each batch of Kong writes
        self.full_due = threading.Event()  # set by leadership_gained()
        self.kv: dict[str, str | None] = {}  # Consul KV values the convention names
        self.kv_keys: dict[str, set[str]] = {}  # service -> the KV keys it reads
        self.on_kv_keys: Callable[[set[str]], None] | None = None  # the daemon's KV watcher

    # -- events ----------------------------------------------------------------------------

    def handle(self, event: CatalogSeen | ServiceSeen | WatchFailed | KvSeen) -> set[str]:
        """Fold one watcher event into the bridge's view; returns the services to revisit."""
        if isinstance(event, KvSeen):
            self.kv[event.key] = event.value
            return {name for name, keys in self.kv_keys.items() if event.key in keys}
        if isinstance(event, WatchFailed):
            self.metrics.watch_errors += 1
            self.metrics.consul_reached(False, f"{event.what}: {event.error}")
            self.view.consul_ok = False
            return set()
        self.metrics.consul_reached(True)
        self.view.consul_ok = True
        if isinstance(event, CatalogSeen):
            if not event.trusted:
                self.metrics.watch_resets += 1
            changed = set(self.names ^ event.names)
            self.names = event.names
            self.catalog_trusted = event.trusted
            self.catalog_seen = True
            for name in changed - event.names:
                self.seen_at[name] = event.at
            return changed
        snapshot = event.snapshot
        if snapshot.name not in self.names:
            return set()  # a late answer from a watch being stopped
        if not event.trusted and not snapshot.instances:
            return set()  # an empty read of a listed service is not believed
        previous = self.snapshots.get(snapshot.name)
        self.snapshots[snapshot.name] = snapshot
        self.trusted[snapshot.name] = event.trusted
        if previous is not None and previous.instances == snapshot.instances:
            return set()
        self.seen_at[snapshot.name] = event.at
        return {snapshot.name}

    # -- desired state ---------------------------------------------------------------------

    def desired(self, names: Iterable[str]) -> dict[str, ServiceState | None]:
        """Desired state for ``names``; services with errors (or not yet read) are left out."""
        wanted: dict[str, ServiceState | None] = {}
        for name in names:
            if name in self.names:
                snapshot = self.snapshots.get(name)
                if snapshot is None:
                    continue  # its first read has not arrived: touch nothing yet
                mapping = map_service(snapshot, self.options, self.kv)
                self._note_kv_keys(name, mapping.kv_keys)
                self.mappings[name] = mapping
                self._record_problems(name, mapping)
                if mapping.skipped:
                    continue
                wanted[name] = mapping.state
            else:
                self.mappings.pop(name, None)
                self.view.errors.pop(name, None)
                self.metrics.error_reasons.pop(name, None)
                self.snapshots.pop(name, None)
                self._note_kv_keys(name, set())
                wanted[name] = None
        return wanted

    def _note_kv_keys(self, name: str, keys: set[str]) -> None:
        """Track which KV keys each service reads; the KV watcher follows their union."""
        if keys == self.kv_keys.get(name, set()):
            return  # the common case, kept O(1) for large catalogs
        if keys:
            self.kv_keys[name] = keys
        else:
            self.kv_keys.pop(name, None)
        if self.on_kv_keys is not None:
            self.on_kv_keys(set().union(*self.kv_keys.values()))

    def _record_problems(self, name: str, mapping: ServiceMapping) -> None:
        if mapping.problems:
            problems = [str(error) for error in mapping.problems]
            if self.view.errors.get(name) != problems:
                for problem in problems:
                    log.error(
                        "service skipped: invalid tags",
                        extra={
                            "service": name,
                            "action": "skip",
                            "outcome": "invalid-tags",
                            "problem": problem,
                        },
                    )
            self.view.errors[name] = problems
            self.metrics.error_reasons[name] = "invalid-tags"
        else:
            self.view.errors.pop(name, None)
            if self.metrics.error_reasons.get(name) == "invalid-tags":
                self.metrics.error_reasons.pop(name)  # write failures stay until a success
        if mapping.notes:
            self.view.notes[name] = mapping.notes
        else:
            self.view.notes.pop(name, None)

    # -- Kong ------------------------------------------------------------------------------

    def refresh_kong(self) -> KongState:
        """Re-read our entities from Kong (start-up and every resync)."""
        if self.db_less is None:
            self.db_less = self.kong.run(read_database()) == "off"
            if self.db_less:
                log.info(
                    "Kong runs DB-less: changes are applied with POST /config",
                    extra={"kong_database": "off"},
                )
        self.kong_state = self.kong.run(read_owned(self.options.owner))
        self.view.kong_ok = True
        self.metrics.owned = self.kong_state.counts()
        return self.kong_state

    def plan(self, names: Iterable[str] | None = None, allow_deletes: bool = True) -> Plan:
        """The guarded plan for ``names`` (default: everything known on either side)."""
        state = self.kong_state if self.kong_state is not None else self.refresh_kong()
        every = set(self.names) | set(state.services) if names is None else set(names)
        wanted = self.desired(every)
        self.last_wanted = wanted
        self.held_services = set()
        plan = diff(wanted, state, wanted.keys())
        return self._guard(plan, state, allow_deletes)

    def _guard(self, plan: Plan, state: KongState, allow_deletes: bool) -> Plan:
        """The deletion guard's verdict (guard.py), and its report on the view and metrics."""
        guarded = self.guard.review(
            plan,
            considered=self.last_wanted.keys(),
            owned=[name for name, owned in state.services.items() if owned.service],
            trusted=self._trusted_for_deletes,
            allow_deletes=allow_deletes,
            children=lambda parents: self.kong.run(read_kept_parents(parents, self.options.owner)),
        )
        self.held_services = set(self.guard.withheld)
        self.view.held, self.view.held_back = self.guard.held, self.guard.summary()
        self.metrics.held_deletes = len(self.view.held)
        self.metrics.held_back_deletes = self.guard.new_holds
        return guarded

    def _trusted_for_deletes(self, name: str) -> bool:
        if not self.catalog_seen or not self.catalog_trusted:
            return False
        if name not in self.names:
            return True
        return self.trusted.get(name, False)

    def leadership_gained(self) -> None:
        """This replica may write now: re-read Kong and reconcile everything at the next turn."""
        self.full_due.set()

    def apply(self, plan: Plan) -> bool:
        """Apply a plan; failed services are scheduled for a retry. True when all succeeded."""
        if not self.may_write():
            self.metrics.plans_withheld += 1  # a standby keeps its plan; the leader writes
            return False
        state = self.kong_state if self.kong_state is not None else self.refresh_kong()
        if self.db_less:
            return self._apply_declarative(plan, state)
        all_ok = True
        now = time.monotonic()
        outcomes = apply_plan(self.kong, plan, self.concurrency)
        # A clash is the user's to fix, like a bad tag: it does not make us unready.
        self.view.failing_all = bool(outcomes) and not any(o.ok or o.clash for o in outcomes)
        for outcome in outcomes:
            record(state, outcome)
            for op, _row in outcome.done:
                self._applied(op, "applied")
            if outcome.ok:
                self.failures.pop(outcome.name, None)
                self.retry_at.pop(outcome.name, None)
                if self.metrics.error_reasons.get(outcome.name) != "invalid-tags":
                    self.metrics.error_reasons.pop(outcome.name, None)
                if outcome.name in self.seen_at:
                    self.metrics.observe_propagation(now - self.seen_at.pop(outcome.name))
                continue
            all_ok = False
            failures = self.failures.get(outcome.name, 0) + 1
            self.failures[outcome.name] = failures
            self.retry_at[outcome.name] = now + backoff_delay(failures, base=1.0, cap=60.0)
            problem = outcome.error or "failed"
            self.view.errors[outcome.name] = [problem]
            self.metrics.error_reasons[outcome.name] = "clash" if outcome.clash else "kong-failed"
            log.error(
                "apply failed",
                extra={
                    "service": outcome.name,
                    "action": "apply",
                    "outcome": "clash" if outcome.clash else "failed",
                    "problem": problem,
                },
            )
        self.metrics.owned = state.counts()
        self.metrics.services_in_error = len(self.view.errors)
        return all_ok

    def _applied(self, op: Operation, message: str) -> None:
        log.info(
            message,
            extra={
                "service": op.service,
                "action": op.action,
                "entity": f"{op.kind[:-1]} {op.name}",
                "fields": list(op.changes) or None,
                "outcome": "ok",
            },
        )
        self.view.last_change[op.service] = LastChange(str(op), time.time())

    def _apply_declarative(self, plan: Plan, state: KongState) -> bool:
        """DB-less: one ``POST /config`` with our entities in place of the old ones.

        Services left out of the plan (skipped on errors, or with deletions held
        back) are rendered as Kong holds them today.
        """
        wanted = {
            name: spec for name, spec in self.last_wanted.items() if name not in self.held_services
        }
        try:
            current = self.kong.run(read_config())
            config = render(
                current,
                self.options.owner,
                wanted,
                state.services,
                set(state.services) | set(wanted),
            )
            self.kong.run(post_config(config))
        except KongClientError as exc:
            self.view.failing_all = True
            now = time.monotonic()
            for name in plan.by_service():
                failures = self.failures.get(name, 0) + 1
                self.failures[name] = failures
                self.retry_at[name] = now + backoff_delay(failures, base=1.0, cap=60.0)
                self.view.errors[name] = [f"POST /config failed: {exc}"]
                self.metrics.error_reasons[name] = "kong-failed"
            log.error(
                "POST /config failed",
                extra={"action": "post-config", "outcome": "failed", "problem": str(exc)},
            )
            return False
        self.view.failing_all = False
        now = time.monotonic()
        for name, ops in plan.by_service().items():
            for op in ops:
                self._applied(op, "applied with POST /config")
            self.failures.pop(name, None)
            self.retry_at.pop(name, None)
            if name in self.seen_at:
                self.metrics.observe_propagation(now - self.seen_at.pop(name))
        self.refresh_kong()  # new entities got their ids from Kong
        return True

    def due_retries(self) -> set[str]:
        now = time.monotonic()
        return {name for name, at in self.retry_at.items() if at <= now} | self.guard.due()

    def sync(self, names: Iterable[str] | None = None, allow_deletes: bool = True) -> Plan:
        """Plan and apply (for ``names``, or everything); returns the plan that was applied."""
        plan = self.plan(names, allow_deletes)
        applied = True
        if plan:
            applied = self.apply(plan)
        else:
            self.view.failing_all = False
        if not plan and names is not None:
            for name in names:
                self.seen_at.pop(name, None)
        self.metrics.services_in_error = len(self.view.errors)
        # Fresh only when every service that should be in Kong is (bad tags aside).
        self.metrics.mark_success(complete=applied and not self.failures)
        return plan

    # -- the daemon ------------------------------------------------------------------------

    def run(
        self,
        events: queue.Queue[CatalogSeen | ServiceSeen | WatchFailed | KvSeen],
        stop: threading.Event,
        *,
        debounce: float = 0.2,
        resync: float = 60.0,
        watch_count: Callable[[], int] | None = None,
    ) -> None:
        """Consume watcher events until ``stop``; a stop never deletes anything."""
        dirty: set[str] = set()
        next_resync = time.monotonic()
        while not stop.is_set():
            if watch_count is not None:
                self.metrics.watches = watch_count()
            wake = min(next_resync, *self.retry_at.values(), time.monotonic() + 1)
            timeout = max(0.0, wake - time.monotonic()) if self.catalog_seen else 1.0
            try:
                dirty |= self.handle(events.get(timeout=timeout))
                deadline = time.monotonic() + debounce  # coalesce a burst of changes
                while time.monotonic() < deadline:
                    try:
                        dirty |= self.handle(
                            events.get(timeout=max(0.0, deadline - time.monotonic()))
                        )
                    except queue.Empty:
                        break
            except queue.Empty:
                pass
            if stop.is_set():
                break
            dirty |= self.due_retries()
            full = time.monotonic() >= next_resync
            if self.full_due.is_set():
                self.full_due.clear()
                full = True
            if not (dirty or full) or not self.catalog_seen:
                continue
            try:
                if full:
                    self.refresh_kong()
                    self.sync(None)
                    self.view.ready = self.view.consul_ok and self.view.kong_ok
                    next_resync = time.monotonic() + resync
                else:
                    self.sync(dirty)
                dirty = set()
            except KongClientError as exc:
                self.view.kong_ok = False
                self.view.failing_all = True  # not even Kong's state could be read
                self.kong_state = None  # re-read everything once Kong is back
                next_resync = time.monotonic() + backoff_delay(1, base=1.0, cap=5.0)
                log.error(
                    "Kong unavailable; will retry",
                    extra={"action": "sync", "outcome": "kong-unavailable", "problem": str(exc)},
                )
