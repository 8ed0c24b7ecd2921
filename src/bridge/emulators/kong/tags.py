"""``/tags`` and ``/tags/{tag}``: every tag of every entity, as Kong's ``tags`` table lists them.

``kong/db/strategies/postgres/tags.lua``: rows of ``{entity_id, entity_name, tag}``
ordered by entity id, then by the tag's place in the entity's list; an offset is
the unpadded base64 of ``[entity_id, ordinality]`` (``[entity_id]`` for one tag).
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any

from ...kong.schema import validators as v
from . import errors as e
from .schemas import ENTITIES
from .store import Row, Store

TAGGED_KINDS = tuple(kind for kind, schema in ENTITIES.items() if "tags" in schema.fields)


@dataclass(frozen=True)
class TagPage:
    rows: list[Row]
    offset: str | None


def tags_page(store: Store, size: int, offset: str | None, tag: str | None = None) -> TagPage:
    """A page of ``/tags`` (every tag) or of ``/tags/{tag}`` (the entities carrying it)."""
    if tag is not None:
        problem = v.check_tag(tag)
        if problem:
            raise e.api_error(10, problem, name="invalid unique tag")
    after = _decode(offset) if offset else None
    found = sorted(_tagged(store, tag))
    if after is not None:
        found = [item for item in found if item[:2] > after]
    chosen = found[:size]
    rows = [{"entity_id": eid, "entity_name": kind, "tag": name} for eid, _, kind, name in chosen]
    if len(found) <= size:
        return TagPage(rows, None)
    last_id, ordinality = chosen[-1][:2]
    return TagPage(rows, _encode([last_id] if tag is not None else [last_id, ordinality]))


def _tagged(store: Store, tag: str | None) -> list[tuple[str, int, str, str]]:
    """(entity id, place in its tags from 1, entity name, tag) of every tag, or of ``tag``'s."""
    found = []
    for kind in TAGGED_KINDS:
        for row in store.all(kind):
            for ordinality, name in enumerate(row.get("tags") or (), start=1):
                if tag is None or name == tag:
                    found.append((row["id"], 0 if tag is not None else ordinality, kind, name))
    return found


def _encode(key: list[Any]) -> str:
    raw = json.dumps(key, separators=(",", ":")).encode()
    return base64.b64encode(raw).decode().rstrip("=")  # ngx.encode_base64(s, true)


def _decode(offset: str) -> tuple[str, int]:
    try:
        raw = base64.b64decode(offset + "=" * (-len(offset) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise e.api_error(7, f"'{offset}' is not a valid offset: bad base64 encoding") from None
    try:
        key = json.loads(raw)
    except ValueError:
        key = None
    if not isinstance(key, list) or not key or not isinstance(key[0], str):
        raise e.api_error(7, f"'{offset}' is not a valid offset: bad json encoding")
    ordinality = key[1] if len(key) > 1 and isinstance(key[1], int) else 0
    return key[0], ordinality
