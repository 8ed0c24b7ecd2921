"""The watcher tells who asks (the daemon's FreedMemory) the size of each answer it took in."""

from __future__ import annotations

import asyncio

import httpx

from bridge.consul_http import ConsulReader
from bridge.emulators.consul import ConsulEmulator
from bridge.watch import ConsulWatcher, ServiceSeen


def _register(consul: httpx.Client, instance: str, port: int) -> None:
    body = {
        "Node": "node-1",
        "Address": "10.0.0.1",
        "Service": {"ID": instance, "Service": "web", "Port": port, "Tags": ["kong.enable=true"]},
        "Check": {"CheckID": f"check-{instance}", "Status": "passing", "ServiceID": instance},
    }
    consul.put("/v1/catalog/register", json=body).raise_for_status()


def test_each_blocking_answer_size_is_told_once_taken_in(
    consul_server: ConsulEmulator, consul_http: httpx.Client
) -> None:
    _register(consul_http, "web-1", 8001)
    sizes: list[int] = []

    async def watch_two_answers() -> list[int]:
        reader = ConsulReader(port=consul_server.port)
        watcher = ConsulWatcher(reader, wait=5.0, after_answer=sizes.append)
        running = asyncio.create_task(watcher.run())
        try:
            await _service_seen(watcher)
            await asyncio.to_thread(_register, consul_http, "web-2", 8002)
            await _service_seen(watcher)  # the state watch woke for the new check
            return sizes
        finally:
            running.cancel()
            await asyncio.gather(running, return_exceptions=True)
            await reader.aclose()

    told = asyncio.run(watch_two_answers())
    now = len(consul_http.get("/v1/health/state/any").content)
    assert now in told  # the answer with both checks, as Consul sent it
    assert min(told) < now  # and an earlier one, with one check
    assert all(size > 0 for size in told)


async def _service_seen(watcher: ConsulWatcher) -> None:
    while not isinstance(await asyncio.wait_for(watcher.events.get(), 10), ServiceSeen):
        pass
