"""The Kong emulator's proxy over real sockets: real services behind it, real requests."""

from __future__ import annotations

import hashlib
import socket
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from bridge.echo import EchoService
from bridge.emulators.kong import KongEmulator
from tests.conftest import _client as reset_client

UPSTREAM = "orders.service.consul"


@pytest.fixture(scope="module")
def gateway() -> Iterator[KongEmulator]:
    with KongEmulator(proxy_port=0) as server:
        yield server


@pytest.fixture
def admin(gateway: KongEmulator) -> Iterator[httpx.Client]:
    yield from reset_client(gateway)


@pytest.fixture
def proxy(gateway: KongEmulator) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=gateway.proxy_url, timeout=10) as client:
        yield client


@pytest.fixture
def echoes() -> Iterator[list[EchoService]]:
    services = [EchoService(f"echo-{i}").start() for i in range(3)]
    yield services
    for service in services:
        service.stop()


def _free_port() -> int:
    # Nothing listens on it afterwards: connecting is refused.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _upstream(admin: httpx.Client, targets: list[tuple[str, int]], **service: Any) -> None:
    admin.post("/upstreams", json={"name": UPSTREAM}).raise_for_status()
    for target, weight in targets:
        admin.post(
            f"/upstreams/{UPSTREAM}/targets", json={"target": target, "weight": weight}
        ).raise_for_status()
    admin.post("/services", json={"name": "orders", "host": UPSTREAM, **service}).raise_for_status()
    admin.post("/services/orders/routes", json={"paths": ["/orders"]}).raise_for_status()


def _instances(proxy: httpx.Client, count: int, path: str = "/orders") -> Counter[str]:
    answers = [proxy.get(path) for _ in range(count)]
    assert all(a.status_code == 200 for a in answers), [a.text for a in answers]
    return Counter(a.json()["instance"] for a in answers)


def test_no_route_is_kongs_404(admin: httpx.Client, proxy: httpx.Client) -> None:
    response = proxy.get("/nowhere")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/json; charset=utf-8"
    assert response.headers["server"] == "kong/3.9.1"
    request_id = response.headers["x-kong-request-id"]
    assert response.text == (
        f'{{\n  "message":"no Route matched with those values",\n  "request_id":"{request_id}"\n}}'
    )
    assert int(response.headers["x-kong-response-latency"]) >= 0
    plain = proxy.get("/nowhere", headers={"accept": "text/plain"})
    assert plain.text.startswith("no Route matched with those values\nrequest_id: ")


def test_routes_by_path_and_by_host_to_services(
    admin: httpx.Client, proxy: httpx.Client, echoes: list[EchoService]
) -> None:
    a, b, _ = echoes
    admin.post("/services", json={"name": "a", "url": a.url}).raise_for_status()
    admin.post("/services", json={"name": "b", "url": b.url}).raise_for_status()
    admin.post("/services/a/routes", json={"paths": ["/a"]}).raise_for_status()
    admin.post("/services/b/routes", json={"hosts": ["*.b.test"]}).raise_for_status()
    assert proxy.get("/a/x").json()["instance"] == "echo-0"
    assert proxy.get("/a/x", headers={"host": "api.b.test"}).json()["instance"] == "echo-0"
    assert proxy.get("/x", headers={"host": "api.b.test"}).json()["instance"] == "echo-1"
    assert proxy.get("/x", headers={"host": "b.test"}).status_code == 404


def test_what_the_service_receives(
    admin: httpx.Client, proxy: httpx.Client, gateway: KongEmulator, echoes: list[EchoService]
) -> None:
    service = echoes[0]
    admin.post("/services", json={"name": "s", "url": f"{service.url}/base"}).raise_for_status()
    admin.post("/services/s/routes", json={"name": "strip", "paths": ["/api"]}).raise_for_status()
    admin.post(
        "/services/s/routes",
        json={"name": "keep", "paths": ["/keep"], "strip_path": False, "preserve_host": True},
    ).raise_for_status()
    response = proxy.post(
        "/api/items?x=1&y",
        content=b"payload",
        headers={"host": "shop.test", "x-forwarded-for": "10.1.1.1", "via": "1.0 edge"},
    )
    seen = response.json()
    assert seen["method"] == "POST" and seen["body"] == "payload"
    assert seen["path"] == "/base/items?x=1&y"
    headers = seen["headers"]
    assert headers["host"] == service.address  # preserve_host off: the target's address
    assert headers["x-forwarded-for"] == "10.1.1.1, 127.0.0.1"
    assert headers["x-forwarded-proto"] == "http"
    assert headers["x-forwarded-host"] == "shop.test"
    assert headers["x-forwarded-port"] == str(gateway.proxy.port)  # type: ignore[union-attr]
    assert headers["x-forwarded-path"] == "/api/items"
    assert headers["x-forwarded-prefix"] == "/api"
    assert headers["x-real-ip"] == "127.0.0.1"
    assert headers["via"] == "1.0 edge, 1.1 kong/3.9.1"
    assert headers["x-kong-request-id"] == response.headers["x-kong-request-id"]
    assert response.headers["via"] == "1.1 kong/3.9.1"
    assert int(response.headers["x-kong-upstream-latency"]) >= 0
    assert int(response.headers["x-kong-proxy-latency"]) >= 0
    assert response.headers["x-instance"] == "echo-0"  # the service's own headers pass

    kept = proxy.get("/keep/me", headers={"host": "shop.test:8000"}).json()
    assert kept["path"] == "/base/keep/me"
    assert kept["headers"]["host"] == "shop.test:8000"
    assert "x-forwarded-prefix" not in kept["headers"]


def test_weights_split_traffic_and_weight_zero_gets_none(
    admin: httpx.Client, proxy: httpx.Client, echoes: list[EchoService]
) -> None:
    a, b, c = echoes
    _upstream(admin, [(a.address, 300), (b.address, 100), (c.address, 0)])
    # The wheel has 4 slots (300:100 over gcd 100): two turns give exactly 6 and 2.
    assert _instances(proxy, 8) == Counter({"echo-0": 6, "echo-1": 2})


def test_unhealthy_target_gets_no_traffic_and_none_left_is_503(
    admin: httpx.Client, proxy: httpx.Client, echoes: list[EchoService]
) -> None:
    a, b, _ = echoes
    _upstream(admin, [(a.address, 100), (b.address, 100)])
    assert set(_instances(proxy, 4)) == {"echo-0", "echo-1"}
    admin.put(f"/upstreams/{UPSTREAM}/targets/{a.address}/unhealthy").raise_for_status()
    assert _instances(proxy, 4) == Counter({"echo-1": 4})
    admin.put(f"/upstreams/{UPSTREAM}/targets/{b.address}/unhealthy").raise_for_status()
    response = proxy.get("/orders")
    assert response.status_code == 503
    assert response.json()["message"] == "failure to get a peer from the ring-balancer"


def test_upstream_without_targets_is_503(admin: httpx.Client, proxy: httpx.Client) -> None:
    _upstream(admin, [])
    response = proxy.get("/orders")
    assert response.status_code == 503
    assert response.json()["message"] == "failure to get a peer from the ring-balancer"


def test_refused_target_is_retried_elsewhere_else_502(
    admin: httpx.Client, proxy: httpx.Client, echoes: list[EchoService]
) -> None:
    dead = f"127.0.0.1:{_free_port()}"
    _upstream(admin, [(dead, 100), (echoes[0].address, 100)])
    assert _instances(proxy, 4) == Counter({"echo-0": 4})  # retries (5 by default) move on
    admin.patch("/services/orders", json={"retries": 0}).raise_for_status()
    statuses = Counter(proxy.get("/orders").status_code for _ in range(4))
    assert statuses == Counter({200: 2, 502: 2})
    failed = next(r for r in (proxy.get("/orders") for _ in range(2)) if r.status_code == 502)
    assert failed.json()["message"] == ("An invalid response was received from the upstream server")


def test_read_timeout_is_504(admin: httpx.Client, proxy: httpx.Client) -> None:
    with EchoService("slow", delay=1.0) as slow:
        admin.post(
            "/services",
            json={"name": "slow", "url": slow.url, "read_timeout": 200, "retries": 0},
        ).raise_for_status()
        admin.post("/services/slow/routes", json={"paths": ["/slow"]}).raise_for_status()
        response = proxy.get("/slow")
    assert response.status_code == 504
    assert response.json()["message"] == "The upstream server is timing out"


def test_https_only_route_asks_for_https(admin: httpx.Client, proxy: httpx.Client) -> None:
    admin.post("/services", json={"name": "s", "url": "http://127.0.0.1:9"}).raise_for_status()
    admin.post(
        "/services/s/routes", json={"paths": ["/secure"], "protocols": ["https"]}
    ).raise_for_status()
    response = proxy.get("/secure")
    assert response.status_code == 426
    assert response.json()["message"] == "Please use HTTPS protocol"
    assert response.headers["upgrade"] == "TLS/1.2, HTTP/1.1"


def test_large_bodies_stream_through(
    admin: httpx.Client, proxy: httpx.Client, echoes: list[EchoService]
) -> None:
    admin.post("/services", json={"name": "s", "url": echoes[0].url}).raise_for_status()
    admin.post(
        "/services/s/routes", json={"paths": ["/up"], "request_buffering": False}
    ).raise_for_status()
    blob = bytes(range(256)) * 8192  # 2 MiB
    response = proxy.put("/up", content=blob)
    assert response.status_code == 200
    assert response.json()["body_sha256"] == hashlib.sha256(blob).hexdigest()


def test_db_less_config_is_routed(echoes: list[EchoService]) -> None:
    config = {
        "_format_version": "3.0",
        "services": [
            {"name": "s", "url": echoes[0].url, "routes": [{"name": "r", "paths": ["/cfg"]}]}
        ],
    }
    with (
        KongEmulator(db_less=True, proxy_port=0) as kong,
        httpx.Client(timeout=10) as client,
    ):
        assert client.get(f"{kong.proxy_url}/cfg").status_code == 404
        client.post(f"{kong.url}/config", json=config).raise_for_status()
        assert client.get(f"{kong.proxy_url}/cfg/x").json()["path"] == "/x"


def test_names_resolve_and_host_headers_follow_kong(
    admin: httpx.Client, proxy: httpx.Client, echoes: list[EchoService]
) -> None:
    service = echoes[0]
    admin.post(
        "/services", json={"name": "named", "host": "localhost", "port": service.port}
    ).raise_for_status()
    admin.post("/services/named/routes", json={"paths": ["/named"]}).raise_for_status()
    seen = proxy.get("/named").json()
    assert seen["instance"] == "echo-0"
    assert seen["headers"]["host"] == f"localhost:{service.port}"  # the name, not the address

    admin.post(
        "/upstreams", json={"name": "hh.service.consul", "host_header": "api.internal"}
    ).raise_for_status()
    admin.post(
        "/upstreams/hh.service.consul/targets", json={"target": echoes[1].address}
    ).raise_for_status()
    admin.post("/services", json={"name": "hh", "host": "hh.service.consul"}).raise_for_status()
    admin.post("/services/hh/routes", json={"paths": ["/hh"]}).raise_for_status()
    seen = proxy.get("/hh").json()
    assert seen["instance"] == "echo-1"
    assert seen["headers"]["host"] == f"api.internal:{echoes[1].port}"


def test_head_answers_without_a_body(admin: httpx.Client, proxy: httpx.Client) -> None:
    response = proxy.head("/nowhere")
    assert response.status_code == 404
    assert response.content == b""
    assert int(response.headers["content-length"]) > 0  # the length a GET would have


def test_cli_serves_the_proxy_beside_the_admin_api() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "bridge", "emulate", "kong", "--port", "0", "--proxy-port", "0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        admin_line = process.stdout.readline()
        proxy_line = process.stdout.readline()
        assert "Kong Admin API emulator (database mode) listening on http://127.0.0.1:" in (
            admin_line
        )
        assert proxy_line.startswith("Kong proxy emulator listening on http://127.0.0.1:")
        proxy_url = proxy_line.rsplit(" ", 1)[1].strip()
        response = httpx.get(f"{proxy_url}/anything", timeout=5)
        assert response.status_code == 404
        assert response.json()["message"] == "no Route matched with those values"
    finally:
        process.terminate()
        process.wait(10)
