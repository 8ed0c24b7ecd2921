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


def _serve_loaded_consul(
    services: int, per_service: int, ready: Any, stop: Any, nodes: int = 100
) -> None:
    """Child process: a Consul emulator with ``services`` x ``per_service`` instances."""
    from bridge.emulators.consul import ConsulEmulator
    from bridge.emulators.consul.agent import build_check
    from bridge.emulators.consul.catalog import build_service

    # The connection cap is raised so one benchmark client can hold 1,000 watches.
    emulator = ConsulEmulator(max_conns_per_client=5000)
    catalog = emulator.api.catalog
    for node_number in range(nodes):
        catalog.ensure_node(f"node-{node_number}", f"10.0.{node_number // 250}.{node_number % 250}")
    for index in range(services):
        name = f"svc-{index}"
        for instance in range(per_service):
            node = f"node-{(index * per_service + instance) % nodes}"
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


def bench_consul(
    services: int, per_service: int, samples: int, watches: int, nodes: int = 100
) -> dict[str, Any]:
    context = mp.get_context("spawn")
    ready, stop = context.Queue(), context.Event()
    child = context.Process(
        target=_serve_loaded_consul, args=(services, per_service, ready, stop, nodes)
    )
    child.start()
    try:
        url, pid = ready.get(timeout=600)
        with httpx.Client(base_url=url, timeout=30) as consul:
            consul.get("/v1/status/leader")
            results: dict[str, Any] = {
                "services": services,
                "instances": services * per_service,
                "nodes": nodes,
                "catalog_services": timed(
                    lambda i: consul.get("/v1/catalog/services"), max(10, samples // 10)
                ),
                "health_service": timed(
                    lambda i: consul.get(f"/v1/health/service/svc-{i % services}"), samples
                ),
                "health_checks": timed(
                    lambda i: consul.get(f"/v1/health/checks/svc-{i % services}"), samples
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


def _wait_for(condition: Callable[[], bool], timeout: float = 120.0) -> float:
    started = time.perf_counter()
    while not condition():
        if time.perf_counter() - started > timeout:
            raise RuntimeError("the bridge did not converge in time")
        time.sleep(0.01)
    return (time.perf_counter() - started) * 1000


def _consul_reads(consul: httpx.Client) -> dict[str, int]:
    counters = consul.get("/_emulator/counters").json()["by_method_and_kind"]
    return {k: v for k, v in counters.items() if k.startswith("GET")}


def _register(
    consul: httpx.Client, name: str, sid: str, address: str, status: str = "passing"
) -> None:
    consul.put(
        "/v1/agent/service/register",
        json={
            "Name": name,
            "ID": sid,
            "Address": address,
            "Port": 8080,
            "Tags": ["kong.enable=true"],
            "Check": {"CheckID": f"check:{sid}", "Name": "ttl", "TTL": "30m", "Status": status},
        },
    ).raise_for_status()


def _settle(consul: httpx.Client, quiet: float = 3.0) -> None:
    """Wait until the bridge has stopped reading Consul (watches re-armed, sweeps done)."""
    last, since = -1, time.perf_counter()
    while time.perf_counter() - since < quiet:
        total = consul.get("/_emulator/counters").json()["total"]
        if total != last:
            last, since = total, time.perf_counter()
        time.sleep(0.05)


def _measure_change(
    consul: httpx.Client,
    kong: httpx.Client,
    change: Callable[[], None],
    converged: Callable[[], bool],
) -> dict[str, Any]:
    _settle(consul)
    consul.delete("/_emulator/counters")
    kong.delete("/_emulator/counters")
    change()
    latency = _wait_for(converged)
    _settle(consul)
    reads = _consul_reads(consul)
    reads = {k: v for k, v in reads.items() if not k.startswith("GET _emulator")}
    # Kong reads are the benchmark's own polling; the bridge itself only writes.
    kong_writes = kong.get("/_emulator/counters").json()["writes"]
    return {
        "consul_requests": sum(reads.values()),
        "consul_by_endpoint": reads,
        "kong_writes": kong_writes,
        "propagation_ms": round(latency, 1),
    }


def bench_bridge(services: int) -> dict[str, Any]:
    """Consul requests and Kong writes that one instance change costs, end to end."""
    import subprocess

    from bridge.emulators.consul import ConsulEmulator
    from bridge.emulators.kong import KongEmulator

    with (
        KongEmulator() as kong_server,
        ConsulEmulator() as consul_server,
        httpx.Client(base_url=kong_server.url, timeout=30) as kong,
        httpx.Client(base_url=consul_server.url, timeout=30) as consul,
    ):
        for index in range(services):
            _register(consul, f"svc-{index:04d}", f"svc-{index:04d}-1", "10.0.0.1")
        bridge = subprocess.Popen(
            [sys.executable, "-m", "bridge", "run", "--debounce", "0.05", "--wait", "5m"],
            env={
                **os.environ,
                "CONSUL_HTTP_ADDR": consul_server.url,
                "KONG_ADMIN_URL": kong_server.url,
            },
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:

            def owned() -> int:
                return len(
                    kong.get(
                        "/services", params={"tags": "managed-by:kong-bridge", "size": 1000}
                    ).json()["data"]
                )

            initial_ms = _wait_for(lambda: owned() >= min(services, 1000), timeout=300)

            def targets(name: str) -> set[str]:
                rows = kong.get(f"/upstreams/{name}.service.consul/targets").json()["data"]
                return {t["target"] for t in rows}

            watched, last = "svc-0000", f"svc-{services - 1:04d}"
            results: dict[str, Any] = {
                "services": services,
                "initial_sync_ms": round(initial_ms, 1),
            }
            results["instance_added_watched_service"] = _measure_change(
                consul,
                kong,
                lambda: _register(consul, watched, f"{watched}-2", "10.0.0.2"),
                lambda: "10.0.0.2:8080" in targets(watched),
            )
            results["instance_unhealthy_watched_service"] = _measure_change(
                consul,
                kong,
                lambda: consul.put(f"/v1/agent/check/fail/check:{watched}-2"),
                lambda: "10.0.0.2:8080" not in targets(watched),
            )
            if services > 150:
                results["instance_added_overflow_service"] = _measure_change(
                    consul,
                    kong,
                    lambda: _register(consul, last, f"{last}-2", "10.0.0.2"),
                    lambda: "10.0.0.2:8080" in targets(last),
                )
                results["instance_unhealthy_overflow_service"] = _measure_change(
                    consul,
                    kong,
                    lambda: consul.put(f"/v1/agent/check/fail/check:{last}-2"),
                    lambda: "10.0.0.2:8080" not in targets(last),
                )
        finally:
            bridge.terminate()
            bridge.wait(30)
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
        # Every check on one node: reads must come from indexes, not scans of the node.
        "consul_emulator_10k_on_one_node": bench_consul(10000, 1, args.samples, 100, nodes=1),
        "bridge_10_services": bench_bridge(10),
        "bridge_1000_services": bench_bridge(1000),
        "python": sys.version.split()[0],
    }
    text = json.dumps(results, indent=2)
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
