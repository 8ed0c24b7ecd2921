"""How long one ``health/state/any`` answer with one changed check takes to follow.

Not part of ``make bench`` (that one times the whole bridge); this isolates
``CheckTable.update`` on real answers: the Consul emulator runs in this
process with ``--services`` services of one instance each, one check at a
time flips between passing and critical (a different length, the usual case),
and every answer is kept; then the answers are fed to a fresh table, each
update timed. Run: ``.venv/bin/python bench/list_delta_bench.py``.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time

import httpx

from bridge.emulators.consul import ConsulEmulator
from bridge.watch import CheckTable
from run import NODES, instance_body, load_consul, service_name  # bench/, the script's directory


def answers(services: int, changes: int, seed: int) -> list[bytes]:
    """The first answer, then one after each single check flip at a random service."""
    chooser = random.Random(seed)
    with ConsulEmulator() as consul, httpx.Client(base_url=consul.url, timeout=60) as client:
        load_consul(consul.url, services, 1)
        bodies = [client.get("/v1/health/state/any").content]
        status = {}
        for _ in range(changes):
            i = chooser.randrange(services)
            status[i] = "critical" if status.get(i, "passing") == "passing" else "passing"
            name = service_name(i)
            body = instance_body(name, f"{name}-0", i % NODES, 8080, status[i])
            client.put("/v1/catalog/register", json=body).raise_for_status()
            bodies.append(client.get("/v1/health/state/any").content)
    return bodies


def time_updates(bodies: list[bytes]) -> list[float]:
    table = CheckTable()
    table.update(bodies[0])
    seconds = []
    for body in bodies[1:]:
        started = time.perf_counter()
        changes = table.update(body)
        seconds.append(time.perf_counter() - started)
        assert len(changes) == 1, changes
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--services", type=int, default=10_000)
    parser.add_argument("--changes", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=5, help="times the answers are replayed")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    bodies = answers(args.services, args.changes, args.seed)
    print(f"{args.services} checks, answer of {len(bodies[0]) / 1e6:.1f} MB")
    seconds = [s for _ in range(args.rounds) for s in time_updates(bodies)]
    ms = sorted(s * 1000 for s in seconds)
    p50, p99 = statistics.median(ms), ms[int(len(ms) * 0.99)]
    print(f"CheckTable.update, {len(ms)} one-check changes:")
    print(f"  p50 {p50:.3f} ms  p99 {p99:.3f} ms  max {ms[-1]:.3f} ms")


if __name__ == "__main__":
    main()
