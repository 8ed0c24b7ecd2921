"""Kong emulator: the ``/_emulator/`` controls (counters, reset, faults)."""

from __future__ import annotations

import socket
import time

import httpx
import pytest

from bridge.emulators.kong import KongEmulator


def test_counters_by_method_and_kind(kong: httpx.Client) -> None:
    kong.post("/services", json={"name": "s", "host": "h"})
    kong.get("/services/s")
    kong.post("/upstreams", json={"name": "u.consul"})
    kong.post("/upstreams/u.consul/targets", json={"target": "a:1"})
    counters = kong.get("/_emulator/counters").json()
    assert counters["by_method_and_kind"] == {
        "POST services": 1,
        "GET services": 1,
        "POST upstreams": 1,
        "POST targets": 1,
    }
    assert (counters["writes"], counters["reads"], counters["total"]) == (3, 1, 4)


def test_reset_clears_data_and_counters(kong: httpx.Client) -> None:
    kong.post("/services", json={"name": "s", "host": "h"})
    assert kong.post("/_emulator/reset").status_code == 204
    assert kong.get("/services").json()["data"] == []
    assert kong.get("/_emulator/counters").json()["by_method_and_kind"] == {"GET services": 1}


def test_injected_errors_and_latency(kong: httpx.Client) -> None:
    kong.put("/_emulator/faults", json={"error_rate": 1.0})
    assert kong.get("/services").status_code == 500
    kong.put("/_emulator/faults", json={"error_rate": 0, "latency_ms": 50})
    started = time.monotonic()
    assert kong.get("/services").status_code == 200
    assert time.monotonic() - started >= 0.05
    assert kong.delete("/_emulator/faults").status_code == 204
    assert kong.get("/_emulator/faults").json()["latency_ms"] == 0


def test_refusing_connections_then_recovering() -> None:
    with KongEmulator() as server:
        httpx.put(server.url + "/_emulator/faults", json={"refuse_connections_s": 0.5})
        deadline = time.monotonic() + 5
        refused = False
        while time.monotonic() < deadline and not refused:
            try:
                httpx.get(server.url + "/status", timeout=1)
            except httpx.ConnectError:
                refused = True
            except httpx.ReadError:
                continue  # accepted just as the listener closed, then reset: try again
        assert refused, "the emulator never refused a connection"
        recovered = False
        while time.monotonic() < deadline and not recovered:
            try:
                recovered = httpx.get(server.url + "/status", timeout=1).status_code == 200
            except httpx.ConnectError:
                time.sleep(0.05)
        assert recovered, "the emulator did not listen again"


def test_data_survives_a_refusal_period() -> None:
    with KongEmulator() as server:
        httpx.post(server.url + "/services", json={"name": "kept", "host": "h"})
        server.refuse_connections(0.2)
        deadline = time.monotonic() + 5
        while server.restarts == 0:  # listening again after the refusal period
            assert time.monotonic() < deadline, "the emulator did not come back"
            time.sleep(0.02)
        assert httpx.get(server.url + "/services/kept").json()["name"] == "kept"


def _free_for_a_client(port: int) -> bool:
    with socket.socket() as client:
        try:
            client.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def test_no_client_is_given_the_port_while_connections_are_refused() -> None:
    """A client's outgoing connection given the emulator's port while it refuses would
    keep it from listening again (bind fails through that connection's TIME_WAIT)."""
    with KongEmulator() as server:
        server.refuse_connections(1.0)
        deadline = time.monotonic() + 0.9  # within the refusal period
        while True:  # refused from 50 ms after the call
            try:
                httpx.get(server.url + "/status", timeout=1)
            except httpx.ConnectError:
                break
            except (httpx.ReadError, httpx.RemoteProtocolError):
                pass  # accepted just as the listener closed, then dropped
            assert time.monotonic() < deadline, "the emulator never refused a connection"
        while _free_for_a_client(server.port):
            assert time.monotonic() < deadline, "a client could take the port while refusing"
            time.sleep(0.001)
        with pytest.raises(httpx.ConnectError):
            httpx.get(server.url + "/status", timeout=1)  # refused all the same
        deadline = time.monotonic() + 5
        while server.restarts == 0:
            assert time.monotonic() < deadline, "the emulator did not listen again"
            time.sleep(0.02)
        assert httpx.get(server.url + "/status", timeout=2).status_code == 200


def test_fail_next_answers_exactly_n_errors(kong: httpx.Client) -> None:
    kong.put("/_emulator/faults", json={"fail_next": 2, "error_status": 503})
    statuses = [kong.get("/services").status_code for _ in range(3)]
    assert statuses == [503, 503, 200]
