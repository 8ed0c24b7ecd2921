"""The compose stack: the files validate with the compose tools present; with a Docker
engine, the stack starts and answers through Kong's proxy."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.helpers import eventually

COMPOSE_DIR = Path(__file__).resolve().parents[1] / "compose"
BASE = COMPOSE_DIR / "docker-compose.yml"
DBLESS = COMPOSE_DIR / "docker-compose.dbless.yml"


def _compose_commands() -> list[list[str]]:
    """Every compose tool installed here: Debian's docker-compose 1.29, docker compose v2."""
    found = []
    if shutil.which("docker-compose"):
        found.append(["docker-compose"])
    if shutil.which("docker"):
        probe = subprocess.run(
            ["docker", "compose", "version"], capture_output=True, check=False, timeout=30
        )
        if probe.returncode == 0:
            found.append(["docker", "compose"])
    return found


COMPOSE_TOOLS = _compose_commands()


def _config(tool: list[str], *files: Path) -> dict[str, Any]:
    args = [part for f in files for part in ("-f", str(f))]
    result = subprocess.run(
        [*tool, *args, "config"], capture_output=True, text=True, check=False, timeout=60
    )
    assert result.returncode == 0, f"{' '.join(tool)} config failed:\n{result.stderr}"
    config: dict[str, Any] = yaml.safe_load(result.stdout)
    return config


@pytest.fixture(params=COMPOSE_TOOLS, ids=lambda tool: " ".join(tool))
def compose_tool(request: pytest.FixtureRequest) -> list[str]:
    tool: list[str] = request.param
    return tool


def test_a_compose_tool_is_installed() -> None:
    if not COMPOSE_TOOLS:
        pytest.skip("neither docker-compose nor docker compose is installed (.ci/run adds it)")
    assert COMPOSE_TOOLS


def test_the_stack_validates_and_kong_can_start(compose_tool: list[str]) -> None:
    config = _config(compose_tool, BASE)
    services = config["services"]
    assert {"consul", "kong-database", "kong-migrations", "kong", "bridge", "orders", "hello"} <= (
        set(services)
    )
    # Kong 3.x exits at start-up unless every resolver is ip[:port]: Consul's fixed address.
    resolver = services["kong"]["environment"]["KONG_DNS_RESOLVER"]
    consul_ip = services["consul"]["networks"]["mesh"]["ipv4_address"]
    assert resolver == f"{consul_ip}:8600"
    # Kong's DNS client asks only Consul, so Postgres must be an address too.
    pg_host = services["kong"]["environment"]["KONG_PG_HOST"]
    assert pg_host == services["kong-database"]["networks"]["mesh"]["ipv4_address"]
    assert services["kong"]["environment"]["KONG_DATABASE"] == "postgres"
    published = {str(p["published"]) for p in services["kong"]["ports"]}
    assert {"8000", "8001"} <= published  # curl localhost:8000/<path>


def test_the_sample_services_opt_in_as_documented(compose_tool: list[str]) -> None:
    services = _config(compose_tool, BASE)["services"]
    definition = yaml.safe_load((COMPOSE_DIR / "consul" / "orders.json").read_text())["service"]
    assert "kong.enable=true" in definition["tags"] and "kong.paths=/orders" in definition["tags"]
    assert definition["address"] == services["orders"]["networks"]["mesh"]["ipv4_address"]
    assert definition["check"]["http"] == f"http://{definition['address']}:8080/health"
    hello = services["hello"]["command"]
    assert hello[:3] == ["register", "--config", "/config/hello.json"] and "--" in hello
    for sample in ("orders", "hello"):  # not the image's check of the bridge's /healthz
        assert "127.0.0.1:8080/health" in " ".join(services[sample]["healthcheck"]["test"])


def test_the_db_less_variant_is_one_file_away(compose_tool: list[str]) -> None:
    services = _config(compose_tool, BASE, DBLESS)["services"]
    assert services["kong"]["environment"]["KONG_DATABASE"] == "off"
    assert services["hello"]["profiles"] == ["needs-a-database"]  # writes need a database


def test_no_top_level_name_for_docker_compose_1_29() -> None:
    assert "name" not in yaml.safe_load(BASE.read_text())


# -- with an engine: the stack for real ----------------------------------------------------


@pytest.fixture(scope="module")
def stack() -> Iterator[list[str]]:
    tool = COMPOSE_TOOLS[0] if COMPOSE_TOOLS else ["docker", "compose"]
    files = ["-f", str(BASE)]
    subprocess.run([*tool, *files, "up", "-d", "--build"], check=True, timeout=900)
    yield tool
    subprocess.run([*tool, *files, "down", "-v"], check=False, timeout=300)


def _answer(path: str) -> dict[str, Any] | None:
    response = httpx.get(f"http://localhost:8000{path}", timeout=5)
    return response.json() if response.status_code == 200 else None


@pytest.mark.docker
def test_traffic_reaches_the_samples_through_kong(stack: list[str]) -> None:
    orders = eventually(lambda: _answer("/orders/42"), timeout=240, what="/orders via Kong")
    assert orders["instance"] == "orders-1"
    assert orders["headers"]["via"].endswith("kong/3.9.1")
    hello = eventually(lambda: _answer("/hello"), timeout=120, what="/hello via Kong")
    assert hello["instance"] == "hello-1"


@pytest.mark.docker
def test_a_new_consul_service_gets_a_route(stack: list[str]) -> None:
    httpx.put(
        "http://localhost:8500/v1/agent/service/register",
        json={
            "Name": "orders-v2",
            "ID": "orders-v2-1",
            "Address": "172.28.0.20",
            "Port": 8080,
            "Tags": ["kong.enable=true", "kong.paths=/v2/orders"],
        },
    ).raise_for_status()
    answer = eventually(lambda: _answer("/v2/orders"), timeout=60, what="/v2/orders via Kong")
    assert answer["instance"] == "orders-1"
    httpx.put("http://localhost:8500/v1/agent/service/deregister/orders-v2-1").raise_for_status()
    eventually(
        lambda: httpx.get("http://localhost:8000/v2/orders", timeout=5).status_code == 404,
        timeout=60,
        what="/v2/orders gone",
    )
