"""Plain data for one Admin API exchange, so logic can be written once, without I/O.

A *flow* is a generator that yields :class:`Call` objects and receives
:class:`Reply` objects; the sync and async clients both drive the same flow
(the sans-I/O style of h11), which is how the registration logic has async
twins without being written twice.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import quote

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Call:
    """One Admin API request."""

    method: str
    path: str
    body: dict[str, Any] | None = None
    params: dict[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


@dataclass(frozen=True)
class Reply:
    """One Admin API answer; ``body`` is the decoded JSON (``None`` when empty)."""

    status: int
    body: Any = None

    @property
    def message(self) -> str:
        """Kong's error message, if the body carries one."""
        if isinstance(self.body, dict) and isinstance(self.body.get("message"), str):
            return str(self.body["message"])
        return "" if self.body is None else str(self.body)[:200]


Flow = Generator[Call, Reply, T]


def segment(value: str) -> str:
    """Quote a name for use as one path segment."""
    return quote(value, safe="")
