"""Upstream health checks by convention, end to end (separate processes)."""

from __future__ import annotations

from typing import Any

from tests.bridge.conftest import Stack
from tests.bridge.test_plugins_e2e import writes
from tests.helpers import eventually

UP = "web.service.consul"
HC = "kong.upstream.healthchecks"


def healthchecks(stack: Stack) -> dict[str, Any]:
    response = stack.kong.get(f"/upstreams/{UP}")
    return dict(response.json()["healthchecks"]) if response.status_code == 200 else {}


def settle(stack: Stack) -> None:
    syncs = stack.metric("kong_bridge_syncs_total")
    eventually(lambda: stack.metric("kong_bridge_syncs_total") > syncs + 1, what="resyncs")


def test_healthchecks_typed_applied_and_stable(stack: Stack) -> None:
    tags = [
        "kong.enable=true",
        f"{HC}.active.http_path=/health",
        f"{HC}.active.healthy.interval=5",
        f"{HC}.active.unhealthy.http_statuses=500,503",
        f"{HC}.passive.unhealthy.http_failures=3",
    ]
    stack.register("web", "web-1", "10.0.0.1", tags=tags)
    stack.start()
    checks = eventually(lambda: healthchecks(stack).get("active", {}).get("http_path") == "/health"
                        and healthchecks(stack))  # fmt: skip
    assert checks["active"]["healthy"]["interval"] == 5
    assert checks["active"]["unhealthy"]["http_statuses"] == [500, 503]
    assert checks["passive"]["unhealthy"]["http_failures"] == 3
    assert checks["active"]["timeout"] == 1  # Kong's default kept
    # The upstream is written first and the route last: count from the route on.
    eventually(lambda: "web" in stack.names("routes"), what="the route, last written")
    stack.kong.delete("/_emulator/counters")
    settle(stack)
    assert writes(stack) == {}  # defaults filled in by Kong cause no PATCH
    stack.register("web", "web-1", "10.0.0.1", tags=tags[:-1])  # passive key removed
    eventually(lambda: healthchecks(stack)["passive"]["unhealthy"]["http_failures"] == 0)
    assert healthchecks(stack)["active"]["http_path"] == "/health"
    assert writes(stack) == {"PATCH upstreams": 1}


def test_a_bad_healthcheck_value_is_reported(stack: Stack) -> None:
    tags = ["kong.enable=true", f"{HC}.active.healthy.successes=999"]
    stack.register("web", "web-1", "10.0.0.1", tags=tags)
    stack.start()
    problems = eventually(lambda: stack.ready()["services_in_error"].get("web"))
    assert f"{HC}.active.healthy.successes='999'" in problems[0]
    assert "between 0 and 255" in problems[0]
