"""Measure SIGKILL failover with the default HA settings (not a test: it takes minutes).

    .venv/bin/python -m tests.ha.measure_failover [RUNS] [extra run flags...]

Kong is an emulator process; Consul an emulator with Consul's own minimum session
TTL (10 s), so the replicas run with the defaults (``--ha`` and nothing else).
Each run starts two replicas, SIGKILLs the leader, and times until the other leads.
"""

from __future__ import annotations

import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

from bridge.emulators.consul import ConsulEmulator
from tests.bridge.conftest import Stack, _emulator
from tests.ha.conftest import Cluster


def one_run(cluster: Cluster, run: int, extra: list[str]) -> float:
    cluster.kong.post("/_emulator/reset").raise_for_status()
    cluster.consul.post("/_emulator/reset").raise_for_status()
    first = cluster.start(f"m{run}a", "--ha", *extra, ha=False)
    leader = cluster.one_leader(timeout=30)
    second = cluster.start(f"m{run}b", "--ha", *extra, ha=False)
    time.sleep(run % 3)  # kill at different points of the leader's pass/renewal cycle
    leader.process.send_signal(signal.SIGKILL)
    killed = time.monotonic()
    leader.process.wait(5)
    cluster.one_leader(timeout=60)
    failover = time.monotonic() - killed
    for replica in (first, second):
        if replica.alive:
            replica.process.send_signal(signal.SIGTERM)
            replica.process.wait(10)
    return failover


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    extra = sys.argv[2:]
    kong_urls = _emulator("kong")
    kong_url = next(kong_urls)
    with ConsulEmulator() as consul_server, tempfile.TemporaryDirectory() as logdir:
        kong = httpx.Client(base_url=kong_url, timeout=10)
        consul = httpx.Client(base_url=consul_server.url, timeout=10)
        stack = Stack(kong, consul, status=consul, env={})
        cluster = Cluster(stack, consul_server.url, kong_url, Path(logdir))
        times = []
        for run in range(runs):
            times.append(one_run(cluster, run, extra))
            print(f"run {run + 1}: SIGKILL failover {times[-1]:.2f} s", flush=True)
        print(
            f"{runs} runs {' '.join(extra) or '(defaults)'}: min {min(times):.2f} s, "
            f"median {statistics.median(times):.2f} s, max {max(times):.2f} s"
        )
    next(kong_urls, None)


if __name__ == "__main__":
    main()
