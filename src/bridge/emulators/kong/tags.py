"""``/tags`` and ``/tags/{tag}``: every tag of every entity, as Kong's ``tags`` table lists them.

``kong/db/strategies/postgres/tags.lua``: rows of ``{entity_id, entity_name, tag}``
ordered by entity id, then by the tag's place in the entity's list; an offset is
``[entity_id, ordinality]`` (``[entity_id]`` for one tag), see ``offsets.py``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ...kong.schema import validators as v
from . import errors as e
from .offsets import decode_offset, encode_offset
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
    after = _position(decode_offset(offset)) if offset else None
    found = sorted(_tagged(store, tag))
    if after is not None:
        found = [item for item in found if item[:2] > after]
    chosen = found[:size]
    rows = [{"entity_id": eid, "entity_name": kind, "tag": name} for eid, _, kind, name in chosen]
    if len(found) <= size:
        return TagPage(rows, None)
    last_id, ordinality = chosen[-1][:2]
    return TagPage(rows, encode_offset([last_id] if tag is not None else [last_id, ordinality]))


def _tagged(store: Store, tag: str | None) -> list[tuple[str, int, str, str]]:
    """(entity id, place in its tags from 1, entity name, tag) of every tag, or of ``tag``'s."""
    found = []
    for kind in TAGGED_KINDS:
        for row in store.all(kind):
            for ordinality, name in enumerate(row.get("tags") or (), start=1):
                if tag is None or name == tag:
                    found.append((row["id"], 0 if tag is not None else ordinality, kind, name))
    return found


def _position(key: list[Any]) -> tuple[str, int]:
    """(entity id, ordinality) of an offset's key; 0 when it has no ordinality (one tag)."""
    ordinality = key[1] if len(key) > 1 and isinstance(key[1], int) else 0
    return str(key[0]), ordinality
