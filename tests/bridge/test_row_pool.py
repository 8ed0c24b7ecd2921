"""The rows we hold from Kong: shared values, same content (what the diff reads is unchanged)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
from hypothesis import given
from hypothesis import strategies as st

from bridge.actual import (
    UNUSED_FIELDS,
    KongState,
    OwnedNames,
    RowPool,
    read_owned_concurrently,
)
from bridge.desired import changed_fields
from bridge.kong import AsyncKongClient, KongConnection
from bridge.mapping import SERVICE_TAG_PREFIX as TAG

scalars = st.none() | st.booleans() | st.integers(-3, 70000) | st.floats(0, 2) | st.text(max_size=4)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3)
    ),
    max_leaves=8,
)
rows = st.dictionaries(st.sampled_from(["id", "name", "port", "paths", "created_at", "x"]), values)


def typed(value: Any) -> str:
    """JSON with types kept apart (1, 1.0 and true differ), as Kong would get them back."""
    return json.dumps(value, sort_keys=True)


@given(rows, rows)
def test_a_kept_row_says_what_kong_said_less_nulls_and_timestamps(first: Any, second: Any) -> None:
    pool = RowPool(limit=5)  # small: forgetting must not change any row
    for row in (first, second):
        kept = pool.keep(row)
        wanted = {k: v for k, v in row.items() if v is not None and k not in UNUSED_FIELDS}
        assert typed(kept) == typed(wanted)
        assert not changed_fields(wanted, kept) and not changed_fields(kept, wanted)


def test_equal_values_of_different_rows_are_one_object() -> None:
    pool = RowPool()
    checks = {"active": {"healthy": {"http_statuses": [200, 302]}, "timeout": 1}}
    first = pool.keep({"id": "a", "healthchecks": checks, "slots": 10000, "created_at": 1})
    second = pool.keep(
        {"id": "b", "healthchecks": json.loads(json.dumps(checks)), "slots": 10000, "x": None}
    )
    assert first["healthchecks"] is second["healthchecks"]
    assert first["slots"] is second["slots"]
    assert "created_at" not in first and "x" not in second


def test_true_and_one_stay_apart() -> None:
    pool = RowPool()
    assert pool.keep({"a": 1})["a"] is 1  # noqa: F632 - small ints are one object anyway
    assert pool.keep({"a": True})["a"] is True
    assert type(pool.keep({"a": 1.0})["a"]) is float
    assert pool.keep({"a": [1]})["a"] == [1] and pool.keep({"a": [True]})["a"] == [True]
    assert type(pool.keep({"a": [True]})["a"][0]) is bool


def test_a_re_read_in_small_pages_keeps_unchanged_rows_and_takes_changed_ones(
    kong: httpx.Client,
) -> None:
    owner = "pool-test"
    tags = [f"managed-by:{owner}"]
    for name in ("a", "b", "c"):
        kong.post(
            "/services", json={"name": name, "host": f"{name}.x", "tags": [*tags, f"{TAG}{name}"]}
        ).raise_for_status()

    async def read(previous: KongState | None) -> KongState:
        url = str(kong.base_url)
        async with AsyncKongClient(KongConnection(admin_url=url)) as client:
            return await read_owned_concurrently(client, owner, 2, previous, page_size=2)

    first = asyncio.run(read(None))
    kong.patch("/services/b", json={"retries": 2}).raise_for_status()
    second = asyncio.run(read(first))
    assert set(second.services) == {"a", "b", "c"}  # every page followed
    assert second.services["a"].service is first.services["a"].service
    assert second.services["b"].service is not first.services["b"].service
    assert second.services["b"].service is not None
    assert second.services["b"].service["retries"] == 2
    assert not second.pool.reuse  # the previous read's rows are let go


def test_owned_names_is_a_view_of_the_services_we_own_a_kong_service_of() -> None:
    state = KongState()
    state.of("web").service = {"id": "1", "name": "web"}
    state.of("half").upstream = {"id": "2", "name": "half.service.consul"}  # no service row
    names = OwnedNames(state, 1)
    assert "web" in names and "half" not in names and "absent" not in names
    assert len(names) == 1 and list(names) == ["web"]
    state.of("later").service = {"id": "3", "name": "later"}
    assert "later" in names  # a view: what is written after it was made is in it
