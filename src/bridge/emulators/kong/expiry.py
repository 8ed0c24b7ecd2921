"""Entities written with a ``ttl`` (schemas with ``ttl = true``: key-auth credentials).

``kong/api/endpoints.lua`` takes ``ttl`` out of the body as an option, and the
postgres strategy stores ``created_at + ttl`` (a PATCH: now + ttl; 0 or none on
an insert or a PUT: no expiry; none on a PATCH: unchanged). Reads show the
seconds left, rounded down, and no longer show an expired row.
"""

from __future__ import annotations

import math
import time
from typing import Any

MISSING: Any = object()  # no ``ttl`` in the body


class Expiries:
    """When each expiring entity expires, by kind and id."""

    def __init__(self) -> None:
        self.at: dict[str, dict[str, float]] = {}

    def written(self, kind: str, entity_id: str, ttl: Any, start: float, patch: bool) -> None:
        """Record a write's ``ttl`` (``MISSING``: the body had none)."""
        if ttl is MISSING and patch:
            return
        expiries = self.at.setdefault(kind, {})
        if ttl is MISSING or not ttl:
            expiries.pop(entity_id, None)
        else:
            expiries[entity_id] = start + float(ttl)

    def forget(self, kind: str, entity_id: str) -> None:
        self.at.get(kind, {}).pop(entity_id, None)

    def expired(self, kind: str) -> list[str]:
        now = time.time()
        return [entity_id for entity_id, at in self.at.get(kind, {}).items() if at < now]

    def left(self, kind: str, entity_id: str) -> int | None:
        """``FLOOR(EXTRACT(EPOCH FROM (ttl - CURRENT_TIMESTAMP)))``; None without expiry."""
        at = self.at.get(kind, {}).get(entity_id)
        return None if at is None else math.floor(at - time.time())
