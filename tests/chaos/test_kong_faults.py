"""Kong misbehaves while Consul changes: the bridge keeps writing and converges (issue 8.1)."""

from __future__ import annotations

import time

from tests.chaos.conftest import ChaosStack, assert_mirrors
from tests.helpers import eventually

SERVICES = 30


def _churn(chaos: ChaosStack, rounds: int) -> None:
    """Adds, failures and removals spread over every service."""
    for round_number in range(rounds):
        for number in range(SERVICES):
            name = f"svc-{number}"
            sid = f"{name}-r{round_number}"
            chaos.register(name, sid, f"10.1.{round_number}.{number}")
            if number % 3 == 0:
                chaos.set_status(sid, "fail")
            if number % 5 == 0 and round_number:
                chaos.deregister(f"{name}-r{round_number - 1}")


def _start(chaos: ChaosStack) -> None:
    for number in range(SERVICES):
        chaos.register(f"svc-{number}", f"svc-{number}-0", f"10.0.0.{number}")
    chaos.launch()
    chaos.wait_ready()
    assert_mirrors(chaos)


def test_changes_land_while_kong_answers_20_percent_500s(chaos: ChaosStack) -> None:
    _start(chaos)
    chaos.kong.put("/_emulator/faults", json={"error_rate": 0.2}).raise_for_status()
    _churn(chaos, 3)
    # The storm goes on: resyncs fail now and then, incremental changes must still land.
    try:
        assert_mirrors(chaos, 45)
    finally:
        chaos.kong.delete("/_emulator/faults")
    failed = chaos.status.get("/metrics").text
    assert 'status="500"' in failed  # the fault was real


def test_kong_refusing_connections_then_back(chaos: ChaosStack) -> None:
    _start(chaos)
    chaos.kong.put("/_emulator/faults", json={"refuse_connections_s": 3}).raise_for_status()
    eventually(chaos.kong_refuses, what="Kong refuses connections")
    started = time.monotonic()
    _churn(chaos, 2)
    assert chaos.kong_refuses() or time.monotonic() - started > 3
    assert_mirrors(chaos, 45)
