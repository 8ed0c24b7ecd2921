"""The Kong client's public helpers, against the emulator."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from bridge.kong import AsyncKongClient, Call, KongClient, KongConnection, KongRejected
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
            await client.run(paginate("/services"), per_call=True, pace=pace)
            return loop.time() - started

    try:
        assert asyncio.run(elapsed(1.0)) >= 2 * 0.050  # the call (>= 50 ms), then as long again
    finally:
        kong.delete("/_emulator/faults").raise_for_status()
