"""The bridge end to end: both emulators and ``kong-bridge run`` as separate processes."""

from __future__ import annotations

import subprocess
import sys
import time

from tests.bridge.conftest import Stack
from tests.helpers import eventually

UP = "web.service.consul"
OWNER = "managed-by:kong-bridge"


def test_opt_in_creates_entities(stack: Stack) -> None:
    stack.register(
        "web",
        "web-1",
        "10.0.0.1",
        tags=["kong.enable=true", "kong.paths=/web", "kong.strip_path=false"],
    )
    stack.register("quiet", "quiet-1", "10.0.0.9", tags=[])  # did not opt in
    stack.start()
    eventually(lambda: stack.targets(UP) == {"10.0.0.1:8080"}, what="target")
    service = stack.kong.get("/services/web").json()
    assert service["host"] == UP and OWNER in service["tags"]
    route = stack.kong.get("/routes/web").json()
    assert route["paths"] == ["/web"] and route["strip_path"] is False
    assert "quiet" not in stack.names("services")


def test_instances_follow_health(stack: Stack) -> None:
    stack.register("web", "web-1", "10.0.0.1")
    stack.start()
    eventually(lambda: stack.targets(UP) == {"10.0.0.1:8080"})
    stack.register("web", "web-2", "10.0.0.2")
    eventually(lambda: stack.targets(UP) == {"10.0.0.1:8080", "10.0.0.2:8080"}, what="added")
    stack.set_status("web-1", "fail")
    eventually(lambda: stack.targets(UP) == {"10.0.0.2:8080"}, what="unhealthy leaves")
    syncs = stack.metric("kong_bridge_syncs_total")
    stack.set_status("web-1", "warn")
    eventually(lambda: stack.metric("kong_bridge_syncs_total") > syncs, what="warn handled")
    assert stack.targets(UP) == {"10.0.0.2:8080"}  # warning instances stay out by default
    stack.set_status("web-1", "pass")
    eventually(lambda: stack.targets(UP) == {"10.0.0.1:8080", "10.0.0.2:8080"}, what="back")
    stack.deregister("web-2")
    eventually(lambda: stack.targets(UP) == {"10.0.0.1:8080"}, what="removed")


def test_one_instance_change_writes_only_its_target(stack: Stack) -> None:
    for number in range(3):
        stack.register("web", f"web-{number}", f"10.0.0.{number}")
    stack.register("api", "api-1", "10.0.1.1")
    stack.start()
    eventually(lambda: len(stack.targets(UP)) == 3)
    eventually(lambda: stack.names("routes") == {"web", "api"})  # routes are written last
    stack.kong.delete("/_emulator/counters")
    stack.register("web", "web-9", "10.0.0.9")
    eventually(lambda: "10.0.0.9:8080" in stack.targets(UP))
    counters = stack.kong.get("/_emulator/counters").json()
    writes = {k: v for k, v in counters["by_method_and_kind"].items() if not k.startswith("GET")}
    assert writes == {"POST targets": 1}


def test_tag_change_updates_the_route(stack: Stack) -> None:
    stack.register("web", "web-1", "10.0.0.1", tags=["kong.enable=true", "kong.paths=/old"])
    stack.start()
    eventually(lambda: stack.kong.get("/routes/web").json().get("paths") == ["/old"])
    route_id = stack.kong.get("/routes/web").json()["id"]
    stack.register(
        "web",
        "web-1",
        "10.0.0.1",
        tags=["kong.enable=true", "kong.paths=/new,/v2", "kong.methods=GET"],
    )
    eventually(lambda: stack.kong.get("/routes/web").json().get("paths") == ["/new", "/v2"])
    route = stack.kong.get("/routes/web").json()
    assert route["id"] == route_id and route["methods"] == ["GET"]


def test_opt_out_and_deregistration_remove_only_owned(stack: Stack) -> None:
    stack.kong.post("/services", json={"name": "legacy", "host": "legacy.internal"})
    stack.kong.post("/upstreams", json={"name": "legacy.internal"})
    for name in ("web", "api", "db", "mq"):
        stack.register(name, f"{name}-1", "10.0.0.1")
    stack.start()
    eventually(lambda: {"web", "api", "db", "mq"} <= stack.names("services"))
    stack.register("web", "web-1", "10.0.0.1", tags=["kong.enable=false"])
    eventually(lambda: "web" not in stack.names("services"), what="opt-out")
    assert stack.kong.get(f"/upstreams/{UP}").status_code == 404
    stack.deregister("api-1")
    eventually(lambda: "api" not in stack.names("services"), what="deregistered")
    assert stack.kong.get("/services/legacy").status_code == 200
    assert stack.kong.get("/upstreams/legacy.internal").status_code == 200


def test_kong_unreachable_during_churn_converges(stack: Stack) -> None:
    stack.register("web", "web-1", "10.0.0.1")
    stack.start()
    eventually(lambda: stack.targets(UP) == {"10.0.0.1:8080"})
    stack.kong.put("/_emulator/faults", json={"refuse_connections_s": 2})
    eventually(stack.kong_refuses, what="Kong down")
    stack.register("web", "web-2", "10.0.0.2")
    stack.register("web", "web-3", "10.0.0.3")
    stack.deregister("web-1")
    stack.register("api", "api-1", "10.0.1.1")
    eventually(
        lambda: stack.targets(UP) == {"10.0.0.2:8080", "10.0.0.3:8080"},
        30,
        "converged after Kong came back",
    )
    eventually(lambda: "api" in stack.names("services"), 10)


def test_kong_500s_then_recovers(stack: Stack) -> None:
    stack.register("web", "web-1", "10.0.0.1")
    stack.start()
    eventually(lambda: stack.targets(UP) == {"10.0.0.1:8080"})
    stack.kong.put("/_emulator/faults", json={"error_rate": 1.0})
    stack.register("web", "web-2", "10.0.0.2")
    eventually(lambda: 'status="500"' in stack.status.get("/metrics").text, what="a 500 seen")
    stack.kong.delete("/_emulator/faults")
    eventually(lambda: stack.targets(UP) == {"10.0.0.1:8080", "10.0.0.2:8080"}, 30)


def test_consul_restart_with_lower_index_deletes_nothing(stack: Stack) -> None:
    stack.register("web", "web-1", "10.0.0.1")
    stack.register("web", "web-2", "10.0.0.2")
    stack.start()
    eventually(lambda: len(stack.targets(UP)) == 2)
    stack.kong.delete("/_emulator/counters")
    stack.consul.post("/_emulator/restart", json={"down_seconds": 0.5})
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        assert len(stack.targets(UP)) == 2, "a target was removed during the restart"
        time.sleep(0.1)
    deletes = [
        k
        for k in stack.kong.get("/_emulator/counters").json()["by_method_and_kind"]
        if k.startswith("DELETE")
    ]
    assert deletes == []
    stack.register("web", "web-3", "10.0.0.3")
    eventually(lambda: len(stack.targets(UP)) == 3, 20, "converged after the restart")


def test_no_leader_period_deletes_nothing(stack: Stack) -> None:
    stack.register("web", "web-1", "10.0.0.1")
    stack.start()
    eventually(lambda: stack.targets(UP) == {"10.0.0.1:8080"})
    stack.consul.post("/_emulator/leader", json={"no_leader_seconds": 2})
    deadline = time.monotonic() + 2.5
    while time.monotonic() < deadline:
        assert stack.targets(UP) == {"10.0.0.1:8080"}
        time.sleep(0.1)
    stack.register("web", "web-2", "10.0.0.2")
    eventually(lambda: len(stack.targets(UP)) == 2, 20)


def test_bad_tag_skips_that_service_only(stack: Stack) -> None:
    stack.register("good", "good-1", "10.0.0.1")
    stack.register("bad", "bad-1", "10.0.0.2")
    stack.start()
    eventually(lambda: {"good", "bad"} <= stack.names("services"))
    stack.register("bad", "bad-1", "10.0.0.2", tags=["kong.enable=true", "kong.paths=oops"])
    stack.register("good", "good-2", "10.0.0.3")
    eventually(lambda: len(stack.targets("good.service.consul")) == 2)
    problems = eventually(lambda: stack.ready()["services_in_error"].get("bad"))
    assert "kong.paths='oops'" in problems[0]
    assert "bad" in stack.names("services")  # left as it was
    lint = subprocess.run(
        [sys.executable, "-m", "bridge", "lint"],
        env={**stack.env, "PATH": ""},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert lint.returncode == 2  # problems found
    assert "bad (instance bad-1): kong.paths='oops'" in lint.stdout


def test_clashing_route_name_is_reported(stack: Stack) -> None:
    stack.kong.post("/services", json={"name": "other", "host": "other.internal"})
    stack.kong.post("/services/other/routes", json={"name": "web", "paths": ["/other"]})
    stack.register("web", "web-1", "10.0.0.1")
    stack.start()
    problems = eventually(lambda: stack.ready()["services_in_error"].get("web"))
    assert "route 'web' already exists in Kong without our owner tag" in problems[0]
    assert stack.kong.get("/routes/web").json()["paths"] == ["/other"]


def test_drift_is_repaired_by_resync(stack: Stack) -> None:
    stack.register("web", "web-1", "10.0.0.1", tags=["kong.enable=true", "kong.paths=/web"])
    stack.start()
    eventually(lambda: stack.targets(UP) == {"10.0.0.1:8080"})
    target_id = stack.kong.get(f"/upstreams/{UP}/targets/10.0.0.1:8080").json()["id"]
    stack.kong.delete(f"/upstreams/{UP}/targets/{target_id}")
    stack.kong.patch("/routes/web", json={"paths": ["/hand-edited"]})
    eventually(lambda: stack.targets(UP) == {"10.0.0.1:8080"}, 15, "target restored")
    eventually(lambda: stack.kong.get("/routes/web").json()["paths"] == ["/web"], 15)


def test_mass_deletion_is_held_back(stack: Stack) -> None:
    stack.lose_three_of_four()
    held = eventually(lambda: stack.ready()["held_back"])
    assert "deletes 3 of 4 owned services" in held
    assert stack.names("services") == {"a", "b", "c", "d"}


def test_sigterm_exits_cleanly_without_deleting(stack: Stack) -> None:
    stack.register("web", "web-1", "10.0.0.1")
    stack.start()
    eventually(lambda: stack.targets(UP) == {"10.0.0.1:8080"})
    assert stack.stop() == 0
    assert stack.targets(UP) == {"10.0.0.1:8080"}
    assert "web" in stack.names("services")


def test_metrics_and_health_endpoints(stack: Stack) -> None:
    stack.register("web", "web-1", "10.0.0.1")
    stack.start()
    eventually(lambda: stack.targets(UP))
    assert stack.status.get("/healthz").text == "ok\n"
    metrics = eventually(
        lambda: (
            (text := stack.status.get("/metrics").text)
            and "kong_bridge_propagation_seconds_count 1" in text
            and 'kong_bridge_owned_entities{kind="targets"} 1' in text  # counted once a second
            and text
        )
    )
    for name in (
        "kong_bridge_kong_requests_total",
        "kong_bridge_consul_watch_errors_total",
        'kong_bridge_owned_entities{kind="targets"} 1',
        "kong_bridge_services_in_error 0",
        "kong_bridge_last_successful_sync_timestamp_seconds",
    ):
        assert name in metrics


def test_instances_without_checks_are_followed(stack: Stack) -> None:
    """The hard case: no check moves, the service list looks the same; a sweep finds it."""

    def catalog(action: str, body: dict[str, object]) -> None:
        stack.consul.put(f"/v1/catalog/{action}", json=body).raise_for_status()

    node = {"Node": "ext", "Address": "10.0.9.1"}
    service = {"Service": "ext", "Port": 80, "Tags": ["kong.enable=true"]}
    catalog("register", {**node, "Service": {**service, "ID": "ext-1"}})
    stack.register("web", "web-1", "10.0.0.1")
    stack.start()
    eventually(lambda: stack.targets("ext.service.consul") == {"10.0.9.1:80"})
    catalog("register", {**node, "Service": {**service, "ID": "ext-2", "Port": 81}})
    eventually(lambda: stack.targets("ext.service.consul") == {"10.0.9.1:80", "10.0.9.1:81"})
    catalog("deregister", {"Node": "ext", "ServiceID": "ext-1"})
    eventually(lambda: stack.targets("ext.service.consul") == {"10.0.9.1:81"}, what="removed")
    assert stack.metric("kong_bridge_consul_watches") <= 2 + 16  # two watches and the readers


def test_plan_and_sync_once(stack: Stack) -> None:
    stack.register("web", "web-1", "10.0.0.1")

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "bridge", *args],
            env={**stack.env, "PATH": ""},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    planned = cli("plan")
    assert planned.returncode == 2, planned.stderr
    assert "+ create service web" in planned.stdout
    assert stack.names("services") == set()  # a dry run writes nothing
    as_json = cli("plan", "--json")
    assert '"action": "create"' in as_json.stdout
    synced = cli("sync", "--once")
    assert synced.returncode == 0, synced.stdout + synced.stderr
    assert stack.targets(UP) == {"10.0.0.1:8080"}
    again = cli("plan")
    assert again.returncode == 0 and "no changes" in again.stdout


def test_db_less_kong_gets_posted_configs(consul_url: str) -> None:
    import httpx

    from bridge.emulators.kong import KongEmulator

    consul = httpx.Client(base_url=consul_url)
    consul.post("/_emulator/reset").raise_for_status()
    with KongEmulator(db_less=True) as kong_server:
        kong = httpx.Client(base_url=kong_server.url)
        kong.post(
            "/config",
            json={
                "_format_version": "3.0",
                "services": [
                    {
                        "name": "legacy",
                        "host": "legacy.internal",
                        "routes": [{"name": "legacy", "paths": ["/legacy"]}],
                    }
                ],
            },
        ).raise_for_status()
        legacy_id = kong.get("/services/legacy").json()["id"]
        env = {"CONSUL_HTTP_ADDR": consul_url, "KONG_ADMIN_URL": kong_server.url, "PATH": ""}

        def cli(*args: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                [sys.executable, "-m", "bridge", *args],
                env=env,
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )

        def targets() -> set[str]:
            return {t["target"] for t in kong.get(f"/upstreams/{UP}/targets").json()["data"]}

        Stack(kong, consul, consul, {}).register(
            "web", "web-1", "10.0.0.1", tags=["kong.enable=true", "kong.paths=/web"]
        )
        first = cli("sync", "--once")
        assert first.returncode == 0, first.stdout + first.stderr
        assert targets() == {"10.0.0.1:8080"}
        assert kong.get("/routes/web").json()["paths"] == ["/web"]
        Stack(kong, consul, consul, {}).register(
            "web", "web-2", "10.0.0.2", tags=["kong.enable=true", "kong.paths=/web"]
        )
        assert cli("sync", "--once").returncode == 0
        assert targets() == {"10.0.0.1:8080", "10.0.0.2:8080"}
        assert kong.get("/services/legacy").json()["id"] == legacy_id  # not ours: untouched
        planned = cli("plan")
        assert planned.returncode == 0 and "no changes" in planned.stdout
        writes = kong.get("/_emulator/counters").json()["by_method_and_kind"]
        assert writes.get("POST config") == 3  # the fixture's, then one per sync
