"""End-to-end fixtures: both emulators and the bridge as separate processes."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx
import pytest

from tests.helpers import eventually


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _spawn(args: list[str], env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "bridge", *args],
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, **(env or {})},
    )


def spawn_bridge(
    args: list[str], env: dict[str, str], log_path: str = ""
) -> tuple[subprocess.Popen[str], str]:
    """``python -m bridge <args>`` with its output appended to a file (a new one unless
    ``log_path`` is given): a pipe nobody reads fills up (64 KiB) and then blocks a
    chatty bridge on its next log line."""
    if not log_path:
        handle, log_path = tempfile.mkstemp(prefix="kong-bridge-", suffix=".log")
        os.close(handle)
    with open(log_path, "a", encoding="utf-8") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "bridge", *args],
            text=True,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **env},
        )
    return process, log_path


def run_cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """``python -m bridge <args>`` to completion, with ``env`` over this environment."""
    return subprocess.run(
        [sys.executable, "-m", "bridge", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _emulator(kind: str) -> Iterator[str]:
    process = _spawn(["emulate", kind, "--port", "0"])
    assert process.stdout is not None
    line = process.stdout.readline()
    url = line.strip().rsplit(" ", 1)[-1]
    assert url.startswith("http://"), line
    yield url
    process.terminate()
    process.wait(10)


@pytest.fixture(scope="module")
def kong_url() -> Iterator[str]:
    yield from _emulator("kong")


@pytest.fixture(scope="module")
def consul_url() -> Iterator[str]:
    yield from _emulator("consul")


@dataclass
class Stack:
    """A Kong emulator, a Consul emulator and a running bridge, all separate processes."""

    kong: httpx.Client
    consul: httpx.Client
    status: httpx.Client
    env: dict[str, str]
    process: subprocess.Popen[str] | None = None
    args: list[str] = field(default_factory=list)
    log_path: str = ""  # the bridge's stdout and stderr

    def logs(self) -> str:
        """Everything the bridge printed so far."""
        with open(self.log_path, encoding="utf-8", errors="replace") as log:
            return log.read()

    def register(
        self,
        name: str,
        sid: str,
        address: str,
        port: int = 8080,
        tags: list[str] | None = None,
        meta: dict[str, str] | None = None,
        status: str = "passing",
    ) -> None:
        self.consul.put(
            "/v1/agent/service/register",
            json={
                "Name": name,
                "ID": sid,
                "Address": address,
                "Port": port,
                "Tags": tags if tags is not None else ["kong.enable=true"],
                "Meta": meta or {},
                "Check": {"CheckID": f"check:{sid}", "Name": "ttl", "TTL": "10m", "Status": status},
            },
        ).raise_for_status()

    def register_on_doomed_node(self, names: list[str]) -> None:
        """One opted-in instance of each service, all on the node "doomed"."""
        for name in names:
            service = {"Service": name, "ID": f"{name}-1", "Port": 80, "Tags": ["kong.enable=true"]}
            self.consul.put(
                "/v1/catalog/register",
                json={"Node": "doomed", "Address": "10.0.0.7", "Service": service},
            ).raise_for_status()

    def lose_three_of_four(self) -> None:
        """Start with services a, b, c (on one node) and d, then drop that node at once."""
        self.register_on_doomed_node(["a", "b", "c"])
        self.register("d", "d-1", "10.0.0.1")
        self.start()
        eventually(lambda: self.names("services") == {"a", "b", "c", "d"})
        self.consul.put("/v1/catalog/deregister", json={"Node": "doomed"}).raise_for_status()

    def deregister(self, sid: str) -> None:
        self.consul.put(f"/v1/agent/service/deregister/{sid}").raise_for_status()

    def set_status(self, sid: str, verb: str) -> None:
        self.consul.put(f"/v1/agent/check/{verb}/check:{sid}").raise_for_status()

    def targets(self, upstream: str) -> set[str]:
        response = self.kong.get(f"/upstreams/{upstream}/targets")
        if response.status_code == 404:
            return set()
        return {t["target"] for t in response.json()["data"]}

    def names(self, kind: str) -> set[str]:
        return {row["name"] for row in self.kong.get(f"/{kind}").json()["data"]}

    def metric(self, name: str) -> float:
        """One unlabelled sample from /metrics (0 when absent)."""
        for line in self.status.get("/metrics").text.splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
        return 0.0

    def kong_refuses(self) -> bool:
        try:
            self.kong.get("/status")
        except httpx.ConnectError:
            return True
        return False

    def ready(self) -> dict[str, Any]:
        return dict(self.status.get("/readyz").json())

    def start(self, *extra: str) -> None:
        port = int(str(self.status.base_url).rsplit(":", 1)[-1].strip("/"))
        self.args = [
            "run",
            "--listen",
            f"127.0.0.1:{port}",
            "--wait",
            "20s",
            "--debounce",
            "0.05",
            "--resync",
            "2",
            "--retry-seconds",
            "1",
            *extra,
        ]
        self.process, self.log_path = spawn_bridge(self.args, self.env, self.log_path)
        eventually(lambda: self.status.get("/readyz").json()["ready"], 20, "bridge ready")

    def stop(self) -> int:
        assert self.process is not None
        self.process.terminate()
        code = self.process.wait(15)
        self.process = None
        return code


S = TypeVar("S", bound=Stack)


def stack_of(kind: type[S], kong_url: str, consul_url: str) -> Iterator[S]:
    """A fresh stack on reset emulators; the bridge is killed at the end if still running."""
    kong = httpx.Client(base_url=kong_url, timeout=10)
    consul = httpx.Client(base_url=consul_url, timeout=10)
    status = httpx.Client(base_url=f"http://127.0.0.1:{free_port()}", timeout=5)
    kong.post("/_emulator/reset").raise_for_status()
    consul.post("/_emulator/reset").raise_for_status()
    env = {"CONSUL_HTTP_ADDR": consul_url, "KONG_ADMIN_URL": kong_url, "CONSUL_HTTP_TOKEN": ""}
    result = kind(kong, consul, status, env)
    try:
        yield result
    finally:  # also when a fixture built on this one fails first: no bridge outlives its test
        if result.process is not None:
            result.process.kill()
            result.process.wait(10)
        if result.log_path:
            os.unlink(result.log_path)


@pytest.fixture
def stack(kong_url: str, consul_url: str) -> Iterator[Stack]:
    yield from stack_of(Stack, kong_url, consul_url)
