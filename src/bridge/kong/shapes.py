"""Is this Kong, and does each answer have the shape the Admin API gives?

A JSON server answering ``200 {}`` to everything would otherwise pass for an
empty Kong that accepts every write. So the node is identified from ``GET /``
(``version``, ``configuration.database``: Kong Gateway 3.x), and every
answer the bridge relies on is checked: pages carry a ``data`` list of
entities with ids, and an entity written is returned with its id.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .calls import Call, Reply
from .errors import KongBadAnswer

Row = dict[str, Any]
MIN_MAJOR = 3


@dataclass(frozen=True)
class KongNode:
    """What ``GET /`` says about the node."""

    version: str
    database: str  # "postgres", "off" (DB-less), ...

    @property
    def db_less(self) -> bool:
        return self.database == "off"


def _not_kong(call: Call, reply: Reply, expected: str) -> KongBadAnswer:
    shown = str(reply.body)[:120]
    return KongBadAnswer(
        f"{call}: this does not answer as Kong's Admin API ({reply.status} {shown}); "
        f"expected {expected}"
    )


def identify(call: Call, reply: Reply) -> KongNode:
    """The node from ``GET /``; :class:`KongBadAnswer` unless it is Kong Gateway 3.x or later."""
    body = reply.body
    expected = "Kong Gateway 3.x: a JSON object with 'version' and 'configuration.database'"
    if reply.status != 200 or not isinstance(body, dict):
        raise _not_kong(call, reply, expected)
    version = body.get("version")
    configuration = body.get("configuration")
    database = configuration.get("database") if isinstance(configuration, dict) else None
    if not isinstance(version, str) or not isinstance(database, str):
        raise _not_kong(call, reply, expected)
    major = version.split(".", 1)[0]
    if not major.isdigit() or int(major) < MIN_MAJOR:
        raise KongBadAnswer(f"{call}: Kong {version} is not supported: the bridge needs Kong 3.x")
    return KongNode(version, database)


def page(call: Call, reply: Reply) -> tuple[list[Row], str | None]:
    """The entities and the next offset of one page of a collection."""
    body = reply.body
    rows = body.get("data") if isinstance(body, dict) else None
    if not isinstance(rows, list) or not all(_is_entity(row) for row in rows):
        raise _not_kong(call, reply, "a page: {'data': [entities with an 'id'], 'offset': ...}")
    offset = body.get("offset")
    if offset is not None and not isinstance(offset, str):
        raise _not_kong(call, reply, "a page whose 'offset' is a string or null")
    return rows, offset or None


def check_written(call: Call, reply: Reply) -> None:
    """A 2xx answer to an entity write must be the entity, with its id."""
    if call.method not in ("POST", "PUT", "PATCH") or call.path == "/config":
        return
    if 200 <= reply.status < 300 and reply.body is not None and not _is_entity(reply.body):
        raise _not_kong(call, reply, "the entity written, with its 'id'")


def _is_entity(row: Any) -> bool:
    return isinstance(row, dict) and isinstance(row.get("id"), str) and bool(row["id"])
