"""Rendered answers of the catalog and health list reads, shared until the catalog changes.

At 10,000 services, building ``health/state/any`` (every check, about 5 MB of JSON)
costs far more than serving it; real Consul reads memdb in Go. One change wakes
every blocked watcher, and each would rebuild the same body: here the first one
builds and serializes it, the others reuse those bytes.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any

from .query import Query
from .web import Row

# Parameters that never change a body: the blocking position and the credentials
# (the token matters only through "anonymous", which is part of the key).
_NOT_IN_KEY = frozenset({"index", "wait", "token"})
CACHED_ANSWERS = 8  # the last few (endpoint, options) pairs: watchers ask the same few


def answer_key(path: str, q: Query, anonymous: bool) -> Hashable:
    """What a body depends on besides the catalog: the endpoint, its options, the ACL view."""
    options = tuple((k, v) for k, v in q.params.multi_items() if k not in _NOT_IN_KEY)
    return (path, options, anonymous)


@dataclass(frozen=True)
class Answer:
    version: int  # the catalog's version it was built from
    index: int
    body: bytes


class AnswerCache:
    """The last few rendered answers, each valid while the catalog's version stays put."""

    def __init__(self, size: int = CACHED_ANSWERS) -> None:
        self.size = size
        self._answers: OrderedDict[Hashable, Answer] = OrderedDict()
        self.hits = 0
        self.builds = 0

    def get_or_build(
        self, key: Hashable, version: int, build: Callable[[], tuple[int, bytes]]
    ) -> tuple[int, bytes]:
        answer = self._answers.get(key)
        if answer is not None and answer.version == version:
            self._answers.move_to_end(key)
            self.hits += 1
            return answer.index, answer.body
        index, body = build()
        self.builds += 1
        self._answers[key] = Answer(version, index, body)
        self._answers.move_to_end(key)
        while len(self._answers) > self.size:
            self._answers.popitem(last=False)
        return index, body

    def clear(self) -> None:
        self._answers.clear()


@dataclass(frozen=True)
class RawJSON:
    """A payload already rendered (compact): the answer's body as is."""

    body: bytes


class CheckFragments:
    """The compact JSON of each check row, kept while the row is unchanged.

    A check write replaces its row, so one change re-renders one check, not 10,000.
    Rows change in place only in their Output (no index bump) and in their indexes
    (a snapshot restore lowers them): those are part of the stamp.
    """

    def __init__(self, render: Callable[[Row], bytes]) -> None:
        self._render = render
        self._fragments: dict[int, tuple[Row, tuple[Any, ...], bytes]] = {}

    def render_list(self, rows: list[Row]) -> RawJSON:
        if len(self._fragments) > 2 * len(rows) + 1024:
            self._fragments.clear()  # rows long gone; the next lists re-render once
        parts = []
        for row in rows:
            stamp = (row["CreateIndex"], row["ModifyIndex"], row["Output"])
            cached = self._fragments.get(id(row))
            # Holding the row keeps its id from being reused by another object.
            if cached is None or cached[0] is not row or cached[1] != stamp:
                cached = (row, stamp, self._render(row))
                self._fragments[id(row)] = cached
            parts.append(cached[2])
        return RawJSON(b"[" + b",".join(parts) + b"]")


FILTERS_KEPT = 4  # the opt-in filter of a bridge or two


class FilterMatches:
    """Whether each (node, service) row matched a ``?filter=``, kept while both are unchanged.

    Rows are replaced on a write; a snapshot restore lowers indexes in place, so the
    indexes are part of the stamp. One change re-evaluates one row, not 10,000.
    """

    def __init__(self) -> None:
        self._by_filter: OrderedDict[str, dict[int, tuple[Row, Row, tuple[Any, ...], bool]]]
        self._by_filter = OrderedDict()

    def matches(
        self, text: str, node: Row, svc: Row, evaluate: Callable[[Row, Row], bool], total: int
    ) -> bool:
        seen = self._by_filter.get(text)
        if seen is None or len(seen) > 2 * total + 1024:
            seen = self._by_filter[text] = {}
            while len(self._by_filter) > FILTERS_KEPT:
                self._by_filter.popitem(last=False)
        stamp = (svc["CreateIndex"], svc["ModifyIndex"], node["CreateIndex"], node["ModifyIndex"])
        cached = seen.get(id(svc))
        # Holding both rows keeps their ids from being reused by other objects.
        if cached is None or cached[0] is not svc or cached[1] is not node or cached[2] != stamp:
            cached = (svc, node, stamp, evaluate(node, svc))
            seen[id(svc)] = cached
        return cached[3]
