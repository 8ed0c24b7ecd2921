"""SIGTERM/SIGINT end the bridge within 2 s whatever Kong and Consul are doing."""

from __future__ import annotations

import signal
import time

from tests.ha.conftest import Cluster
from tests.ha.proxy import CuttableProxy
from tests.helpers import eventually

UP = "web.service.consul"
SLOW_RETRIES = ("--retry-seconds", "30")  # without a stop, a call would retry for 30 s


def _kong_refuses(cluster: Cluster) -> bool:
    try:
        cluster.kong.get("/status")
    except Exception:
        return True
    return False


def test_sigterm_while_kong_refuses_connections(cluster: Cluster) -> None:
    leader = cluster.start("a", *SLOW_RETRIES)
    cluster.stack.register("web", "web-1", "10.0.0.1")
    eventually(lambda: cluster.stack.targets(UP) == {"10.0.0.1:8080"})
    standby = cluster.start("b", *SLOW_RETRIES)
    assert cluster.one_leader() is leader
    cluster.kong.put("/_emulator/faults", json={"refuse_connections_s": 4})
    eventually(lambda: _kong_refuses(cluster), what="Kong refuses")
    cluster.stack.register("web", "web-2", "10.0.0.2")  # the leader now retries a write
    eventually(
        lambda: leader.metric('kong_bridge_kong_requests_total{method="POST",status="error"}')
    )
    began = time.monotonic()
    exit_seconds = leader.signal(signal.SIGTERM)
    eventually(lambda: standby.role() == "leader", 5, "handover")
    handover = time.monotonic() - began
    print(f"Kong refusing: exit {exit_seconds:.2f} s, handover {handover:.2f} s")
    assert leader.process.returncode == 0
    assert exit_seconds < 2
    assert handover < 2
    eventually(lambda: not _kong_refuses(cluster), 10, "Kong back")
    eventually(lambda: len(cluster.stack.targets(UP)) == 2, 15, "the new leader converges")
    assert not any(k.startswith("DELETE") for k in cluster.kong_writes())


def test_sigterm_while_kong_answers_slowly(cluster: Cluster) -> None:
    bridge = cluster.start("slow", *SLOW_RETRIES, ha=False)
    cluster.stack.register("web", "web-1", "10.0.0.1")
    eventually(lambda: cluster.stack.targets(UP) == {"10.0.0.1:8080"})
    cluster.kong.put("/_emulator/faults", json={"latency_ms": 5000})
    try:
        cluster.kong.delete("/_emulator/counters")
        cluster.stack.register("web", "web-2", "10.0.0.2")
        eventually(lambda: cluster.kong_writes().get("POST targets"), 10, "a write in flight")
        exit_seconds = bridge.signal(signal.SIGTERM)
    finally:
        cluster.kong.delete("/_emulator/faults")
    print(f"Kong slow (5 s per request): exit {exit_seconds:.2f} s")
    assert bridge.process.returncode == 0
    assert exit_seconds < 2
    assert "a Kong request in flight was abandoned" in bridge.logs()


def test_sigint_with_blocking_queries_in_flight(cluster: Cluster) -> None:
    bridge = cluster.start("idle", "--wait", "5m")
    cluster.stack.register("web", "web-1", "10.0.0.1")
    eventually(lambda: cluster.stack.targets(UP) == {"10.0.0.1:8080"})
    eventually(
        lambda: cluster.consul.get("/_emulator/state").json()["blocked_queries"] >= 3,
        what="catalog, service and lock queries blocked",
    )
    exit_seconds = bridge.signal(signal.SIGINT)
    print(f"Consul blocking queries in flight: exit {exit_seconds:.2f} s")
    assert bridge.process.returncode == 0
    assert exit_seconds < 2
    assert cluster.lock_holder() == ""  # released on the way out
    assert cluster.stack.targets(UP) == {"10.0.0.1:8080"}  # nothing deleted


def test_sigterm_leader_while_consul_hangs(cluster: Cluster) -> None:
    proxy = CuttableProxy(int(cluster.consul_url.rsplit(":", 1)[1]))
    try:
        leader = cluster.start("hung", consul_url=proxy.url)
        cluster.stack.register("web", "web-1", "10.0.0.1")
        eventually(lambda: cluster.stack.targets(UP) == {"10.0.0.1:8080"})
        assert cluster.one_leader() is leader
        proxy.hang()  # every request to Consul, the release included, goes unanswered
        exit_seconds = leader.signal(signal.SIGTERM)
        print(f"Consul not answering: leader exit {exit_seconds:.2f} s")
        assert leader.process.returncode == 0
        assert exit_seconds < 2
        assert "action=release-lock outcome=failed" in leader.logs()
        assert cluster.stack.targets(UP) == {"10.0.0.1:8080"}
    finally:
        proxy.close()
