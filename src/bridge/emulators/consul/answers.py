"""Rendered answers of the catalog and health list reads, shared until the catalog changes.

At 10,000 services, building ``health/state/any`` (every check, about 5 MB of JSON)
costs far more than serving it; real Consul reads memdb in Go. One change wakes
every blocked watcher, and each would rebuild the same body: here the first one
builds and serializes it, the others reuse those bytes.
"""

from __future__ import annotations

import bisect
import json
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable
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


class AllChecks:
    """``health/state/any``'s body, re-rendered one changed check at a time.

    At 10,000 checks even looking at every row per change is the cost that
    matters: the catalog names the checks written or removed since the last
    render, and each is re-rendered, inserted or dropped in place (its
    position found by bisection in the (node, CheckID) order kept here). The
    body's pieces are kept with their brackets and commas, so rendering it is
    one join: one copy of 5 MB, not three.
    """

    def __init__(self, render: Callable[[Row], bytes]) -> None:
        self._render = render
        self._restores = -1  # the catalog's restore count when ``_keys`` was built
        self._keys: list[Any] = []  # every check key, in order
        self._pieces: list[bytes] = [b"[", b"]"]  # "[", check 0, ",", check 1, ..., "]"

    def render(self, catalog: Any) -> RawJSON:
        changed = catalog.take_changed_checks()
        checks = catalog.checks
        if self._restores == catalog.restores:
            for key in changed:
                self._follow(key, checks.get(key))
        if self._restores != catalog.restores or len(self._keys) != len(checks):
            self._rebuild(catalog)  # the first render, or rows put back wholesale
        return RawJSON(b"".join(self._pieces))

    def _rebuild(self, catalog: Any) -> None:
        self._restores = catalog.restores
        self._keys = list(catalog.check_order())
        self._pieces = [b"["]
        for key in self._keys:
            self._pieces += (self._render(catalog.checks[key]), b",")
        if self._keys:
            self._pieces[-1] = b"]"  # in place of the last comma
        else:
            self._pieces.append(b"]")

    def _follow(self, key: Any, row: Row | None) -> None:
        at = bisect.bisect_left(self._keys, key)
        present = at < len(self._keys) and self._keys[at] == key
        piece = 1 + 2 * at  # where check ``at`` is in ``_pieces``
        if row is None:
            if present:
                self._drop(at, piece)
        elif present:
            self._pieces[piece] = self._render(row)
        else:
            self._insert(at, piece, key, self._render(row))

    def _drop(self, at: int, piece: int) -> None:
        del self._keys[at]
        if not self._keys:
            del self._pieces[piece]  # "[", check, "]"
        elif at < len(self._keys):
            del self._pieces[piece : piece + 2]  # the check and the comma after it
        else:
            del self._pieces[piece - 1 : piece + 1]  # the last check and the comma before it

    def _insert(self, at: int, piece: int, key: Any, rendered: bytes) -> None:
        self._keys.insert(at, key)
        if len(self._keys) == 1:
            self._pieces.insert(piece, rendered)
        elif at < len(self._keys) - 1:
            self._pieces[piece:piece] = [rendered, b","]  # before the check that was at ``at``
        else:
            self._pieces[piece - 1 : piece - 1] = [b",", rendered]  # before the "]"


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


NameTags = dict[str, list[str]]


class FilteredNames:
    """``catalog/services`` under a ``?filter=`` or ``?node-meta=``, kept service by service.

    A service's tags are computed again only when its index moved past the last
    answer (any write to one of its instances or their checks moves it), and
    each service's JSON is kept, so one registration at 10,000 services costs
    one service's instances and a join, not a filter over every instance. The
    caller's ``stamp`` covers what a service index does not (a nodes-table
    write, whose fields a filter may read; a restore): then it starts over.
    """

    def __init__(self) -> None:
        self._by_query: OrderedDict[Hashable, _Names] = OrderedDict()

    def answer(
        self,
        query: Hashable,
        stamp: Hashable,
        moved_since: Callable[[int], Iterable[str]],
        upto: int,
        tags_of: Callable[[str], list[str] | None],
    ) -> _Names:
        """The answer for ``query`` once every service that ``moved_since`` the last
        answer's index (up to ``upto``, the current index) is computed again with
        ``tags_of`` (None: no instance matches)."""
        names = self._by_query.get(query)
        if names is None or names.stamp != stamp:
            names = self._by_query[query] = _Names(stamp)
            while len(self._by_query) > FILTERS_KEPT:
                self._by_query.popitem(last=False)
        self._by_query.move_to_end(query)
        since, names.upto = names.upto, upto
        for name in moved_since(since):
            names.put(name, tags_of(name))
        return names


class _Names:
    """One query's answer: name -> tags in name order, and each entry's JSON."""

    def __init__(self, stamp: Hashable) -> None:
        self.stamp = stamp
        self.upto = -1
        self.tags: NameTags = {}
        self._fragments: dict[str, bytes] = {}
        self._sorted = True
        self._body: bytes | None = None

    def put(self, name: str, tags: list[str] | None) -> None:
        if tags is None:
            if self.tags.pop(name, None) is not None:
                del self._fragments[name]
                self._body = None
            return
        if self.tags.get(name) == tags:
            return  # most moves (an instance added, a check changed) leave the tags as they were
        self._body = None
        if name not in self.tags:
            self._sorted = False
        self.tags[name] = tags
        self._fragments[name] = json.dumps({name: tags}, separators=(",", ":")).encode()[1:-1]

    def ordered(self) -> NameTags:
        if not self._sorted:
            self.tags = dict(sorted(self.tags.items()))
            self._sorted = True
        return self.tags

    def body(self) -> RawJSON:
        if self._body is None:
            self._body = b"{" + b",".join(self._fragments[n] for n in self.ordered()) + b"}"
        return RawJSON(self._body)
