"""Reusable Admin API flows (generators of calls), driven by either client."""

from __future__ import annotations

from typing import Any

from .calls import Call, Flow
from .errors import require
from .shapes import page


def paginate(path: str, params: dict[str, Any] | None = None) -> Flow[list[dict[str, Any]]]:
    """Every entity of a collection, following Kong's ``offset`` from page to page."""
    rows: list[dict[str, Any]] = []
    call = Call("GET", path, params={"size": 1000, **(params or {})})
    while True:
        reply = require(call, (yield call), 200)
        found, offset = page(call, reply)
        rows.extend(found)
        if not offset:
            return rows
        call = Call("GET", path, params={**call.params, "offset": offset})
