"""The Kong client's public helpers, against the emulator."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from bridge.kong import AsyncKongClient, Call, KongClient, KongConnection, KongRejected, Pace
from bridge.kong.flows import paginate


def test_list_all_follows_pages_and_expect_checks_status(kong: httpx.Client) -> None:
    for index in range(1205):  # more than one page of 1000
        kong.post("/upstreams", json={"name": f"u{index}.consul", "tags": ["t"]})
    seen: list[tuple[str, str]] = []
    with KongClient(
        KongConnection(admin_url=str(kong.base_url)),
        observer=lambda call, status: seen.append((call.method, status)),
    ) as client:
        rows = client.list_all("/upstreams", {"tags": "t"})
        assert len(rows) == 1205 and len({r["id"] for r in rows}) == 1205
        assert client.requests_sent == 2 and seen == [("GET", "200"), ("GET", "200")]
        with pytest.raises(KongRejected, match="Kong answered 404"):
            client.expect(Call("GET", "/services/missing"), 200)


def test_async_client_has_the_same_helpers(kong: httpx.Client) -> None:
    kong.post("/services", json={"name": "s", "host": "h"})

    async def scenario() -> int:
        async with AsyncKongClient(KongConnection(admin_url=str(kong.base_url))) as client:
            reply = await client.expect(Call("GET", "/services/s"), 200)
            assert reply.body["name"] == "s"
            return len(await client.list_all("/services"))

    assert asyncio.run(scenario()) == 1


def test_a_paced_flow_rests_after_every_call_the_last_one_too(kong: httpx.Client) -> None:
    """``run(pace=1)`` (a background read) rests as long as each call took, after the last
    call as well: a one-call flow (one upstream's targets) is paced like a long one."""
    kong.put("/_emulator/faults", json={"latency_ms": 50}).raise_for_status()

    async def elapsed(pace: float) -> float:
        async with AsyncKongClient(KongConnection(admin_url=str(kong.base_url))) as client:
            loop = asyncio.get_running_loop()
            started = loop.time()
            await client.run(paginate("/services"), per_call=True, pace=Pace(pace))
            return loop.time() - started

    try:
        assert asyncio.run(elapsed(1.0)) >= 2 * 0.050  # the call (>= 50 ms), then as long again
    finally:
        kong.delete("/_emulator/faults").raise_for_status()


def test_a_paced_flow_gives_way_while_changes_are_served_but_not_forever(
    kong: httpx.Client,
) -> None:
    """After its rest, a background read waits while ``busy()``: asked again until it says
    no; a change that never ends is given way to for ``give_way`` seconds only."""
    for name in ("a", "b"):
        kong.post("/services", json={"name": name, "host": "h"}).raise_for_status()
    answers: list[bool] = []

    def busy_three_times() -> bool:
        answers.append(len(answers) < 3)
        return answers[-1]

    async def read(pace: Pace) -> int:
        async with AsyncKongClient(KongConnection(admin_url=str(kong.base_url))) as client:
            flow = paginate("/services", {"size": 1})  # two pages: two calls, two rests
            return len(await client.run(flow, per_call=True, pace=pace))

    assert asyncio.run(read(Pace(0.0, busy=busy_three_times, look=0.001))) == 2
    # Three "busy" after the first call, then "not busy" once after each of the two calls.
    assert answers == [True, True, True, False, False]

    def busy_for_ever() -> bool:
        answers.append(True)
        return True

    answers.clear()
    always = Pace(0.0, busy=busy_for_ever, look=0.01, give_way=0.05)
    assert asyncio.run(read(always)) == 2  # it went on regardless
    assert len(answers) >= 2 * 2  # and it did wait, after each call
