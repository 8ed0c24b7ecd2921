"""Consul emulator: the /_emulator/ controls, the connection cap and ACL enforcement."""

from __future__ import annotations

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


def test_concurrent_connection_cap() -> None:
    with (
        ConsulEmulator(max_conns_per_client=2) as server,
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
        response = http.get("/v1/catalog/services")
        assert response.status_code == 429
        assert "too many concurrent connections" in response.text
        http.put("/v1/agent/service/register", json={"Name": "release"})  # still capped
        http.post("/_emulator/reset")  # wakes the holders
        for holder in holders:
            holder.join(10)
        assert http.get("/v1/catalog/services").status_code == 200


@pytest.fixture
def acl_server() -> ConsulEmulator:
    with ConsulEmulator(acl_master_token="root") as server:
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
