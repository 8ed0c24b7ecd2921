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
from tests.ha.conftest import CHECK_TTL, FAILOVER_BOUND, LOCK_DELAY, TTL
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
        LockOptions(
            key=KEY,
            instance=name,
            ttl_seconds=TTL,
            lock_delay_seconds=LOCK_DELAY,
            check_ttl_seconds=CHECK_TTL,
            service_tags=("kong.enable=false",),
        ),
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
    assert session["Behavior"] == "release" and session["TTL"] == f"{TTL}s"
    assert session["LockDelay"] == LOCK_DELAY * 1_000_000_000
    assert session["NodeChecks"] == ["serfHealth"]
    assert session["ServiceChecks"] == [{"ID": "kong-bridge-first:session", "Namespace": ""}]
    service = consul.get("/v1/agent/service/kong-bridge-first").json()
    assert service["Service"] == "kong-bridge" and service["Tags"] == ["kong.enable=false"]
    assert service["Meta"] == {"lock_key": KEY, "instance": "first"}
    time.sleep(TTL / 2 + 0.5)  # a renewal round each: the standby stays a standby
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
    assert consul.get("/v1/agent/services").json() == {}  # both deregistered their checks


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


def _services(consul: httpx.Client) -> set[str]:
    return set(consul.get("/v1/agent/services").json())


def test_a_dead_leaders_check_lapses_and_frees_the_lock_within_its_ttl(
    consul: httpx.Client, consul_server: ConsulEmulator
) -> None:
    """As after a SIGKILL: no release, no renewal, no pass; the session TTL is not waited for."""
    changes: list[tuple[str, bool]] = []
    first, second = _leader_then_standby(consul_server.url, changes)
    eventually(lambda: _services(consul) == {"kong-bridge-first", "kong-bridge-second"}, 5)
    first.stop_event.set()  # its thread ends without releasing anything
    died = time.monotonic()
    first.thread.join(5)
    eventually(second.may_write, FAILOVER_BOUND + 2, "second takes over")
    failover = time.monotonic() - died
    assert LOCK_DELAY <= failover <= FAILOVER_BOUND
    checks = consul.get("/v1/agent/checks").json()
    assert checks["kong-bridge-first:session"]["Status"] == "critical"

    third = _election(consul_server.url, "third", changes)
    third.start()  # sweeps the dead replica's registration, and only that one
    eventually(lambda: _services(consul) == {"kong-bridge-second", "kong-bridge-third"}, 5)
    assert second.may_write() and not third.may_write()
    for election in (second, third):
        election.stop_event.set()
        election.release()


def test_a_removed_check_ends_the_leadership_and_a_new_session_follows(
    consul: httpx.Client, consul_server: ConsulEmulator
) -> None:
    changes: list[tuple[str, bool]] = []
    only = _election(consul_server.url, "only", changes)
    only.start()
    eventually(only.may_write, 5, "it leads")
    old = consul.get(f"/v1/kv/{KEY}").json()[0]["Session"]
    consul.put("/v1/agent/service/deregister/kong-bridge-only").raise_for_status()
    assert consul.get(f"/v1/session/info/{old}").json() == []  # invalidated with its check
    eventually(lambda: ("only", False) in changes, 3, "it steps down")
    eventually(only.may_write, LOCK_DELAY + 3, "it leads again, on a new session")
    assert consul.get(f"/v1/kv/{KEY}").json()[0]["Session"] not in ("", old)
    assert "kong-bridge-only" in _services(consul)
    only.stop_event.set()
    only.release()
