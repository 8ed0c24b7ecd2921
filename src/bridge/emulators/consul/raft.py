"""The index clock and the watchers that blocking queries sleep on.

Consul wakes a blocking query when something it read changes (memdb watch
sets). Here each query names the *watch keys* it depends on (``("service",
"web")``, ``("table", "services")``, ``("kv", "a/b")``...) and a write notifies
exactly the keys it touched, so one change wakes only the watchers whose
index can have moved.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from collections.abc import Iterable, Iterator

WatchKey = tuple[str, str]


class Watchers:
    """Futures keyed by what they watch; KV prefixes match by ``startswith``."""

    def __init__(self) -> None:
        self._by_key: dict[WatchKey, set[asyncio.Future[None]]] = defaultdict(set)
        self._by_prefix: dict[str, set[asyncio.Future[None]]] = defaultdict(set)
        self.wakeups = 0

    def register(
        self, keys: Iterable[WatchKey], prefixes: Iterable[str] = ()
    ) -> asyncio.Future[None]:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        for key in keys:
            self._by_key[key].add(future)
        for prefix in prefixes:
            self._by_prefix[prefix].add(future)
        return future

    def unregister(
        self, future: asyncio.Future[None], keys: Iterable[WatchKey], prefixes: Iterable[str] = ()
    ) -> None:
        for key in keys:
            waiting = self._by_key.get(key)
            if waiting is not None:
                waiting.discard(future)
                if not waiting:
                    del self._by_key[key]
        for prefix in prefixes:
            waiting = self._by_prefix.get(prefix)
            if waiting is not None:
                waiting.discard(future)
                if not waiting:
                    del self._by_prefix[prefix]

    def _wake(self, futures: Iterable[asyncio.Future[None]]) -> None:
        for future in list(futures):
            if not future.done():
                future.set_result(None)
                self.wakeups += 1

    def notify(self, keys: Iterable[WatchKey]) -> None:
        for key in keys:
            self._wake(self._by_key.get(key, ()))

    def notify_kv(self, key: str) -> None:
        self._wake(self._by_key.get(("kv", key), ()))
        for prefix, futures in list(self._by_prefix.items()):
            if key.startswith(prefix):
                self._wake(futures)

    def notify_all(self) -> None:
        """A snapshot restore: every blocked query returns."""
        for futures in list(self._by_key.values()) + list(self._by_prefix.values()):
            self._wake(futures)

    @property
    def waiting(self) -> int:
        futures: set[asyncio.Future[None]] = set()
        for group in list(self._by_key.values()) + list(self._by_prefix.values()):
            futures |= group
        return sum(not f.done() for f in futures)


class Raft:
    """The cluster's index: every write takes the next one."""

    def __init__(self) -> None:
        self.index = 1
        self.watchers = Watchers()
        self.pending: set[WatchKey] = set()
        self.pending_kv: set[str] = set()
        self._batch: int | None = None  # inside one_entry(): 0 until the first write

    def next_index(self) -> int:
        if self._batch:
            return self._batch
        self.index += 1
        if self._batch is not None:
            self._batch = self.index
        return self.index

    @contextlib.contextmanager
    def one_entry(self) -> Iterator[None]:
        """Every write inside takes the same index, as the ops of one Raft log entry (a txn)."""
        self._batch = 0
        try:
            yield
        finally:
            self._batch = None

    def discard(self, index: int) -> None:
        """Forget the writes since ``index`` (a transaction that rolled back)."""
        self.index = index
        self.pending.clear()
        self.pending_kv.clear()

    def touch(self, *keys: WatchKey) -> None:
        self.pending.update(keys)

    def touch_kv(self, key: str) -> None:
        self.pending_kv.add(key)

    def commit(self) -> None:
        """Wake the watchers of everything touched since the last commit."""
        keys, self.pending = self.pending, set()
        kv_keys, self.pending_kv = self.pending_kv, set()
        self.watchers.notify(keys)
        for key in kv_keys:
            self.watchers.notify_kv(key)
