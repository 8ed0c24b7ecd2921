"""Go's durations as Consul reads and writes them (``time.ParseDuration``, ``String``)."""

from __future__ import annotations

import consul
import pytest
from hypothesis import given
from hypothesis import strategies as st

from bridge.emulators.consul.durations import format_duration, parse_duration


@pytest.mark.parametrize(
    ("nanos", "text"),
    [
        (0, "0s"), (1, "1ns"), (999, "999ns"), (1_000, "1µs"), (1_500, "1.5µs"),
        (1_000_000, "1ms"), (1_100_000, "1.1ms"), (300_000_000, "300ms"),
        (1_000_000_000, "1s"), (1_500_000_000, "1.5s"), (90 * 10**9, "1m30s"),
        (3600 * 10**9, "1h0m0s"), (3661 * 10**9 + 250_000_000, "1h1m1.25s"),
        (72 * 3600 * 10**9, "72h0m0s"), (-2_500_000_000, "-2.5s"),
    ],
)  # fmt: skip
def test_durations_are_written_as_gos_string_writes_them(nanos: int, text: str) -> None:
    """The cases of Go's time package tests (durationTests), in nanoseconds."""
    assert format_duration(nanos / 1e9) == text


@given(st.integers(min_value=-(10**15), max_value=10**15))
def test_a_written_duration_reads_back(nanos: int) -> None:
    assert round(parse_duration(format_duration(nanos / 1e9)) * 1e9) == nanos


def test_a_check_interval_in_nanoseconds_is_shown_as_consul_shows_it(
    consul_client: consul.Consul,
) -> None:
    consul_client.agent.check.register("tick", consul.Check.ttl("10s"))
    consul_client.agent.check.register(
        "fast", check={"TCP": "127.0.0.1:1", "Interval": 1_500_000_000, "Timeout": 10}
    )
    definition = consul_client.agent.checks()["fast"]["Definition"]
    assert (definition["Interval"], definition["Timeout"]) == ("1.5s", "10ns")
