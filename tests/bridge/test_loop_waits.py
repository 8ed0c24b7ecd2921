"""The reconcile loop waits for what it waits for: it never spins while a Kong read is slow."""

from __future__ import annotations

import asyncio

import httpx

from bridge.emulators.kong import KongEmulator
from bridge.kong import AsyncKongClient, KongConnection
from bridge.mapping import MappingOptions
from bridge.metrics import Metrics
from bridge.reconcile import Bridge

WINDOW = 1.0  # observed while the first read is under way (each request takes 2 s)


class TurnCounting(Bridge):
    """The bridge, counting the turns of its loop (each turn serves once)."""

    turns = 0

    async def _serve(self) -> bool:
        self.turns += 1
        return await super()._serve()


def test_a_resync_due_while_a_read_is_under_way_does_not_make_the_loop_spin() -> None:
    """The resync is due at once and stays due while the read is slow; the loop waits for
    the read (or an event, or its one-second tick), not in a busy loop."""
    with KongEmulator() as kong:
        httpx.put(f"{kong.url}/_emulator/faults", json={"latency_ms": 2000}).raise_for_status()

        async def turns_while_reading() -> int:
            client = AsyncKongClient(KongConnection(kong.url))
            bridge = TurnCounting(client, MappingOptions(), Metrics())
            stop = asyncio.Event()
            task = asyncio.create_task(bridge.run(asyncio.Queue(), stop, resync=0.01))
            await asyncio.sleep(WINDOW)  # the window observed, not a synchronisation
            stop.set()
            await task
            await client.aclose()
            return bridge.turns

        turns = asyncio.run(turns_while_reading())
    assert turns <= 3  # at most its one-second tick; a spinning loop turned 68,490 times
