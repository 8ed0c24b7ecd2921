"""Chaos fixtures: the emulators and the bridge as separate processes, faults, and ONE check.

:func:`mismatches` compares Kong's whole state with what Consul says: every
healthy opted-in instance is a target, nothing extra, no duplicates, and the
entities we do not own are byte-identical to a snapshot taken before.
"""

from __future__ import annotations

import contextlib
import json
import signal
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from tests.bridge.conftest import Stack, consul_url, kong_url, spawn_bridge, stack_of
from tests.helpers import eventually

__all__ = ["consul_url", "kong_url"]  # module-scoped emulators, shared with tests/bridge
OWNER = "managed-by:kong-bridge"
OPT_IN = '"kong.enable=true" in ServiceTags or ServiceMeta.kong_enable == "true"'
Row = dict[str, Any]


def _get(client: httpx.Client, path: str, params: dict[str, str] | None = None) -> Any:
    """A read that rides out the faults under test (Kong's 5xx, refused connections)."""
    for _attempt in range(100):
        try:
            response = client.get(path, params=params)
        except httpx.TransportError:
            time.sleep(0.05)
            continue
        if response.status_code < 500:
            return response.json()
    raise AssertionError(f"GET {path} kept failing")


def _all(client: httpx.Client, path: str, params: dict[str, str] | None = None) -> list[Row]:
    rows: list[Row] = []
    query: dict[str, str] = {"size": "1000", **(params or {})}
    while True:
        body = _get(client, path, query)
        rows += body.get("data") or []
        if not body.get("offset"):
            return rows
        query["offset"] = body["offset"]


def consul_view(consul: httpx.Client) -> dict[str, set[str]]:
    """Opted-in service -> targets of its instances whose checks all pass."""
    names = _get(consul, "/v1/catalog/services", {"filter": OPT_IN})
    view = {}
    for name in names:
        entries = _get(consul, f"/v1/health/service/{name}")
        view[name] = {
            f"{e['Service']['Address'] or e['Node']['Address']}:{e['Service']['Port']}"
            for e in entries
            if all(c["Status"] == "passing" for c in e["Checks"])
        }
    return {name: targets for name, targets in view.items() if name != "consul"}


def unowned(kong: httpx.Client) -> dict[str, list[str]]:
    """Every entity without our owner tag, serialised (targets of every upstream included)."""
    snapshot: dict[str, list[str]] = {}
    upstreams = _all(kong, "/upstreams")
    for kind, rows in (
        ("services", _all(kong, "/services")),
        ("routes", _all(kong, "/routes")),
        ("upstreams", upstreams),
        ("targets", [t for u in upstreams for t in _all(kong, f"/upstreams/{u['id']}/targets")]),
    ):
        snapshot[kind] = sorted(
            json.dumps(row, sort_keys=True) for row in rows if OWNER not in (row.get("tags") or [])
        )
    return snapshot


def mismatches(kong: httpx.Client, consul: httpx.Client, before: dict[str, list[str]]) -> list[str]:
    """What differs between Kong and Consul ([] when Kong mirrors Consul exactly)."""
    wanted = consul_view(consul)
    problems = []
    services = {s["name"] for s in _all(kong, "/services", {"tags": OWNER})}
    if services != set(wanted):
        problems.append(
            f"services: extra {services - set(wanted)}, missing {set(wanted) - services}"
        )
    upstreams = {u["name"]: u for u in _all(kong, "/upstreams", {"tags": OWNER})}
    expected_upstreams = {f"{name}.service.consul" for name in wanted}
    if set(upstreams) != expected_upstreams:
        problems.append(f"upstreams: {sorted(set(upstreams) ^ expected_upstreams)}")
    for name, targets in wanted.items():
        upstream = upstreams.get(f"{name}.service.consul")
        if upstream is None:
            continue
        rows = _all(kong, f"/upstreams/{upstream['id']}/targets")
        owned = [t["target"] for t in rows if OWNER in (t.get("tags") or [])]
        if len(owned) != len(set(owned)):
            problems.append(f"{name}: duplicate targets {sorted(owned)}")
        if set(owned) != targets:
            problems.append(f"{name}: targets {sorted(owned)}, Consul says {sorted(targets)}")
    if unowned(kong) != before:
        problems.append("entities we do not own changed")
    return problems


def assert_mirrors(stack: ChaosStack, timeout: float = 30.0) -> None:
    """Kong converges on Consul (the whole state) within ``timeout``; else show the difference."""
    last: list[str] = []

    def converged() -> bool:
        nonlocal last
        last = mismatches(stack.kong, stack.consul, stack.unowned_before)
        return not last

    try:
        eventually(converged, timeout, "Kong mirrors Consul")
    except AssertionError:
        raise AssertionError("Kong does not mirror Consul: " + "; ".join(last)) from None


class ChaosStack(Stack):
    """A :class:`Stack` that can be launched without waiting, killed, and compared."""

    unowned_before: dict[str, list[str]]

    def add_unowned(self) -> None:
        """Entities someone else made by hand; they must come out byte-identical."""
        self.kong.post("/services", json={"name": "legacy", "host": "legacy.internal"})
        self.kong.post("/services/legacy/routes", json={"name": "legacy", "paths": ["/legacy"]})
        self.kong.post("/upstreams", json={"name": "legacy.internal"})
        self.kong.post("/upstreams/legacy.internal/targets", json={"target": "10.9.9.9:80"})
        self.unowned_before = unowned(self.kong)

    def launch(self, *extra: str) -> None:
        port = int(str(self.status.base_url).rsplit(":", 1)[-1].strip("/"))
        self.args = ["run", "--listen", f"127.0.0.1:{port}", "--resync", "2", *extra]
        self.process, self.log_path = spawn_bridge(self.args, self.env, self.log_path)

    def wait_ready(self, timeout: float = 30.0) -> None:
        eventually(lambda: self.status.get("/readyz").json()["ready"], timeout, "bridge ready")

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)
        self.process = None

    def deletes(self) -> int:
        counters = self.kong.get("/_emulator/counters").json()["by_method"]
        return int(counters.get("DELETE", 0))


@pytest.fixture
def chaos(kong_url: str, consul_url: str) -> Iterator[ChaosStack]:
    for stack in stack_of(ChaosStack, kong_url, consul_url):
        stack.add_unowned()
        try:
            yield stack
        finally:
            stack.kong.delete("/_emulator/faults")
            stack.consul.delete("/_emulator/faults")


class BlankingProxy:
    """An HTTP proxy to Consul that can answer empty lists (as a confused agent might)."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/")
        self.blank = threading.Event()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                proxy.forward(self)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def forward(self, handler: BaseHTTPRequestHandler) -> None:
        try:
            with httpx.Client(timeout=None) as client:
                response = client.get(self.upstream + handler.path)
        except httpx.HTTPError:
            handler.send_error(502)
            return
        body = response.content
        path = handler.path.split("?", 1)[0]
        if self.blank.is_set() and response.status_code == 200:
            if path == "/v1/catalog/services":
                body = b"{}"
            elif path.startswith("/v1/health/service/"):
                body = b"[]"
        handler.send_response(response.status_code)
        for name in ("Content-Type", "X-Consul-Index", "X-Consul-KnownLeader"):
            if name in response.headers:
                handler.send_header(name, response.headers[name])
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        with contextlib.suppress(OSError):  # the bridge cancelled the request: fine
            handler.wfile.write(body)

    def __enter__(self) -> BlankingProxy:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
