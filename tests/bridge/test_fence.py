"""The HA fence holds inside a first load: no service starts its writes once it falls."""

from __future__ import annotations

import asyncio
import time

import httpx

from bridge.emulators.kong import KongEmulator
from bridge.kong import AsyncKongClient, KongConnection
from bridge.mapping import MappingOptions
from bridge.metrics import Metrics
from bridge.reconcile import Bridge, Event
from bridge.snapshot import Instance, ServiceSnapshot
from bridge.watch import CatalogSeen, ServiceSeen

SERVICES = 300  # a first load: planned a slice at a time while the writers work
LOOKS = 20  # the fence holds for this many looks, then falls
WRITERS = 4


class Fence:
    """``may_write`` that says yes ``looks`` times, then no."""

    def __init__(self, looks: int) -> None:
        self.left = looks

    def __call__(self) -> bool:
        self.left -= 1
        return self.left >= 0


def _first_load(names: list[str]) -> list[Event]:
    now = time.monotonic()
    seen: list[Event] = [CatalogSeen(frozenset(names), 1, True, now)]
    for name in names:
        instance = Instance(f"{name}-1", "node-1", "10.0.0.1", 8080, ("kong.enable=true",))
        seen.append(ServiceSeen(ServiceSnapshot(name, (instance,), 1), True, now))
    return seen


def test_no_service_starts_its_writes_after_the_fence_falls() -> None:
    names = [f"svc-{index:03d}" for index in range(SERVICES)]
    with KongEmulator() as kong:

        async def load() -> Metrics:
            client = AsyncKongClient(KongConnection(kong.url))
            metrics = Metrics()
            bridge = Bridge(
                client, MappingOptions(), metrics, concurrency=WRITERS, may_write=Fence(LOOKS)
            )
            events: asyncio.Queue[Event] = asyncio.Queue()
            for event in _first_load(names):
                events.put_nowait(event)
            stop = asyncio.Event()
            task = asyncio.create_task(bridge.run(events, stop, debounce=0))

            async def settled() -> None:
                # Either the services refused were served again, and withheld; or (a fence
                # looked at once per plan) every service was written.
                while not metrics.plans_withheld and metrics.owned.get("services") != SERVICES:
                    await asyncio.sleep(0.01)

            await asyncio.wait_for(settled(), 60)
            stop.set()
            await task
            await client.aclose()
            return metrics

        asyncio.run(load())
        written = httpx.get(f"{kong.url}/services", params={"size": 1000}).json()["data"]
    # Each look before a service's writes is one of the fence's: those that started before
    # it fell finish (a write in flight is covered by the lock's delay), no other starts.
    assert 0 < len(written) <= LOOKS
