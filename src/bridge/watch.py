"""Watch the Consul catalog with blocking queries; emit plain events (nothing of Kong here).

Scope: one blocking query on ``/v1/catalog/services`` (filtered to opted-in
services) learns which services matter; each of those gets its own blocking
query on ``/v1/health/service/<name>``, up to ``max_watches`` (Consul allows 200
connections per client by default). Services beyond the cap are kept correct
by :class:`OverflowWatch` (see there).

Consul's client rules (``blocking.mdx``) are kept: the index is an integer,
reset to 0 when it goes backwards, floored at 1; each loop is rate-limited
(token bucket, burst 2); errors back off exponentially with jitter; a failed
read is never turned into an event, and a suspicious one is flagged.
"""

from __future__ import annotations

import logging
import queue
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .snapshot import ServiceSnapshot, snapshot_from_health

log = logging.getLogger("bridge.watch")
ConsulFactory = Callable[[], Any]  # returns a py-consul ``consul.Consul``
RATE_PER_SECOND = 5.0
BURST = 2
BACKOFF_BASE = 0.5
BACKOFF_CAP = 30.0


@dataclass(frozen=True)
class CatalogSeen:
    """The opted-in service names at one catalog index."""

    names: frozenset[str]
    index: int
    trusted: bool
    at: float


@dataclass(frozen=True)
class ServiceSeen:
    """One service's instances; ``trusted`` is False for a read that looks wrong."""

    snapshot: ServiceSnapshot
    trusted: bool
    at: float


@dataclass(frozen=True)
class WatchFailed:
    what: str
    error: str
    at: float


Event = CatalogSeen | ServiceSeen | WatchFailed


class IndexTracker:
    """Consul's rules for the index to block on next."""

    def __init__(self) -> None:
        self.index = 0

    def update(self, raw: Any) -> bool:
        """Record a returned index; True when it went backwards (then we start over)."""
        new = int(raw)
        if new < self.index:
            self.index = 0
            return True
        self.index = max(new, 1)
        return False

    def reset(self) -> None:
        self.index = 0

    @property
    def query(self) -> int | None:
        return self.index or None


class TokenBucket:
    """Lets a loop run freely, but at most ``rate`` per second after a burst."""

    def __init__(self, rate: float = RATE_PER_SECOND, burst: int = BURST) -> None:
        self.rate = rate
        self.burst = burst
        self.tokens = float(burst)
        self.updated = time.monotonic()

    def take(self, stop: threading.Event) -> None:
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens < 1:
            stop.wait((1 - self.tokens) / self.rate)
            self.tokens = 1
            self.updated = time.monotonic()
        self.tokens -= 1


def backoff_delay(failures: int, base: float = BACKOFF_BASE, cap: float = BACKOFF_CAP) -> float:
    """Exponential backoff with full jitter."""
    return random.uniform(base / 2, min(cap, base * 2 ** min(failures, 16)))


def opt_in_filter(prefix: str) -> str:
    """The ``?filter=`` selecting services that opted in by tag or by Service Meta."""
    return f'"{prefix}.enable=true" in ServiceTags or ServiceMeta.{prefix}_enable == "true"'


class _Loop(threading.Thread):
    """A blocking-query loop with Consul's index, rate-limit and backoff rules."""

    def __init__(
        self, name: str, factory: ConsulFactory, events: queue.Queue[Event], stop: threading.Event
    ) -> None:
        super().__init__(name=name, daemon=True)
        self.factory = factory
        self.events = events
        self.global_stop = stop
        self.own_stop = threading.Event()
        self.tracker = IndexTracker()
        self.bucket = TokenBucket()
        self.failures = 0

    @property
    def stopped(self) -> bool:
        return self.global_stop.is_set() or self.own_stop.is_set()

    def stop(self) -> None:
        self.own_stop.set()

    def run(self) -> None:
        client = self.factory()
        while not self.stopped:
            self.bucket.take(self.global_stop)
            try:
                self.once(client)
                self.failures = 0
            except Exception as exc:  # any failure: report, back off, start over
                self.failures += 1
                self.tracker.reset()
                self.events.put(
                    WatchFailed(self.name, f"{type(exc).__name__}: {exc}", time.monotonic())
                )
                log.warning(
                    "Consul watch failed; backing off",
                    extra={
                        "watch": self.name,
                        "action": "watch",
                        "outcome": "failed",
                        "failures": self.failures,
                        "problem": f"{type(exc).__name__}: {exc}",
                    },
                )
                self.global_stop.wait(backoff_delay(self.failures))

    def once(self, client: Any) -> None:
        raise NotImplementedError


class ServiceWatch(_Loop):
    """``/v1/health/service/<name>`` with its own index."""

    def __init__(
        self,
        service: str,
        factory: ConsulFactory,
        events: queue.Queue[Event],
        stop: threading.Event,
        wait: str,
    ) -> None:
        super().__init__(f"health/service/{service}", factory, events, stop)
        self.service = service
        self.wait = wait

    def once(self, client: Any) -> None:
        index, entries = client.health.service(
            self.service, index=self.tracker.query, wait=self.wait
        )
        backwards = self.tracker.update(index)
        if self.stopped:
            return
        snapshot = snapshot_from_health(self.service, int(index), list(entries or []))
        # An empty answer for a service the catalog lists is not believed for deletions.
        trusted = not backwards and bool(snapshot.instances)
        self.events.put(ServiceSeen(snapshot, trusted, time.monotonic()))


class OverflowWatch(_Loop):
    """Services beyond the watch cap, kept correct with two cheaper signals.

    A blocking query on ``/v1/health/state/any`` reveals which services' checks
    changed (health changes, and registrations that bring checks): only those
    are re-read, at once. A registration change seen by the catalog watch cannot
    be traced to a service, so every overflow service is re-read by a sweeper,
    at most once per ``SWEEP_COALESCE`` seconds however many changes arrive.
    """

    SWEEP_COALESCE = 2.0

    def __init__(
        self, factory: ConsulFactory, events: queue.Queue[Event], stop: threading.Event, wait: str
    ) -> None:
        super().__init__("health/state/any", factory, events, stop)
        self.wait = wait
        self.lock = threading.Lock()
        self.services: set[str] = set()
        self.dirty: set[str] = set()
        self.full_sweep_due = False
        self.known_checks: dict[str, tuple[Any, ...]] = {}
        self.indexes: dict[str, int] = {}
        self.wake = threading.Event()
        self.sweeper = threading.Thread(
            target=self._sweep_loop, name="overflow-sweeper", daemon=True
        )

    def start(self) -> None:
        super().start()
        self.sweeper.start()

    def assign(self, services: set[str], registrations_changed: bool) -> None:
        with self.lock:
            self.dirty |= services - self.services
            self.services = set(services)
            self.full_sweep_due |= registrations_changed and bool(services)
        self.wake.set()

    def once(self, client: Any) -> None:
        index, checks = client.health.state("any", index=self.tracker.query, wait=self.wait)
        self.tracker.update(index)
        current = {
            f"{c.get('Node')}/{c.get('CheckID')}": (c.get("Status"), c.get("ServiceName"))
            for c in checks or []
        }
        changed: set[str] = set()
        with self.lock:
            for key in set(current) | set(self.known_checks):
                before, after = self.known_checks.get(key), current.get(key)
                if before == after:
                    continue
                for value in (before, after):
                    if value and value[1]:
                        changed.add(value[1])
                    elif value:  # a node check: any service on that node may be affected
                        changed |= self.services
            self.known_checks = current
            self.dirty |= changed & self.services
        self.refresh(client)

    def _sweep_loop(self) -> None:
        client = self.factory()
        failures = 0
        while not self.global_stop.is_set():
            if not self.wake.wait(1.0):
                continue
            self.wake.clear()
            with self.lock:
                full = self.full_sweep_due
            if full:
                self.global_stop.wait(self.SWEEP_COALESCE)  # coalesce a burst of changes
                with self.lock:
                    self.dirty |= self.services
                    self.full_sweep_due = False
            try:
                self.refresh(client)
                failures = 0
            except Exception as exc:  # retried on the next wake; report like a watch
                failures += 1
                with self.lock:
                    self.full_sweep_due = True
                self.events.put(WatchFailed("overflow-sweeper", str(exc), time.monotonic()))
                self.global_stop.wait(backoff_delay(failures))
                self.wake.set()

    def refresh(self, client: Any) -> None:
        with self.lock:
            dirty, self.dirty = self.dirty, set()
        for name in sorted(dirty):
            index, entries = client.health.service(name)
            with self.lock:
                if self.indexes.get(name) == int(index):
                    continue
                self.indexes[name] = int(index)
            snapshot = snapshot_from_health(name, int(index), list(entries or []))
            self.events.put(ServiceSeen(snapshot, bool(snapshot.instances), time.monotonic()))


class CatalogWatch(_Loop):
    """``/v1/catalog/services``: which services opted in; starts and stops service watches."""

    def __init__(
        self,
        factory: ConsulFactory,
        events: queue.Queue[Event],
        stop: threading.Event,
        wait: str,
        prefix: str,
        expose_by_default: bool,
        max_watches: int,
    ) -> None:
        super().__init__("catalog/services", factory, events, stop)
        self.wait = wait
        self.filter = None if expose_by_default else opt_in_filter(prefix)
        self.max_watches = max_watches
        self.watches: dict[str, ServiceWatch] = {}
        self.overflow = OverflowWatch(factory, events, stop, wait)
        self.names: frozenset[str] = frozenset()

    def once(self, client: Any) -> None:
        kwargs: dict[str, Any] = {"index": self.tracker.query, "wait": self.wait}
        if self.filter:
            kwargs["filter_expr"] = self.filter
        previous_index = self.tracker.index
        index, services = client.catalog.services(**kwargs)
        backwards = self.tracker.update(index)
        names = frozenset(name for name in (services or {}) if name != "consul")
        # An empty catalog right after a non-empty one, or an index reset, is suspicious.
        trusted = not backwards and not (self.names and not names)
        self.names = names
        self.events.put(CatalogSeen(names, int(index), trusted, time.monotonic()))
        self._rebalance(names, registrations_changed=int(index) != previous_index)

    def _rebalance(self, names: frozenset[str], registrations_changed: bool) -> None:
        ordered = sorted(names)
        watched, overflow = set(ordered[: self.max_watches]), set(ordered[self.max_watches :])
        for name in list(self.watches):
            if name not in watched:
                self.watches.pop(name).stop()
        for name in watched - set(self.watches):
            watch = ServiceWatch(name, self.factory, self.events, self.global_stop, self.wait)
            self.watches[name] = watch
            watch.start()
        self.overflow.assign(overflow, registrations_changed)
        if overflow and not self.overflow.is_alive():
            self.overflow.start()

    @property
    def watch_count(self) -> int:
        return len(self.watches) + (1 if self.overflow.is_alive() else 0) + 1


class ConsulWatcher:
    """Starts the catalog watch; events arrive on :attr:`events`."""

    def __init__(
        self,
        factory: ConsulFactory,
        *,
        wait: str = "5m",
        prefix: str = "kong",
        expose_by_default: bool = False,
        max_watches: int = 150,
    ) -> None:
        self.events: queue.Queue[Event] = queue.Queue()
        self.stop_event = threading.Event()
        self.catalog = CatalogWatch(
            factory, self.events, self.stop_event, wait, prefix, expose_by_default, max_watches
        )

    def start(self) -> None:
        self.catalog.start()

    def stop(self) -> None:
        self.stop_event.set()
        for watch in list(self.catalog.watches.values()):
            watch.stop()


def read_once(
    client: Any, *, prefix: str = "kong", expose_by_default: bool = False
) -> tuple[CatalogSeen, list[ServiceSeen]]:
    """One non-blocking read of everything (``sync --once``, ``plan``, ``lint``)."""
    kwargs: dict[str, Any] = {}
    if not expose_by_default:
        kwargs["filter_expr"] = opt_in_filter(prefix)
    index, services = client.catalog.services(**kwargs)
    names = frozenset(name for name in (services or {}) if name != "consul")
    now = time.monotonic()
    seen = []
    for name in sorted(names):
        service_index, entries = client.health.service(name)
        snapshot = snapshot_from_health(name, int(service_index), list(entries or []))
        seen.append(ServiceSeen(snapshot, bool(snapshot.instances), now))
    return CatalogSeen(names, int(index), True, now), seen
