"""The bridge dies (SIGKILL) and comes back: it converges with no duplicates."""

from __future__ import annotations

from tests.chaos.conftest import OWNER, ChaosStack, assert_mirrors
from tests.helpers import eventually


def _owned_services(chaos: ChaosStack) -> int:
    return len(chaos.kong.get("/services", params={"tags": OWNER, "size": 1000}).json()["data"])


def test_sigkill_during_initial_sync_then_restart(chaos: ChaosStack) -> None:
    for number in range(150):
        chaos.register(f"svc-{number}", f"svc-{number}-0", f"10.0.{number // 200}.{number % 200}")
    chaos.kong.put("/_emulator/faults", json={"latency_ms": 5}).raise_for_status()
    chaos.launch()
    eventually(lambda: _owned_services(chaos) >= 5, 30, "the initial sync has begun")
    chaos.kill()
    assert _owned_services(chaos) < 150  # killed part-way
    chaos.kong.delete("/_emulator/faults")
    chaos.launch()
    assert_mirrors(chaos, 45)


def test_changes_while_the_bridge_is_down_are_applied_after_restart(chaos: ChaosStack) -> None:
    for number in range(20):
        chaos.register(f"svc-{number}", f"svc-{number}-0", f"10.0.0.{number}")
    chaos.launch()
    chaos.wait_ready()
    assert_mirrors(chaos)
    chaos.kill()
    chaos.register("svc-1", "svc-1-1", "10.0.1.1")
    chaos.set_status("svc-2-0", "fail")
    chaos.deregister("svc-3-0")
    chaos.register("svc-new", "svc-new-0", "10.0.2.1")
    chaos.launch()
    assert_mirrors(chaos)
