"""Watch the Consul KV keys the convention names (secrets, certificates); emit plain events.

One blocking query per key (``GET /v1/kv/<key>?index=``), with the same index,
rate-limit and backoff rules as the catalog watches (:class:`_Loop`, a thread per key).
A missing key is a value too (``None``): Consul answers 404 with an index, so the
watch blocks until the key appears. Values are secrets: events never show them.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .watch import IndexTracker, TokenBucket, WatchFailed, backoff_delay

log = logging.getLogger("bridge.watch")
ConsulFactory = Callable[[], Any]  # returns a py-consul ``consul.Consul``


class _Loop(threading.Thread):
    """A blocking-query loop with Consul's index, rate-limit and backoff rules."""

    def __init__(
        self, name: str, factory: ConsulFactory, events: queue.Queue[Any], stop: threading.Event
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
            self.global_stop.wait(self.bucket.delay())
            try:
                self.once(client)
                self.failures = 0
            except Exception as exc:  # any failure: report, back off, start over
                self.failures += 1
                self.tracker.reset()
                problem = f"{type(exc).__name__}: {exc}"
                self.events.put(WatchFailed(self.name, problem, time.monotonic()))
                log.warning(
                    "Consul watch failed; backing off",
                    extra={
                        "watch": self.name,
                        "action": "watch",
                        "outcome": "failed",
                        "failures": self.failures,
                        "problem": problem,
                    },
                )
                self.global_stop.wait(backoff_delay(self.failures))

    def once(self, client: Any) -> None:
        raise NotImplementedError


@dataclass(frozen=True)
class KvSeen:
    """The value of one KV key (``None``: no such key)."""

    key: str
    value: str | None = field(repr=False)
    at: float


def _decode(entry: Any) -> str | None:
    if entry is None:
        return None
    raw = entry.get("Value")
    return raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else (raw or "")


def read_kv(client: Any, keys: set[str]) -> dict[str, str | None]:
    """One non-blocking read of each key (``sync --once``, ``plan``, ``lint``)."""
    values: dict[str, str | None] = {}
    for key in sorted(keys):
        _index, entry = client.kv.get(key)
        values[key] = _decode(entry)
    return values


class KvWatch(_Loop):
    """A blocking query on one key; an event each time its value changes."""

    def __init__(
        self,
        key: str,
        factory: ConsulFactory,
        events: queue.Queue[Any],
        stop: threading.Event,
        wait: str,
    ) -> None:
        super().__init__(f"kv/{key}", factory, events, stop)
        self.key = key
        self.wait = wait
        self.kv_events = events  # the watchers' queue, which takes KvSeen too
        self.seen = False
        self.last: str | None = None

    def once(self, client: Any) -> None:
        index, entry = client.kv.get(self.key, index=self.tracker.query, wait=self.wait)
        self.tracker.update(index)
        value = _decode(entry)
        if self.stopped or (self.seen and value == self.last):
            return
        self.seen, self.last = True, value
        self.kv_events.put(KvSeen(self.key, value, time.monotonic()))


class KvWatcher:
    """Keeps one :class:`KvWatch` per key the bridge needs (see :meth:`assign`)."""

    def __init__(
        self,
        factory: ConsulFactory,
        events: queue.Queue[Any],
        stop: threading.Event,
        wait: str = "5m",
    ) -> None:
        self.factory = factory
        self.events = events
        self.stop_event = stop
        self.wait = wait
        self.lock = threading.Lock()
        self.watches: dict[str, KvWatch] = {}

    def assign(self, keys: set[str]) -> None:
        """Watch exactly ``keys`` from now on."""
        with self.lock:
            for key in list(self.watches):
                if key not in keys:
                    self.watches.pop(key).stop()
            for key in sorted(keys - set(self.watches)):
                watch = KvWatch(key, self.factory, self.events, self.stop_event, self.wait)
                self.watches[key] = watch
                watch.start()

    @property
    def count(self) -> int:
        with self.lock:
            return len(self.watches)
