"""Consul emulator: the /_emulator/ controls, the connection cap and ACL enforcement."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import threading

import consul
import httpx
import pytest

from bridge.emulators.consul import ConsulEmulator
from tests.helpers import eventually


def test_counters_by_endpoint(consul_client: consul.Consul, consul_http: httpx.Client) -> None:
    consul_client.catalog.services()
    consul_client.health.service("web")
    consul_client.health.service("api")
    consul_client.kv.put("a", "b")
    counters = consul_http.get("/_emulator/counters").json()["by_method_and_kind"]
    assert counters == {"GET catalog/services": 1, "GET health/service": 2, "PUT kv": 1}


def test_injected_errors_are_plain_text(consul_http: httpx.Client) -> None:
    consul_http.put("/_emulator/faults", json={"fail_next": 1})
    response = consul_http.get("/v1/catalog/services")
    assert response.status_code == 500
    assert response.headers["content-type"].startswith("text/plain")
    assert consul_http.get("/v1/catalog/services").status_code == 200


def test_connection_cap_counts_connections() -> None:
    """Idle keep-alive connections count too; the cap is per client IP."""
    with (
        ConsulEmulator(max_conns_per_client=3) as server,
        httpx.Client(base_url=server.url) as http,
    ):
        index = http.get("/v1/catalog/services").headers["x-consul-index"]
        url = f"{server.url}/v1/catalog/services?index={index}&wait=10s"
        holders = [
            threading.Thread(target=httpx.get, args=(url,), kwargs={"timeout": 20})
            for _ in range(2)
        ]
        for holder in holders:
            holder.start()
        eventually(lambda: http.get("/_emulator/state").json()["blocked_queries"] == 2)
        assert http.get("/_emulator/state").json()["open_connections"] == 3
        response = httpx.get(f"{server.url}/v1/catalog/services")  # a 4th connection
        assert response.status_code == 429
        assert "too many concurrent connections" in response.text
        assert http.get("/v1/catalog/services").status_code == 200  # its own connection
        http.post("/_emulator/reset")  # wakes the holders
        for holder in holders:
            holder.join(10)
        eventually(lambda: httpx.get(f"{server.url}/v1/catalog/services").status_code == 200)


HOLDER = """
import asyncio, sys, httpx

async def main(url: str, count: int) -> None:
    limits = httpx.Limits(max_connections=count)
    async with httpx.AsyncClient(base_url=url, timeout=600, limits=limits) as client:
        index = (await client.get("/v1/catalog/services")).headers["x-consul-index"]
        params = {"index": index, "wait": "5m"}
        await asyncio.gather(
            *(client.get("/v1/catalog/services", params=params) for _ in range(count))
        )

asyncio.run(main(sys.argv[1], int(sys.argv[2])))
"""


def test_a_killed_client_frees_its_blocked_connections() -> None:
    """SIGKILL a process holding 150 blocking queries: a new client gets no 429."""
    with ConsulEmulator() as server, httpx.Client(base_url=server.url) as http:
        holder = subprocess.Popen([sys.executable, "-c", HOLDER, server.url, "150"])
        try:
            eventually(lambda: http.get("/_emulator/state").json()["blocked_queries"] == 150)
        finally:
            holder.send_signal(signal.SIGKILL)
            holder.wait(10)
        eventually(lambda: http.get("/_emulator/state").json()["blocked_queries"] == 0)
        assert http.get("/_emulator/state").json()["open_connections"] == 1  # this client
        index = http.get("/v1/catalog/services").headers["x-consul-index"]
        url = f"{server.url}/v1/catalog/services?index={index}&wait=20s"

        async def hold_many() -> list[int]:
            limits = httpx.Limits(max_connections=151)
            async with httpx.AsyncClient(timeout=30, limits=limits) as client:
                waits = [asyncio.ensure_future(client.get(url)) for _ in range(150)]

                async def blocked() -> int:
                    state = await client.get(f"{server.url}/_emulator/state")
                    return int(state.json()["blocked_queries"])

                while await blocked() < 150 and not any(w.done() for w in waits):
                    await asyncio.sleep(0.05)
                await client.put(f"{server.url}/v1/agent/service/register", json={"Name": "w"})
                return [r.status_code for r in await asyncio.gather(*waits)]

        statuses = asyncio.run(hold_many())
        assert statuses == [200] * 150


@pytest.fixture
def acl_server() -> ConsulEmulator:
    with ConsulEmulator(acl_master_token="root", acl_default_policy="deny") as server:
        yield server  # type: ignore[misc]


def test_acl_enforcing_mode(acl_server: ConsulEmulator) -> None:
    anonymous = consul.Consul(host="127.0.0.1", port=acl_server.port)
    root = consul.Consul(host="127.0.0.1", port=acl_server.port, token="root")
    with pytest.raises(consul.ACLPermissionDenied):
        anonymous.agent.service.register("x")
    root.agent.service.register("x")
    assert anonymous.catalog.services()[1] == {}  # lists are filtered, not refused
    assert "x" in root.catalog.services()[1]
    bogus = httpx.get(
        f"{acl_server.url}/v1/catalog/services", headers={"Authorization": "Bearer nope"}
    )
    assert (bogus.status_code, bogus.text) == (403, "ACL not found")
