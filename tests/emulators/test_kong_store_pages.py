"""Kong emulator: tag-filtered pages, walked page by page, equal a plain filter of the rows."""

from __future__ import annotations

import base64
import uuid

from hypothesis import given, settings
from hypothesis import strategies as st

from bridge.emulators.kong.store import Store

TAGS = ("a", "b", "c", "d")


def _store(tag_sets: list[set[str]]) -> tuple[Store, list[tuple[str, set[str]]]]:
    store, rows = Store(), []
    for number, tags in enumerate(tag_sets):
        row_id = str(uuid.UUID(int=number * 7919 % 2**32 + 1))
        store.tables["services"].put({"id": row_id, "tags": sorted(tags) or None})
        rows.append((row_id, tags))
    return store, rows


def _walk(store: Store, tags: tuple[list[str], str], size: int) -> list[str]:
    seen, offset = [], None
    while True:
        page = store.page("services", size, offset, tags)
        seen += [row["id"] for row in page.rows]
        if page.offset is None:
            return seen
        assert len(page.rows) == size  # only a full page promises more
        offset = page.offset


@settings(max_examples=150, deadline=None)
@given(
    tag_sets=st.lists(st.sets(st.sampled_from(TAGS)), max_size=60),
    wanted=st.lists(st.sampled_from(TAGS), min_size=1, max_size=3, unique=True),
    mode=st.sampled_from(["and", "or"]),
    size=st.integers(1, 12),
)
def test_tag_filtered_pages_walk_the_filtered_rows_in_id_order(
    tag_sets: list[set[str]], wanted: list[str], mode: str, size: int
) -> None:
    store, rows = _store(tag_sets)
    match = all if mode == "and" else any
    expected = sorted(row_id for row_id, tags in rows if match(t in tags for t in wanted))
    assert _walk(store, (wanted, mode), size) == expected


def test_an_offset_is_unpadded_base64_of_the_last_id_as_kong_writes_it() -> None:
    """kong/db/strategies/postgres: encode_base64(cjson.encode({id}), true)."""
    store, rows = _store([set(), set(), set()])
    page = store.page("services", 2, None)
    assert page.offset is not None and not page.offset.endswith("=")
    last = sorted(row_id for row_id, _ in rows)[1]
    assert base64.b64decode(page.offset + "==") == f'["{last}"]'.encode()
    assert [row["id"] for row in store.page("services", 2, page.offset).rows] == [
        sorted(row_id for row_id, _ in rows)[2]
    ]
