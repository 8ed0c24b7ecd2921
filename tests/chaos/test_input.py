"""Bad input from outside: a server that is not Kong, and (below) bad config files.

The fake servers here are tiny real HTTP servers on loopback sockets; the
bridge runs as a separate process against them.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from threading import Thread
from typing import Any

import httpx
import pytest

from bridge.emulators.consul import ConsulEmulator
from tests.bridge.conftest import free_port
from tests.chaos import _safety_helpers as helpers
from tests.chaos._safety_helpers import (
    Stack,
    all_names,
    assert_kong_matches_consul,
    cli,
    snapshot_unowned,
)
from tests.helpers import eventually

kong_url, consul_url, stack = helpers.kong_url, helpers.consul_url, helpers.stack
Answer = Callable[[str, str], tuple[int, Any]]  # (method, path) -> (status, JSON body)


def _serve(answer: Answer) -> Iterator[str]:
    class Handler(BaseHTTPRequestHandler):
        def _reply(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            self.rfile.read(length)
            status, body = answer(self.command, self.path.split("?", 1)[0])
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _reply

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def empty_json_server() -> Iterator[str]:
    """Answers ``200 {}`` to everything."""
    yield from _serve(lambda _method, _path: (200, {}))


def _kong_root(version: str = "3.9.1") -> dict[str, Any]:
    return {"version": version, "configuration": {"database": "postgres"}, "tagline": "Welcome"}


@pytest.fixture
def root_only_server() -> Iterator[str]:
    """Says it is Kong 3.9 at ``GET /``, then answers ``200 {}`` to everything else."""
    yield from _serve(lambda _m, path: (200, _kong_root() if path == "/" else {}))


@pytest.fixture
def old_kong_server() -> Iterator[str]:
    yield from _serve(lambda _m, path: (200, _kong_root("2.8.1") if path == "/" else {}))


def _env(consul: ConsulEmulator, kong_url: str) -> dict[str, str]:
    return {"CONSUL_HTTP_ADDR": consul.url, "KONG_ADMIN_URL": kong_url, "KONG_BRIDGE_RETRY": "1"}


def _opt_in(consul: ConsulEmulator) -> None:
    httpx.post(f"{consul.url}/_emulator/reset").raise_for_status()
    httpx.put(
        f"{consul.url}/v1/agent/service/register",
        json={
            "Name": "web",
            "ID": "web-1",
            "Address": "10.0.0.1",
            "Port": 80,
            "Tags": ["kong.enable=true"],
        },
    ).raise_for_status()


@pytest.mark.parametrize("command", [("sync", "--once"), ("plan",), ("plan", "--json")])
def test_a_json_server_answering_200_to_everything_is_refused(
    consul_server: ConsulEmulator, empty_json_server: str, command: tuple[str, ...]
) -> None:
    _opt_in(consul_server)
    done = cli(_env(consul_server, empty_json_server), *command)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "does not answer as Kong's Admin API" in done.stderr
    assert "expected Kong Gateway 3.x" in done.stderr
    assert "Traceback" not in done.stderr and "create" not in done.stdout


def test_a_server_that_only_looks_like_kong_at_its_root_is_refused(
    consul_server: ConsulEmulator, root_only_server: str
) -> None:
    _opt_in(consul_server)
    done = cli(_env(consul_server, root_only_server), "sync", "--once")
    assert done.returncode == 1
    # The owned-entity lists are read concurrently: whichever answers first is named.
    assert re.search(
        r"GET /(services|routes|upstreams): this does not answer as Kong's Admin API", done.stderr
    )
    assert "expected a page" in done.stderr


def test_kong_2_is_refused_with_its_version(
    consul_server: ConsulEmulator, old_kong_server: str
) -> None:
    _opt_in(consul_server)
    done = cli(_env(consul_server, old_kong_server), "plan")
    assert done.returncode == 1
    assert "Kong 2.8.1 is not supported: the bridge needs Kong 3.x" in done.stderr


def test_run_against_a_non_kong_server_is_not_ready_and_says_why(
    consul_server: ConsulEmulator, empty_json_server: str, tmp_path: Path
) -> None:
    _opt_in(consul_server)
    log = tmp_path / "bridge.log"
    port = free_port()
    with log.open("w") as sink:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bridge",
                "run",
                "--listen",
                f"127.0.0.1:{port}",
                "--wait",
                "5s",
            ],
            env={**_env(consul_server, empty_json_server), "PATH": ""},
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    try:
        eventually(lambda: "does not answer as Kong's Admin API" in log.read_text(), 20, "error")
        ready = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=5)
        assert ready.status_code == 503
        assert ready.json()["ready"] is False and ready.json()["not_ready"]
        assert "outcome=ok" not in log.read_text()  # nothing was "created"
    finally:
        process.terminate()
        process.wait(15)


# -- bad self-registration config files ------------------------------------------------------

SERVICE = {"name": "svc", "port": 8080, "paths": ["/svc"], "address": "10.0.0.1"}
BAD_FILES: dict[str, bytes] = {
    "port-true": json.dumps({"service": {**SERVICE, "port": True}}).encode(),
    "port-string": json.dumps({"service": {**SERVICE, "port": "8080"}}).encode(),
    "path-without-slash": json.dumps({"service": {**SERVICE, "paths": ["x"]}}).encode(),
    "invalid-utf8": b'{"service": {"name": "caf\xe9", "port": 80, "paths": ["/a"]}}',
    "deeply-nested": b"[" * 100_000 + b"]" * 100_000,
    "not-an-object": b"[1, 2]",
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_bad_config_files_fail_clearly_before_any_write(
    kong: httpx.Client, tmp_path: Path, case: str
) -> None:
    path = tmp_path / f"{case}.json"
    path.write_bytes(BAD_FILES[case])
    done = cli({"API_GATEWAY_URL": str(kong.base_url)}, "register", "--config", str(path))
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    assert lines[0].startswith(f"kong-bridge: error: {path}: ")
    assert kong.get("/_emulator/counters").json()["writes"] == 0


def _kong_state(kong: httpx.Client) -> dict[str, Any]:
    return {
        kind: sorted(kong.get(f"/{kind}").json()["data"], key=lambda r: str(r["id"]))
        for kind in ("services", "routes", "upstreams")
    } | {"targets": kong.get("/upstreams/svc.service.consul/targets").json()}


def test_a_registration_failing_part_way_removes_what_it_created_and_nothing_else(
    kong: httpx.Client, tmp_path: Path
) -> None:
    # Another instance registered the upstream; someone's route already has our route's name.
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"service": {**SERVICE, "name": "svc", "address": "10.0.0.2"}}))
    env = {"API_GATEWAY_URL": str(kong.base_url)}
    assert cli(env, "register", "--config", str(other)).returncode == 0
    kong.delete("/routes/svc").raise_for_status()
    kong.delete("/services/svc").raise_for_status()
    kong.post("/services", json={"name": "legacy", "host": "legacy.internal"})
    kong.post("/services/legacy/routes", json={"name": "svc", "paths": ["/legacy"]})
    before = _kong_state(kong)
    mine = tmp_path / "mine.json"
    mine.write_text(json.dumps({"service": SERVICE}))
    done = cli(env, "register", "--config", str(mine))
    assert done.returncode == 1
    assert "route 'svc' exists in Kong without the owner tag" in done.stderr
    assert "undone: service svc deleted; target svc.service.consul/10.0.0.1:8080 deleted" in (
        done.stderr
    )
    assert _kong_state(kong) == before  # the upstream and the other instance's target stay


# -- hostile tags, end to end ----------------------------------------------------------------

HOSTILE: dict[str, list[str]] = {
    "dup": ["kong.paths=/one", "kong.paths=/two"],
    "nul": ["kong.paths=/a\x00b"],
    "newline": ["kong.hosts=a.example.com\nb.example.com"],
    "escape": ["kong.route.x.paths=/\x1b[31mred"],
    "regex": ["kong.paths=~/(unclosed"],
    "unknown": ["kong.colour=blue"],
}


def test_chaos_hostile_tags_skip_their_service_only(stack: Stack) -> None:
    for name, tags in HOSTILE.items():
        stack.register(name, f"{name}-1", "10.0.0.1", tags=["kong.enable=true", *tags])
    stack.register("good", "good-1", "10.0.0.2", tags=["kong.enable=true", "kong.paths=/good"])
    huge = ["kong.enable=true", "kong.paths=/" + "a" * 20_000]  # odd, but valid for Kong
    stack.register("huge", "huge-1", "10.0.0.3", tags=huge)
    before = snapshot_unowned(stack.kong)
    stack.start()
    errors = eventually(
        lambda: (e := stack.ready()["services_in_error"]).keys() >= HOSTILE.keys() and e, 20
    )
    eventually(lambda: all_names(stack, "services") == {"good", "huge"}, 10)
    assert "one value per key" in errors["dup"][0]
    for name in ("nul", "newline", "escape"):
        assert "control characters" in errors[name][0], errors[name]
    assert stack.process is not None and stack.process.poll() is None  # still running
    lint = cli(stack.env, "lint")
    assert lint.returncode == 2 and "Traceback" not in lint.stderr  # 2: problems found
    assert all(f"{name} (instance {name}-1)" in lint.stdout for name in HOSTILE)
    assert_kong_matches_consul(stack, skipped=set(HOSTILE), unowned=before)
