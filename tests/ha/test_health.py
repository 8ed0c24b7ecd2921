"""Honest health: /readyz says why it is not ready; /metrics tells reachability and freshness."""

from __future__ import annotations

from typing import Any

from tests.ha.conftest import Cluster
from tests.ha.proxy import CuttableProxy
from tests.helpers import eventually

UP = "web.service.consul"
FRESH = "kong_bridge_last_successful_sync_timestamp_seconds"


def _not_ready(reason: str, body: dict[str, Any]) -> bool:
    return not body.get("ready") and any(reason in r for r in body.get("not_ready", []))


def test_readyz_follows_kong_reachability(cluster: Cluster) -> None:
    bridge = cluster.start("single", ha=False)
    cluster.stack.register("web", "web-1", "10.0.0.1")
    eventually(lambda: bridge.readyz().get("ready"), 20, "ready")
    ready = bridge.readyz()
    assert ready["role"] == "single" and ready["not_ready"] == []
    assert bridge.status.get("/readyz").status_code == 200
    cluster.kong.put("/_emulator/faults", json={"refuse_connections_s": 3})
    eventually(lambda: _not_ready("Kong cannot be reached", bridge.readyz()), 10, "503 on Kong")
    assert bridge.status.get("/readyz").status_code in (200, 503)
    assert bridge.metric("kong_bridge_kong_up") == 0
    assert bridge.status.get("/healthz").text == "ok\n"  # the process itself is fine
    eventually(lambda: bridge.readyz().get("ready"), 15, "ready again once Kong is back")
    assert bridge.metric("kong_bridge_kong_up") == 1


def test_readyz_follows_consul_reachability(cluster: Cluster) -> None:
    proxy = CuttableProxy(int(cluster.consul_url.rsplit(":", 1)[1]))
    try:
        bridge = cluster.start("single", consul_url=proxy.url, ha=False)
        cluster.stack.register("web", "web-1", "10.0.0.1")
        eventually(lambda: bridge.readyz().get("ready"), 20, "ready")
        proxy.cut()
        eventually(lambda: _not_ready("Consul cannot be reached", bridge.readyz()), 10)
        assert bridge.status.get("/readyz").status_code == 503
        assert bridge.metric("kong_bridge_consul_up") == 0
        proxy.restore()
        eventually(lambda: bridge.readyz().get("ready"), 15, "ready again")
    finally:
        proxy.close()


def test_readyz_when_every_service_fails(cluster: Cluster) -> None:
    bridge = cluster.start("single", ha=False)
    eventually(lambda: bridge.readyz().get("ready"), 20, "ready")
    cluster.kong.put("/_emulator/faults", json={"error_rate": 1.0, "error_status": 500})
    try:
        cluster.stack.register("web", "web-1", "10.0.0.1")
        cluster.stack.register("api", "api-1", "10.0.0.2")
        eventually(
            lambda: _not_ready("failed for every service", bridge.readyz()), 15, "all failing"
        )
        failed = 'kong_bridge_services_in_error_by_reason{reason="kong-failed"}'
        eventually(lambda: bridge.metric(failed) == 2, 10, "both counted as kong-failed")
    finally:
        cluster.kong.delete("/_emulator/faults")
    eventually(lambda: bridge.readyz().get("ready"), 20, "ready once Kong answers")
    eventually(lambda: bridge.metric("kong_bridge_services_in_error") == 0, 15, "all synced")


def test_freshness_waits_for_every_service(cluster: Cluster) -> None:
    cluster.kong.post("/services", json={"name": "other", "host": "other.internal"})
    cluster.kong.post("/services/other/routes", json={"name": "web", "paths": ["/other"]})
    cluster.stack.register("web", "web-1", "10.0.0.1")  # its route clashes with one we do not own
    cluster.stack.register("api", "api-1", "10.0.0.2")
    bridge = cluster.start("single", ha=False)
    eventually(lambda: "api" in cluster.stack.names("services"), 15)
    eventually(lambda: bridge.metric("kong_bridge_syncs_total") >= 3, 15, "a few syncs")
    assert bridge.metric(FRESH) == 0  # "web" is not in Kong: not fresh
    assert bridge.metric('kong_bridge_services_in_error_by_reason{reason="clash"}') == 1
    assert bridge.readyz()["ready"]  # a clash is the user's to fix, not a reason to drain us
    cluster.kong.delete("/routes/web")
    eventually(lambda: bridge.metric(FRESH) > 0, 70, "fresh once web is in Kong")
    samples = bridge.samples()
    assert samples['kong_bridge_build_info{version="0.1.0"}'] == 1
    assert samples["kong_bridge_leader"] == 1
    assert "process_resident_memory_bytes" in samples
