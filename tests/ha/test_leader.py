"""The election itself, in-process, against the Consul emulator over HTTP."""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from bridge.emulators.consul import ConsulEmulator
from bridge.leader import ConsulEndpoint, LeaderElection, LockOptions
from tests.helpers import eventually

KEY = "kong-bridge/test/leader"


@pytest.fixture
def consul(consul_server: ConsulEmulator) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=consul_server.url, timeout=10) as client:
        client.post("/_emulator/reset").raise_for_status()
        yield client


def _election(url: str, name: str, changes: list[tuple[str, bool]]) -> LeaderElection:
    return LeaderElection(
        ConsulEndpoint(url),
        LockOptions(key=KEY, instance=name, ttl_seconds=2, lock_delay_seconds=1),
        threading.Event(),
        on_change=lambda leading: changes.append((name, leading)),
    )


def _leader_then_standby(
    url: str, changes: list[tuple[str, bool]]
) -> tuple[LeaderElection, LeaderElection]:
    first = _election(url, "first", changes)
    first.start()
    eventually(first.may_write, 5, "first leads")
    second = _election(url, "second", changes)
    second.start()
    return first, second


def test_one_leads_and_a_release_hands_over_without_lock_delay(
    consul: httpx.Client, consul_server: ConsulEmulator
) -> None:
    changes: list[tuple[str, bool]] = []
    first, second = _leader_then_standby(consul_server.url, changes)
    entry = eventually(lambda: consul.get(f"/v1/kv/{KEY}").json()[0], 5)
    assert json.loads(base64.b64decode(entry["Value"])) == {"instance": "first"}
    session = consul.get(f"/v1/session/info/{entry['Session']}").json()[0]
    assert session["Name"] == "kong-bridge first"
    assert session["Behavior"] == "release" and session["TTL"] == "2s"
    assert session["LockDelay"] == 1_000_000_000
    time.sleep(1.5)  # a renewal round each: the standby stays a standby
    assert not second.may_write() and second.role == "standby"

    began = time.monotonic()
    first.stop_event.set()
    first.release()
    assert not first.may_write()
    eventually(second.may_write, 3, "second takes over")
    assert time.monotonic() - began < 1  # released, so no lock-delay applies
    assert changes == [("first", True), ("second", True)]
    second.stop_event.set()
    second.release()
    assert consul.get(f"/v1/kv/{KEY}").json()[0].get("Session") is None


def test_a_destroyed_session_loses_the_lock_and_the_lock_delay_holds_others(
    consul: httpx.Client, consul_server: ConsulEmulator
) -> None:
    changes: list[tuple[str, bool]] = []
    first, second = _leader_then_standby(consul_server.url, changes)
    session = consul.get(f"/v1/kv/{KEY}").json()[0]["Session"]
    consul.put(f"/v1/session/destroy/{session}").raise_for_status()  # as an expiry would
    destroyed = time.monotonic()
    eventually(lambda: ("first", False) in changes, 3, "first steps down")
    winner = eventually(lambda: [e for e in (first, second) if e.may_write()], 5, "a new leader")
    assert time.monotonic() - destroyed >= 1.0  # the lock-delay (1 s) ran first
    assert len(winner) == 1
    for election in (first, second):
        election.stop_event.set()
        election.release()
