"""Resyncs at rest: Kong is re-read, nothing unchanged is compared again, nothing is written."""

from __future__ import annotations

from tests.bridge.conftest import Stack
from tests.helpers import eventually

PASSES = "kong_bridge_full_passes_total"
COMPARED = "kong_bridge_full_pass_services_compared"


def passes_after(stack: Stack, more: int) -> None:
    start = stack.metric(PASSES)
    eventually(lambda: stack.metric(PASSES) >= start + more, 20, f"{more} more full passes")


def test_a_resync_at_rest_compares_and_writes_nothing(stack: Stack) -> None:
    for name in ("web", "api"):
        stack.register(name, f"{name}-1", "10.0.0.1", tags=["kong.enable=true"])
    stack.start()  # --resync 2
    eventually(lambda: stack.targets("api.service.consul") and stack.targets("web.service.consul"))
    # The pass after the writes compares the written services once; later ones skip them.
    eventually(lambda: stack.metric(COMPARED) == 0 and stack.metric(PASSES) >= 2, 20, "at rest")
    stack.kong.delete("/_emulator/counters")
    passes_after(stack, 2)
    counters = stack.kong.get("/_emulator/counters").json()
    assert counters["writes"] == 0, counters
    assert counters["reads"] > 0  # Kong was re-read all the same
    assert stack.metric(COMPARED) == 0


def test_a_hand_edit_is_compared_and_repaired_after_passes_at_rest(stack: Stack) -> None:
    stack.register("web", "web-1", "10.0.0.1", tags=["kong.enable=true", "kong.paths=/web"])
    stack.register("api", "api-1", "10.0.0.2", tags=["kong.enable=true"])
    stack.start()
    eventually(lambda: stack.metric(COMPARED) == 0 and stack.metric(PASSES) >= 2, 20, "at rest")
    stack.kong.patch("/routes/web", json={"paths": ["/hand-edited"]}).raise_for_status()
    eventually(lambda: stack.kong.get("/routes/web").json()["paths"] == ["/web"], 15, "repaired")
    assert stack.kong.get("/routes/api").json()["paths"] == ["/api"]
