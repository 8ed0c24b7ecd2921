"""The compose stack with real Consul and Kong (runs only where a Docker engine runs)."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

COMPOSE = Path(__file__).resolve().parents[1] / "compose" / "docker-compose.yml"
pytestmark = pytest.mark.docker


@pytest.fixture(scope="module")
def stack() -> Iterator[None]:
    subprocess.run(
        ["docker", "compose", "-f", str(COMPOSE), "up", "-d", "--build", "--wait"],
        check=True,
        timeout=900,
    )
    yield
    subprocess.run(
        ["docker", "compose", "-f", str(COMPOSE), "down", "-v"], check=False, timeout=300
    )


def test_registered_service_reaches_real_kong(stack: None) -> None:
    httpx.put(
        "http://localhost:8500/v1/agent/service/register",
        json={
            "Name": "compose-demo",
            "ID": "compose-demo-1",
            "Address": "10.10.0.1",
            "Port": 8080,
            "Tags": ["kong.enable=true", "kong.paths=/compose-demo"],
        },
    ).raise_for_status()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        response = httpx.get("http://localhost:8001/upstreams/compose-demo.service.consul/targets")
        if response.status_code == 200 and response.json()["data"]:
            break
        time.sleep(0.5)
    targets = response.json()["data"]
    assert [t["target"] for t in targets] == ["10.10.0.1:8080"]
    route = httpx.get("http://localhost:8001/routes/compose-demo").json()
    assert route["paths"] == ["/compose-demo"]
