"""Several replicas with ``--ha``: one leader writes, the others stand by and take over."""

from __future__ import annotations

import signal
import time

import pytest

from tests.ha.conftest import CHECK_TTL, FAILOVER_BOUND, LOCK_DELAY, TTL, Cluster
from tests.ha.proxy import CuttableProxy
from tests.helpers import eventually

UP = "web.service.consul"
# What one bridge writes to create one service with one instance.
ONE_SERVICE = {"POST upstreams": 1, "POST targets": 1, "POST services": 1, "POST routes": 1}


@pytest.mark.parametrize("count", [2, 3])
def test_only_the_leader_writes(cluster: Cluster, count: int) -> None:
    replicas = [cluster.start(f"r{n}") for n in range(count)]
    leader = cluster.one_leader()
    assert cluster.lock_holder() == leader.name
    standbys = [r for r in replicas if r is not leader]
    assert {r.role() for r in standbys} == {"standby"}
    eventually(lambda: all(r.readyz().get("ready") for r in replicas), 20, "all ready")
    cluster.kong.delete("/_emulator/counters")

    cluster.stack.register("web", "web-1", "10.0.0.1")
    eventually(lambda: cluster.stack.targets(UP) == {"10.0.0.1:8080"}, what="created")
    cluster.stack.register("web", "web-2", "10.0.0.2")
    eventually(lambda: len(cluster.stack.targets(UP)) == 2, what="second instance")
    cluster.stack.deregister("web-1")
    eventually(lambda: cluster.stack.targets(UP) == {"10.0.0.2:8080"}, what="first instance gone")
    time.sleep(TTL)  # let the standbys see every change too: they must still write nothing

    assert cluster.kong_writes() == {
        **ONE_SERVICE,
        "POST targets": 2,
        "DELETE targets": 1,
    }
    assert all(r.kong_writes() == 0 for r in standbys)
    for replica in replicas:
        assert "409" not in replica.kong_statuses()
        assert replica.metric("kong_bridge_leader") == (1.0 if replica is leader else 0.0)
        assert "without our owner tag" not in replica.logs()


def test_sigkill_leader_fails_over_and_gap_changes_arrive(cluster: Cluster) -> None:
    replicas = [cluster.start(name) for name in ("a", "b", "c")]
    cluster.stack.register("web", "web-1", "10.0.0.1")
    leader = cluster.one_leader()
    eventually(lambda: cluster.stack.targets(UP) == {"10.0.0.1:8080"})
    leader.process.kill()
    killed = time.monotonic()
    leader.process.wait(5)
    cluster.stack.register("web", "web-2", "10.0.0.2")  # during the gap: nobody writes it yet
    cluster.stack.register("api", "api-1", "10.0.1.1")
    successor = cluster.one_leader(timeout=FAILOVER_BOUND + 5)
    failover = time.monotonic() - killed
    print(
        f"SIGKILL failover: {failover:.2f} s (check TTL {CHECK_TTL} s, session TTL {TTL} s, "
        f"lock-delay {LOCK_DELAY} s)"
    )
    assert successor is not leader
    # The leader's check lapses within CHECK_TTL of the kill (it passed it every CHECK_TTL/5),
    # which invalidates its session at once; then the lock-delay runs. Reaping by the session
    # TTL alone would take up to 2 x TTL + LOCK_DELAY (9 s) and fail this bound.
    assert LOCK_DELAY <= failover <= FAILOVER_BOUND
    eventually(lambda: len(cluster.stack.targets(UP)) == 2, 10, "gap change arrived")
    eventually(lambda: "api" in cluster.stack.names("services"), 10, "gap service arrived")
    assert successor.metric("kong_bridge_leadership_changes_total") == 1
    (third,) = [r for r in replicas if r.name not in (leader.name, successor.name)]
    assert third.role() == "standby" and third.kong_writes() == 0
    # The dead leader's critical registration stays on the agent until a replica starts.
    dead = f"kong-bridge-{leader.name}"
    assert dead in cluster.consul.get("/v1/agent/services").json()
    cluster.start("d")
    eventually(
        lambda: dead not in cluster.consul.get("/v1/agent/services").json(),
        10,
        "the new replica removed the dead one's registration",
    )


def test_sigterm_leader_hands_over_at_once(cluster: Cluster) -> None:
    for name in ("a", "b"):
        cluster.start(name)
    cluster.stack.register("web", "web-1", "10.0.0.1")
    leader = cluster.one_leader()
    eventually(lambda: cluster.stack.targets(UP) == {"10.0.0.1:8080"})
    began = time.monotonic()
    exit_seconds = leader.signal(signal.SIGTERM)
    successor = cluster.one_leader(timeout=5)
    handover = time.monotonic() - began
    print(f"SIGTERM: leader exited in {exit_seconds:.2f} s, handover in {handover:.2f} s")
    assert leader.process.returncode == 0
    assert exit_seconds < 2
    assert handover < 2  # released, not expired: no TTL and no lock-delay to wait for
    assert "action=release-lock outcome=ok" in leader.logs()
    cluster.stack.register("web", "web-2", "10.0.0.2")
    eventually(lambda: len(cluster.stack.targets(UP)) == 2, 10, "the new leader writes")
    assert successor.name != leader.name


def test_leader_cut_off_from_consul_stops_writing(cluster: Cluster) -> None:
    proxy = CuttableProxy(int(cluster.consul_url.rsplit(":", 1)[1]))
    try:
        cut = cluster.start("cut", consul_url=proxy.url)
        cluster.one_leader()  # alone: it leads
        assert cut.role() == "leader"
        other = cluster.start("other")
        cluster.stack.register("web", "web-1", "10.0.0.1")
        eventually(lambda: cluster.stack.targets(UP) == {"10.0.0.1:8080"})
        eventually(lambda: cut.kong_writes() > 0, what="the leader wrote")

        proxy.cut()
        cut_at = time.monotonic()
        eventually(lambda: cut.metric("kong_bridge_leader") == 0, CHECK_TTL + 2, "fenced")
        fenced = time.monotonic() - cut_at
        writes_when_fenced = cut.kong_writes()
        # It stops before its check can lapse: no sooner than 4/5 of the check TTL after the
        # cut, as its last pass was sent at most CHECK_TTL/5 before it.
        assert fenced < CHECK_TTL * 4 / 5
        eventually(lambda: other.role() == "leader", FAILOVER_BOUND + 2, "takeover")
        print(
            f"cut off: fenced after {fenced:.2f} s, taken over after "
            f"{time.monotonic() - cut_at:.2f} s"
        )
        cluster.stack.register("web", "web-2", "10.0.0.2")
        eventually(lambda: len(cluster.stack.targets(UP)) == 2, 10, "the new leader writes")
        assert cut.kong_writes() == writes_when_fenced
        assert cut.metric("kong_bridge_consul_up") == 0
        assert cut.readyz()["role"] == "standby"

        proxy.restore()
        eventually(lambda: cut.metric("kong_bridge_consul_up") == 1, 10, "Consul back")
        time.sleep(TTL)  # a renewal round: the returning replica must stay a standby
        assert [r.name for r in cluster.leaders()] == ["other"]
        assert cluster.lock_holder() == "other"
        assert cut.metric("kong_bridge_leadership_changes_total") == 2  # led, then lost it
    finally:
        proxy.close()


def test_replicas_without_ha_report_no_false_clashes(cluster: Cluster) -> None:
    names = [f"svc{n}" for n in range(5)]
    for number, name in enumerate(names):
        cluster.stack.register(name, f"{name}-1", f"10.0.2.{number}")
    replicas = [cluster.start(name, ha=False) for name in ("x", "y")]
    assert {r.role() for r in replicas} == {"single"}
    eventually(lambda: cluster.stack.names("services") == set(names), 20)
    for number, name in enumerate(names):  # both replicas race on every change
        cluster.stack.register(name, f"{name}-2", f"10.0.3.{number}")
    eventually(
        lambda: all(len(cluster.stack.targets(f"{n}.service.consul")) == 2 for n in names), 20
    )
    time.sleep(3)  # a resync each
    for replica in replicas:
        assert replica.readyz()["services_in_error"] == {}
        assert "without our owner tag" not in replica.logs()
