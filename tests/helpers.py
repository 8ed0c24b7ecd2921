"""Helpers shared by the test modules."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx


def eventually(condition: Callable[[], Any], timeout: float = 15.0, what: str = "") -> Any:
    """Poll until ``condition()`` is truthy (the bridge converges on its own time)."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = condition()
        except httpx.TransportError as exc:
            last = exc
        if last and not isinstance(last, Exception):
            return last
        time.sleep(0.05)
    raise AssertionError(f"not reached in {timeout}s: {what or condition} (last: {last!r})")
