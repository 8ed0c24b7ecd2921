"""Replicas of the bridge as separate processes, against one Kong and one Consul.

Kong is an emulator process; Consul is an emulator served from the test process
(on a real socket) with a low minimum session TTL, so that failover takes
seconds here. The replicas run ``kong-bridge run --ha`` with a 4 s session TTL,
a 3 s check TTL and a 1 s lock-delay; a replica may reach Consul through a
:class:`CuttableProxy`.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from bridge.emulators.consul import ConsulEmulator
from tests.bridge.conftest import Stack, _emulator, free_port
from tests.helpers import eventually

TTL = 4
CHECK_TTL = 3
LOCK_DELAY = 1
# After a SIGKILL: the check lapses within CHECK_TTL, Consul invalidates the session at
# once, the lock-delay runs, and a standby retries its acquire every 0.5 s.
FAILOVER_BOUND = CHECK_TTL + LOCK_DELAY + 1
LOCK_KEY = "kong-bridge/kong-bridge/leader"


@dataclass
class Replica:
    """One ``kong-bridge run`` process and its status endpoint."""

    name: str
    process: subprocess.Popen[bytes]
    status: httpx.Client
    log: Path

    def readyz(self) -> dict[str, Any]:
        try:
            return dict(self.status.get("/readyz").json())
        except (httpx.TransportError, ValueError):
            return {}

    def role(self) -> str:
        return str(self.readyz().get("role", ""))

    def samples(self) -> dict[str, float]:
        """Every sample of /metrics, keyed by its name and labels as written."""
        found = {}
        for line in self.status.get("/metrics").text.splitlines():
            if line and not line.startswith("#"):
                key, _, value = line.rpartition(" ")
                found[key] = float(value)
        return found

    def metric(self, key: str) -> float:
        return self.samples().get(key, 0.0)

    def kong_writes(self) -> float:
        """Kong requests this replica sent that were not reads."""
        return sum(
            value
            for key, value in self.samples().items()
            if key.startswith("kong_bridge_kong_requests_total") and 'method="GET"' not in key
        )

    def kong_statuses(self) -> set[str]:
        return {
            key.split('status="')[1].split('"')[0]
            for key in self.samples()
            if key.startswith("kong_bridge_kong_requests_total")
        }

    def logs(self) -> str:
        return self.log.read_text(errors="replace")

    def signal(self, signum: int) -> float:
        """Send a signal; returns the seconds the process took to exit."""
        began = time.monotonic()
        self.process.send_signal(signum)
        self.process.wait(15)
        return time.monotonic() - began

    @property
    def alive(self) -> bool:
        return self.process.poll() is None


@dataclass
class Cluster:
    """Kong, Consul and the replicas started by a test (``stack`` registers and reads)."""

    stack: Stack
    consul_url: str
    kong_url: str
    logdir: Path
    replicas: list[Replica] = field(default_factory=list)

    @property
    def kong(self) -> httpx.Client:
        return self.stack.kong

    @property
    def consul(self) -> httpx.Client:
        return self.stack.consul

    def start(
        self, name: str, *extra: str, consul_url: str | None = None, ha: bool = True
    ) -> Replica:
        port = free_port()
        args = [
            "run",
            "--listen",
            f"127.0.0.1:{port}",
            "--instance",
            name,
            "--wait",
            "20s",
            "--debounce",
            "0.05",
            "--resync",
            "3",
            "--retry-seconds",
            "1",
        ]
        if ha:
            args += [
                "--ha",
                "--ha-ttl",
                str(TTL),
                "--ha-check-ttl",
                str(CHECK_TTL),
                "--ha-lock-delay",
                str(LOCK_DELAY),
            ]
        env = {
            **os.environ,
            "CONSUL_HTTP_ADDR": consul_url or self.consul_url,
            "KONG_ADMIN_URL": self.kong_url,
            "CONSUL_HTTP_TOKEN": "",
        }
        log = self.logdir / f"{name}.log"
        with log.open("wb") as sink:
            process = subprocess.Popen(
                [sys.executable, "-m", "bridge", *args, *extra],
                stdout=sink,
                stderr=subprocess.STDOUT,
                env=env,
            )
        replica = Replica(
            name, process, httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5), log
        )
        self.replicas.append(replica)
        eventually(lambda: replica.readyz(), 20, f"{name} serves /readyz")
        return replica

    def leaders(self) -> list[Replica]:
        return [r for r in self.replicas if r.alive and r.role() == "leader"]

    def one_leader(self, timeout: float = 15.0) -> Replica:
        found: list[Replica] = eventually(
            lambda: (leaders := self.leaders()) and len(leaders) == 1 and leaders,
            timeout,
            "exactly one leader",
        )
        return found[0]

    def lock_holder(self) -> str:
        """The instance named by the session holding the lock ('' when free)."""
        response = self.consul.get(f"/v1/kv/{LOCK_KEY}")
        if response.status_code == 404:
            return ""
        session = response.json()[0].get("Session")
        if not session:
            return ""
        info = self.consul.get(f"/v1/session/info/{session}").json()
        return str(info[0]["Name"]).removeprefix("kong-bridge ") if info else ""

    def kong_writes(self) -> dict[str, int]:
        counters = self.kong.get("/_emulator/counters").json()["by_method_and_kind"]
        return {k: v for k, v in counters.items() if not k.startswith("GET")}


@pytest.fixture(scope="module")
def kong_url() -> Iterator[str]:
    yield from _emulator("kong")


@pytest.fixture(scope="module")
def consul_server() -> Iterator[ConsulEmulator]:
    with ConsulEmulator(min_session_ttl=1.0) as server:
        yield server


@pytest.fixture
def cluster(kong_url: str, consul_server: ConsulEmulator) -> Iterator[Cluster]:
    kong = httpx.Client(base_url=kong_url, timeout=10)
    consul = httpx.Client(base_url=consul_server.url, timeout=10)
    kong.post("/_emulator/reset").raise_for_status()
    consul.post("/_emulator/reset").raise_for_status()
    with tempfile.TemporaryDirectory(prefix="kong-bridge-ha-") as logdir:
        stack = Stack(kong, consul, status=consul, env={})  # no bridge of its own here
        result = Cluster(stack, consul_server.url, kong_url, Path(logdir))
        yield result
        for replica in result.replicas:
            if replica.alive:
                replica.process.send_signal(signal.SIGKILL)
                replica.process.wait(10)
