"""`kong-bridge demo` runs by itself, sends traffic through the proxy, and says what it saw."""

from __future__ import annotations

import subprocess
import sys


def test_demo_shows_traffic_going_through_the_gateway() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bridge", "demo"],
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    assert "GET /orders x4 -> orders-1 x2, orders-2 x2" in out  # routing by path, balanced
    assert "GET / (Host: users.example.com) x2 -> users-1 x2" in out  # routing by host
    assert "GET /internal x1 -> 404 x1" in out  # never opted in
    assert "orders-3 gets traffic: 2 of 6" in out  # a new instance joins the wheel
    assert "orders-1 gets traffic: 0 of 6" in out  # a failing check takes it out
    assert "weights split payments 6:2" in out  # kong.weight=3 against kong.weight=1
    assert "self-registered hello answers: 2 of 2" in out  # the Microkubes library
    assert "deregistered users answers 404" in out
    assert "Demo finished. What to look at:" in out
    assert "Traceback" not in result.stderr
