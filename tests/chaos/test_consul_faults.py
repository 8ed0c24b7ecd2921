"""Consul misbehaves: nothing is deleted on doubt, and no update is waited out (8.2, 8.3)."""

from __future__ import annotations

import time

import httpx

from tests.chaos.conftest import BlankingProxy, ChaosStack, assert_mirrors
from tests.helpers import eventually


def _start(chaos: ChaosStack, services: int = 10) -> None:
    for number in range(services):
        chaos.register(f"svc-{number}", f"svc-{number}-0", f"10.0.0.{number}")
    chaos.launch()
    chaos.wait_ready()
    assert_mirrors(chaos)
    chaos.kong.delete("/_emulator/counters")


def test_index_reset_deletes_nothing_and_converges(chaos: ChaosStack) -> None:
    _start(chaos)
    chaos.consul.post("/_emulator/restart", json={"down_seconds": 0.5}).raise_for_status()
    for number in range(10):
        eventually(lambda n=number: _register(chaos, f"svc-{n}", f"svc-{n}-1", f"10.0.1.{n}"))
    assert_mirrors(chaos)
    assert chaos.deletes() == 0


def test_no_leader_deletes_nothing_and_converges(chaos: ChaosStack) -> None:
    _start(chaos)
    chaos.consul.post("/_emulator/leader", json={"no_leader_seconds": 2}).raise_for_status()
    deadline = time.monotonic() + 2.5
    while time.monotonic() < deadline:
        assert chaos.deletes() == 0
        time.sleep(0.1)
    chaos.register("svc-1", "svc-1-1", "10.0.1.1")
    chaos.set_status("svc-2-0", "fail")
    assert_mirrors(chaos)
    assert chaos.deletes() == 1  # the failed instance's target, nothing else


def test_empty_answers_are_read_again_until_believed(chaos: ChaosStack) -> None:
    with BlankingProxy(chaos.env["CONSUL_HTTP_ADDR"]) as proxy:
        chaos.env = {**chaos.env, "CONSUL_HTTP_ADDR": proxy.url}
        for number in range(5):
            chaos.register(f"svc-{number}", f"svc-{number}-0", f"10.0.0.{number}")
        chaos.launch("--wait", "20s")
        chaos.wait_ready()
        assert_mirrors(chaos)
        chaos.kong.delete("/_emulator/counters")
        proxy.blank.set()
        for number in range(3):  # answered with empty lists while the proxy blanks them
            chaos.register(f"svc-{number}", f"svc-{number}-1", f"10.0.1.{number}")
        chaos.set_status("svc-4-0", "fail")
        time.sleep(1.0)  # the fault lasts a while: that is the scenario, not synchronisation
        assert chaos.deletes() == 0
        proxy.blank.clear()
        # No further change comes: the disbelieved answers must be read again on their own.
        assert_mirrors(chaos, 15)
        assert chaos.deletes() == 1  # svc-4-0's target, after a believed answer


def test_catalog_flaps_keep_consul_connections_bounded(chaos: ChaosStack) -> None:
    _start(chaos, services=60)  # so that the flapping 40 stay under the mass-deletion guard
    peak = 0
    for _flap in range(2):
        for number in range(40):
            chaos.register(f"flap-{number}", f"flap-{number}-0", "10.0.2.1")
        peak = max(peak, _blocked(chaos.consul))
        for number in range(40):
            chaos.deregister(f"flap-{number}-0")
        peak = max(peak, _blocked(chaos.consul))
    assert_mirrors(chaos)
    settled = eventually(lambda: (b := _blocked(chaos.consul)) <= 2 and b + 1, what="two watches")
    assert settled - 1 <= 2
    assert peak <= 2  # only the two watches block; reads never do
    assert chaos.metric("kong_bridge_consul_watch_errors_total") == 0  # no 429s


def _register(chaos: ChaosStack, name: str, sid: str, address: str) -> bool:
    try:
        chaos.register(name, sid, address)
    except httpx.HTTPError:
        return False  # Consul is still down after the restart
    return True


def _blocked(consul: httpx.Client) -> int:
    return int(consul.get("/_emulator/state").json()["blocked_queries"])
