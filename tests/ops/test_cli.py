"""The command line as an operator meets it: exit codes, one-line errors, --help, plan's diff."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from collections.abc import Iterator

import pytest

from bridge.settings import BridgeSettings, env_name, flag_name, without_credentials
from tests.bridge.conftest import Stack
from tests.ops.conftest import CLI, run_cli


def _one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield int(holder.getsockname()[1])


def _consul_requests(stack: Stack) -> int:
    return int(stack.consul.get("/_emulator/counters").json()["total"])


def test_url_without_scheme_fails_before_any_network_call(stack: Stack, cli: CLI) -> None:
    before = _consul_requests(stack)
    line = _one_line_error(cli("plan", "--kong-admin-url", "127.0.0.1:18001"))
    assert "--kong-admin-url (KONG_ADMIN_URL)" in line and "http://" in line
    assert _consul_requests(stack) == before  # Consul was not even asked


@pytest.mark.parametrize(
    ("env", "args", "says"),
    [
        ({"KONG_ADMIN_TIMEOUT": "-1"}, ["sync", "--once"], "KONG_ADMIN_TIMEOUT"),
        ({}, ["run", "--listen", "9100"], "HOST:PORT"),
        ({}, ["lint", "--concurrency", "many"], "--concurrency"),
        ({}, ["plan", "--mode", "proxy"], "invalid choice"),
        ({}, ["plan", "--no-such-flag"], "unrecognized arguments"),
        ({"KONG_BRIDGE_LOG_LEVEL": "loud"}, ["lint"], "KONG_BRIDGE_LOG_LEVEL"),
    ],
)
def test_user_mistakes_are_one_line(
    stack: Stack, env: dict[str, str], args: list[str], says: str
) -> None:
    assert says in _one_line_error(run_cli({**stack.env, **env}, *args))


def test_busy_listen_is_one_line(stack: Stack, busy_port: int) -> None:
    line = _one_line_error(run_cli(stack.env, "run", "--listen", f"127.0.0.1:{busy_port}"))
    assert f"cannot listen on 127.0.0.1:{busy_port}" in line


@pytest.mark.parametrize("command", [["emulate", "kong"], ["emulate", "consul"], ["demo"]])
def test_busy_port_is_one_line(busy_port: int, command: list[str]) -> None:
    result = run_cli({}, *command, "--port", str(busy_port))
    assert "already in use" in _one_line_error(result)


def test_version() -> None:
    result = run_cli({}, "--version")
    assert result.returncode == 0 and result.stdout.startswith("kong-bridge 0.")
    assert run_cli({}, "plan", "--version").stdout == result.stdout


def test_help_shows_every_setting_with_its_default_and_variable() -> None:
    flat = " ".join(run_cli({}, "run", "--help").stdout.split())
    for field in BridgeSettings.model_fields:
        assert flag_name(field) in flat and f"env {env_name(field)}" in flat, field
    assert "default http://127.0.0.1:8500; env CONSUL_HTTP_ADDR" in flat
    assert "default http://localhost:8001; env KONG_ADMIN_URL" in flat
    assert "2 plan: changes pending; lint: problems found" in flat


def test_exit_codes_of_plan_sync_and_lint(stack: Stack, cli: CLI) -> None:
    stack.register("web", "web-1", "10.0.0.1")
    stack.register("bad", "bad-1", "10.0.0.2", tags=["kong.enable=true", "kong.paths=oops"])
    assert cli("plan").returncode == 2  # changes pending wins over skipped services
    assert cli("lint").returncode == 2  # problems found
    synced = cli("sync", "--once")
    assert synced.returncode == 3, synced.stdout + synced.stderr  # done, but bad was skipped
    assert "skipped: bad (instance bad-1)" in synced.stdout
    assert cli("plan").returncode == 3  # nothing pending, one service skipped
    stack.deregister("bad-1")
    assert (cli("plan").returncode, cli("lint").returncode, cli("sync", "--once").returncode) == (
        0,
        0,
        0,
    )
    unreachable = run_cli({**stack.env, "CONSUL_HTTP_ADDR": "http://127.0.0.1:1"}, "lint")
    assert unreachable.returncode == 1 and "cannot read Consul" in unreachable.stderr


def test_plan_shows_old_and_new_values_and_deletions(stack: Stack, cli: CLI) -> None:
    stack.register("web", "web-1", "10.0.0.1", tags=["kong.enable=true", "kong.paths=/old"])
    stack.register("web", "web-2", "10.0.0.2", tags=["kong.enable=true", "kong.paths=/old"])
    assert cli("sync", "--once").returncode == 0
    for sid, address in (("web-1", "10.0.0.1"), ("web-2", "10.0.0.2")):
        tags = ["kong.enable=true", "kong.paths=/new,/v2", "kong.methods=GET"]
        stack.register("web", sid, address, tags=tags)
    stack.set_status("web-2", "fail")
    planned = cli("plan")
    assert planned.returncode == 2, planned.stderr
    assert "~ update route web" in planned.stdout
    assert 'paths: ["/old"] -> ["/new", "/v2"]' in planned.stdout
    assert 'methods: null -> ["GET"]' in planned.stdout
    assert "- delete target 10.0.0.2:8080" in planned.stdout
    assert "would delete: target 10.0.0.2:8080" in planned.stdout
    document = json.loads(cli("plan", "--json").stdout)
    route = next(c for c in document["changes"] if c["kind"] == "route")
    assert route["fields"]["paths"] == {"old": ["/old"], "new": ["/new", "/v2"]}
    assert document["deletes"] == [{"service": "web", "kind": "target", "name": "10.0.0.2:8080"}]


def test_no_passing_instance_is_warned(stack: Stack, cli: CLI) -> None:
    stack.register("dark", "dark-1", "10.0.0.5", status="critical")
    for command in (("lint",), ("plan",)):
        output = cli(*command).stdout
        assert "warning: dark: no instance passes its health checks" in output, command


def test_upstream_datacenter_names_without_querying_it(stack: Stack, cli: CLI) -> None:
    stack.register("web", "web-1", "10.0.0.1")
    named = cli("plan", "--upstream-datacenter", "dc2")
    assert named.returncode == 2 and "web.service.dc2.consul" in named.stdout, named.stderr
    queried = cli("plan", "--consul-datacenter", "dc2")
    assert queried.returncode == 1 and "No path to datacenter" in queried.stderr


def test_python_m_bridge_is_the_same_program() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bridge", "--help"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0 and "exit codes" in result.stdout


def test_addresses_are_logged_without_credentials() -> None:
    assert without_credentials("https://ops:s3cret@kong.internal:8444/") == (
        "https://kong.internal:8444/"
    )
    assert without_credentials("127.0.0.1:8500") == "127.0.0.1:8500"
