"""Writes fed by a planner (``apply_groups``): Kong works while the rest is planned."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator

import httpx
import pytest

from bridge.actual import KongState
from bridge.apply import Group, ServiceOutcome, apply_groups
from bridge.desired import ServiceSpec, ServiceState
from bridge.emulators.kong import KongEmulator
from bridge.kong import AsyncKongClient, KongConnection
from bridge.plan import diff

TAG = "managed-by:stream"
WRITERS = 4


def _groups(names: list[str]) -> list[Group]:
    wanted: dict[str, ServiceState | None] = {
        name: ServiceState(service=ServiceSpec(name=name, host=f"{name}.test", tags=(TAG,)))
        for name in names
    }
    return list(diff(wanted, KongState()).by_service().items())


async def _write_all(
    url: str, groups: AsyncGenerator[Group, None], ended: list[ServiceOutcome]
) -> None:
    async with AsyncKongClient(KongConnection(admin_url=url)) as kong:
        async for outcome in apply_groups(kong, groups, WRITERS):
            assert outcome.ok, outcome.error
            ended.append(outcome)


def _kong_services(url: str) -> set[str]:
    rows = httpx.get(url + "/services", params={"tags": TAG, "size": 1000}).json()["data"]
    return {row["name"] for row in rows}


def test_the_planner_is_read_just_ahead_of_the_writers(kong_server: KongEmulator) -> None:
    httpx.post(kong_server.url + "/_emulator/reset").raise_for_status()
    names = [f"s{i:02d}" for i in range(40)]
    ended: list[ServiceOutcome] = []
    ahead_at_each_yield: list[int] = []

    async def planner() -> AsyncGenerator[Group, None]:
        for count, group in enumerate(_groups(names)):
            ahead_at_each_yield.append(count - len(ended))
            yield group

    asyncio.run(_write_all(kong_server.url, planner(), ended))
    assert sorted(outcome.name for outcome in ended) == names
    assert _kong_services(kong_server.url) == set(names)
    # Read ahead by the feeder and its writers: one group in hand, WRITERS waiting for a
    # writer, WRITERS being written. Never the whole plan before the first write ends.
    assert max(ahead_at_each_yield) <= 2 * WRITERS + 1
    assert ahead_at_each_yield[-1] < len(names) - 1


def test_a_planner_error_is_raised_once_the_started_writes_end(kong_server: KongEmulator) -> None:
    httpx.post(kong_server.url + "/_emulator/reset").raise_for_status()
    ended: list[ServiceOutcome] = []

    async def planner() -> AsyncGenerator[Group, None]:
        for group in _groups(["a", "b", "c"]):
            yield group
        raise RuntimeError("the planner broke")

    with pytest.raises(RuntimeError, match="the planner broke"):
        asyncio.run(_write_all(kong_server.url, planner(), ended))
    assert sorted(outcome.name for outcome in ended) == ["a", "b", "c"]
    assert _kong_services(kong_server.url) == {"a", "b", "c"}
