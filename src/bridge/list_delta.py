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

import json
from bisect import bisect_left, bisect_right
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

_DECODER = json.JSONDecoder()
_WHITESPACE = b" \t\n\r"
_WHITESPACE_CHARS = " \t\n\r"
_OPEN, _CLOSE = ord("["), ord("]")
_BLOCK = 1 << 16  # compared at once when looking for the first difference


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
        self.text: bytes | None = None
        self.starts: list[int] = []  # where each element begins in ``text`` (byte offsets)
        self.ends: list[int] = []  # and where it ends (exclusive)
        self.full_parses = 0

    def __len__(self) -> int:
        return len(self.starts)

    def update(self, body: bytes | str) -> Delta:
        """Take the next answer; raises :class:`NotAList` or ``ValueError`` for bad JSON."""
        text = body.encode("utf-8") if isinstance(body, str) else bytes(body)
        old = self.text
        if old is None:
            return self._parse_whole(text, [])
        if len(text) == len(old) and text == old:
            return Delta()
        try:
            return self._parse_changed(old, text)
        except ValueError:
            previous = [_decode_one(old, s, e) for s, e in zip(self.starts, self.ends, strict=True)]
            return self._parse_whole(text, previous)

    def _parse_whole(self, text: bytes, previous: list[Any]) -> Delta:
        self.full_parses += 1
        opening, closing = _brackets(text)
        elements, starts, ends = _elements(
            text, opening + 1, closing, closing=True, after_element=False
        )
        self.text, self.starts, self.ends = text, starts, ends
        return Delta(removed=previous, added=elements, full=True)

    def _parse_changed(self, old: bytes, new: bytes) -> Delta:
        prefix = _common_prefix(old, new)
        suffix = min(_common_suffix(old, new), len(old) - prefix, len(new) - prefix)
        shift = len(new) - len(old)
        # Elements wholly inside the common prefix or suffix are unchanged (same bytes, and
        # the same parser state before them); those in between are parsed on both sides.
        first = bisect_right(self.ends, prefix)
        last = max(first, bisect_left(self.starts, len(old) - suffix))
        begin = self.ends[first - 1] if first else _brackets(new)[0] + 1
        kept_tail = last < len(self.starts)
        stop = self.starts[last] + shift if kept_tail else _brackets(new)[1]
        added, starts, ends = _elements(
            new, begin, stop, closing=not kept_tail, after_element=first > 0
        )
        removed = [
            _decode_one(old, s, e)
            for s, e in zip(self.starts[first:last], self.ends[first:last], strict=True)
        ]
        tail_starts, tail_ends = self.starts[last:], self.ends[last:]
        if shift:
            tail_starts = [s + shift for s in tail_starts]
            tail_ends = [e + shift for e in tail_ends]
        self.starts = self.starts[:first] + starts + tail_starts
        self.ends = self.ends[:first] + ends + tail_ends
        self.text = new
        return Delta(removed=removed, added=added)


def _decode_one(text: bytes, start: int, end: int) -> Any:
    return json.loads(text[start:end])


def _brackets(text: bytes) -> tuple[int, int]:
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
    text: bytes, pos: int, stop: int, *, closing: bool, after_element: bool
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


def _common_prefix(a: bytes, b: bytes) -> int:
    return _common_run(a, b, lambda text, start, stop: text[start:stop])


def _common_suffix(a: bytes, b: bytes) -> int:
    return _common_run(a, b, lambda text, start, stop: text[len(text) - stop : len(text) - start])


def _common_run(a: bytes, b: bytes, piece: Callable[[bytes, int, int], bytes]) -> int:
    """How long ``a`` and ``b`` agree, ``piece(text, start, stop)`` reading from one end:
    whole blocks compared at once, then a bisection inside the first that differs."""
    limit = min(len(a), len(b))
    done = 0
    while done < limit:
        step = min(_BLOCK, limit - done)
        if piece(a, done, done + step) == piece(b, done, done + step):
            done += step
            continue
        while step > 1:  # the first difference lies in [done, done + step)
            half = step // 2
            if piece(a, done, done + half) == piece(b, done, done + half):
                done, step = done + half, step - half
            else:
                step = half
        return done
    return limit
