"""Consul emulator: blocking queries, index scopes, headers, restarts and leaderless periods."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from starlette.datastructures import QueryParams

from bridge.emulators.consul import ConsulEmulator
from bridge.emulators.consul.query import parse_query
from tests.helpers import eventually


class Watch:
    """A blocking GET in a background thread."""

    def __init__(self, http: httpx.Client, url: str) -> None:
        self.response: httpx.Response | None = None
        self.thread = threading.Thread(target=self._run, args=(str(http.base_url) + url,))
        self.thread.start()

    def _run(self, url: str) -> None:
        with contextlib.suppress(httpx.TransportError):  # the emulator restarted under us
            self.response = httpx.get(url, timeout=30)

    def result(self, timeout: float = 15) -> httpx.Response:
        self.thread.join(timeout)
        assert self.response is not None, "the blocking query did not return"
        return self.response

    @property
    def done(self) -> bool:
        return not self.thread.is_alive()


def _state(http: httpx.Client) -> dict[str, Any]:
    return dict(http.get("/_emulator/state").json())


def _index(response: httpx.Response) -> int:
    return int(response.headers["x-consul-index"])


def _blocked(http: httpx.Client, count: int) -> Callable[[], bool]:
    return lambda: _state(http)["blocked_queries"] >= count


def _register(http: httpx.Client, name: str, sid: str | None = None, **extra: Any) -> None:
    http.put(
        "/v1/agent/service/register", json={"Name": name, "ID": sid or name, **extra}
    ).raise_for_status()


def test_non_blocking_without_index(consul_http: httpx.Client) -> None:
    response = consul_http.get("/v1/health/service/web?wait=5s")
    assert response.status_code == 200 and response.json() == []
    assert _index(response) >= 1


def test_blocks_until_the_service_changes(consul_http: httpx.Client) -> None:
    _register(consul_http, "web", "w1")
    index = _index(consul_http.get("/v1/health/service/web"))
    watch = Watch(consul_http, f"/v1/health/service/web?index={index}&wait=20s")
    eventually(_blocked(consul_http, 1))
    assert not watch.done
    _register(consul_http, "web", "w2")
    response = watch.result()
    assert _index(response) > index
    assert {e["Service"]["ID"] for e in response.json()} == {"w1", "w2"}


def test_timeout_returns_the_same_index(consul_http: httpx.Client) -> None:
    _register(consul_http, "quiet")
    index = _index(consul_http.get("/v1/health/service/quiet"))
    started = time.monotonic()
    response = consul_http.get(f"/v1/health/service/quiet?index={index}&wait=300ms")
    assert time.monotonic() - started >= 0.3
    assert _index(response) == index and response.status_code == 200


def test_other_services_do_not_wake_a_service_watch(consul_http: httpx.Client) -> None:
    _register(consul_http, "a")
    index = _index(consul_http.get("/v1/health/service/a"))
    watch = Watch(consul_http, f"/v1/health/service/a?index={index}&wait=20s")
    eventually(_blocked(consul_http, 1))
    wakeups = _state(consul_http)["wakeups"]
    _register(consul_http, "b")
    _register(consul_http, "c")
    assert _state(consul_http)["wakeups"] == wakeups
    assert not watch.done
    _register(consul_http, "a", tags=["new"])
    assert watch.result().json()[0]["Service"]["Tags"] == ["new"]


def test_check_status_moves_the_service_index(consul_http: httpx.Client) -> None:
    _register(consul_http, "h", Check={"TTL": "60s"})
    index = _index(consul_http.get("/v1/health/service/h"))
    services_index = _index(consul_http.get("/v1/catalog/services"))
    watch = Watch(consul_http, f"/v1/health/service/h?index={index}&wait=20s")
    eventually(_blocked(consul_http, 1))
    consul_http.put("/v1/agent/check/pass/service:h").raise_for_status()
    assert watch.result().json()[0]["Checks"][1]["Status"] == "passing"
    # a check change does not touch the services table
    assert _index(consul_http.get("/v1/catalog/services")) == services_index


def test_catalog_services_wakes_on_any_service(consul_http: httpx.Client) -> None:
    index = _index(consul_http.get("/v1/catalog/services"))
    watch = Watch(consul_http, f"/v1/catalog/services?index={index}&wait=20s")
    eventually(_blocked(consul_http, 1))
    _register(consul_http, "anything")
    assert "anything" in watch.result().json()


def test_unknown_service_wakes_when_it_appears(consul_http: httpx.Client) -> None:
    index = _index(consul_http.get("/v1/health/service/later"))
    watch = Watch(consul_http, f"/v1/health/service/later?index={index}&wait=20s")
    eventually(_blocked(consul_http, 1))
    _register(consul_http, "later")
    assert len(watch.result().json()) == 1


def test_kv_key_and_prefix_blocking(consul_http: httpx.Client) -> None:
    consul_http.put("/v1/kv/app/a", content=b"1")
    key_index = _index(consul_http.get("/v1/kv/app/a"))
    prefix_index = _index(consul_http.get("/v1/kv/app/?recurse"))
    key_watch = Watch(consul_http, f"/v1/kv/app/a?index={key_index}&wait=20s")
    prefix_watch = Watch(consul_http, f"/v1/kv/app/?recurse&index={prefix_index}&wait=20s")
    eventually(_blocked(consul_http, 2))
    consul_http.put("/v1/kv/other", content=b"x")
    consul_http.put("/v1/kv/app/b", content=b"2")
    assert len(prefix_watch.result().json()) == 2
    assert not key_watch.done
    consul_http.put("/v1/kv/app/a", content=b"3")
    assert key_watch.result().json()[0]["Value"] == "Mw=="


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("index=abc", "Invalid index"),
        ("index=-1", "Invalid index"),
        ("index=5&wait=10", "Invalid wait time"),
        ("index=5&wait=soon", "Invalid wait time"),
    ],
)
def test_bad_index_or_wait_is_400(consul_http: httpx.Client, query: str, message: str) -> None:
    response = consul_http.get(f"/v1/catalog/services?{query}")
    assert response.status_code == 400 and response.text == message


def test_read_headers(consul_http: httpx.Client) -> None:
    for url in ("/v1/catalog/services", "/v1/health/service/x", "/v1/kv/missing"):
        response = consul_http.get(url)
        assert _index(response) >= 1
        assert response.headers["x-consul-knownleader"] == "true"
        assert response.headers["x-consul-lastcontact"] == "0"
    assert consul_http.get("/v1/kv/missing").status_code == 404
    assert (
        consul_http.get("/v1/catalog/services?stale").headers["x-consul-effective-consistency"]
        == "stale"
    )


def _restart(http: httpx.Client, server: ConsulEmulator, seconds: float) -> int:
    """Restart the emulator and wait until it listens again; returns the restored index."""
    before = server.restarts
    index = int(http.post("/_emulator/restart", json={"down_seconds": seconds}).json()["index"])
    eventually(lambda: server.restarts > before)
    return index


def test_restart_lowers_the_index_and_keeps_data(
    consul_http: httpx.Client, consul_server: ConsulEmulator
) -> None:
    for number in range(5):
        _register(consul_http, "keep", f"k{number}")
    before = _index(consul_http.get("/v1/health/service/keep"))
    restored = _restart(consul_http, consul_server, 0.2)
    assert restored < before
    response = consul_http.get("/v1/health/service/keep")
    assert _index(response) <= restored < before
    assert len(response.json()) == 5


def test_restart_returns_blocked_queries(
    consul_http: httpx.Client, consul_server: ConsulEmulator
) -> None:
    _register(consul_http, "r")
    index = _index(consul_http.get("/v1/health/service/r"))
    watch = Watch(consul_http, f"/v1/health/service/r?index={index}&wait=20s")
    eventually(_blocked(consul_http, 1))
    _restart(consul_http, consul_server, 0.1)
    watch.thread.join(10)
    assert watch.done


def test_no_leader_period(consul_http: httpx.Client) -> None:
    consul_http.post("/_emulator/leader", json={"no_leader_seconds": 30})
    response = consul_http.get("/v1/health/service/x")
    assert (response.status_code, response.text) == (500, "No cluster leader")
    stale = consul_http.get("/v1/health/service/x?stale")
    assert stale.status_code == 200 and stale.headers["x-consul-knownleader"] == "false"
    assert consul_http.get("/v1/status/leader").json() == ""
    assert consul_http.put("/v1/kv/k", content=b"v").status_code == 500
    consul_http.post("/_emulator/leader", json={"no_leader_seconds": 0})
    assert consul_http.get("/v1/health/service/x").status_code == 200


@given(st.sampled_from(["1s", "30s", "5m", "9m59s", "10m", "20m", "0s", "-1s", "100ms"]))
def test_timeout_is_clamped_and_jittered(wait: str) -> None:
    query = parse_query(QueryParams(f"index=5&wait={wait}"), {})
    base = query.wait if query.wait > 0 else 300.0
    base = min(base, 600.0)
    timeout = query.timeout()
    assert base <= timeout < base + base / 16 + 1e-9


@pytest.mark.parametrize("state", ["any", "passing", "critical"])
def test_deregistration_wakes_health_state(consul_http: httpx.Client, state: str) -> None:
    """Deregistering a service removes its checks: the checks index moves."""
    status = "critical" if state == "critical" else "passing"
    _register(consul_http, "web", "w1", Check={"TTL": "60s", "Status": status})
    index = _index(consul_http.get(f"/v1/health/state/{state}"))
    watch = Watch(consul_http, f"/v1/health/state/{state}?index={index}&wait=20s")
    eventually(_blocked(consul_http, 1))
    consul_http.put("/v1/agent/service/deregister/w1").raise_for_status()
    response = watch.result()
    assert _index(response) > index
    assert "service:w1" not in [c["CheckID"] for c in response.json()]


def test_check_lists_read_the_checks_table_index(consul_http: httpx.Client) -> None:
    """health/checks, health/node and health/state all answer at the checks-table index."""
    _register(consul_http, "web", "w1", Check={"TTL": "60s"})
    _register(consul_http, "api", "a1", Check={"TTL": "60s"})
    consul_http.put("/v1/agent/check/pass/service:a1").raise_for_status()  # moves only api
    indexes = {
        _index(consul_http.get(path))
        for path in (
            "/v1/health/checks/web",
            "/v1/health/node/consul-emulator",
            "/v1/health/state/any",
        )
    }
    assert len(indexes) == 1
    checks = consul_http.get("/v1/health/checks/web").json()
    assert [c["CheckID"] for c in checks] == ["service:w1"]


def test_health_checks_blocking_wakes_for_its_service_only(consul_http: httpx.Client) -> None:
    _register(consul_http, "web", "w1", Check={"TTL": "60s"})
    _register(consul_http, "api", "a1", Check={"TTL": "60s"})
    index = _index(consul_http.get("/v1/health/checks/web"))
    watch = Watch(consul_http, f"/v1/health/checks/web?index={index}&wait=20s")
    eventually(_blocked(consul_http, 1))
    woken = _state(consul_http)["wakeups"]
    consul_http.put("/v1/agent/check/pass/service:a1").raise_for_status()
    assert _state(consul_http)["wakeups"] == woken and not watch.done
    consul_http.put("/v1/agent/check/pass/service:w1").raise_for_status()
    response = watch.result()
    assert response.json()[0]["Status"] == "passing" and _index(response) > index
