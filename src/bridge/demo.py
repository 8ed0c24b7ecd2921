"""``kong-bridge demo``: a walk-through on the emulators that needs no Docker and ends by itself."""

from __future__ import annotations

from typing import Any

import httpx

from .emulators.kong import KongEmulator


def _say(text: str) -> None:
    print(f"\n== {text}", flush=True)


def _show(kong: httpx.Client) -> None:
    for service in kong.get("/services").json()["data"]:
        routes = kong.get(f"/services/{service['id']}/routes").json()["data"]
        paths = [p for route in routes for p in route["paths"] or []]
        print(
            f"  service {service['name']:<10} -> {service['host']}:{service['port']}"
            f"  routes {paths}"
        )
    for upstream in kong.get("/upstreams").json()["data"]:
        targets = kong.get(f"/upstreams/{upstream['name']}/targets").json()["data"]
        listed = ", ".join(f"{t['target']} (w={t['weight']})" for t in targets) or "none"
        print(f"  upstream {upstream['name']:<28} targets: {listed}")


def _check(response: httpx.Response, expected: int) -> dict[str, Any]:
    if response.status_code != expected:
        raise SystemExit(
            f"demo: {response.request.method} {response.request.url} answered "
            f"{response.status_code}: {response.text}"
        )
    return response.json() if response.content else {}


def run_demo(host: str = "127.0.0.1", port: int = 0) -> int:
    """Start a Kong emulator, walk through the Kong 3.x shapes the bridge writes, stop."""
    with (
        KongEmulator(host=host, port=port) as server,
        httpx.Client(base_url=server.url, timeout=5) as kong,
    ):
        version = kong.get("/").json()["version"]
        _say(f"Kong Admin API emulator (Kong {version}) on {server.url}")

        _say("An upstream per Consul service, a target per healthy instance")
        _check(kong.put("/upstreams/hello.service.consul", json={"slots": 100}), 200)
        for address in ("10.0.0.11:5000", "10.0.0.12:5000"):
            _check(
                kong.post(
                    "/upstreams/hello.service.consul/targets",
                    json={"target": address, "weight": 10},
                ),
                201,
            )
        _say("The service points at the upstream; a route exposes it")
        _check(kong.put("/services/hello", json={"host": "hello.service.consul"}), 200)
        _check(
            kong.put("/routes/hello", json={"paths": ["/hello"], "service": {"name": "hello"}}), 200
        )
        _show(kong)

        _say("Kong 3.x rules the bridge respects: a duplicate target is a 409")
        duplicate = kong.post(
            "/upstreams/hello.service.consul/targets", json={"target": "10.0.0.11:5000"}
        )
        print(f"  POST duplicate target -> {duplicate.status_code} {duplicate.json()['message']}")
        busy = kong.delete("/services/hello")
        print(f"  DELETE service with routes -> {busy.status_code} {busy.json()['message']}")

        _say("One instance goes away: only its target is deleted")
        _check(kong.delete("/upstreams/hello.service.consul/targets/10.0.0.12:5000"), 204)
        _show(kong)

        counters = kong.get("/_emulator/counters").json()
        _say(f"Requests served: {counters['total']} ({counters['writes']} writes)")
    print("\nDemo finished.")
    return 0
