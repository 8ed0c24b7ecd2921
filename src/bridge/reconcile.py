"""The bridge's loop: Consul events -> desired state -> plan -> guarded apply -> Kong.

Safety rules live here: nothing is deleted from a failed, empty-after-non-empty
or index-reset read, and every deletion passes the deletion guard (guard.py:
mass removals over a sliding window, owned parents of unowned children); a
service whose tags are wrong is skipped and its Kong entities are left as they
are; a service whose writes fail is retried later with backoff while the
others proceed.

Speed: a change that arrives while the loop is idle is planned and applied at
once; changes that arrive during a burst are coalesced for at most
``debounce`` seconds. Kong is re-read in the background every ``resync``
seconds (each page retried on its own, the readers giving way while a change
is being served); the full reconciliation that follows
is planned in chunks, and incremental changes are served between chunks, so a
resync never holds an isolated change back.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterable
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field

from .actual import KongState, OwnedNames, read_database, read_owned_concurrently
from .apply import Group, ServiceOutcome, apply_groups, apply_plan, record
from .children import KeptParent, read_kept_parents
from .dbless import post_config, read_config, render
from .desired import ServiceState
from .guard import DeletionGuard, HeldDeletion
from .kong import AsyncKongClient, KongClient, KongClientError, Pace
from .kv_watch import KvSeen
from .mapping import MappingOptions, ServiceMapping, map_service
from .metrics import Metrics
from .plan import Operation, Plan, diff
from .services import ServiceTable
from .snapshot import ServiceSnapshot
from .watch import (
    CatalogSeen,
    ServiceSeen,
    WatchDisbelieved,
    WatchFailed,
    backoff_delay,
)
from .watch import Event as WatchEvent

log = logging.getLogger("bridge")
Wanted = dict[str, ServiceState | None]
Event = WatchEvent | KvSeen
# A serve of more services than this (a first load) is planned a slice at a time, just
# ahead of the writers (_serve_in_chunks); a change or a burst is planned in one go.
CHUNK = 100
PLAN_SLICE = 16  # services planned at once in a chunked serve: a few ms, never Kong's idle time
# A full pass looks at the changes more often: its services are mostly in step (a
# comparison each), and a change waits for at most one chunk (100: a few ms at 10,000).
FULL_PASS_CHUNK = 100
# Workers re-reading Kong at a resync: the re-read shares the loop with incremental
# changes, and each worker's answers take turns with theirs; few workers leave them room.
RESYNC_READERS = 2
RESYNC_PAGE = 100  # rows per page of a resync's list reads (each page is decoded in one go)
RESYNC_PAUSE = 1.0  # a resync reader rests as long as each read took: half the loop is left
FIRST_LOAD_GRACE = 10.0  # DB-less: how long the first writes may wait for every first read
KONG_SILENCE = 10.0  # failing writes make us unready once Kong accepted nothing this long


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


def _deleting(plan: Plan) -> set[str]:
    return {op.service for op in plan.deletes()}


class Bridge:
    """Keeps Kong's owned entities equal to what Consul describes.

    ``may_write`` is asked right before each batch of Kong writes (a standby
    plans but never writes); :meth:`leadership_gained` makes the next turn
    re-read Kong and reconcile everything.
    """

    def __init__(
        self,
        kong: AsyncKongClient,
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
        self.may_write = may_write
        self.table = ServiceTable()
        self.catalog_trusted = False
        self.catalog_seen = False
        self.kong_state: KongState | None = None
        self.db_less: bool | None = None  # learnt from Kong at the first read
        self.view = BridgeView()
        self.resync_requested = False
        self._events: asyncio.Queue[Event] | None = None
        self._dirty: set[str] = set()
        self._busy: set[str] = set()  # services with writes in flight
        self._written_since_read: set[str] = set()
        self._read_failures = 0
        self._first_catalog_at = 0.0
        self._kong_ok_at = 0.0  # the last successful read or write
        self.held_services: set[str] = set()  # services whose deletions the guard holds
        self._blocking_kong: KongClient | None = None  # for the guard's reads of children
        self.kv: dict[str, str | None] = {}  # Consul KV values the convention names
        self.kv_keys: dict[str, AbstractSet[str]] = {}  # service -> the KV keys it reads
        self.on_kv_keys: Callable[[set[str]], None] | None = None  # the daemon's KV watcher
        # Whether the watcher is following up a Consul answer (changes on their way here).
        self.changes_arriving: Callable[[], bool] = lambda: False

    @property
    def names(self) -> frozenset[str]:
        """The opted-in services of the last trusted catalog answer."""
        return frozenset(self.table.listed())

    @property
    def snapshots(self) -> dict[str, ServiceSnapshot]:
        """What Consul said of each listed service (a copy: the status page reads it)."""
        records = list(self.table.records.values())
        return {r.name: r.snapshot for r in records if r.listed and r.snapshot is not None}

    @property
    def mappings(self) -> dict[str, ServiceMapping]:
        """The mapping of each listed service, as last computed (a copy)."""
        records = list(self.table.records.values())
        return {r.name: r.mapping for r in records if r.listed and r.mapping is not None}

    def leadership_gained(self) -> None:
        """Re-read Kong and reconcile everything at the next turn (a new leader trusts nothing)."""
        self.resync_requested = True

    # -- events ----------------------------------------------------------------------------

    def handle(self, event: Event) -> set[str]:
        """Fold one watcher event into the bridge's view; returns the services to revisit."""
        if isinstance(event, KvSeen):
            return self._kv_seen(event)
        if isinstance(event, WatchFailed):
            self.metrics.watch_errors += 1
            self.metrics.consul_reached(False, f"{event.what}: {event.error}")
            self.view.consul_ok = False
            return set()
        if isinstance(event, WatchDisbelieved):
            self.metrics.watch_resets += 1
            return set()
        self.metrics.consul_reached(True)
        self.view.consul_ok = True
        if isinstance(event, CatalogSeen):
            return self._catalog_seen(event)
        return self._service_seen(event)

    def _catalog_seen(self, event: CatalogSeen) -> set[str]:
        before = self.table.listed()
        for name in event.names - before:
            self.table.list(name)
        for name in before - event.names:
            gone = self.table.unlist(name)
            gone.seen_at = event.at
            gone.touch()
        self.catalog_trusted = event.trusted
        if not self.catalog_seen:
            self.catalog_seen, self._first_catalog_at = True, time.monotonic()
        return before ^ event.names

    def _kv_seen(self, event: KvSeen) -> set[str]:
        self.kv[event.key] = event.value
        readers = {name for name, keys in self.kv_keys.items() if event.key in keys}
        for name in readers:
            record = self.table.get(name)
            record.mapping = None  # its settings read that key: map it again
            record.touch()
        return readers

    def _note_kv_keys(self, name: str, keys: AbstractSet[str]) -> None:
        """Track which KV keys each service reads; the KV watcher follows their union."""
        if keys == self.kv_keys.get(name, set()):
            return  # the common case, kept O(1) for large catalogs
        if keys:
            self.kv_keys[name] = keys
        else:
            self.kv_keys.pop(name, None)
        if self.on_kv_keys is not None:
            self.on_kv_keys(set().union(*self.kv_keys.values()))

    def _service_seen(self, event: ServiceSeen) -> set[str]:
        snapshot = event.snapshot
        record = self.table.records.get(snapshot.name)
        if record is None or not record.listed:
            return set()  # a late answer for a service no longer listed
        if not event.trusted and not snapshot.instances:
            return set()  # an empty read of a listed service is not believed
        previous = record.snapshot
        self.table.read(record, snapshot, event.trusted)
        if previous is not None and previous.instances == snapshot.instances:
            return set()
        record.mapping = None
        record.seen_at = event.at
        record.touch()
        return {snapshot.name}

    # -- desired state ---------------------------------------------------------------------

    def desired(self, names: Iterable[str]) -> Wanted:
        """Desired state for ``names``; services with errors (or not yet read) are left out."""
        wanted: Wanted = {}
        for name in names:
            record = self.table.records.get(name)
            if record is not None and record.listed:
                if record.snapshot is None:
                    continue  # its first read has not arrived: touch nothing yet
                if record.mapping is None:
                    record.mapping = map_service(record.snapshot, self.options, self.kv)
                    self._note_kv_keys(name, record.mapping.kv_keys)
                    self._record_problems(name, record.mapping)
                if record.mapping.skipped:
                    continue
                wanted[name] = record.mapping.state
            else:
                self.view.errors.pop(name, None)
                self.view.notes.pop(name, None)
                self.metrics.error_reasons.pop(name, None)
                self._note_kv_keys(name, set())
                wanted[name] = None
        return wanted

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

    # -- planning --------------------------------------------------------------------------

    def plan(self, names: Iterable[str] | None = None, allow_deletes: bool = True) -> Plan:
        """The guarded plan for ``names`` (default: everything known on either side)."""
        return self._plan(names, allow_deletes)[0]

    def _plan(
        self, names: Iterable[str] | None, allow_deletes: bool = True
    ) -> tuple[Plan, Wanted, set[str]]:
        """Guarded plan, the desired state it came from, and the services held back."""
        state = self._state()
        every = self.table.listed() | set(state.services) if names is None else set(names)
        wanted = self.desired(every)
        raw = diff(wanted, state, wanted.keys())
        guarded = self._guard(raw, wanted.keys(), allow_deletes)
        return guarded, wanted, _deleting(raw) - _deleting(guarded)

    def _state(self) -> KongState:
        if self.kong_state is None:
            raise RuntimeError("Kong has not been read yet")
        return self.kong_state

    def _guard(self, plan: Plan, considered: Iterable[str], allow_deletes: bool = True) -> Plan:
        """Plan in, guarded plan out: the deletion guard's verdict (guard.py), reported."""
        state = self._state()
        guarded = self.guard.review(
            plan,
            considered=considered,
            # The owned counts are kept per write (_settle) and set again by each read.
            owned=OwnedNames(state, self.metrics.owned.get("services", 0)),
            trusted=self._trusted_for_deletes,
            allow_deletes=allow_deletes,
            children=self._kept_parents,
        )
        self.held_services = set(self.guard.withheld)
        self.view.held, self.view.held_back = self.guard.held, self.guard.summary()
        self.metrics.held_deletes = len(self.view.held)
        self.metrics.held_back_deletes = self.guard.new_holds
        return guarded

    def _kept_parents(self, parents: list[Operation]) -> list[KeptParent]:
        """Kong's children of parents about to be deleted (rare: read with a blocking client)."""
        if self._blocking_kong is None:
            self._blocking_kong = self.kong.twin()
        return self._blocking_kong.run(read_kept_parents(parents, self.options.owner))

    def _trusted_for_deletes(self, name: str) -> bool:
        if not self.catalog_seen or not self.catalog_trusted:
            return False
        record = self.table.records.get(name)
        if record is None or not record.listed:
            return True
        return record.trusted

    # -- Kong ------------------------------------------------------------------------------

    async def _read_kong(self, background: bool = False) -> KongState:
        if self.db_less is None:
            self.db_less = await self.kong.run(read_database()) == "off"
            if self.db_less:
                log.info(
                    "Kong runs DB-less: changes are applied with POST /config",
                    extra={"kong_database": "off"},
                )
        if not background:
            return await read_owned_concurrently(
                self.kong, self.options.owner, self.concurrency, previous=self.kong_state
            )
        return await read_owned_concurrently(
            self.kong,
            self.options.owner,
            min(self.concurrency, RESYNC_READERS),
            previous=self.kong_state,
            page_size=RESYNC_PAGE,
            pace=Pace(RESYNC_PAUSE, busy=self._serving_changes),
        )

    def _serving_changes(self) -> bool:
        """A change is on its way to Kong: being read, queued, planned or written."""
        queued = self._events is not None and not self._events.empty()
        return bool(queued or self._dirty or self._busy) or self.changes_arriving()

    async def refresh_kong(self) -> KongState:
        """Re-read our entities from Kong (``sync --once``, ``plan``)."""
        self._adopt(await self._read_kong())
        return self._state()

    def _adopt(self, fresh: KongState) -> None:
        """Take a fresh read, keeping what we wrote while it was under way (ours is newer)."""
        if self.kong_state is not None:
            held = self.kong_state.services
            for name in self._written_since_read:
                kept = held.get(name)
                if kept is None:
                    fresh.services.pop(name, None)
                else:
                    fresh.services[name] = kept
        self._written_since_read = set()
        self.kong_state = fresh
        self.view.kong_ok = True
        self._kong_ok_at = time.monotonic()
        self.metrics.owned = fresh.counts()

    def _claim(self, generations: dict[str, int] | None) -> Callable[[str], bool]:
        """Whether a service may be written now: we lead, it is not in flight, and its plan
        is not stale."""

        def claim(name: str) -> bool:
            # The HA fence is asked again before each service, not once per plan: a first
            # load writes for seconds. A service refused is looked at again (``_write``).
            if name in self._busy or not self.may_write():
                return False
            if generations is not None and self.table.get(name).generation != generations[name]:
                return False
            self._busy.add(name)
            return True

        return claim

    async def apply(
        self,
        plan: Plan,
        wanted: Wanted,
        held: set[str],
        generations: dict[str, int] | None = None,
        serve_between: bool = False,
    ) -> bool:
        """Apply a plan; failed services are scheduled for a retry. True when all succeeded."""
        if not plan:
            return True
        if not self.may_write():
            self.metrics.plans_withheld += 1  # a standby keeps its plan; the leader writes
            return False
        if self.db_less:
            plan, wanted = self._without_stale(plan, wanted, generations)
            return await self._apply_declarative(plan, wanted, held) if plan else True
        outcomes = apply_plan(self.kong, plan, self.concurrency, self._claim(generations))
        return await self._write(outcomes, serve_between)

    async def _write(
        self, outcomes: AsyncIterator[ServiceOutcome], serve_between: bool = False
    ) -> bool:
        """Settle the outcomes of writes as they end; True when all succeeded."""
        all_ok, any_ok_or_clash, any_outcome = True, False, False
        async for outcome in outcomes:
            if outcome.skipped:
                self._dirty.add(outcome.name)  # someone else had it, or it changed: look again
                continue
            any_outcome = True
            any_ok_or_clash |= outcome.ok or outcome.clash
            all_ok &= self._settle(outcome)
            if serve_between:
                await self._serve()
        # A clash is the user's to fix, like a bad tag: it does not make us unready; and one
        # service failing alone while Kong answers others is that service's problem.
        if any_ok_or_clash:
            self.view.failing_all = False
        elif any_outcome and time.monotonic() - self._kong_ok_at > KONG_SILENCE:
            self.view.failing_all = True
        self.metrics.services_in_error = len(self.view.errors)
        return all_ok

    def _settle(self, outcome: ServiceOutcome) -> bool:
        self._busy.discard(outcome.name)
        before = self._state().counts_of(outcome.name)
        record(self._state(), outcome)
        after = self._state().counts_of(outcome.name)
        owned = self.metrics.owned
        self.metrics.owned = {k: owned.get(k, 0) + after[k] - before[k] for k in after}
        self._written_since_read.add(outcome.name)
        service = self.table.get(outcome.name)
        service.touch()
        now = time.monotonic()
        for op, _row in outcome.done:
            self._applied(op, "applied")
        if outcome.ok:
            self._succeeded(outcome.name, now)
            return True
        self.table.failed(
            outcome.name, now + backoff_delay(service.failures + 1, base=1.0, cap=60.0)
        )
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
        return False

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

    def _succeeded(self, name: str, now: float) -> None:
        self._kong_ok_at = now
        service = self.table.get(name)
        self.table.succeeded(name)
        if service.mapping is None or not service.mapping.problems:
            self.view.errors.pop(name, None)
        if self.metrics.error_reasons.get(name) != "invalid-tags":
            self.metrics.error_reasons.pop(name, None)
        if service.seen_at is not None:
            self.metrics.observe_propagation(now - service.seen_at)
            service.seen_at = None
        if not service.listed and name not in self._state().services:
            self.table.forget(name)

    def _without_stale(
        self, plan: Plan, wanted: Wanted, generations: dict[str, int] | None
    ) -> tuple[Plan, Wanted]:
        """DB-less: drop the services that changed since they were planned (``_claim``'s rule).

        They are looked at again; the others go into one ``POST /config``. So a full
        pass whose services were written meanwhile (the first load's changes are
        served between its chunks) posts nothing instead of the same config again.
        """
        if generations is None:
            return plan, wanted
        records = self.table.records
        stale = {
            name
            for name in plan.by_service()
            if name in records and records[name].generation != generations[name]
        }
        if not stale:
            return plan, wanted
        self._dirty |= stale
        fresh = Plan([op for op in plan.operations if op.service not in stale])
        return fresh, {name: spec for name, spec in wanted.items() if name not in stale}

    async def _apply_declarative(self, plan: Plan, wanted: Wanted, held: set[str]) -> bool:
        """DB-less: one ``POST /config`` with our entities in place of the old ones.

        Services left out of the plan (skipped on errors, or with deletions held
        back) are rendered as Kong holds them today.
        """
        state = self._state()
        rendered = {name: spec for name, spec in wanted.items() if name not in held}
        try:
            current = await self.kong.run(read_config())
            config = render(
                current,
                self.options.owner,
                rendered,
                state.services,
                set(state.services) | set(rendered),
            )
            await self.kong.run(post_config(config))
        except KongClientError as exc:
            now = time.monotonic()
            for name in plan.by_service():
                failures = self.table.get(name).failures
                self.table.failed(name, now + backoff_delay(failures + 1, base=1.0, cap=60.0))
                self.view.errors[name] = [f"POST /config failed: {exc}"]
                self.metrics.error_reasons[name] = "kong-failed"
            self.view.failing_all = True
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
            self.table.get(name).touch()  # its Kong state changed: older plans are stale
            self._succeeded(name, now)
        # New entities got their ids from Kong: read them back (plugins and certificates too).
        fresh = await self._read_kong()
        newer = set(fresh.services) | set(state.services)
        self.kong_state = fresh  # newer than any read still under way:
        self._written_since_read |= newer
        self.metrics.owned = fresh.counts()
        return True

    async def sync(self, names: Iterable[str] | None = None, allow_deletes: bool = True) -> Plan:
        """Plan and apply (for ``names``, or everything); returns the plan that was applied."""
        plan, wanted, held = self._plan(names, allow_deletes)
        applied = await self.apply(plan, wanted, held)
        self._mark_synced(names or (), plan, applied)
        return plan

    def _mark_synced(self, names: Iterable[str], plan: Plan, applied: bool) -> None:
        self._note_unplanned(names, plan)
        self._mark_applied(applied, planned_nothing=not plan)

    def _note_unplanned(self, names: Iterable[str], plan: Plan) -> None:
        planned = plan.by_service()
        for name in names:
            service = self.table.records.get(name)
            if service is not None and name not in planned:
                service.seen_at = None  # nothing to write: already as Consul says

    def _mark_applied(self, applied: bool, planned_nothing: bool) -> None:
        if planned_nothing:
            self.view.failing_all = False
        self.metrics.services_in_error = len(self.view.errors)
        # Fresh only when every service that should be in Kong is (bad tags aside).
        complete = applied and not self.table.failing and not self._dirty
        self.metrics.mark_success(complete=complete and self._all_read())

    # -- the daemon ------------------------------------------------------------------------

    async def run(
        self,
        events: asyncio.Queue[Event],
        stop: asyncio.Event,
        *,
        debounce: float = 0.2,
        resync: float = 60.0,
        watch_count: Callable[[], int] | None = None,
    ) -> None:
        """Consume watcher events until ``stop``; a stop never deletes anything."""
        self._events = events
        next_resync = time.monotonic()
        reading: asyncio.Task[KongState] | None = None
        getter: asyncio.Task[Event] | None = None
        stopping = asyncio.create_task(stop.wait())
        full_due = False
        last_apply = float("-inf")
        try:
            while not stop.is_set():
                if watch_count is not None:
                    self.metrics.watches = watch_count()
                now = time.monotonic()
                if reading is None and (now >= next_resync or self.resync_requested):
                    self.resync_requested = False
                    self._written_since_read = set()
                    background = self.kong_state is not None  # else the first load: full speed
                    reading = asyncio.create_task(self._read_kong(background))
                getter = getter or asyncio.create_task(events.get())
                waits: set[asyncio.Future[object]] = {getter, stopping}  # type: ignore[arg-type]
                if reading is not None:
                    waits.add(reading)  # type: ignore[arg-type]
                await asyncio.wait(
                    waits,
                    timeout=self._timeout(None if reading else next_resync),
                    return_when=asyncio.FIRST_COMPLETED,
                )
                if getter.done():
                    self._dirty |= self.handle(getter.result())
                    getter = None
                self._drain()
                if stop.is_set():
                    break
                if self._dirty and debounce and time.monotonic() - last_apply < debounce:
                    await asyncio.sleep(max(0.0, last_apply + debounce - time.monotonic()))
                    self._drain()  # a burst: coalesce what arrived meanwhile
                if reading is not None and reading.done():
                    full_due |= self._take_read(reading)
                    next_resync = time.monotonic() + (
                        resync
                        if self.view.kong_ok
                        else backoff_delay(self._read_failures, base=1.0, cap=min(resync, 30.0))
                    )
                    reading = None
                if full_due and self.catalog_seen and not self._waiting_first_load():
                    full_due = False
                    await self._full_pass()
                if await self._serve():
                    last_apply = time.monotonic()
                self._update_ready()
        finally:
            for task in (getter, reading, stopping):
                if task is not None:
                    task.cancel()

    def _timeout(self, next_resync: float | None) -> float:
        """How long the loop may wait for an event; ``next_resync`` is None while a read
        is under way (its end wakes the loop: a resync already due must not make it spin)."""
        if self._dirty:
            return 0.0  # left over from a full pass: serve it now
        wake = time.monotonic() + 1.0
        if next_resync is not None:
            wake = min(wake, next_resync)
        retry = self.table.next_retry()
        if retry is not None:
            wake = min(wake, retry)
        return max(0.0, wake - time.monotonic())

    def _drain(self) -> None:
        if self._events is None:
            return
        while not self._events.empty():
            self._dirty |= self.handle(self._events.get_nowait())

    def _take_read(self, reading: asyncio.Task[KongState]) -> bool:
        """Adopt a finished Kong read; False (and logged) when it failed."""
        try:
            fresh = reading.result()
        except Exception as exc:  # any failed read (even a malformed answer) is retried later
            self._read_failures += 1
            self.view.kong_ok = False
            self.view.failing_all = True  # not even Kong's state could be read
            log.error(
                "Kong unavailable; will retry",
                extra={"action": "resync", "outcome": "kong-unavailable", "problem": str(exc)},
            )
            return False
        self._read_failures = 0
        self._adopt(fresh)
        return True

    async def _serve(self) -> bool:
        """Plan and apply the services that changed (or are due a retry); True if it wrote."""
        self._drain()
        self._dirty |= self.table.take_due_retries(time.monotonic()) | self.guard.due()
        if not self._dirty or self.kong_state is None or not self.catalog_seen:
            return False
        if self._waiting_first_load():
            return False
        names = self._dirty - self._busy
        self._dirty -= names
        for name in names:
            self.table.retries.pop(name, None)  # written now: no separate retry
        if not names:
            return False
        if len(names) > CHUNK and not self.db_less:  # DB-less: one POST /config for them all
            return await self._serve_in_chunks(names)
        state = self._state()
        plan, wanted, held = self._plan(names)
        # Nothing to do for them: in step, so a resync's full pass need not diff them again.
        self._note_in_step(wanted.keys() - plan.by_service().keys() - held, state)
        applied = await self.apply(plan, wanted, held)
        self._mark_synced(names, plan, applied)
        return bool(plan)

    async def _serve_in_chunks(self, names: set[str]) -> bool:
        """Many services at once (a first load): planned a slice at a time, just ahead of
        the writers, so Kong works while the rest is planned (planning it all first left
        Kong idle for 60 ms at 500 services), and their operations are never all held at
        once (at 10,000 services, tens of MB).

        A service whose plan deletes anything is not applied with its slice: those
        are gathered and planned together at the end, one plan, so the deletion
        guard judges them as it would have judged them in one go. The others pass
        the guard untouched, in whichever slice.
        """
        deleting: set[str] = set()
        planned: set[str] = set()
        groups = self._calm_groups(sorted(names), deleting, planned)
        if self.may_write():
            claim = self._claim(None)
            applied = await self._write(apply_groups(self.kong, groups, self.concurrency, claim))
        else:
            async for _group in groups:
                pass  # planned all the same: a standby reports what it would write
            if planned:
                self.metrics.plans_withheld += 1  # a standby keeps its plan; the leader writes
            applied = not planned
        self._mark_applied(applied, planned_nothing=not planned)
        if deleting:
            plan, wanted, held = self._plan(deleting)
            applied = await self.apply(plan, wanted, held)
            self._mark_synced(deleting, plan, applied)
            planned |= plan.by_service().keys()
        return bool(planned)

    async def _calm_groups(
        self, ordered: list[str], deleting: set[str], planned: set[str]
    ) -> AsyncGenerator[Group, None]:
        """The operations of the services that delete nothing, planned a slice at a time
        when the writers ask for more; the others are added to ``deleting``."""
        for start in range(0, len(ordered), PLAN_SLICE):
            chunk = ordered[start : start + PLAN_SLICE]
            wanted, state = self.desired(chunk), self._state()
            raw = diff(wanted, state, wanted.keys())
            self._note_in_step(wanted.keys() - raw.by_service().keys(), state)
            deleting |= _deleting(raw)
            calm = {name for name in chunk if name not in deleting}
            ops = [op for op in raw.operations if op.service in calm]
            plan = self._guard(Plan(ops), calm & wanted.keys())
            self._note_unplanned(calm, plan)
            for group in plan.by_service().items():
                planned.add(group[0])
                yield group

    async def _full_pass(self) -> None:
        """Reconcile everything, in chunks, serving incremental changes in between.

        A service found in step at the last pass, whose desired state and Kong
        rows have not moved since, is not diffed again: at 10,000 services an
        idle resync then costs its read and little more.
        """
        state = self._state()
        every = sorted(self.table.listed() | set(state.services))
        wanted: Wanted = {}
        operations: list[Operation] = []
        generations: dict[str, int] = {}
        for start in range(0, len(every), FULL_PASS_CHUNK):
            await asyncio.sleep(0)  # let the watcher's answers in: changes go first
            await self._serve()
            state = self._state()  # a write or a read may have replaced it
            chunk = [
                name
                for name in every[start : start + FULL_PASS_CHUNK]
                if not self.table.get(name).still_in_step(state.services.get(name))
            ]
            part = self.desired(chunk)
            for name in chunk:
                generations[name] = self.table.get(name).generation
            wanted.update(part)
            found = diff(part, state, part.keys()).operations
            operations += found
            self._note_in_step(part.keys() - {op.service for op in found}, state)
        self.metrics.full_passes += 1
        self.metrics.full_pass_compared = len(generations)
        raw = Plan(operations)
        guarded = self._guard(raw, wanted.keys())
        held = _deleting(raw) - _deleting(guarded)
        applied = await self.apply(guarded, wanted, held, generations, serve_between=True)
        self._mark_synced((), guarded, applied)

    def _note_in_step(self, names: Iterable[str], state: KongState) -> None:
        for name in names:
            self.table.get(name).found_in_step(state.services.get(name))

    def _all_read(self) -> bool:
        """Every listed service has had its first read (so none is missing from a plan)."""
        return self.table.all_read()

    def _waiting_first_load(self) -> bool:
        """DB-less: one ``POST /config`` for the whole first load, not one per batch of reads."""
        if not self.db_less or time.monotonic() - self._first_catalog_at > FIRST_LOAD_GRACE:
            return False
        return not self._all_read()

    def _update_ready(self) -> None:
        if self.view.ready or self.kong_state is None or not self.catalog_seen:
            return
        if self._all_read() and not self._dirty:
            self.view.ready = self.view.consul_ok and self.view.kong_ok
