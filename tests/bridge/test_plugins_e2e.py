"""Plugins by convention, end to end: both emulators and ``kong-bridge run`` as processes."""

from __future__ import annotations

import json
import subprocess
from typing import Any

import httpx

from tests.bridge.conftest import Stack, run_cli
from tests.emulators.kong_pem import CERT_A, KEY_A
from tests.helpers import eventually

OWNER = "managed-by:kong-bridge"
BASE = ["kong.enable=true", "kong.paths=/web"]


def plugins(stack: Stack, parent: str) -> dict[str, dict[str, Any]]:
    response = stack.kong.get(f"{parent}/plugins")
    if response.status_code != 200:
        return {}
    return {row["name"]: row for row in response.json()["data"]}


def writes(stack: Stack) -> dict[str, int]:
    counters = stack.kong.get("/_emulator/counters").json()["by_method_and_kind"]
    return {k: v for k, v in counters.items() if not k.startswith(("GET", "HEAD", "OPTIONS"))}


def errors(stack: Stack) -> list[str]:
    return list(stack.ready()["services_in_error"].get("web", []))


def test_plugins_appear_with_typed_config_and_our_tag(stack: Stack) -> None:
    stack.register(
        "web",
        "web-1",
        "10.0.0.1",
        tags=[
            *BASE,
            "kong.plugin.rate-limiting.minute=100",
            "kong.plugin.rate-limiting.fault_tolerant=false",
            "kong.plugin.key-auth.key_names=apikey,x-api-key",
            "kong.route.admin.paths=/admin",
            "kong.route.admin.plugin.cors.origins=https://a.example",
            "kong.route.admin.plugin.cors.max_age=60",
        ],
    )
    stack.start()
    on_service = eventually(
        lambda: len(plugins(stack, "/services/web")) == 2 and plugins(stack, "/services/web"),
        what="service plugins",
    )
    limit = on_service["rate-limiting"]
    assert limit["config"]["minute"] == 100 and limit["config"]["fault_tolerant"] is False
    assert limit["config"]["policy"] == "local"  # Kong's default, untouched
    assert on_service["key-auth"]["config"]["key_names"] == ["apikey", "x-api-key"]
    assert OWNER in limit["tags"] and "consul-service:web" in limit["tags"]
    on_route = eventually(lambda: plugins(stack, "/routes/web-admin"), what="route plugin")
    assert on_route["cors"]["config"]["origins"] == ["https://a.example"]
    assert on_route["cors"]["config"]["max_age"] == 60
    assert on_route["cors"]["route"]["id"] == stack.kong.get("/routes/web-admin").json()["id"]


def test_a_changed_tag_patches_only_that_field(stack: Stack) -> None:
    tags = [*BASE, "kong.plugin.rate-limiting.minute=100", "kong.plugin.rate-limiting.hour=1000"]
    stack.register("web", "web-1", "10.0.0.1", tags=tags)
    stack.start()
    first = eventually(lambda: plugins(stack, "/services/web").get("rate-limiting"))
    syncs = stack.metric("kong_bridge_syncs_total")
    eventually(lambda: stack.metric("kong_bridge_syncs_total") > syncs + 1, what="resyncs")
    stack.kong.delete("/_emulator/counters")
    stack.register(
        "web", "web-1", "10.0.0.1", tags=[*tags[:-1], "kong.plugin.rate-limiting.hour=2000"]
    )
    now = eventually(
        lambda: (
            (row := plugins(stack, "/services/web")["rate-limiting"])["config"]["hour"] == 2000
            and row
        )
    )
    assert now["id"] == first["id"] and now["config"]["minute"] == 100
    syncs = stack.metric("kong_bridge_syncs_total")
    eventually(lambda: stack.metric("kong_bridge_syncs_total") > syncs + 1, what="resyncs")
    assert writes(stack) == {"PATCH plugins": 1}  # one write, and nothing after it


def test_removing_tags_deletes_only_our_plugin(stack: Stack) -> None:
    stack.register("web", "web-1", "10.0.0.1", tags=[*BASE, "kong.plugin.key-auth.enabled=true"])
    stack.start()
    eventually(lambda: "key-auth" in plugins(stack, "/services/web"))
    hand = stack.kong.post("/services/web/plugins", json={"name": "cors"})
    assert hand.status_code == 201, hand.text
    stack.register("web", "web-1", "10.0.0.1", tags=BASE)
    eventually(lambda: set(plugins(stack, "/services/web")) == {"cors"}, what="ours deleted")
    syncs = stack.metric("kong_bridge_syncs_total")
    eventually(lambda: stack.metric("kong_bridge_syncs_total") > syncs + 2, what="resyncs")
    assert plugins(stack, "/services/web")["cors"]["id"] == hand.json()["id"]


def test_a_hand_added_plugin_survives_while_ours_change(stack: Stack) -> None:
    stack.register("web", "web-1", "10.0.0.1", tags=[*BASE, "kong.plugin.cors.max_age=10"])
    stack.start()
    eventually(lambda: "cors" in plugins(stack, "/services/web"))
    hand = stack.kong.post("/services/web/plugins", json={"name": "key-auth"}).json()
    for age in (20, 30):
        stack.register("web", "web-1", "10.0.0.1", tags=[*BASE, f"kong.plugin.cors.max_age={age}"])
        eventually(
            lambda age=age: plugins(stack, "/services/web")["cors"]["config"]["max_age"] == age
        )
    assert plugins(stack, "/services/web")["key-auth"] == hand


def test_a_bad_value_is_reported_and_nothing_else_is_affected(stack: Stack) -> None:
    good = [*BASE, "kong.plugin.rate-limiting.minute=10", "kong.plugin.cors.max_age=10"]
    stack.register("web", "web-1", "10.0.0.1", tags=good)
    stack.start()
    before = eventually(lambda: plugins(stack, "/services/web").get("rate-limiting"))
    bad = [
        *BASE,
        "kong.plugin.rate-limiting.minute=many",
        "kong.plugin.cors.max_age=20",
        "kong.route.admin.paths=/admin",
    ]
    stack.register("web", "web-1", "10.0.0.1", tags=bad)
    stack.register("web", "web-2", "10.0.0.2", tags=bad)
    eventually(lambda: len(stack.targets("web.service.consul")) == 2, what="targets sync")
    eventually(lambda: "web-admin" in stack.names("routes"), what="routes sync")
    eventually(lambda: plugins(stack, "/services/web")["cors"]["config"]["max_age"] == 20)
    problems = eventually(lambda: errors(stack), what="reported")
    assert "kong.plugin.rate-limiting.minute='many': expected a number" in problems[0]
    assert plugins(stack, "/services/web")["rate-limiting"] == before  # left as it was


def test_a_config_only_kong_rejects_is_reported_with_its_field(stack: Stack) -> None:
    meta = {"kong_plugins": json.dumps([{"name": "not-installed", "config": {"a": 1}}])}
    stack.register("web", "web-1", "10.0.0.1", tags=BASE, meta=meta)
    stack.register("api", "api-1", "10.0.0.2", tags=["kong.enable=true"])
    stack.start()
    eventually(lambda: stack.targets("web.service.consul") == {"10.0.0.1:8080"})
    problems = eventually(lambda: errors(stack), what="Kong's 400 reported")
    assert "not-installed" in problems[0] and "400" in problems[0]
    assert "web" in stack.names("routes")
    eventually(lambda: "api" in stack.names("services"), what="other services unaffected")


def test_meta_plugins_merge_with_tags_meta_winning(stack: Stack) -> None:
    meta = {
        "kong_plugins": json.dumps(
            [{"name": "rate-limiting", "config": {"minute": 5, "policy": "local"}}]
        )
    }
    tags = [*BASE, "kong.plugin.rate-limiting.minute=100", "kong.plugin.rate-limiting.hour=500"]
    stack.register("web", "web-1", "10.0.0.1", tags=tags, meta=meta)
    stack.start()
    row = eventually(lambda: plugins(stack, "/services/web").get("rate-limiting"))
    assert row["config"]["minute"] == 5 and row["config"]["hour"] == 500


def test_db_less_kong_gets_our_plugins_in_its_config(consul_url: str) -> None:
    from bridge.emulators.kong import KongEmulator

    consul = httpx.Client(base_url=consul_url)
    consul.post("/_emulator/reset").raise_for_status()
    with KongEmulator(db_less=True) as kong_server:
        kong = httpx.Client(base_url=kong_server.url)
        stack = Stack(kong, consul, consul, {})
        env = {"CONSUL_HTTP_ADDR": consul_url, "KONG_ADMIN_URL": kong_server.url, "PATH": ""}

        def cli(*args: str) -> subprocess.CompletedProcess[str]:
            return run_cli(env, *args)

        tags = [*BASE, "kong.plugin.rate-limiting.minute=100", "kong.route.admin.paths=/admin"]
        tags.append("kong.route.admin.plugin.cors.origins=https://a.example")
        tags += ["kong.hosts=api.example.com", "kong.tls.certificate=kv:certs/api"]
        consul.put("/v1/kv/certs/api", content=f"{CERT_A}\n{KEY_A}".encode()).raise_for_status()
        stack.register("web", "web-1", "10.0.0.1", tags=tags)
        first = cli("sync", "--once")
        assert first.returncode == 0, first.stdout + first.stderr
        (certificate,) = kong.get("/certificates", params={"tags": OWNER}).json()["data"]
        assert certificate["snis"] == ["api.example.com"]
        limit = plugins(stack, "/services/web")["rate-limiting"]
        assert limit["config"]["minute"] == 100 and OWNER in limit["tags"]
        assert plugins(stack, "/routes/web-admin")["cors"]["config"]["origins"] == [
            "https://a.example"
        ]
        planned = cli("plan")
        assert planned.returncode == 0 and "no changes" in planned.stdout, planned.stdout
        stack.register("web", "web-1", "10.0.0.1", tags=[*tags[:2], *tags[3:]])
        assert cli("sync", "--once").returncode == 0
        assert set(plugins(stack, "/services/web")) == set()
        assert "cors" in plugins(stack, "/routes/web-admin")
        assert kong.get("/snis/api.example.com").status_code == 200


def test_lint_knows_the_plugin_health_check_and_tls_keys(stack: Stack) -> None:
    tags = [
        *BASE,
        "kong.plugin.rate-limiting.minute=100",
        "kong.plugin.rate-limiting.policy=sometimes",
        "kong.plugin.no-such-plugin.x=1",
        "kong.upstream.healthchecks.active.http_path=/health",
        "kong.upstream.healthchecks.active.nope=1",
        "kong.tls.certificate=certs/plain",
    ]
    stack.register("web", "web-1", "10.0.0.1", tags=tags)
    linted = run_cli(stack.env, "lint")
    assert linted.returncode != 0
    lines = [line for line in linted.stdout.splitlines() if line.startswith("error:")]
    assert len(lines) == 4, linted.stdout
    assert "kong.plugin.rate-limiting.policy='sometimes': expected one of" in linted.stdout
    assert "kong.plugin.no-such-plugin.x='1': expected a plugin bundled with Kong" in linted.stdout
    assert "active.nope='1': expected a known field at active" in linted.stdout
    assert "kong.tls.certificate='certs/plain': expected kv:<Consul KV key>" in linted.stdout
