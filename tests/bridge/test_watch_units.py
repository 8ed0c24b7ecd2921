"""The watcher's Consul client rules and the settings' variable names (units without a wire)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bridge.settings import BridgeSettings
from bridge.watch import (
    CheckKey,
    CheckTable,
    CheckValue,
    IndexTracker,
    TokenBucket,
    backoff_delay,
    check_rows,
    opt_in_filter,
)


@given(st.lists(st.integers(0, 10**6), min_size=1, max_size=20))
def test_index_tracker_rules(indexes: list[int]) -> None:
    tracker = IndexTracker()
    previous = 0
    for raw in indexes:
        backwards = tracker.update(str(raw))
        if raw < previous:
            assert backwards and tracker.index == 0 and tracker.query is None
        else:
            assert not backwards and tracker.index == max(raw, 1)  # never block on 0
        previous = tracker.index


def test_token_bucket_allows_a_burst_then_paces() -> None:
    bucket = TokenBucket(rate=10.0, burst=2)
    assert bucket.delay() == 0 and bucket.delay() == 0  # the burst
    assert 0.05 < bucket.delay() <= 0.1  # then one token per 1/rate seconds


@given(st.integers(0, 100))
def test_backoff_is_bounded_and_jittered(failures: int) -> None:
    delay = backoff_delay(failures, base=0.5, cap=30.0)
    assert 0.25 <= delay <= 30.0


def test_opt_in_filter_names_tag_and_meta() -> None:
    assert opt_in_filter("gw") == (
        '"gw.enable=true" in ServiceTags or ServiceMeta.gw_enable == "true"'
    )


def test_settings_read_consul_and_kong_variable_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONSUL_HTTP_ADDR", "https://consul.internal:8501")
    monkeypatch.setenv("CONSUL_HTTP_TOKEN", "secret-token")
    monkeypatch.setenv("CONSUL_CACERT", "/ca.pem")
    monkeypatch.setenv("KONG_ADMIN_URL", "https://kong:8444")
    monkeypatch.setenv("KONG_ADMIN_TOKEN", "admin-secret")
    monkeypatch.setenv("KONG_ADMIN_HEADERS", "apikey: k1; X-Team: t")
    monkeypatch.setenv("KONG_BRIDGE_ID", "edge-1")
    settings = BridgeSettings()
    consul = settings.consul_options()
    assert (consul["scheme"], consul["host"], consul["port"]) == ("https", "consul.internal", 8501)
    assert consul["token"] == "secret-token" and consul["verify"] == "/ca.pem"
    connection = settings.kong_connection()
    assert connection.admin_url == "https://kong:8444"
    assert connection.headers == {"Kong-Admin-Token": "admin-secret", "apikey": "k1", "X-Team": "t"}
    assert settings.bridge_id == "edge-1"
    for secret in ("secret-token", "admin-secret", "k1"):
        assert secret not in repr(settings) and secret not in repr(connection)


def test_flags_override_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KONG_ADMIN_URL", "http://from-env:8001")
    settings = BridgeSettings(kong_admin_url="http://from-flag:8001")
    assert settings.kong_admin_url == "http://from-flag:8001"


check = st.fixed_dictionaries(
    {
        "Node": st.sampled_from(["n1", "n2"]),
        "CheckID": st.sampled_from(["serfHealth", "c1", "c2", "c3"]),
        "Status": st.sampled_from(["passing", "warning", "critical"]),
        "ServiceName": st.sampled_from(["", "web", "api"]),
        "ServiceID": st.sampled_from(["", "web-1", "api-1"]),
        "ModifyIndex": st.integers(1, 9),
    }
)


Check = dict[str, Any]


def consul_order(checks: list[Check]) -> list[Check]:
    """One check per (Node, CheckID), in Consul's order, as health/state/any lists them."""
    unique = {(str(c["Node"]), str(c["CheckID"])): c for c in checks}
    return [unique[key] for key in sorted(unique)]


@given(st.lists(st.lists(check, max_size=8), min_size=1, max_size=6))
def test_check_table_follows_answers_as_a_full_parse_would(answers: list[list[Check]]) -> None:
    table = CheckTable()
    before: dict[CheckKey, CheckValue] = {}
    for answer in answers:
        listed = consul_order(answer)
        changes = table.update(json.dumps(listed, separators=(",", ":")).encode())
        after = check_rows(listed)
        assert table.checks == after
        expected = {k for k in before.keys() | after.keys() if before.get(k) != after.get(k)}
        assert {key for key, _old, _new in changes} == expected
        assert all(old == before.get(k) and new == after.get(k) for k, old, new in changes)
        before = after
