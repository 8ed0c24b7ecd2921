"""Benchmarks: the floor, the bridge and decK side by side (``make bench``). Nothing asserts.

Everything runs as separate processes on loopback: the Kong and Consul
emulators, ``kong-bridge run`` with default settings, and decK when installed.
One table is printed; every figure is written to ``bench/results.json``.

- **floor**: a Consul write -> a held blocking query on that service returns ->
  one Kong write, seen by the same 3 ms poller that times the bridge.
- **bridge**: the same Consul write -> the bridge applies it -> seen by the poller.
- **decK**: ``deck gateway sync`` of the same entities into a fresh Kong emulator.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml

OWNER = "managed-by:kong-bridge"
POLL = 0.003
NODES = 100
MID_RESYNC_SAMPLES = 10  # adds that land while a resync reads Kong (each waits for one)
SYNC_PAIRS = 4  # more initial syncs at 1,000 services, the bridge's and decK's in turn
Row = dict[str, Any]


# -- processes -------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def emulator(kind: str, *extra: str) -> Iterator[str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "bridge", "emulate", kind, "--port", "0", *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert process.stdout is not None
    url = process.stdout.readline().strip().rsplit(" ", 1)[-1]
    try:
        yield url
    finally:
        process.terminate()
        process.wait(30)


@dataclass
class BridgeProcess:
    process: subprocess.Popen[bytes]
    status: httpx.Client
    started: float

    def ready(self) -> bool:
        try:
            return bool(self.status.get("/readyz").json().get("ready"))
        except (httpx.HTTPError, ValueError):
            return False

    def proc(self, field: str) -> int:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
        return -1

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        self.process.send_signal(sig)
        self.process.wait(30)
        self.status.close()


def start_bridge(consul: str, kong: str, *args: str) -> BridgeProcess:
    port = free_port()
    log = os.environ.get("BENCH_BRIDGE_LOG")  # where the bridge's log goes (default: nowhere)
    process = subprocess.Popen(
        [sys.executable, "-m", "bridge", "run", "--listen", f"127.0.0.1:{port}", *args],
        env={**os.environ, "CONSUL_HTTP_ADDR": consul, "KONG_ADMIN_URL": kong},
        stdout=subprocess.DEVNULL,
        stderr=open(log, "a") if log else subprocess.DEVNULL,  # noqa: SIM115
    )
    status = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5)
    return BridgeProcess(process, status, time.perf_counter())


def wait_for(condition: Callable[[], Any], timeout: float = 120.0, step: float = POLL) -> float:
    """Seconds until ``condition()`` holds (raises past ``timeout``)."""
    started = time.perf_counter()
    while not condition():
        if time.perf_counter() - started > timeout:
            raise RuntimeError(f"not reached in {timeout}s: {condition}")
        time.sleep(step)
    return time.perf_counter() - started


# -- Consul load -----------------------------------------------------------------------------


def service_name(index: int) -> str:
    return f"svc-{index:05d}"


def instance_body(
    name: str, sid: str, node: int, port: int, status: str = "passing", opt_in: bool = True
) -> Row:
    tags = ["kong.enable=true"] if opt_in else []
    return {
        "Node": f"node-{node:03d}",
        "Address": f"10.1.{node // 250}.{node % 250}",
        "Service": {"Service": name, "ID": sid, "Port": port, "Tags": tags},
        "Check": {"CheckID": f"check:{sid}", "Name": "c", "Status": status, "ServiceID": sid},
    }


async def _put_all(url: str, bodies: list[tuple[str, Row]], concurrency: int = 32) -> None:
    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as client:
        queue = list(reversed(bodies))

        async def worker() -> None:
            while queue:
                path, body = queue.pop()
                (await client.put(path, json=body)).raise_for_status()

        await asyncio.gather(*(worker() for _ in range(concurrency)))


def load_consul(url: str, services: int, per_service: int) -> None:
    bodies = [
        ("/v1/catalog/register", instance_body(service_name(i), f"{service_name(i)}-{k}", n, 8080))
        for i in range(services)
        for k in range(per_service)
        for n in [(i * per_service + k) % NODES]
    ]
    asyncio.run(_put_all(url, bodies))


def expected_writes(services: int, per_service: int) -> int:
    return services * (3 + per_service)  # upstream, service, route, targets


def target_of(node: int, port: int) -> str:
    return f"10.1.{node // 250}.{node % 250}:{port}"


# -- one change, timed -----------------------------------------------------------------------


def targets(kong: httpx.Client, upstream: str) -> set[str]:
    response = kong.get(f"/upstreams/{upstream}/targets")
    return {t["target"] for t in response.json().get("data", [])} if response.is_success else set()


def settle(consul: httpx.Client, quiet: float = 0.2, timeout: float = 60.0) -> None:
    """Wait until nobody has read Consul for ``quiet`` seconds (watches re-armed, reads done)."""
    last, since, started = -1, time.perf_counter(), time.perf_counter()
    while time.perf_counter() - since < quiet and time.perf_counter() - started < timeout:
        total = consul.get("/_emulator/counters").json()["total"]
        if total != last:
            last, since = total, time.perf_counter()
        time.sleep(0.02)


def consul_reads(consul: httpx.Client) -> int:
    counters = consul.get("/_emulator/counters").json()["by_method_and_kind"]
    return sum(n for key, n in counters.items() if key.startswith("GET "))


def percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return {
        "n": len(ordered),
        "p50_ms": round(statistics.median(ordered) * 1000, 1),
        "p99_ms": round(p99 * 1000, 1),
        "max_ms": round(ordered[-1] * 1000, 1),
    }


@dataclass
class Change:
    """A Consul write and the Kong condition it must produce."""

    write: Callable[[], None]
    done: Callable[[], bool]


def timed_changes(consul: httpx.Client, kong: httpx.Client, changes: list[Change]) -> Row:
    latencies, requests, writes = [], [], []
    for change in changes:
        settle(consul)
        consul.delete("/_emulator/counters")
        kong.delete("/_emulator/counters")
        started = time.perf_counter()
        change.write()
        wait_for(change.done, 60)
        latencies.append(time.perf_counter() - started)
        settle(consul)
        # Writes only: the benchmark's own polling is Kong's only reader meanwhile.
        writes.append(kong.get("/_emulator/counters").json()["writes"])
        requests.append(consul_reads(consul))
    return {
        **percentiles(latencies),
        "consul_requests_per_change": round(statistics.mean(requests), 2),
        "consul_requests_max": max(requests),
        "kong_writes_per_change": round(statistics.mean(writes), 2),
    }


def change_series(consul: httpx.Client, kong: httpx.Client, services: int, samples: int) -> Row:
    """Adds, health failures and deregistrations, each on its own service."""
    samples = min(samples, services)  # each change on a service of its own
    picks = [service_name(i * max(1, services // samples) % services) for i in range(samples)]

    def upstream(name: str) -> str:
        return f"{name}.service.consul"

    def put(path: str, body: Row | None = None) -> None:
        consul.put(path, json=body).raise_for_status()

    new = target_of(7, 9999)

    def arrivals() -> list[Change]:
        """The new instance registered (again), passing, on each picked service."""
        return [
            Change(
                lambda n=n: put("/v1/catalog/register", instance_body(n, f"{n}-new", 7, 9999)),  # type: ignore[misc]
                lambda n=n: new in targets(kong, upstream(n)),  # type: ignore[misc]
            )
            for n in picks
        ]

    adds = arrivals()
    fails = [
        Change(
            lambda n=n: put(  # type: ignore[misc]
                "/v1/catalog/register", instance_body(n, f"{n}-new", 7, 9999, "critical")
            ),
            lambda n=n: new not in targets(kong, upstream(n)),  # type: ignore[misc]
        )
        for n in picks
    ]
    revive = arrivals()
    deregs = [
        Change(
            lambda n=n: put(  # type: ignore[misc]
                "/v1/catalog/deregister", {"Node": "node-007", "ServiceID": f"{n}-new"}
            ),
            lambda n=n: new not in targets(kong, upstream(n)),  # type: ignore[misc]
        )
        for n in picks
    ]
    result = {
        "instance_added": timed_changes(consul, kong, adds),
        "instance_failed": timed_changes(consul, kong, fails),
    }
    timed_changes(consul, kong, revive)
    result["instance_deregistered"] = timed_changes(consul, kong, deregs)
    return result


# -- the floor -------------------------------------------------------------------------------


def floor(consul_url: str, kong: httpx.Client, samples: int) -> Row:
    """A blocking query returns, one Kong write follows: the least any bridge can take."""
    consul = httpx.Client(base_url=consul_url, timeout=60)
    kong.post("/upstreams", json={"name": "floor.upstream"}).raise_for_status()
    latencies = []
    for sample in range(samples):
        sid = f"floor-{sample}"
        index = consul.get("/v1/health/service/floor-svc").headers["X-Consul-Index"]
        target = f"10.9.{sample // 250}.{sample % 250}:80"

        def watch(index: str = index, target: str = target) -> None:
            with httpx.Client(timeout=60) as watcher, httpx.Client(timeout=10) as writer:
                watcher.get(
                    f"{consul_url}/v1/health/service/floor-svc",
                    params={"index": index, "wait": "30s"},
                )
                writer.post(
                    f"{kong.base_url}/upstreams/floor.upstream/targets", json={"target": target}
                )

        thread = threading.Thread(target=watch)
        thread.start()
        wait_for(lambda: consul.get("/_emulator/state").json()["blocked_queries"] >= 1, 10, 0.002)
        started = time.perf_counter()
        body = instance_body("floor-svc", sid, 1, 80, opt_in=False)
        consul.put("/v1/catalog/register", json=body).raise_for_status()
        wait_for(lambda target=target: target in targets(kong, "floor.upstream"), 30)
        latencies.append(time.perf_counter() - started)
        thread.join()
    consul.close()
    return percentiles(latencies)


# -- decK ------------------------------------------------------------------------------------


def deck_file(services: int, per_service: int) -> Row:
    tags = [OWNER]
    return {
        "_format_version": "3.0",
        "services": [
            {
                "name": service_name(i),
                "host": f"{service_name(i)}.service.consul",
                "tags": tags,
                "routes": [{"name": service_name(i), "paths": [f"/{service_name(i)}"]}],
            }
            for i in range(services)
        ],
        "upstreams": [
            {
                "name": f"{service_name(i)}.service.consul",
                "tags": tags,
                "targets": [
                    {"target": target_of((i * per_service + k) % NODES, 8080)}
                    for k in range(per_service)
                ],
            }
            for i in range(services)
        ],
    }


@contextmanager
def deck_state(services: int, per_service: int) -> Iterator[tuple[str, Path, Row]]:
    """A fresh Kong emulator, and a decK state file of the entities (with its contents)."""
    with emulator("kong") as kong_url, tempfile.TemporaryDirectory() as directory:
        state = deck_file(services, per_service)
        path = Path(directory, "kong.yaml")
        path.write_text(yaml.safe_dump(state))
        yield kong_url, path, state


def deck_sync(services: int, per_service: int) -> Row:
    """decK's time for the same entities, into a fresh Kong emulator."""
    deck = shutil.which("deck")
    if deck is None:
        return {"skipped": "deck is not installed"}
    with deck_state(services, per_service) as (kong_url, path, state):
        full = run_deck(deck, path, kong_url)
        state["upstreams"][0]["targets"][0]["target"] = "10.9.9.9:8080"
        path.write_text(yaml.safe_dump(state))
        one = run_deck(deck, path, kong_url)
    return {"full_sync_s": round(full, 2), "one_target_changed_s": round(one, 2)}


def deck_full_sync(deck: str, services: int, per_service: int) -> float:
    """decK's full sync of the entities into a fresh Kong emulator, in seconds."""
    with deck_state(services, per_service) as (kong_url, path, _state):
        return round(run_deck(deck, path, kong_url), 2)


def run_deck(deck: str, path: Path, kong_url: str) -> float:
    started = time.perf_counter()
    subprocess.run(
        [deck, "sync", "--state", str(path), "--kong-addr", kong_url, "--no-color"],
        check=True,
        capture_output=True,
        timeout=600,
    )
    return time.perf_counter() - started


def initial_sync_pairs(consul_url: str, services: int, per_service: int, result: Row) -> None:
    """More initial syncs, the bridge's and decK's in turn, each into a fresh Kong
    emulator; both figures become medians (the runs are kept too).

    A sync of a couple of seconds swings by a third from one run to the next on a
    shared VM: one sample of each, minutes apart, compared the VM's moments more
    than the two tools.
    """
    deck = shutil.which("deck")
    if deck is None or "full_sync_s" not in result.get("deck", {}):
        return
    bridge_runs, deck_runs = [result["initial_sync_s"]], [result["deck"]["full_sync_s"]]
    for _ in range(SYNC_PAIRS):
        with emulator("kong") as kong_url:
            bridge = start_bridge(consul_url, kong_url)
            try:
                bridge_runs.append(round(wait_for(bridge.ready, 600, 0.02), 2))
            finally:
                bridge.stop()
        deck_runs.append(deck_full_sync(deck, services, per_service))
    result["initial_sync_runs_s"] = bridge_runs
    result["initial_sync_s"] = round(statistics.median(bridge_runs), 2)
    result["deck"]["full_sync_runs_s"] = deck_runs
    result["deck"]["full_sync_s"] = round(statistics.median(deck_runs), 2)


# -- the bridge at one size ------------------------------------------------------------------


def burst(consul_url: str, kong: httpx.Client, services: int) -> Row:
    """300 instance changes over 100 services within about 1 s; time to correct after the last."""
    names = [service_name(i) for i in range(min(100, services))]
    bodies = [
        ("/v1/catalog/register", instance_body(name, f"{name}-b{k}", 50 + k, 7000 + k))
        for k in range(3)
        for name in names
    ]
    kong.delete("/_emulator/counters")
    with httpx.Client(base_url=consul_url, timeout=30) as consul:
        started = time.perf_counter()
        for number, (path, body) in enumerate(bodies):
            consul.put(path, json=body).raise_for_status()
            time.sleep(max(0.0, started + number / len(bodies) - time.perf_counter()))
        last = time.perf_counter()
    wanted = {target_of(50 + k, 7000 + k) for k in range(3)}

    def correct() -> bool:
        posted = kong.get("/_emulator/counters").json()["by_method_and_kind"]
        return posted.get("POST targets", 0) >= len(bodies) and all(
            wanted <= targets(kong, f"{name}.service.consul") for name in names
        )

    after = wait_for(correct, 60, 0.01)
    writes = kong.get("/_emulator/counters").json()["writes"]
    return {
        "changes": len(bodies),
        "spread_s": round(last - started, 2),
        "correct_after_last_ms": round(after * 1000, 1),
        "kong_writes": writes,
    }


def mid_resync(consul: httpx.Client, kong: httpx.Client, bridge_args: list[str], size: int) -> Row:
    """Adds that land while a resync is reading Kong (``--resync 2``)."""
    samples = []
    for sample in range(MID_RESYNC_SAMPLES):
        name = service_name((sample * 37 + 11) % size)
        target = target_of(9, 9000 + sample)
        settle(consul)
        before = kong.get("/_emulator/counters").json()["reads"]
        wait_for(lambda b=before: kong.get("/_emulator/counters").json()["reads"] > b + 20, 30)
        started = time.perf_counter()
        consul.put(
            "/v1/catalog/register", json=instance_body(name, f"{name}-r{sample}", 9, 9000 + sample)
        ).raise_for_status()
        wait_for(lambda n=name, t=target: t in targets(kong, f"{n}.service.consul"), 60)
        samples.append(time.perf_counter() - started)
    return percentiles(samples)


def full_passes(bridge: BridgeProcess) -> float:
    for line in bridge.status.get("/metrics").text.splitlines():
        if line.startswith("kong_bridge_full_passes_total "):
            return float(line.split()[1])
    return 0.0


def idle_cpu(bridge: BridgeProcess, window: float = 5.0) -> Row:
    """CPU at rest, two ways: a window between resyncs, and averaged over one resync period.

    A resync (every 60 s) re-reads all of Kong, one request per owned upstream,
    and spends seconds of CPU doing it, so a short window says little unless we
    know whether a resync fell into it.
    """
    at_rest = None
    for _ in range(3):  # a window with no full pass in it
        passes, cpu, started = full_passes(bridge), bridge.cpu_seconds(), time.perf_counter()
        time.sleep(window)
        if full_passes(bridge) == passes:
            at_rest = (bridge.cpu_seconds() - cpu) / (time.perf_counter() - started)
            break
    passes = full_passes(bridge)
    wait_for(lambda: full_passes(bridge) > passes, 180, 0.05)  # a period starts with a pass
    passes, cpu, started = full_passes(bridge), bridge.cpu_seconds(), time.perf_counter()
    wait_for(lambda: full_passes(bridge) > passes, 180, 0.05)  # ... and ends with the next
    period = time.perf_counter() - started
    return {
        "idle_cpu_percent": None if at_rest is None else round(at_rest * 100, 2),
        "idle_cpu_percent_over_resync": round((bridge.cpu_seconds() - cpu) / period * 100, 2),
        "resync_period_s": round(period, 1),
    }


def note(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def bench_size(services: int, per_service: int, samples: int) -> Row:
    result: Row = {"services": services, "instances_per_service": per_service}
    note(f"{services} x {per_service}: loading Consul")
    with (
        emulator("consul") as consul_url,
        emulator("kong") as kong_url,
        httpx.Client(base_url=consul_url, timeout=60) as consul,
        httpx.Client(base_url=kong_url, timeout=60) as kong,
    ):
        started = time.perf_counter()
        load_consul(consul_url, services, per_service)
        result["consul_load_s"] = round(time.perf_counter() - started, 1)
        note("floor")
        result["floor"] = floor(consul_url, kong, samples)
        note("bridge: initial sync")
        kong.delete("/_emulator/counters")
        bridge = start_bridge(consul_url, kong_url)
        try:
            result["initial_sync_s"] = round(wait_for(bridge.ready, 600, 0.02), 2)
            result["initial_sync_kong_writes"] = kong.get("/_emulator/counters").json()["writes"]
            result["expected_writes"] = expected_writes(services, per_service)
            result["rss_mb_after_initial_sync"] = round(bridge.proc("VmRSS") / 1024, 1)
            note("bridge: changes")
            result.update(change_series(consul, kong, services, samples))
            note("bridge: idle, burst")
            settle(consul, 1.0)
            result.update(idle_cpu(bridge))
            if services >= 1000:
                try:
                    result["burst"] = burst(consul_url, kong, services)
                except RuntimeError as exc:
                    result["burst"] = {"failed": str(exc)}
            result["peak_rss_mb"] = round(bridge.proc("VmHWM") / 1024, 1)
        finally:
            bridge.stop()
        if services >= 10000:
            bridge = start_bridge(consul_url, kong_url, "--resync", "2")
            try:
                wait_for(bridge.ready, 600, 0.05)
                result["instance_added_mid_resync"] = mid_resync(consul, kong, [], services)
            finally:
                bridge.stop()
        if services >= 1000:
            note("decK")
            result["deck"] = deck_sync(services, per_service)
        if 1000 <= services < 10000:
            note("initial syncs: the bridge and decK in turn")
            initial_sync_pairs(consul_url, services, per_service, result)
    return result


def bench_db_less(services: int, per_service: int) -> Row:
    with emulator("consul") as consul_url, emulator("kong", "--db-less") as kong_url:
        load_consul(consul_url, services, per_service)
        with httpx.Client(base_url=kong_url, timeout=60) as kong:
            bridge = start_bridge(consul_url, kong_url)
            try:
                seconds = wait_for(bridge.ready, 300, 0.02)
                posts = kong.get("/_emulator/counters").json()["by_method_and_kind"]
            finally:
                bridge.stop()
    return {"initial_sync_s": round(seconds, 2), "post_config": posts.get("POST config", 0)}


# -- recovery after faults -------------------------------------------------------------------


def converged_after(kong: httpx.Client, wanted: dict[str, str], since: float) -> float:
    """Seconds from ``since`` until every upstream holds its wanted target."""
    pending = dict(wanted)
    deadline = time.perf_counter() + 120
    while pending and time.perf_counter() < deadline:
        for upstream, target in list(pending.items()):
            try:
                response = kong.get(f"/upstreams/{upstream}/targets")
            except httpx.TransportError:
                break
            if response.is_success and target in {t["target"] for t in response.json()["data"]}:
                del pending[upstream]
        time.sleep(0.02)
    if pending:
        raise RuntimeError(f"{len(pending)} upstreams did not converge")
    return round(time.perf_counter() - since, 2)


def changes(consul: httpx.Client, count: int, port: int) -> dict[str, str]:
    """Add one instance to each of ``count`` services; the targets Kong must get."""
    wanted = {}
    for index in range(count):
        name = service_name(index)
        body = instance_body(name, f"{name}-p{port}", 60, port)

        def put(body: Row = body) -> bool:
            try:
                return consul.put("/v1/catalog/register", json=body).is_success
            except httpx.TransportError:
                return False  # Consul is still coming back from the fault

        wait_for(put, 30, 0.05)
        wanted[f"{name}.service.consul"] = target_of(60, port)
    return wanted


def recovery_times(services: int = 200) -> Row:
    """Seconds to converge after each fault of the chaos suite (200 services)."""
    results: Row = {"services": services}
    with (
        emulator("consul") as consul_url,
        emulator("kong") as kong_url,
        httpx.Client(base_url=consul_url, timeout=30) as consul,
        httpx.Client(base_url=kong_url, timeout=30) as kong,
    ):
        load_consul(consul_url, services, 1)
        bridge = start_bridge(consul_url, kong_url, "--resync", "5")
        try:
            wait_for(bridge.ready, 120, 0.05)
            kong.put("/_emulator/faults", json={"error_rate": 0.2}).raise_for_status()
            wanted = changes(consul, services, 7001)
            results["kong_500s_20pct_during_200_changes_s_after_last"] = converged_after(
                kong, wanted, time.perf_counter()
            )
            kong.delete("/_emulator/faults")
            kong.put("/_emulator/faults", json={"refuse_connections_s": 3}).raise_for_status()
            wanted = changes(consul, 50, 7002)
            back = time.perf_counter() + 3
            results["kong_refused_3s_s_after_back"] = round(
                converged_after(kong, wanted, time.perf_counter()) - 3, 2
            )
            wait_for(lambda: time.perf_counter() > back, 10)
            consul.post("/_emulator/restart", json={"down_seconds": 0.5}).raise_for_status()
            wanted = changes(consul, 50, 7003)
            results["consul_index_reset_s_to_next_change"] = converged_after(
                kong, wanted, time.perf_counter()
            )
            consul.post("/_emulator/leader", json={"no_leader_seconds": 2}).raise_for_status()
            time.sleep(2.1)
            wanted = changes(consul, 50, 7004)
            results["consul_no_leader_2s_s_to_next_change"] = converged_after(
                kong, wanted, time.perf_counter()
            )
        finally:
            bridge.stop(signal.SIGKILL)
        wanted = changes(consul, 50, 7005)
        bridge = start_bridge(consul_url, kong_url)
        try:
            results["sigkill_then_restart_s_to_converged"] = converged_after(
                kong, wanted, bridge.started
            )
        finally:
            bridge.stop()
    return results


# -- output ----------------------------------------------------------------------------------


def table(results: Row) -> str:
    rows: list[tuple[str, ...]] = [
        ("figure", *(f"{r['services']:,} svc" for r in results["sizes"]))
    ]

    def line(label: str, value: Callable[[Row], Any]) -> None:
        cells = []
        for size in results["sizes"]:
            try:
                cells.append(str(value(size)))
            except (KeyError, TypeError, ZeroDivisionError):
                cells.append("—")
        rows.append((label, *cells))

    line("instances per service", lambda r: r["instances_per_service"])
    line("floor p50 / p99 ms", lambda r: f"{r['floor']['p50_ms']} / {r['floor']['p99_ms']}")
    for kind in ("instance_added", "instance_failed", "instance_deregistered"):
        line(
            f"bridge {kind.split('_')[1]} p50 / p99 ms",
            lambda r, k=kind: f"{r[k]['p50_ms']} / {r[k]['p99_ms']}",  # type: ignore[misc]
        )
        line(
            f"  ratio to floor (p50), {kind.split('_')[1]}",
            lambda r, k=kind: f"{r[k]['p50_ms'] / r['floor']['p50_ms']:.1f}x",  # type: ignore[misc]
        )
    line(
        "Consul requests per change (add/fail/dereg)",
        lambda r: " / ".join(
            str(r[k]["consul_requests_per_change"])
            for k in ("instance_added", "instance_failed", "instance_deregistered")
        ),
    )
    line(
        "Kong writes per change (add/fail/dereg)",
        lambda r: " / ".join(
            str(r[k]["kong_writes_per_change"])
            for k in ("instance_added", "instance_failed", "instance_deregistered")
        ),
    )
    line(
        "add during a resync p50 / p99 ms",
        lambda r: (
            f"{r['instance_added_mid_resync']['p50_ms']} / "
            f"{r['instance_added_mid_resync']['p99_ms']}"
        ),
    )
    line(
        "burst: 300 changes, correct after last (ms) / writes",
        lambda r: f"{r['burst']['correct_after_last_ms']} / {r['burst']['kong_writes']}",
    )
    line(
        "initial sync s (Kong writes)",
        lambda r: f"{r['initial_sync_s']} ({r['initial_sync_kong_writes']})",
    )
    line("decK full sync s", lambda r: r["deck"]["full_sync_s"])
    line(
        "  runs, min-max s: bridge / decK",
        lambda r: (
            f"{min(r['initial_sync_runs_s'])}-{max(r['initial_sync_runs_s'])} / "
            f"{min(r['deck']['full_sync_runs_s'])}-{max(r['deck']['full_sync_runs_s'])}"
        ),
    )
    line(
        "  bridge / decK initial sync",
        lambda r: f"{r['initial_sync_s'] / r['deck']['full_sync_s']:.2f}x",
    )
    line("decK sync, one target changed s", lambda r: r["deck"]["one_target_changed_s"])
    line("bridge peak RSS MB", lambda r: r["peak_rss_mb"])
    line("bridge idle CPU %, between resyncs", lambda r: r["idle_cpu_percent"])
    line("bridge idle CPU %, over a resync period", lambda r: r["idle_cpu_percent_over_resync"])
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    text = "\n".join(
        "| " + " | ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)) + " |"
        for row in rows
    )
    separator = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    first, _, rest = text.partition("\n")
    return f"{first}\n{separator}\n{rest}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("bench/results.json"))
    parser.add_argument("--samples", type=int, default=20, help="changes timed per kind")
    parser.add_argument(
        "--sizes", default="10x3,1000x3,10000x1", help="services x instances, comma-separated"
    )
    parser.add_argument("--no-chaos", action="store_true", help="skip the recovery figures")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    results: Row = {
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}",
        "sizes": [],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)

    def save() -> None:
        results["total_s"] = round(time.perf_counter() - started, 1)
        args.out.write_text(json.dumps(results, indent=2) + "\n")

    for spec in args.sizes.split(","):
        services, per_service = (int(part) for part in spec.split("x"))
        samples = args.samples if services < 10000 else max(5, args.samples // 2)
        size = bench_size(services, per_service, samples)
        results["sizes"].append(size)
        save()
        note(f"{services} services done ({time.perf_counter() - started:.0f} s)")
    note("DB-less")
    results["db_less_1000x3"] = bench_db_less(1000, 3)
    save()
    if not args.no_chaos:
        note("recovery after faults")
        results["recovery"] = recovery_times()
    save()
    print(table(results))
    print(f"\nDB-less, 1,000 x 3: {results['db_less_1000x3']}")
    for name, figure in results.get("recovery", {}).items():
        print(f"recovery, {name}: {figure}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
