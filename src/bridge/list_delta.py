"""Follow a large JSON list answer by what changed in its text, not by parsing all of it.

At 10,000 services ``/v1/health/state/any`` is about 5 MB of JSON, and every
check change sends all of it again. Consul renders it deterministically (one
memdb index order, one encoder), so two successive answers share everything
but the few elements that changed. :class:`ListDelta` keeps the previous text
and where each element lies in it; a new answer is compared from both ends
(a memory comparison, not a parse), and only the elements in between are
decoded. The result is exactly what a full parse and a comparison would give:
any doubt (the elements do not line up) falls back to a full parse.
"""

from __future__ import annotations

import itertools
import json
from bisect import bisect_left, bisect_right
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

_DECODER = json.JSONDecoder()
_WHITESPACE = b" \t\n\r"
_WHITESPACE_CHARS = " \t\n\r"
_OPEN, _CLOSE = ord("["), ord("]")
# Comparing texts: blocks of bytes compared at once, doubling from the first size (a
# change near either end is found early) up to the largest (the bisection inside the
# block that differs re-reads up to its size).
_FIRST_BLOCK = 1 << 12
_MAX_BLOCK = 1 << 18
# Elements per block of offsets: a change rebuilds about this many offsets and moves
# N / this many block bases (both are a few microseconds at 10,000 elements).
_PER_BLOCK = 64

Text = bytes | bytearray
Span = tuple[int, int]  # where one element starts and ends (exclusive) in the text
Position = tuple[int, int]  # an element: (block, index in the block); (len(blocks), 0) is the end


class NotAList(ValueError):
    """The answer is not a JSON array (the message says what it is)."""


@dataclass(frozen=True)
class Delta:
    """Elements that left the list and elements that joined it since the previous answer.

    An element that changed is in both (its old and its new value). ``full`` is
    True when the whole answer was parsed (the first answer, or a fallback).
    """

    removed: list[Any] = field(default_factory=list)
    added: list[Any] = field(default_factory=list)
    full: bool = False


class ListDelta:
    """The previous answer of one JSON-array endpoint, to diff the next one against.

    It works on the bytes as received: only the changed region is decoded.
    """

    def __init__(self) -> None:
        self.text: Text | None = None
        self.offsets = _Offsets([], [])  # where each element lies in ``text``
        self.full_parses = 0

    def __len__(self) -> int:
        return len(self.offsets)

    def update(self, body: Text | memoryview | str) -> Delta:
        """Take the next answer; raises :class:`NotAList` or ``ValueError`` for bad JSON.

        A ``bytearray`` is kept as it is, not copied (the caller must not change it
        afterwards); a ``memoryview`` is copied.
        """
        if isinstance(body, str):
            text: Text = body.encode("utf-8")
        else:
            text = bytes(body) if isinstance(body, memoryview) else body
        old = self.text
        if old is None:
            return self._parse_whole(text, [])
        if len(text) == len(old) and text == old:
            return Delta()
        try:
            return self._parse_changed(old, text)
        except ValueError:
            previous = [_decode_one(old, s, e) for s, e in self.offsets.spans()]
            return self._parse_whole(text, previous)

    def _parse_whole(self, text: Text, previous: list[Any]) -> Delta:
        self.full_parses += 1
        opening, closing = _brackets(text)
        elements, starts, ends = _elements(
            text, opening + 1, closing, closing=True, after_element=False
        )
        self.text, self.offsets = text, _Offsets(starts, ends)
        return Delta(removed=previous, added=elements, full=True)

    def _parse_changed(self, old: Text, new: Text) -> Delta:
        prefix = _common_prefix(old, new)
        suffix = min(_common_suffix(old, new), len(old) - prefix, len(new) - prefix)
        shift = len(new) - len(old)
        offsets = self.offsets
        # Elements wholly inside the common prefix or suffix are unchanged (same bytes, and
        # the same parser state before them); those in between are parsed on both sides.
        first = offsets.first_ending_after(prefix)
        last = max(first, offsets.first_starting_from(len(old) - suffix))
        before = offsets.end_before(first)
        kept = offsets.start_at(last)
        begin = _brackets(new)[0] + 1 if before is None else before
        stop = _brackets(new)[1] if kept is None else kept + shift
        added, starts, ends = _elements(
            new, begin, stop, closing=kept is None, after_element=before is not None
        )
        removed = [_decode_one(old, s, e) for s, e in offsets.spans(first, last)]
        offsets.replace(first, last, starts, ends, shift)
        self.text = new
        return Delta(removed=removed, added=added)


@dataclass(slots=True)
class _Block:
    """The offsets of consecutive elements, relative to ``base``: when the text before
    them changes length, only ``base`` moves."""

    base: int
    starts: list[int]
    ends: list[int]

    def last_start(self) -> int:
        return self.base + self.starts[-1]

    def last_end(self) -> int:
        return self.base + self.ends[-1]

    def absolute(
        self, begin: int = 0, end: int | None = None, shift: int = 0
    ) -> tuple[list[int], list[int]]:
        base = self.base + shift
        return [s + base for s in self.starts[begin:end]], [e + base for e in self.ends[begin:end]]


class _Offsets:
    """Where each element begins and ends in the text, kept in blocks of about
    :data:`_PER_BLOCK` elements.

    A change of length shifts every later element; with a base per block that is
    O(N / B) bases to move (and O(B) offsets to rebuild) instead of O(N) offsets.
    Every block but a lone one keeps at least half of :data:`_PER_BLOCK` elements.
    """

    def __init__(self, starts: list[int], ends: list[int]) -> None:
        self.blocks = _blocks(starts, ends)
        self.count = len(starts)

    def __len__(self) -> int:
        return self.count

    def first_ending_after(self, offset: int) -> Position:
        """The first element that ends after byte ``offset``."""
        k = bisect_right(self.blocks, offset, key=_Block.last_end)
        if k == len(self.blocks):
            return k, 0
        block = self.blocks[k]
        return k, bisect_right(block.ends, offset - block.base)

    def first_starting_from(self, offset: int) -> Position:
        """The first element that starts at or after byte ``offset``."""
        k = bisect_left(self.blocks, offset, key=_Block.last_start)
        if k == len(self.blocks):
            return k, 0
        block = self.blocks[k]
        return k, bisect_left(block.starts, offset - block.base)

    def end_before(self, at: Position) -> int | None:
        """Where the element before ``at`` ends (None: ``at`` is the first)."""
        k, i = at
        if i:
            return self.blocks[k].base + self.blocks[k].ends[i - 1]
        return self.blocks[k - 1].last_end() if k else None

    def start_at(self, at: Position) -> int | None:
        """Where the element at ``at`` starts (None: ``at`` is the end)."""
        k, i = at
        return None if k == len(self.blocks) else self.blocks[k].base + self.blocks[k].starts[i]

    def spans(self, first: Position = (0, 0), last: Position | None = None) -> list[Span]:
        """(start, end) of the elements from ``first`` up to ``last`` (default: the end)."""
        (k0, i0), (k1, i1) = first, (len(self.blocks), 0) if last is None else last
        spans: list[Span] = []
        for k in range(k0, min(k1 + 1, len(self.blocks))):
            starts, ends = self.blocks[k].absolute(i0 if k == k0 else 0, i1 if k == k1 else None)
            spans += zip(starts, ends, strict=True)
        return spans

    def replace(
        self, first: Position, last: Position, starts: list[int], ends: list[int], shift: int
    ) -> None:
        """Put the elements ``starts``/``ends`` (new offsets) where ``first`` up to ``last``
        were; the elements from ``last`` on move by ``shift`` bytes."""
        blocks = self.blocks
        (k0, i0), (k1, i1) = first, last
        # Rebuilt: the blocks from ``first``'s to ``last``'s, with the elements of theirs
        # that stay (a head before ``first``, a tail from ``last`` on, the tail moved).
        lo, hi = k0, min(k1 + 1, len(blocks))
        head_starts, head_ends = blocks[k0].absolute(0, i0) if i0 else ([], [])
        tail_starts, tail_ends = blocks[k1].absolute(i1, None, shift) if k1 < hi else ([], [])
        starts, ends = head_starts + starts + tail_starts, head_ends + ends + tail_ends
        # Too few for a block of their own: with a neighbour, so blocks never crumble.
        if len(starts) < _PER_BLOCK // 2 and hi < len(blocks):
            more_starts, more_ends = blocks[hi].absolute(shift=shift)
            starts, ends, hi = starts + more_starts, ends + more_ends, hi + 1
        elif len(starts) < _PER_BLOCK // 2 and lo > 0:
            more_starts, more_ends = blocks[lo - 1].absolute()
            starts, ends, lo = more_starts + starts, more_ends + ends, lo - 1
        rebuilt = _blocks(starts, ends)
        self.count += len(starts) - sum(len(block.starts) for block in blocks[lo:hi])
        blocks[lo:hi] = rebuilt
        if shift:
            for block in itertools.islice(blocks, lo + len(rebuilt), None):
                block.base += shift


def _blocks(starts: list[int], ends: list[int]) -> list[_Block]:
    """The offsets cut into equal blocks of at most :data:`_PER_BLOCK` elements."""
    count = len(starts)
    pieces = -(-count // _PER_BLOCK)
    blocks = []
    for n in range(pieces):
        begin, end = count * n // pieces, count * (n + 1) // pieces
        base = starts[begin]
        blocks.append(
            _Block(base, [s - base for s in starts[begin:end]], [e - base for e in ends[begin:end]])
        )
    return blocks


def _decode_one(text: Text, start: int, end: int) -> Any:
    return json.loads(text[start:end])


def _brackets(text: Text) -> tuple[int, int]:
    """The positions of the array's ``[`` and ``]`` (raises :class:`NotAList`)."""
    opening = 0
    while opening < len(text) and text[opening] in _WHITESPACE:
        opening += 1
    closing = len(text) - 1
    while closing > opening and text[closing] in _WHITESPACE:
        closing -= 1
    if opening >= len(text) or text[opening] != _OPEN or closing <= opening:
        raise NotAList(f"expected a JSON array, got {text[opening : opening + 20]!r}")
    if text[closing] != _CLOSE:
        raise NotAList(f"expected a JSON array, got one ending in {text[closing - 19 :]!r}")
    return opening, closing


def _elements(
    text: Text, pos: int, stop: int, *, closing: bool, after_element: bool
) -> tuple[list[Any], list[int], list[int]]:
    """Decode the elements from ``pos`` up to ``stop``: the ``]`` when ``closing``, else
    the start of an element kept from the previous answer (a comma comes before it).

    ``after_element``: ``pos`` is just past an element, so a comma comes first.
    Raises ``ValueError`` when the elements do not end exactly at ``stop``: that
    is how a wrong guess about the previous answer is caught. Only this region
    is decoded; offsets come back as byte offsets into ``text``.
    """
    region = text[pos : stop + 1] if closing else text[pos:stop]
    chars = region.decode("utf-8")
    values, starts, ends = _elements_of(
        chars,
        len(chars) - 1 if closing else len(chars),
        closing=closing,
        after_element=after_element,
    )
    to_bytes = _ByteOffsets(chars, pos, ascii=len(chars) == len(region))
    byte_starts, byte_ends = [], []
    for start, end in zip(starts, ends, strict=True):
        byte_starts.append(to_bytes(start))
        byte_ends.append(to_bytes(end))
    return values, byte_starts, byte_ends


class _ByteOffsets:
    """Character offsets of a decoded region -> byte offsets in the whole answer.

    Asked in increasing order, so a non-ASCII region is encoded once in pieces.
    """

    def __init__(self, chars: str, base: int, *, ascii: bool) -> None:
        self.chars, self.base, self.ascii = chars, base, ascii
        self.char, self.byte = 0, base

    def __call__(self, offset: int) -> int:
        if self.ascii:
            return self.base + offset
        self.byte += len(self.chars[self.char : offset].encode("utf-8"))
        self.char = offset
        return self.byte


def _elements_of(
    chars: str, stop: int, *, closing: bool, after_element: bool
) -> tuple[list[Any], list[int], list[int]]:
    values: list[Any] = []
    starts: list[int] = []
    ends: list[int] = []
    pos = 0
    while True:
        pos = _skip(chars, pos)
        if after_element:
            if closing and pos == stop:
                break
            if pos >= len(chars) or chars[pos] != ",":
                raise ValueError(f"expected ',' at {pos}, got {chars[pos : pos + 20]!r}")
            pos = _skip(chars, pos + 1)
            if not closing and pos == stop:
                break
        elif pos == stop:
            break
        value, end = _DECODER.raw_decode(chars, pos)
        if end > stop:
            raise ValueError("the elements do not line up with the previous answer")
        values.append(value)
        starts.append(pos)
        ends.append(end)
        pos, after_element = end, True
    return values, starts, ends


def _skip(chars: str, pos: int) -> int:
    while pos < len(chars) and chars[pos] in _WHITESPACE_CHARS:
        pos += 1
    return pos


def _common_prefix(a: Text, b: Text) -> int:
    """How many bytes ``a`` and ``b`` share from their start."""
    view = memoryview(b)
    return _common_run(a, b, lambda done, step: a.startswith(view[done : done + step], done))


def _common_suffix(a: Text, b: Text) -> int:
    """How many bytes ``a`` and ``b`` share from their end."""
    view, end_a, end_b = memoryview(b), len(a), len(b)
    return _common_run(
        a,
        b,
        lambda done, step: a.startswith(
            view[end_b - done - step : end_b - done], end_a - done - step
        ),
    )


def _common_run(a: Text, b: Text, same: Callable[[int, int], bool]) -> int:
    """How long ``a`` and ``b`` agree, ``same(done, step)`` comparing the ``step`` bytes
    after the first ``done`` from one end: blocks that double in size (a difference near
    the end is found early, one far away in few steps), then a bisection inside the
    first block that differs. ``startswith`` against a memoryview compares in place (one
    ``memcmp``); slicing both texts would copy, and comparing memoryviews goes byte by byte.
    """
    limit = min(len(a), len(b))
    done, step = 0, _FIRST_BLOCK
    while done < limit:
        step = min(step, limit - done)
        if same(done, step):
            done, step = done + step, min(step * 2, _MAX_BLOCK)
            continue
        while step > 1:  # the first difference lies in [done, done + step)
            half = step // 2
            if same(done, half):
                done, step = done + half, step - half
            else:
                step = half
        return done
    return limit
