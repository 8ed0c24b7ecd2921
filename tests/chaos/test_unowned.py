"""Owned parents holding children we do not own: our children go, the parent stays, reported.

Both emulators and ``kong-bridge run`` run as separate processes; every
scenario ends with Kong's whole state compared with Consul's, and every
entity we do not own byte-identical to what it was.
"""

from __future__ import annotations

from typing import Any

from tests.chaos import _safety_helpers as helpers
from tests.chaos._safety_helpers import (
    Stack,
    all_names,
    assert_kong_matches_consul,
    snapshot_unowned,
)
from tests.helpers import eventually

kong_url, consul_url, stack = helpers.kong_url, helpers.consul_url, helpers.stack
UP = "web.service.consul"


def _start(stack: Stack) -> None:
    stack.register("web", "web-1", "10.0.0.1", tags=["kong.enable=true", "kong.paths=/web"])
    stack.register("api", "api-1", "10.0.0.2")
    stack.start("--delete-settle", "0.2")
    eventually(lambda: all_names(stack, "services") == {"web", "api"}, 20, "initial sync")


def _held(stack: Stack) -> list[dict[str, Any]]:
    return [h for h in stack.ready()["held"] if h["service"] == "web"]


def test_chaos_a_hand_added_target_keeps_our_upstream(stack: Stack) -> None:
    _start(stack)
    stack.kong.post(f"/upstreams/{UP}/targets", json={"target": "10.9.9.9:80"}).raise_for_status()
    before = snapshot_unowned(stack.kong)
    stack.deregister("web-1")
    eventually(lambda: "web" not in all_names(stack, "services"), 20, "service removed")
    held = eventually(lambda: _held(stack), 10, "the kept upstream reported")
    assert [(h["kind"], h["name"]) for h in held] == [("upstreams", UP)]
    assert "target 10.9.9.9:80" in held[0]["reason"]
    assert stack.targets(UP) == {"10.9.9.9:80"}  # ours went, the hand-added one stayed
    assert stack.kong.get("/routes/web").status_code == 404
    assert stack.metric("kong_bridge_deletes_held") == 1
    assert_kong_matches_consul(stack, unowned=before)
    # once the hand-added target is gone, the upstream goes at the next resync
    target_id = stack.kong.get(f"/upstreams/{UP}/targets/10.9.9.9:80").json()["id"]
    stack.kong.delete(f"/upstreams/{UP}/targets/{target_id}").raise_for_status()
    eventually(lambda: stack.kong.get(f"/upstreams/{UP}").status_code == 404, 20, "upstream")
    eventually(lambda: not _held(stack), 10, "report cleared")


def test_chaos_routes_and_plugins_attached_to_our_service_keep_it(stack: Stack) -> None:
    _start(stack)
    stack.kong.post(
        "/services/web/routes", json={"name": "by-hand", "paths": ["/by-hand"]}
    ).raise_for_status()
    stack.kong.post("/services/web/plugins", json={"name": "correlation-id"}).raise_for_status()
    stack.kong.post("/routes/web/plugins", json={"name": "cors"}).raise_for_status()
    before = snapshot_unowned(stack.kong)
    stack.deregister("web-1")
    held = eventually(lambda: len(_held(stack)) == 2 and _held(stack), 20, "kept and reported")
    reasons = {h["kind"]: h["reason"] for h in held}
    assert "plugin cors" in reasons["routes"]
    assert "route by-hand" in reasons["services"] and "plugin correlation-id" in reasons["services"]
    assert all_names(stack, "services") == {"web", "api"}
    assert stack.kong.get("/routes/web").status_code == 200  # holds the cors plugin
    assert stack.kong.get(f"/upstreams/{UP}").status_code == 404  # nothing foreign in it: gone
    assert_kong_matches_consul(stack, held={"web"}, unowned=before)
    errors = stack.ready()["services_in_error"]
    assert "web" not in errors  # kept on purpose, not failing
