"""Reusable Admin API flows (generators of calls), driven by either client."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .calls import Call, Flow
from .errors import require
from .shapes import page

Row = dict[str, Any]


def paginate(
    path: str,
    params: dict[str, Any] | None = None,
    keep: Callable[[Row], Row] | None = None,
    size: int = 1000,
) -> Flow[list[Row]]:
    """Every entity of a collection, following Kong's ``offset`` from page to page.

    ``keep`` turns each row into what the caller holds, page by page, so a large
    collection is never all in memory in its decoded, bulkier form; ``size`` is
    the page size (Kong's maximum is 1000).
    """
    rows: list[Row] = []
    call = Call("GET", path, params={"size": size, **(params or {})})
    while True:
        reply = require(call, (yield call), 200)
        found, offset = page(call, reply)
        rows.extend(found if keep is None else map(keep, found))
        if not offset:
            return rows
        call = Call("GET", path, params={**call.params, "offset": offset})
