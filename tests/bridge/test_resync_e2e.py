"""Large and idle turns: a resync at rest compares and writes nothing; a first load beyond one
chunk is applied chunk by chunk, yet deletions are still judged together."""

from __future__ import annotations

from bridge.reconcile import CHUNK
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


def test_after_a_restart_onto_kong_in_step_the_first_pass_compares_nothing(stack: Stack) -> None:
    """The first load of a restart plans nothing for services already in step, and notes
    them so: the first resync's full pass has nothing to diff (at 10,000 services that
    pass diffed every service and held the loop for 40 ms at a time)."""
    for name in ("web", "api"):
        stack.register(name, f"{name}-1", "10.0.0.1", tags=["kong.enable=true"])
    stack.start()
    eventually(lambda: stack.metric(COMPARED) == 0 and stack.metric(PASSES) >= 2, 20, "at rest")
    stack.stop()
    stack.start()
    eventually(lambda: stack.ready().get("ready"), 20, "ready after the restart")
    passes_after(stack, 1)  # the first pass since the first load was served
    assert stack.metric(COMPARED) == 0


def test_a_hand_edit_is_compared_and_repaired_after_passes_at_rest(stack: Stack) -> None:
    stack.register("web", "web-1", "10.0.0.1", tags=["kong.enable=true", "kong.paths=/web"])
    stack.register("api", "api-1", "10.0.0.2", tags=["kong.enable=true"])
    stack.start()
    eventually(lambda: stack.metric(COMPARED) == 0 and stack.metric(PASSES) >= 2, 20, "at rest")
    stack.kong.patch("/routes/web", json={"paths": ["/hand-edited"]}).raise_for_status()
    eventually(lambda: stack.kong.get("/routes/web").json()["paths"] == ["/web"], 15, "repaired")
    assert stack.kong.get("/routes/api").json()["paths"] == ["/api"]


def all_services(stack: Stack) -> set[str]:
    rows = stack.kong.get("/services", params={"size": 1000}).json()["data"]
    return {row["name"] for row in rows}


def test_a_first_load_beyond_one_chunk_lands_and_a_mass_removal_is_still_held(
    stack: Stack,
) -> None:
    names = [f"s{i:03d}" for i in range(CHUNK + 100)]  # planned and applied chunk by chunk
    stack.register_on_doomed_node(names)
    stack.register("keep", "keep-1", "10.0.0.1")
    stack.start()
    eventually(lambda: all_services(stack) == {*names, "keep"}, 60, "every service")
    # All of them go at once: the guard sees them in one plan, as it would have unchunked.
    stack.consul.put("/v1/catalog/deregister", json={"Node": "doomed"}).raise_for_status()
    held = eventually(lambda: stack.ready()["held_back"], 30, "held back")
    assert f"deletes {len(names)} of {len(names) + 1} owned services" in held
    assert all_services(stack) == {*names, "keep"}
