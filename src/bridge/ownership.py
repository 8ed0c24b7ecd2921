"""Whose is a Kong entity, and what would go with it: the rule both writers share.

The bridge (children.py) and self-registration (selfreg/flows.py) delete an
owned parent only when nothing it holds, and Kong would delete with it (or
refuse to orphan), is someone else's.
"""

from __future__ import annotations

from typing import Any

from .desired import owner_tag
from .kong.calls import Flow
from .kong.calls import segment as seg
from .kong.flows import paginate

Row = dict[str, Any]
CHILD_KINDS: dict[str, tuple[str, ...]] = {
    "services": ("routes", "plugins"),
    "routes": ("plugins",),
    "upstreams": ("targets",),
}


def is_owned(row: Row, owner: str) -> bool:
    """Whether ``row`` carries the owner tag of ``owner``."""
    return owner_tag(owner) in (row.get("tags") or [])


def describe(kind: str, row: Row) -> str:
    """``route legacy``, ``target 10.0.0.9:80``, ``plugin key-auth``."""
    label = row.get("target") or row.get("name") or row.get("id")
    return f"{kind[:-1]} {label}"


def children(kind: str, parent_id: str) -> Flow[list[tuple[str, Row]]]:
    """Every child Kong would delete (or refuse to orphan) with the parent, as (kind, row)."""
    found: list[tuple[str, Row]] = []
    for child_kind in CHILD_KINDS[kind]:
        rows = yield from paginate(f"/{kind}/{seg(parent_id)}/{child_kind}")
        found += [(child_kind, row) for row in rows]
    return found


def unowned_children(kind: str, parent_id: str, owner: str) -> Flow[list[str]]:
    """What a delete of this parent would take (or be refused for) that is not ours."""
    found = yield from children(kind, parent_id)
    return [describe(child_kind, row) for child_kind, row in found if not is_owned(row, owner)]
