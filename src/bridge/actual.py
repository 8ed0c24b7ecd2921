"""What Kong holds that is ours: entities carrying our owner tag, grouped by Consul service."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Collection, Iterator
from dataclasses import dataclass, field
from typing import Any

from .desired import owner_tag
from .kong import AsyncKongClient, Pace
from .kong.calls import Call, Flow
from .kong.calls import segment as seg
from .kong.flows import paginate
from .kong.shapes import identify
from .mapping import SERVICE_TAG_PREFIX
from .plugins_actual import read_owned_extras

Row = dict[str, Any]
KINDS = ("services", "routes", "upstreams", "targets", "plugins", "certificates")


@dataclass(slots=True)
class OwnedService:
    """Kong's entities for one Consul service, by name (targets by ``host:port``)."""

    service: Row | None = None
    routes: dict[str, Row] = field(default_factory=dict)
    upstream: Row | None = None
    targets: dict[str, Row] = field(default_factory=dict)
    plugins: dict[tuple[str, str], Row] = field(default_factory=dict)  # (route, name)
    certificate: Row | None = None

    def add_rows_by_id(self, rows: dict[str, Row]) -> None:
        """Put this service's rows into ``rows``, by Kong id."""
        for row in (self.service, self.upstream, *self.routes.values()):
            if row is not None and "id" in row:
                rows[row["id"]] = row
        rows.update((row["id"], row) for row in self.targets.values() if "id" in row)

    def entity_count(self) -> int:
        return sum(self.counts().values())

    def counts(self) -> dict[str, int]:
        """How many entities of each kind (the keys of :data:`KINDS`)."""
        return {
            "services": int(bool(self.service)),
            "routes": len(self.routes),
            "upstreams": int(bool(self.upstream)),
            "targets": len(self.targets),
            "plugins": len(self.plugins),
            "certificates": int(bool(self.certificate)),
        }


class RowPool:
    """Shares equal field values between the Kong rows we hold.

    At 10,000 services most of a row repeats from one entity to the next (an
    upstream's default ``healthchecks`` alone is some sixty objects; timeouts,
    protocols, tag strings), yet each decoded row holds its own copies. A row
    kept through :meth:`keep` points at one shared copy of each value instead.
    Shared values are never mutated: rows are replaced, not edited, when Kong
    changes. The pool forgets everything past ``limit`` entries, so values that
    never repeat (one-off lists, parent references) cannot make it grow unbounded.
    """

    def __init__(self, limit: int = 4096, reuse: dict[str, Row] | None = None) -> None:
        self.limit = limit
        self._strings: dict[str, str] = {}
        self._values: dict[object, Any] = {}
        # Rows held from the previous read, by id: an unchanged row is kept as the same
        # object, so a re-read of 10,000 services does not hold two copies at its peak.
        self.reuse = reuse or {}

    def keep(self, row: Row) -> Row:
        """A Kong row as we hold it: no null fields, no timestamps, shared values."""
        kept = {k: v for k, v in row.items() if v is not None and k not in UNUSED_FIELDS}
        ident = kept.get("id")
        before = self.reuse.get(ident) if isinstance(ident, str) else None
        if before is not None and before == kept:
            return before
        return {sys.intern(k): v if k == "id" else self.share(v) for k, v in kept.items()}

    def share(self, value: Any) -> Any:
        """One shared copy of ``value`` (strings, numbers and containers)."""
        kind = type(value)
        if kind is str:  # not sys.intern: its table would keep growing with one-off strings
            if len(self._strings) >= self.limit:
                self._strings.clear()
            return self._strings.setdefault(value, value)
        if value is None or kind is bool:
            return value
        # (type, value): True == 1 == 1.0, yet Kong must get back the type it sent.
        key: object = (kind, value) if kind in (int, float) else _container_key(value)
        found = self._values.get(key)
        if found is not None:
            return found
        if kind is list:
            value = [self.share(item) for item in value]
        elif kind is dict:
            value = {sys.intern(k): self.share(v) for k, v in value.items()}
        if len(self._values) >= self.limit:
            self._values.clear()
        self._values[key] = value
        return value


def _container_key(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


# Fields no diff or declarative render ever reads; at 10,000 services they cost megabytes.
# A target's reference to its upstream ({"id": ...}): it is held under its upstream
# already, no desired body names it, and the declarative render drops it (10,000 dicts
# and ids). A route's "service" stays: the diff moves a route back to its service.
UNUSED_FIELDS = frozenset({"created_at", "updated_at", "upstream"})


@dataclass
class KongState:
    """Everything we own in Kong, keyed by Consul service name.

    ``pool`` shares the values of the rows held (see :class:`RowPool`): every
    row goes in through ``pool.keep``.
    """

    services: dict[str, OwnedService] = field(default_factory=dict)
    pool: RowPool = field(default_factory=RowPool, compare=False, repr=False)

    def of(self, name: str) -> OwnedService:
        return self.services.setdefault(name, OwnedService())

    def counts(self) -> dict[str, int]:
        """How many entities of each kind we own (O(services): at a read, not every turn)."""
        total = dict.fromkeys(KINDS, 0)
        for owned in self.services.values():
            for kind, count in owned.counts().items():
                total[kind] += count
        return total

    def counts_of(self, name: str) -> dict[str, int]:
        """:meth:`OwnedService.counts` of one service (zeros when we own nothing of it)."""
        owned = self.services.get(name)
        return owned.counts() if owned is not None else dict.fromkeys(KINDS, 0)


class OwnedNames(Collection[str]):
    """The services we own a Kong service of, as a view of a :class:`KongState`.

    The deletion guard asks it for its size and about a few names at every
    plan; a copy would be O(services) per change (5 ms at 10,000). ``count`` is
    the size, kept up to date by the caller as it writes.
    """

    def __init__(self, state: KongState, count: int) -> None:
        self.state, self.count = state, count

    def __contains__(self, name: object) -> bool:
        owned = self.state.services.get(name) if isinstance(name, str) else None
        return owned is not None and owned.service is not None

    def __len__(self) -> int:
        return self.count

    def __iter__(self) -> Iterator[str]:
        return (name for name in self.state.services if name in self)


def consul_name(row: Row) -> str | None:
    for tag in row.get("tags") or []:
        if tag.startswith(SERVICE_TAG_PREFIX):
            return str(tag[len(SERVICE_TAG_PREFIX) :])
    return None


def owned_rows(
    state: KongState, services: list[Row], routes: list[Row], upstreams: list[Row]
) -> list[tuple[OwnedService, Row]]:
    """Fill ``state`` from tag-filtered lists (rows already through ``state.pool.keep``);
    returns the upstreams whose targets to read."""
    for row in services:
        name = consul_name(row)
        if name:
            state.of(name).service = row
    for row in routes:
        name = consul_name(row)
        if name:
            state.of(name).routes[row["name"]] = row
    pending = []
    for row in upstreams:
        name = consul_name(row)
        if name:
            owned = state.of(name)
            owned.upstream = row
            pending.append((owned, row))
    return pending


def own_targets(targets: list[Row], tag: str, pool: RowPool) -> dict[str, Row]:
    return {t["target"]: pool.keep(t) for t in targets if tag in (t.get("tags") or [])}


def read_owned(owner: str) -> Flow[KongState]:
    """Read our entities with tag filters (targets: per owned upstream, filtered here)."""
    tag = owner_tag(owner)
    state = KongState()
    keep = state.pool.keep
    services = yield from paginate("/services", {"tags": tag}, keep)
    routes = yield from paginate("/routes", {"tags": tag}, keep)
    upstreams = yield from paginate("/upstreams", {"tags": tag}, keep)
    for owned, row in owned_rows(state, services, routes, upstreams):
        targets = yield from paginate(f"/upstreams/{seg(row['id'])}/targets")
        owned.targets = own_targets(targets, tag, state.pool)
    yield from read_owned_extras(tag, state, consul_name)
    return state


async def read_owned_concurrently(
    kong: AsyncKongClient,
    owner: str,
    concurrency: int = 8,
    previous: KongState | None = None,
    page_size: int = 1000,
    pace: Pace | None = None,
) -> KongState:
    """:func:`read_owned` with each page retried on its own and targets read in parallel.

    Kong has no tag-filtered list of targets, so they are read per owned
    upstream: the reads are proportional to what we own, ``concurrency`` at a time.
    Rows unchanged since ``previous`` are kept as the objects ``previous`` holds.
    Each page is decoded and kept in one go: smaller pages hold the loop for less.

    ``pace`` makes it a background read, which leaves the loop (and the CPU,
    and Kong) to incremental changes: the lists are read one after the other,
    every reader rests after each read as ``pace`` says (and gives way to the
    changes being served), and the steps that go over every service are cut
    into slices with a yield between (at 10,000 services each would otherwise
    hold the loop for 50 ms).
    """
    tag = owner_tag(owner)
    slice_size = SLICE if pace is not None else 0  # a background read yields between slices
    reuse = await _rows_by_id(previous, slice_size) if previous else None
    state = KongState(pool=RowPool(reuse=reuse))
    keep = state.pool.keep  # page by page: the decoded pages never pile up

    def read_list(path: str) -> Awaitable[list[Row]]:
        return kong.run(paginate(path, {"tags": tag}, keep, page_size), per_call=True, pace=pace)

    paths = ("/services", "/routes", "/upstreams")
    if pace is not None:
        services, routes, upstreams = [await read_list(path) for path in paths]
    else:
        services, routes, upstreams = await asyncio.gather(*map(read_list, paths))
    pending: list[tuple[OwnedService, Row]] = []
    for rows in _slices(services, routes, upstreams, slice_size):
        pending += owned_rows(state, *rows)
        await asyncio.sleep(0)
    upstreams_left = iter(pending)

    async def read_targets() -> None:
        # A few workers share one iterator: not one task per upstream (10,000 tasks
        # waiting on a semaphore are megabytes at the read's peak).
        for owned, row in upstreams_left:
            path = f"/upstreams/{seg(row['id'])}/targets"
            rows = await kong.run(paginate(path), per_call=True, pace=pace)
            owned.targets = own_targets(rows, tag, state.pool)

    await asyncio.gather(*(read_targets() for _ in range(max(1, concurrency))))
    await kong.run(read_owned_extras(tag, state, consul_name), per_call=True)
    state.pool.reuse = {}  # the previous read's rows are no longer ours to hold
    return state


SLICE = 250  # services (or rows) a background read goes over between two yields


async def _rows_by_id(previous: KongState, slice_size: int) -> dict[str, Row]:
    """Our services, routes, upstreams and targets, by Kong id (to seed a re-read),
    yielding every ``slice_size`` services (0: never)."""
    rows: dict[str, Row] = {}
    services = list(previous.services.values())  # writes may add services meanwhile
    for number, owned in enumerate(services, 1):
        owned.add_rows_by_id(rows)
        if slice_size and number % slice_size == 0:
            await asyncio.sleep(0)
    return rows


def _slices(
    services: list[Row], routes: list[Row], upstreams: list[Row], size: int
) -> Iterator[tuple[list[Row], list[Row], list[Row]]]:
    """The three lists in slices of ``size`` rows, one kind at a time (0: all at once)."""
    if not size:
        yield services, routes, upstreams
        return
    for start in range(0, len(services), size):
        yield services[start : start + size], [], []
    for start in range(0, len(routes), size):
        yield [], routes[start : start + size], []
    for start in range(0, len(upstreams), size):
        yield [], [], upstreams[start : start + size]


def read_database() -> Flow[str]:
    """Kong's ``configuration.database`` (``off``: DB-less, writes go to /config).

    Raises :class:`~bridge.kong.KongBadAnswer` when the server is not Kong 3.x.
    """
    call = Call("GET", "/")
    return identify(call, (yield call)).database


def read_clash(kind: str, name: str) -> Flow[Row | None]:
    """The entity of that name, if any (used by ``plan`` to report clashes)."""
    reply = yield Call("GET", f"/{kind}/{seg(name)}")
    return reply.body if reply.status == 200 else None
