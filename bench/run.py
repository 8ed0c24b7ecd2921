"""Benchmarks: print numbers and write them as JSON (``make bench``). Nothing here asserts."""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("bench/results.json"))
    parser.add_argument("--services", type=int, default=10_000)
    parser.add_argument("--samples", type=int, default=500)
    args = parser.parse_args(argv)
    results = {
        "kong_emulator": bench_kong(args.services, args.samples),
        "python": sys.version.split()[0],
    }
    text = json.dumps(results, indent=2)
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
