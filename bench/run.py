"""Benchmarks: print numbers and write them as JSON (``make bench``). Nothing here asserts."""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx


def percentiles(samples_ms: list[float]) -> dict[str, float]:
    ordered = sorted(samples_ms)
    quantiles = statistics.quantiles(ordered, n=100, method="inclusive")
    return {
        "n": len(ordered),
        "p50_ms": round(statistics.median(ordered), 3),
        "p99_ms": round(quantiles[98], 3),
        "max_ms": round(ordered[-1], 3),
    }


def timed(action: Callable[[int], httpx.Response], count: int) -> dict[str, float]:
    samples = []
    for index in range(count):
        started = time.perf_counter()
        response = action(index)
        samples.append((time.perf_counter() - started) * 1000)
        if response.status_code >= 400:
            raise RuntimeError(
                f"{response.request.method} {response.request.url}: "
                f"{response.status_code} {response.text}"
            )
    return percentiles(samples)


def _serve_loaded_kong(services: int, ready: Any, stop: Any) -> None:
    """Child process: a Kong emulator preloaded with ``services`` services and routes."""
    from bridge.emulators.kong import KongEmulator

    emulator = KongEmulator()
    store = emulator.api.store
    for index in range(services):
        tags = ["bench", f"team-{index % 10}"]
        service = store.insert(
            "services",
            {"name": f"svc-{index}", "host": f"svc-{index}.service.consul", "tags": tags},
        )
        store.insert(
            "routes",
            {
                "name": f"route-{index}",
                "paths": [f"/svc-{index}"],
                "service": {"id": service["id"]},
                "tags": tags,
            },
        )
    emulator.start()
    ready.put(emulator.url)
    stop.wait()
    emulator.stop()


def bench_kong(services: int, samples: int) -> dict[str, Any]:
    context = mp.get_context("spawn")
    ready, stop = context.Queue(), context.Event()
    child = context.Process(target=_serve_loaded_kong, args=(services, ready, stop))
    child.start()
    try:
        url = ready.get(timeout=300)
        with httpx.Client(base_url=url, timeout=10) as kong:
            kong.get("/services?size=1")  # warm the connection
            results = {
                "loaded_services": services,
                "loaded_routes": services,
                "post_service": timed(
                    lambda i: kong.post(
                        "/services",
                        json={"name": f"new-{i}", "host": "h.service.consul", "tags": ["bench"]},
                    ),
                    samples,
                ),
                "patch_service": timed(
                    lambda i: kong.patch(f"/services/new-{i}", json={"retries": 3}), samples
                ),
                "put_route": timed(
                    lambda i: kong.put(
                        f"/routes/new-route-{i}",
                        json={"paths": [f"/n{i}"], "service": {"name": f"new-{i}"}},
                    ),
                    samples,
                ),
                "delete_route": timed(lambda i: kong.delete(f"/routes/new-route-{i}"), samples),
                "get_page_tag_filtered_100": timed(
                    lambda i: kong.get("/services", params={"tags": f"team-{i % 10}", "size": 100}),
                    samples,
                ),
                "get_page_unfiltered_1000": timed(
                    lambda i: kong.get("/routes", params={"size": 1000}), max(10, samples // 10)
                ),
            }
    finally:
        stop.set()
        child.join(30)
    return results


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return -1


def _serve_loaded_consul(services: int, per_service: int, ready: Any, stop: Any) -> None:
    """Child process: a Consul emulator with ``services`` x ``per_service`` instances."""
    from bridge.emulators.consul import ConsulEmulator
    from bridge.emulators.consul.agent import build_check
    from bridge.emulators.consul.catalog import build_service

    # The connection cap is raised so one benchmark client can hold 1,000 watches.
    emulator = ConsulEmulator(max_conns_per_client=5000)
    catalog = emulator.api.catalog
    for node_number in range(100):
        catalog.ensure_node(f"node-{node_number}", f"10.0.{node_number // 250}.{node_number % 250}")
    for index in range(services):
        name = f"svc-{index}"
        for instance in range(per_service):
            node = f"node-{(index * per_service + instance) % 100}"
            service = build_service(
                {
                    "Name": name,
                    "ID": f"{name}-{instance}",
                    "Port": 8080,
                    "Tags": ["kong.enable=true", f"kong.paths=/{name}"],
                }
            )
            catalog.register_service(node, service)
            catalog.register_check(
                node,
                build_check(
                    node,
                    {"Status": "passing", "TTL": "60s"},
                    service,
                    f"service:{name}-{instance}",
                    "check",
                ),
            )
    emulator.api.raft.commit()
    emulator.start()
    ready.put((emulator.url, os.getpid()))
    stop.wait()
    emulator.stop()


async def _hold_watches(url: str, count: int, pid: int) -> dict[str, Any]:
    """Open ``count`` blocking queries (one per service), then change one service."""
    limits = httpx.Limits(max_connections=count + 10, max_keepalive_connections=count + 10)
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as client:
        indexes = [
            int((await client.get(f"/v1/health/service/svc-{i}")).headers["x-consul-index"])
            for i in range(count)
        ]
        rss_before = _rss_kib(pid)
        watches = [
            asyncio.create_task(
                client.get(
                    f"/v1/health/service/svc-{i}", params={"index": indexes[i], "wait": "60s"}
                )
            )
            for i in range(count)
        ]
        while (await client.get("/_emulator/state")).json()["blocked_queries"] < count:
            await asyncio.sleep(0.05)
        rss_held = _rss_kib(pid)
        wakeups_before = (await client.get("/_emulator/state")).json()["wakeups"]
        started = time.perf_counter()
        await client.put(
            "/v1/catalog/register",
            json={
                "Node": "node-1",
                "Address": "10.0.0.1",
                "Service": {"Service": "svc-7", "ID": "svc-7-new", "Port": 9090},
            },
        )
        await watches[7]
        woke_ms = (time.perf_counter() - started) * 1000
        state = (await client.get("/_emulator/state")).json()
        still_blocked = state["blocked_queries"]
        await client.post("/_emulator/reset")  # releases the other watches
        await asyncio.gather(*watches, return_exceptions=True)
    return {
        "watches": count,
        "rss_kib_before": rss_before,
        "rss_kib_with_watches": rss_held,
        "rss_kib_per_watch": round((rss_held - rss_before) / count, 2),
        "change_to_watcher_ms": round(woke_ms, 3),
        "watchers_woken_by_one_change": state["wakeups"] - wakeups_before,
        "watchers_still_blocked": still_blocked,
    }


def bench_consul(services: int, per_service: int, samples: int, watches: int) -> dict[str, Any]:
    context = mp.get_context("spawn")
    ready, stop = context.Queue(), context.Event()
    child = context.Process(target=_serve_loaded_consul, args=(services, per_service, ready, stop))
    child.start()
    try:
        url, pid = ready.get(timeout=600)
        with httpx.Client(base_url=url, timeout=30) as consul:
            consul.get("/v1/status/leader")
            results: dict[str, Any] = {
                "services": services,
                "instances": services * per_service,
                "catalog_services": timed(
                    lambda i: consul.get("/v1/catalog/services"), max(10, samples // 10)
                ),
                "health_service": timed(
                    lambda i: consul.get(f"/v1/health/service/svc-{i % services}"), samples
                ),
                "health_service_passing": timed(
                    lambda i: consul.get(
                        f"/v1/health/service/svc-{i % services}", params={"passing": 1}
                    ),
                    samples,
                ),
            }
        results["blocking"] = asyncio.run(_hold_watches(url, watches, pid))
    finally:
        stop.set()
        child.join(30)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("bench/results.json"))
    parser.add_argument("--services", type=int, default=10_000)
    parser.add_argument("--samples", type=int, default=500)
    parser.add_argument("--consul-services", type=int, default=10_000)
    parser.add_argument("--consul-instances-per-service", type=int, default=3)
    parser.add_argument("--watches", type=int, default=1000)
    args = parser.parse_args(argv)
    results = {
        "kong_emulator": bench_kong(args.services, args.samples),
        "consul_emulator": bench_consul(
            args.consul_services, args.consul_instances_per_service, args.samples, args.watches
        ),
        "python": sys.version.split()[0],
    }
    text = json.dumps(results, indent=2)
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
