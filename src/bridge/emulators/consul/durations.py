"""Go's ``time.ParseDuration`` (``"10s"``, ``"1m30s"``, ``"300ms"``), as Consul parses ``wait``."""

from __future__ import annotations

import re

_UNITS = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,
    "μs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}
_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")


class DurationError(ValueError):
    """Not a Go duration."""


def parse_duration(text: str) -> float:
    """Seconds in a Go duration string; a bare number other than ``0`` is an error, as in Go."""
    raw = text.strip()
    sign = 1.0
    if raw[:1] in "+-" and raw:
        sign = -1.0 if raw[0] == "-" else 1.0
        raw = raw[1:]
    if raw == "0":
        return 0.0
    if not raw:
        raise DurationError(f"invalid duration {text!r}")
    position, total = 0, 0.0
    while position < len(raw):
        match = _PART.match(raw, position)
        if match is None:
            raise DurationError(f"invalid duration {text!r}")
        total += float(match.group(1)) * _UNITS[match.group(2)]
        position = match.end()
    return sign * total


def format_duration(seconds: float) -> str:
    """Go's ``Duration.String()``: ``10ns``, ``1.5µs``, ``300ms``, ``1m30s``, ``1h0m0s``."""
    nanos = round(seconds * 1e9)
    sign, nanos = ("-" if nanos < 0 else ""), abs(nanos)
    if nanos == 0:
        return "0s"
    if nanos < 1_000:
        return f"{sign}{nanos}ns"
    if nanos < 1_000_000:
        return f"{sign}{_with_fraction(nanos, 3)}µs"
    if nanos < 1_000_000_000:
        return f"{sign}{_with_fraction(nanos, 6)}ms"
    total, _ = divmod(nanos, 1_000_000_000)
    text = f"{_with_fraction(nanos, 9, modulo=60)}s"
    minutes = total // 60
    if minutes:
        text = f"{minutes % 60}m{text}"
        if minutes >= 60:
            text = f"{minutes // 60}h{text}"
    return sign + text


def _with_fraction(value: int, digits: int, modulo: int | None = None) -> str:
    """``value / 10**digits`` written as Go's fmtFrac and fmtInt do: no trailing zeros,
    no point for a whole number (the whole part taken ``% modulo`` when given)."""
    whole, fraction = divmod(value, 10**digits)
    if modulo is not None:
        whole %= modulo
    tail = f"{fraction:0{digits}d}".rstrip("0")
    return f"{whole}.{tail}" if tail else str(whole)
