"""``kong-bridge demo``: the bridge at work on the emulators; no Docker, ends by itself."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import httpx

from .daemon import run_daemon
from .emulators.consul import ConsulEmulator
from .emulators.kong import KongEmulator
from .logs import setup_logging
from .settings import BridgeSettings

SAMPLES: list[dict[str, Any]] = [
    {
        "Name": "orders",
        "ID": "orders-1",
        "Address": "10.0.1.11",
        "Port": 8080,
        "Tags": [
            "kong.enable=true",
            "kong.paths=/orders",
            "kong.strip_path=false",
            "kong.upstream.slots=100",
        ],
    },
    {
        "Name": "orders",
        "ID": "orders-2",
        "Address": "10.0.1.12",
        "Port": 8080,
        "Tags": [
            "kong.enable=true",
            "kong.paths=/orders",
            "kong.strip_path=false",
            "kong.upstream.slots=100",
        ],
    },
    {
        "Name": "users",
        "ID": "users-1",
        "Address": "10.0.2.21",
        "Port": 9000,
        "Meta": {
            "kong_enable": "true",
            "kong_hosts": "users.example.com",
            "kong_route_admin_paths": "/admin/users",
            "kong_route_admin_methods": "GET",
        },
    },
    {
        "Name": "billing",
        "ID": "billing-1",
        "Address": "10.0.3.31",
        "Port": 7000,
        "Tags": ["kong.enable=true", "kong.paths=billing"],
    },  # a bad tag: skipped, reported
    {
        "Name": "internal",
        "ID": "internal-1",
        "Address": "10.0.4.41",
        "Port": 6000,
        "Tags": ["private"],
    },  # never opted in
]


def _say(text: str) -> None:
    print(f"\n== {text}", flush=True)


def _register(consul: httpx.Client, body: dict[str, Any]) -> None:
    check = {"CheckID": f"check:{body['ID']}", "Name": "alive", "TTL": "10m", "Status": "passing"}
    consul.put("/v1/agent/service/register", json={**body, "Check": check}).raise_for_status()


def _show(kong: httpx.Client) -> None:
    for service in sorted(kong.get("/services").json()["data"], key=lambda s: s["name"]):
        routes = kong.get(f"/services/{service['id']}/routes").json()["data"]
        described = "; ".join(
            f"{r['name']}: {','.join(r['paths'] or r['hosts'] or [])}"
            + (f" {','.join(r['methods'])}" if r["methods"] else "")
            for r in routes
        )
        print(f"  service {service['name']:<8} host={service['host']:<28} routes [{described}]")
    for upstream in sorted(kong.get("/upstreams").json()["data"], key=lambda u: u["name"]):
        targets = kong.get(f"/upstreams/{upstream['name']}/targets").json()["data"]
        listed = ", ".join(sorted(t["target"] for t in targets)) or "(none)"
        print(f"  upstream {upstream['name']:<27} slots={upstream['slots']:<6} targets: {listed}")


def _wait(condition: Callable[[], bool], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit("demo: the bridge did not converge in time")
        time.sleep(0.05)


def _targets(kong: httpx.Client, upstream: str) -> set[str]:
    response = kong.get(f"/upstreams/{upstream}/targets")
    return {t["target"] for t in response.json()["data"]} if response.status_code == 200 else set()


def run_demo(host: str = "127.0.0.1", port: int = 0) -> int:
    """Both emulators, sample services, the bridge; change instances and watch Kong follow."""
    setup_logging(level=40)  # errors only: the demo narrates
    with (
        KongEmulator(host=host) as kong_server,
        ConsulEmulator(host=host) as consul_server,
        httpx.Client(base_url=kong_server.url, timeout=5) as kong,
        httpx.Client(base_url=consul_server.url, timeout=5) as consul,
    ):
        _say(f"Kong emulator on {kong_server.url}, Consul emulator on {consul_server.url}")
        for sample in SAMPLES:
            _register(consul, sample)
        print("  registered in Consul: " + ", ".join(s["ID"] for s in SAMPLES))

        status_port = port or 0
        settings = BridgeSettings(
            consul_http_addr=consul_server.url,
            kong_admin_url=kong_server.url,
            debounce_seconds=0.05,
            wait="30s",
            listen=f"{host}:{status_port}" if port else None,
        )
        stop = threading.Event()
        bridge = threading.Thread(target=run_daemon, args=(settings, stop), daemon=True)
        bridge.start()
        _say("The bridge syncs what opted in (kong.* tags or kong_* Service Meta)")
        _wait(
            lambda: {"orders", "users"} <= {s["name"] for s in kong.get("/services").json()["data"]}
        )
        _wait(lambda: len(_targets(kong, "orders.service.consul")) == 2)
        _show(kong)
        print("  'billing' has a bad tag (kong.paths=billing): skipped; 'internal' never opted in")

        _say("A new orders instance registers")
        _register(consul, {**SAMPLES[0], "ID": "orders-3", "Address": "10.0.1.13"})
        _wait(lambda: "10.0.1.13:8080" in _targets(kong, "orders.service.consul"))
        _show(kong)

        _say("orders-1 fails its health check")
        consul.put("/v1/agent/check/fail/check:orders-1").raise_for_status()
        _wait(lambda: "10.0.1.11:8080" not in _targets(kong, "orders.service.consul"))
        _show(kong)

        _say("users is deregistered: its Kong entities leave")
        consul.put("/v1/agent/service/deregister/users-1").raise_for_status()
        _wait(lambda: "users" not in {s["name"] for s in kong.get("/services").json()["data"]})
        _show(kong)

        counters = kong.get("/_emulator/counters").json()
        _say(f"Kong saw {counters['writes']} writes in all; the bridge stops (deleting nothing)")
        stop.set()
        bridge.join(10)
    print("\nDemo finished.")
    return 0
