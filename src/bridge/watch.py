"""Watch Consul with two blocking queries; emit plain events (nothing of Kong here).

What it costs (see the README, "Watching Consul, and what it costs"):

- ``/v1/catalog/services`` (filtered to opted-in services), blocking: which
  services exist and their tags. A name that appears or whose tags change is
  re-read; a name that goes away is reported.
- ``/v1/health/state/any``, blocking: every check with its ``ServiceName`` and
  ``ModifyIndex``. A check that appears, changes or disappears names the
  service to re-read (a node check: every service with an instance there).
  The answer is O(checks) bytes; only the checks whose bytes changed since the
  last answer are decoded (list_delta.py), and a ``catalog/services`` answer
  equal to the last one is not decoded at all.
- Re-reads are plain, non-blocking ``/v1/health/service/<name>`` reads by a
  few workers, so one instance change costs a small constant number of
  requests however many services there are, and the open connections are the
  two watches plus the workers.
- A catalog index that moved with no visible cause (an instance registered,
  changed or removed *without checks*, so no check moved and the service list
  looks the same) is the one case no cheap signal explains: every opted-in
  service is re-read (coalesced: one sweep queued at most).

Consul's client rules (``blocking.mdx``) are kept: integer index, reset when
it goes backwards, floored at 1, each loop rate-limited, errors backed off
with jitter. A failed read is never an event; an answer that is not believed
(an empty catalog after a non-empty one, an index that went backwards, an
empty list for a service the catalog still lists) is re-read with backoff
until a trusted one arrives, so no update is ever waited out.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar
from urllib.parse import quote

from .consul_http import Answer, ConsulReader, ConsulReadError
from .list_delta import ListDelta, NotAList
from .snapshot import ServiceSnapshot, snapshot_from_health

log = logging.getLogger("bridge.watch")
RATE_PER_SECOND = 5.0
BURST = 2
BACKOFF_BASE = 0.5
BACKOFF_CAP = 30.0
DISBELIEF_CAP = 5.0  # a disbelieved answer is re-read at least this often
DOUBT_PATIENCE = 30.0  # an empty catalog that stays empty this long is believed
EXPLAIN_GRACE = 0.25  # how long a catalog move may wait for the check watch to explain it
FETCH_WORKERS = 16
T = TypeVar("T")


@dataclass(frozen=True)
class CatalogSeen:
    """The opted-in service names at one catalog index (always a trusted answer)."""

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


@dataclass(frozen=True)
class WatchDisbelieved:
    """An answer that was not believed and is being re-read."""

    what: str
    reason: str
    at: float


Event = CatalogSeen | ServiceSeen | WatchFailed | WatchDisbelieved


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

    def delay(self) -> float:
        """Take a token; the seconds to wait before using it (0 while the burst lasts)."""
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        self.tokens -= 1
        return 0.0 if self.tokens >= 0 else -self.tokens / self.rate

    async def take(self) -> None:
        wait = self.delay()
        if wait:
            await asyncio.sleep(wait)


def backoff_delay(failures: int, base: float = BACKOFF_BASE, cap: float = BACKOFF_CAP) -> float:
    """Exponential backoff with full jitter."""
    return random.uniform(base / 2, min(cap, base * 2 ** min(failures, 16)))


def opt_in_filter(prefix: str) -> str:
    """The ``?filter=`` selecting services that opted in by tag or by Service Meta."""
    return f'"{prefix}.enable=true" in ServiceTags or ServiceMeta.{prefix}_enable == "true"'


def catalog_names(body: Any) -> dict[str, tuple[str, ...]]:
    """``catalog/services`` -> name: sorted tags, without Consul's own ``consul`` service."""
    if not isinstance(body, dict):
        raise ConsulReadError(f"catalog/services: expected an object, got {type(body).__name__}")
    return {
        str(name): tuple(sorted(str(t) for t in tags or ()))
        for name, tags in body.items()
        if name != "consul"
    }


class CatalogParser:
    """``catalog/services`` bytes -> names; an answer equal to the previous one is not parsed.

    Most catalog moves (an instance added to a listed service, a health change)
    leave this answer as it was, byte for byte.
    """

    def __init__(self) -> None:
        self.body: bytes | None = None
        self.names: dict[str, tuple[str, ...]] = {}

    def __call__(self, body: bytes) -> dict[str, tuple[str, ...]]:
        if body != self.body:
            self.names = catalog_names(json.loads(body))
            self.body = body
        return self.names


CheckKey = tuple[str, str]  # (Node, CheckID)
CheckValue = tuple[str, str, int, str]  # (Status, ServiceName, ModifyIndex, ServiceID)
CheckChange = tuple[CheckKey, CheckValue | None, CheckValue | None]  # key, before, after


def check_rows(elements: Iterable[Any]) -> dict[CheckKey, CheckValue]:
    """``health/state/any`` elements -> (Node, CheckID): what the bridge needs of each check."""
    return {
        (str(c.get("Node")), str(c.get("CheckID"))): (
            str(c.get("Status")),
            str(c.get("ServiceName") or ""),
            int(c.get("ModifyIndex") or 0),
            str(c.get("ServiceID") or ""),
        )
        for c in elements
        if isinstance(c, dict)
    }


class CheckTable:
    """Every check, followed through ``health/state/any`` answers by what changed in them.

    The answer is O(checks) bytes; only the checks whose text changed are parsed
    (see list_delta.py), so a change costs the same at 10 or 10,000 services.
    """

    def __init__(self) -> None:
        self.answers = ListDelta()
        self.checks: dict[CheckKey, CheckValue] = {}
        self.read = False  # a first answer has arrived

    def update(self, body: bytes | bytearray) -> list[CheckChange]:
        """Take the next answer; the checks that appeared, changed or went away."""
        try:
            delta = self.answers.update(body)
        except NotAList as exc:
            raise ConsulReadError(f"health/state/any: {exc}") from None
        self.read = True
        if delta.full:
            before, self.checks = self.checks, check_rows(delta.added)
            return _changes(before, self.checks, before.keys() | self.checks.keys())
        gone, came = check_rows(delta.removed), check_rows(delta.added)
        before = {key: self.checks[key] for key in gone.keys() | came.keys() if key in self.checks}
        for key in gone.keys() - came.keys():
            self.checks.pop(key, None)
        self.checks.update(came)
        return _changes(before, self.checks, gone.keys() | came.keys())


def _nodes(snapshot: ServiceSnapshot) -> tuple[str, ...]:
    return tuple({instance.node: None for instance in snapshot.instances})


def _changes(
    before: dict[CheckKey, CheckValue], after: dict[CheckKey, CheckValue], keys: Iterable[CheckKey]
) -> list[CheckChange]:
    changes = []
    for key in keys:
        old, new = before.get(key), after.get(key)
        if old != new:
            changes.append((key, old, new))
    return changes


class ConsulWatcher:
    """Two blocking queries and a few readers; events arrive on :attr:`events`.

    :meth:`run` runs until cancelled; cancelling it cancels every request in
    flight, which closes its connection at once.
    """

    def __init__(
        self,
        reader: ConsulReader,
        *,
        wait: float = 300.0,
        prefix: str = "kong",
        expose_by_default: bool = False,
        workers: int = FETCH_WORKERS,
        after_answer: Callable[[int], object] | None = None,
    ) -> None:
        self.reader = reader
        self.wait = wait
        # Told each blocking answer's size once it is taken in (the one it replaced is
        # freed by then): the daemon hands freed memory back (process_tuning.FreedMemory).
        self.after_answer = after_answer
        self.filter = None if expose_by_default else opt_in_filter(prefix)
        self.workers = workers
        # Other watchers (the daemon's KV watcher) may put their events here too.
        self.events: asyncio.Queue[Any] = asyncio.Queue()
        self.names: dict[str, tuple[str, ...]] = {}
        self.catalog_index = 0
        self.catalog_reported = False  # the last catalog answer reached the loop as an event
        self.check_table = CheckTable()
        self.state_index = 0
        # service -> the nodes of its instances (a tuple: 48 bytes where a frozenset takes 216)
        self.nodes_of: dict[str, tuple[str, ...]] = {}
        self.service_index: dict[str, int] = {}
        self.disbelieved: dict[str, int] = {}
        self.change_marks: deque[int] = deque(maxlen=4096)  # indexes that checks moved at
        self.state_moved = asyncio.Event()
        self.fetch_queue: asyncio.Queue[str] = asyncio.Queue()
        self.queued: set[str] = set()
        self.in_flight = 0
        self.sweeps = 0
        self.baseline = asyncio.Event()
        self.bulk: asyncio.Task[None] | None = None
        self.bulk_again = False

    @property
    def following_up(self) -> bool:
        """Services are being read (or wait to be) after an answer said they changed."""
        return self.in_flight > 0 or not self.fetch_queue.empty()

    @property
    def open_queries(self) -> int:
        """Requests this watcher may hold open: two watches and the busy readers."""
        return 2 + self.in_flight

    async def run(self) -> None:
        async with asyncio.TaskGroup() as group:
            # Both watches send their first read at once (Consul renders one while we
            # parse the other); the catalog's answer is taken after the checks' (see
            # _catalog_loop), so services are read once both hold an index and a change
            # after either read is caught by its watch.
            group.create_task(self._state_loop(), name="health/state/any")
            group.create_task(self._catalog_loop(), name="catalog/services")
            await self.baseline.wait()
            for number in range(self.workers):
                group.create_task(self._fetch_loop(), name=f"reader-{number}")

    def emit(self, event: Event) -> None:
        self.events.put_nowait(event)

    def fetch(self, names: Iterable[str]) -> None:
        """Queue fresh reads of ``names`` (a name already queued is read once)."""
        for name in names:
            if name not in self.queued:
                self.queued.add(name)
                self.fetch_queue.put_nowait(name)

    def fetch_later(self, name: str, delay: float) -> None:
        asyncio.get_running_loop().call_later(delay, self.fetch, (name,))

    # -- the catalog -----------------------------------------------------------------------

    async def _catalog_loop(self) -> None:
        params = {"filter": self.filter} if self.filter else {}
        watch = _Blocking(self, "/v1/catalog/services", params, CatalogParser())
        doubted_since: float | None = None
        reread_all = False
        while True:
            read = await watch.next()
            if read is None:
                continue
            await self.baseline.wait()  # the first answer waits for the checks' first
            answer, names = read
            if watch.went_backwards:
                # Consul restarted or restored a snapshot: read again from index 0, and then
                # every service, since anything may have changed.
                reread_all = True
                self.emit(WatchDisbelieved("catalog/services", "index reset", time.monotonic()))
                continue
            doubt = self._doubt(names)
            now = time.monotonic()
            doubted_since = (doubted_since or now) if doubt else None
            if doubted_since is not None and now - doubted_since < DOUBT_PATIENCE:
                # Not believed: read again (never block on its index) until an answer is.
                self.emit(WatchDisbelieved("catalog/services", doubt, now))
                log.warning("catalog/services: %s; reading it again", doubt)
                watch.tracker.reset()
                tries = 1 + int((now - doubted_since) / DISBELIEF_CAP)
                await asyncio.sleep(backoff_delay(tries, base=0.2, cap=DISBELIEF_CAP))
                continue
            doubted_since = None
            self._catalog_changed(names, answer.index, reread_all)
            reread_all = False

    def _doubt(self, names: dict[str, tuple[str, ...]]) -> str:
        if self.names and not names:
            return "an empty catalog right after a non-empty one"
        return ""

    def _catalog_changed(
        self, names: dict[str, tuple[str, ...]], index: int, reread_all: bool
    ) -> None:
        previous, moved = self.names, index != self.catalog_index
        self.names, self.catalog_index = names, index
        if names is previous and self.catalog_reported and not reread_all:
            # The same bytes as the last answer (the parser hands back the very same dict):
            # nothing to compare or to report, O(1) at 10,000 services; only a move may need
            # explaining.
            if moved:
                asyncio.get_running_loop().create_task(self._explain(index))
            return
        changed = {n for n in names if previous.get(n) != names[n]}
        self.emit(CatalogSeen(frozenset(names), index, True, time.monotonic()))
        self.catalog_reported = True
        for gone in set(previous) - set(names):
            self.service_index.pop(gone, None)
            self.nodes_of.pop(gone, None)
        if reread_all or not previous:
            self.read_everything()  # the first answer, or an answer after an index reset
        elif changed:
            self.fetch(sorted(changed))
        elif moved and previous == names:
            asyncio.get_running_loop().create_task(self._explain(index))

    async def _explain(self, index: int) -> None:
        """A catalog move with no visible cause: the check watch may explain it, else sweep."""
        deadline = time.monotonic() + EXPLAIN_GRACE
        while not self._explained(index):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self.sweeps += 1
                log.info("catalog index %d moved without a visible cause: re-reading all", index)
                self.read_everything()
                return
            self.state_moved.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.state_moved.wait(), remaining)

    def _explained(self, index: int) -> bool:
        # A registration or deregistration with checks moves a check at the same index
        # (the emulator writes the service and its check at consecutive indexes).
        return any(index <= mark <= index + 1 for mark in self.change_marks)

    # -- the checks ------------------------------------------------------------------------

    async def _state_loop(self) -> None:
        table = self.check_table
        watch = _Blocking(self, "/v1/health/state/any", {}, table.update)
        while True:
            first = not table.read
            read = await watch.next()
            if read is None:
                continue
            answer, changes = read
            if watch.went_backwards:
                self.emit(WatchDisbelieved("health/state/any", "index reset", time.monotonic()))
            self.state_index = answer.index
            if not first:
                self._checks_changed(changes, answer.index)
            self.baseline.set()

    @property
    def checks(self) -> dict[CheckKey, CheckValue] | None:
        """Every check at the last ``health/state/any`` answer (None before the first)."""
        return self.check_table.checks if self.check_table.read else None

    def _checks_changed(self, changes: list[CheckChange], index: int) -> None:
        services: set[str] = set()
        nodes: set[str] = set()
        for key, old, new in changes:
            self.change_marks.append(new[2] if new is not None else index)
            for value in (old, new):
                if value is None:
                    continue
                if value[1]:
                    services.add(value[1])
                else:
                    nodes.add(key[0])  # a node check: every service with an instance there
        if nodes:
            services |= {s for s, on in self.nodes_of.items() if not nodes.isdisjoint(on)}
        self.state_moved.set()
        self.fetch(sorted(services & self.names.keys()))

    # -- reading services ------------------------------------------------------------------

    def read_everything(self) -> None:
        """Re-read every listed service: node by node when there are fewer nodes than services."""
        if self.bulk is not None and not self.bulk.done():
            self.bulk_again = True  # one more after the one under way: coalesced
            return
        self.bulk_again = False
        self.bulk = asyncio.get_running_loop().create_task(self._read_by_node())

    async def _read_by_node(self) -> None:
        try:
            nodes = await self.reader.get("/v1/catalog/nodes")
            names = [str(n.get("Node")) for n in nodes.body if isinstance(n, dict)]
            if len(names) >= len(self.names) or self.checks is None:
                self.fetch(sorted(self.names))
                return
            limit = asyncio.Semaphore(self.workers)

            async def node_services(node: str) -> Any:
                async with limit:
                    path = f"/v1/catalog/node-services/{quote(node, safe='')}"
                    return (await self.reader.get(path)).body

            answers = await asyncio.gather(*(node_services(node) for node in names))
            self._emit_from_nodes([a for a in answers if isinstance(a, dict)], self.checks)
        except (ConsulReadError, ValueError, TypeError, AttributeError) as exc:
            self.report_failure("catalog/node-services", str(exc), 1)
            self.fetch(sorted(self.names))  # one read per service instead
        finally:
            if self.bulk_again:
                self.bulk_again = False
                self.bulk = asyncio.get_running_loop().create_task(self._read_by_node())

    def _emit_from_nodes(self, answers: list[Any], checks: dict[CheckKey, CheckValue]) -> None:
        """``health/service``-shaped entries from node listings and the check table."""
        statuses: dict[tuple[str, str], list[dict[str, str]]] = {}
        for (node_name, _check), (status, _name, _index, service_id) in checks.items():
            statuses.setdefault((node_name, service_id), []).append({"Status": status})
        entries: dict[str, list[dict[str, Any]]] = {name: [] for name in self.names}
        for answer in answers:
            node = answer.get("Node") or {}
            for service in answer.get("Services") or []:
                name = service.get("Service")
                if name not in entries:
                    continue
                host = str(node.get("Node"))
                on_node = statuses.get((host, ""), [])
                own = statuses.get((host, str(service.get("ID"))), [])
                entries[name].append({"Node": node, "Service": service, "Checks": on_node + own})
        now = time.monotonic()
        for name, found in entries.items():
            if not found:
                self.fetch((name,))  # listed, yet on no node we read: ask it directly
                continue
            snapshot = snapshot_from_health(name, 0, found)
            self.nodes_of[name] = _nodes(snapshot)
            self.service_index[name] = 0  # a later per-service answer starts the index over
            self.emit(ServiceSeen(snapshot, True, now))

    async def _fetch_loop(self) -> None:
        while True:
            name = await self.fetch_queue.get()
            self.queued.discard(name)
            if name not in self.names:
                continue  # no longer listed: nothing to read
            self.in_flight += 1
            try:
                await self._read_service(name)
            finally:
                self.in_flight -= 1

    async def _read_service(self, name: str) -> None:
        try:
            answer = await self.reader.get(f"/v1/health/service/{quote(name, safe='')}")
            if not isinstance(answer.body, list):
                raise ConsulReadError(f"health/service/{name}: expected a list")
            snapshot = snapshot_from_health(name, answer.index, answer.body)
        except (ConsulReadError, ValueError, TypeError, AttributeError) as exc:
            tries = self.disbelieved.get(name, 0) + 1
            self.disbelieved[name] = tries
            self.report_failure(f"health/service/{name}", str(exc), tries)
            self.fetch_later(name, backoff_delay(tries))
            return
        doubt = ""
        if answer.index < self.service_index.get(name, 0):
            doubt = "the index went backwards"
            self.service_index[name] = 0  # the next answer starts over
        elif not snapshot.instances and name in self.names:
            doubt = "no instances for a service the catalog lists"
        if doubt:
            tries = self.disbelieved.get(name, 0) + 1
            self.disbelieved[name] = tries
            self.emit(WatchDisbelieved(f"health/service/{name}", doubt, time.monotonic()))
            self.fetch_later(name, backoff_delay(tries, base=0.2, cap=DISBELIEF_CAP))
            return
        self.disbelieved.pop(name, None)
        self.service_index[name] = answer.index
        self.nodes_of[name] = _nodes(snapshot)
        self.emit(ServiceSeen(snapshot, True, time.monotonic()))

    def report_failure(self, what: str, error: str, failures: int) -> None:
        if what == "catalog/services":
            self.catalog_reported = False  # the next good answer is reported, even if unchanged
        self.emit(WatchFailed(what, error, time.monotonic()))
        log.warning("watch %s failed (%d in a row): %s", what, failures, error)


class _Blocking(Generic[T]):
    """One blocking query with Consul's client rules: index, rate limit, backoff on errors."""

    def __init__(
        self,
        watcher: ConsulWatcher,
        path: str,
        params: dict[str, str],
        parse: Callable[[bytes], T],
    ) -> None:
        self.watcher, self.path, self.params, self.parse = watcher, path, params, parse
        self.tracker, self.bucket, self.failures = IndexTracker(), TokenBucket(), 0
        self.went_backwards = False

    async def next(self) -> tuple[Answer, T] | None:
        """The next answer, parsed (None after a failure, already reported and backed off)."""
        await self.bucket.take()
        try:
            answer = await self.watcher.reader.get(
                self.path,
                self.params,
                index=self.tracker.index,
                wait=self.watcher.wait,
                decode=False,  # the parser compares the bytes with the last answer first
            )
            parsed = self.parse(answer.body)
        except (ConsulReadError, ValueError, TypeError, AttributeError) as exc:
            self.failures += 1
            self.tracker.reset()
            self.watcher.report_failure(self.path.removeprefix("/v1/"), str(exc), self.failures)
            await asyncio.sleep(backoff_delay(self.failures))
            return None
        self.failures = 0
        self.went_backwards = self.tracker.update(answer.index)
        if self.watcher.after_answer is not None:
            self.watcher.after_answer(len(answer.body))
        return answer, parsed


async def read_all(
    reader: ConsulReader,
    *,
    prefix: str = "kong",
    expose_by_default: bool = False,
    concurrency: int = FETCH_WORKERS,
) -> tuple[CatalogSeen, list[ServiceSeen]]:
    """One non-blocking read of everything (``sync --once``, ``plan``, ``lint``)."""
    params = {} if expose_by_default else {"filter": opt_in_filter(prefix)}
    answer = await reader.get("/v1/catalog/services", params)
    names = catalog_names(answer.body)
    now = time.monotonic()
    limit = asyncio.Semaphore(concurrency)

    async def one(name: str) -> ServiceSeen:
        async with limit:
            service = await reader.get(f"/v1/health/service/{quote(name, safe='')}")
        snapshot = snapshot_from_health(name, service.index, list(service.body or []))
        return ServiceSeen(snapshot, bool(snapshot.instances), now)

    seen = await asyncio.gather(*(one(name) for name in sorted(names)))
    return CatalogSeen(frozenset(names), answer.index, True, now), list(seen)
