"""Kong's router, balancer and path rules, without sockets (the proxy's pure parts)."""

from __future__ import annotations

import random
from collections import Counter
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bridge.emulators.kong.balancer import Wheel
from bridge.emulators.kong.router import (
    RequestFacts,
    Router,
    escape_path,
    normalize_path,
    upstream_uri,
)
from bridge.emulators.kong.store import Store

# Kong's own table (spec/fixtures/router_path_handling_tests.lua, path_handling v0):
# service path, route path (None: the route matches on a host), strip_path, request, sent.
PATH_HANDLING_V0 = [
    ("/", "/", False, "/", "/"),
    ("/", "/", True, "/", "/"),
    ("/", "/", False, "/route", "/route"),
    ("/", "/", True, "/route", "/route"),
    ("/", "/", False, "/route/", "/route/"),
    ("/", "/", True, "/route/", "/route/"),
    ("/", "/", False, "/routereq", "/routereq"),
    ("/", "/", True, "/routereq", "/routereq"),
    ("/", "/", False, "/route/req", "/route/req"),
    ("/", "/", True, "/route/req", "/route/req"),
    ("/", "/route", False, "/route", "/route"),
    ("/", "/route", False, "/route/", "/route/"),
    ("/", "/route", False, "/routereq", "/routereq"),
    ("/", "/route", True, "/route", "/"),
    ("/", "/route", True, "/route/", "/"),
    ("/", "/route", True, "/routereq", "/req"),
    ("/", "/route/", False, "/route/", "/route/"),
    ("/", "/route/", False, "/route/req", "/route/req"),
    ("/", "/route/", True, "/route/", "/"),
    ("/", "/route/", True, "/route/req", "/req"),
    ("/srv", "/rou", False, "/roureq", "/srv/roureq"),
    ("/srv", "/rou", True, "/roureq", "/srv/req"),
    ("/srv/", "/rou", False, "/rou", "/srv/rou"),
    ("/srv/", "/rou", True, "/rou", "/srv"),
    ("/service", "/", False, "/", "/service"),
    ("/service", "/", True, "/", "/service"),
    ("/service", "/", False, "/route", "/service/route"),
    ("/service", "/", True, "/route", "/service/route"),
    ("/service", "/", False, "/route/", "/service/route/"),
    ("/service", "/", True, "/route/", "/service/route/"),
    ("/service", "/", False, "/routereq", "/service/routereq"),
    ("/service", "/", True, "/routereq", "/service/routereq"),
    ("/service", "/", False, "/route/req", "/service/route/req"),
    ("/service", "/", True, "/route/req", "/service/route/req"),
    ("/service", "/route", False, "/route", "/service/route"),
    ("/service", "/route", False, "/route/", "/service/route/"),
    ("/service", "/route", False, "/routereq", "/service/routereq"),
    ("/service", "/route", True, "/route", "/service"),
    ("/service", "/route", True, "/route/", "/service/"),
    ("/service", "/route", True, "/routereq", "/service/req"),
    ("/service", "/route/", False, "/route/", "/service/route/"),
    ("/service", "/route/", False, "/route/req", "/service/route/req"),
    ("/service", "/route/", True, "/route/", "/service/"),
    ("/service", "/route/", True, "/route/req", "/service/req"),
    ("/service/", "/", False, "/route/", "/service/route/"),
    ("/service/", "/", True, "/route/", "/service/route/"),
    ("/service/", "/", False, "/", "/service/"),
    ("/service/", "/", True, "/", "/service/"),
    ("/service/", "/", False, "/route", "/service/route"),
    ("/service/", "/", True, "/route", "/service/route"),
    ("/service/", "/", False, "/routereq", "/service/routereq"),
    ("/service/", "/", True, "/routereq", "/service/routereq"),
    ("/service/", "/", False, "/route/req", "/service/route/req"),
    ("/service/", "/", True, "/route/req", "/service/route/req"),
    ("/service/", "/route", False, "/route", "/service/route"),
    ("/service/", "/route", False, "/route/", "/service/route/"),
    ("/service/", "/route", False, "/routereq", "/service/routereq"),
    ("/service/", "/route", True, "/route", "/service"),
    ("/service/", "/route", True, "/route/", "/service/"),
    ("/service/", "/route", True, "/routereq", "/service/req"),
    ("/service/", "/route/", False, "/route/", "/service/route/"),
    ("/service/", "/route/", False, "/route/req", "/service/route/req"),
    ("/service/", "/route/", True, "/route/", "/service/"),
    ("/service/", "/route/", True, "/route/req", "/service/req"),
    ("/", None, False, "/", "/"),
    ("/", None, True, "/", "/"),
    ("/", None, False, "/route", "/route"),
    ("/", None, True, "/route", "/route"),
    ("/", None, False, "/route/", "/route/"),
    ("/", None, True, "/route/", "/route/"),
    ("/service", None, False, "/", "/service"),
    ("/service", None, True, "/", "/service"),
    ("/service", None, False, "/route", "/service/route"),
    ("/service", None, True, "/route", "/service/route"),
    ("/service", None, False, "/route/", "/service/route/"),
    ("/service", None, True, "/route/", "/service/route/"),
    ("/service/", None, False, "/", "/service/"),
    ("/service/", None, True, "/", "/service/"),
    ("/service/", None, False, "/route", "/service/route"),
    ("/service/", None, True, "/route", "/service/route"),
    ("/service/", None, False, "/route/", "/service/route/"),
    ("/service/", None, True, "/route/", "/service/route/"),
    ("/service", "/route", True, "/route./req", "/service/req"),
    ("/service/", "/route", True, "/route./req", "/service/req"),
    ("/service", "/route", True, "/route%2E/req", "/service/req"),
    ("/service/", "/route", True, "/route%2E/req", "/service/req"),
    ("/service", "/route", True, "/route%2e/req", "/service/req"),
    ("/service/", "/route", True, "/route%2e/req", "/service/req"),
    ("/service", "/route", True, "/route../req", "/service/req"),
    ("/service/", "/route", True, "/route../req", "/service/req"),
    ("/service", "/route", True, "/route%2E%2E/req", "/service/req"),
    ("/service/", "/route", True, "/route%2E%2E/req", "/service/req"),
    ("/service", "/route", True, "/route%2e%2E/req", "/service/req"),
    ("/service/", "/route", True, "/route%2e%2E/req", "/service/req"),
    ("/service", "/route", False, "/route./req", "/service/route./req"),
    ("/service/", "/route", False, "/route./req", "/service/route./req"),
    ("/service", "/route", False, "/route%2E/req", "/service/route./req"),
    ("/service/", "/route", False, "/route%2E/req", "/service/route./req"),
    ("/service", "/route", False, "/route%2e/req", "/service/route./req"),
    ("/service/", "/route", False, "/route%2e/req", "/service/route./req"),
    ("/service", "/route", False, "/route../req", "/service/route../req"),
    ("/service/", "/route", False, "/route../req", "/service/route../req"),
    ("/service", "/route", False, "/route%2E%2E/req", "/service/route../req"),
    ("/service/", "/route", False, "/route%2E%2E/req", "/service/route../req"),
    ("/service", "/route", False, "/route%2e%2E/req", "/service/route../req"),
    ("/service/", "/route", False, "/route%2e%2E/req", "/service/route../req"),
]


def _store(*routes: dict[str, Any], service: dict[str, Any] | None = None) -> Store:
    store = Store()
    store.insert("services", {"name": "svc", "host": "example.com", **(service or {})})
    for number, route in enumerate(routes):
        store.insert("routes", {"name": f"r{number}", "service": {"name": "svc"}, **route})
    return store


def _router(store: Store) -> Router:
    return Router.build(store.all("routes"), {s["id"]: s for s in store.all("services")})


def _facts(
    path: str = "/",
    host: str | None = "example.com",
    method: str = "GET",
    port: int = 8000,
    headers: dict[str, list[str]] | None = None,
) -> RequestFacts:
    return RequestFacts(method, normalize_path(path), host, port, headers or {})


def _winner(store: Store, facts: RequestFacts) -> str | None:
    match = _router(store).match(facts)
    return match.route["name"] if match else None


@pytest.mark.parametrize(("service_path", "route_path", "strip", "asked", "sent"), PATH_HANDLING_V0)
def test_upstream_path_as_kong_builds_it(
    service_path: str, route_path: str | None, strip: bool, asked: str, sent: str
) -> None:
    route: dict[str, Any] = {"strip_path": strip}
    if route_path is None:
        route["hosts"] = ["localbin.com"]
    else:
        route["paths"] = [route_path]
    store = _store(route, service={"path": service_path})
    match = _router(store).match(_facts(asked, host="localbin.com"))
    assert match is not None
    path = upstream_uri(strip, match.prefix, normalize_path(asked), service_path)
    assert path == sent


def test_regex_routes_come_before_prefixes_then_longest_prefix() -> None:
    store = _store(
        {"paths": ["/orders/items/long"]},
        {"paths": ["~/orders/\\d+$"]},
        {"paths": ["/orders"]},
        {"paths": ["/orders/items"]},
    )
    assert _winner(store, _facts("/orders/12")) == "r1"  # regex beats the prefix /orders
    assert _winner(store, _facts("/orders/items/longer")) == "r0"
    assert _winner(store, _facts("/orders/items/x")) == "r3"
    assert _winner(store, _facts("/orders/x")) == "r2"
    assert _winner(store, _facts("/other")) is None


def test_regex_priority_orders_regex_routes() -> None:
    store = _store(
        {"paths": ["~/api/.*"], "regex_priority": 1},
        {"paths": ["~/api/v1/.*"], "regex_priority": 5},
    )
    assert _winner(store, _facts("/api/v1/x")) == "r1"
    assert _winner(store, _facts("/api/v2/x")) == "r0"


def test_more_kinds_of_matchers_win_over_a_longer_path() -> None:
    store = _store(
        {"paths": ["/a/very/long/prefix"]},
        {"paths": ["/a"], "methods": ["GET"]},
    )
    assert _winner(store, _facts("/a/very/long/prefix")) == "r1"
    assert _winner(store, _facts("/a/very/long/prefix", method="POST")) == "r0"


def test_hosts_plain_wildcards_and_ports() -> None:
    store = _store(
        {"hosts": ["*.example.org"]},
        {"hosts": ["api.example.org"]},
        {"hosts": ["shop.*"]},
        {"hosts": ["ported.test:9000"]},
    )
    assert _winner(store, _facts(host="api.example.org")) == "r1"  # plain beats wildcard
    assert _winner(store, _facts(host="www.example.org")) == "r0"
    assert _winner(store, _facts(host="example.org")) is None  # "*." needs a label
    assert _winner(store, _facts(host="shop.test")) == "r2"
    assert _winner(store, _facts(host="ported.test", port=9000)) == "r3"
    assert _winner(store, _facts(host="ported.test", port=8000)) is None
    assert _winner(store, _facts(host=None)) is None


def test_headers_match_case_insensitively_and_by_regex() -> None:
    store = _store(
        {"paths": ["/"], "headers": {"x-version": ["V2"]}},
        {"paths": ["/"], "headers": {"x-version": ["~*^v3\\.\\d$"], "x-beta": ["yes"]}},
        {"paths": ["/"]},
    )
    assert _winner(store, _facts(headers={"x_version": ["v2"]})) == "r0"
    assert _winner(store, _facts(headers={"x_version": ["V3.1"], "x_beta": ["YES"]})) == "r1"
    assert _winner(store, _facts(headers={"x_version": ["v3.1"]})) == "r2"
    assert _winner(store, _facts(headers={"x_version": ["v1", "v2"]})) == "r0"


def test_methods_and_multi_path_routes_split_by_length() -> None:
    store = _store(
        {"paths": ["/a", "/abc"], "methods": ["GET"]},
        {"paths": ["/ab"], "methods": ["GET"]},
    )
    assert _winner(store, _facts("/abcd")) == "r0"  # its /abc group is the longest
    assert _winner(store, _facts("/abx")) == "r1"
    assert _winner(store, _facts("/ax")) == "r0"
    assert _winner(store, _facts("/ax", method="DELETE")) is None


def test_strip_path_with_a_regex_strips_the_whole_match() -> None:
    store = _store({"paths": ["~/v(?P<major>\\d+)/users"]}, service={"path": "/svc"})
    match = _router(store).match(_facts("/v2/users/7"))
    assert match is not None and match.prefix == "/v2/users"
    assert upstream_uri(True, match.prefix, "/v2/users/7", "/svc") == "/svc/7"


def test_stream_routes_and_disabled_services_are_not_routed() -> None:
    store = Store()
    off = store.insert("services", {"name": "off", "host": "a.test", "enabled": False})
    tcp = store.insert("services", {"name": "tcp", "host": "b.test", "protocol": "tcp"})
    store.insert("routes", {"paths": ["/off"], "service": {"id": off["id"]}})
    store.insert(
        "routes",
        {"protocols": ["tcp"], "destinations": [{"port": 8000}], "service": {"id": tcp["id"]}},
    )
    router = _router(store)
    assert router.match(_facts("/off")) is None
    assert router.matchers == []


def test_paths_are_normalised_before_matching() -> None:
    assert normalize_path("/a/./b/../c//d") == "/a/c/d"
    assert normalize_path("/%41%2F%7e") == "/A%2F~"  # reserved / stays encoded
    assert escape_path("/a b/ü") == "/a%20b/%C3%BC"


@given(st.lists(st.sampled_from(["a", "b", ".", "..", "", "%2e", "%41", "%2F"]), max_size=8))
def test_normalising_is_idempotent_and_leaves_no_dot_segments(segments: list[str]) -> None:
    path = "/" + "/".join(segments)
    once = normalize_path(path)
    assert normalize_path(once) == once
    assert "//" not in once
    assert "/./" not in once + "/" and "/../" not in once + "/"


@given(st.lists(st.integers(min_value=0, max_value=12), min_size=1, max_size=5), st.integers())
def test_a_turn_of_the_wheel_picks_each_target_by_weight(weights: list[int], seed: int) -> None:
    targets = [
        {"id": f"t{i}", "target": f"10.0.0.{i}:80", "weight": w * 10} for i, w in enumerate(weights)
    ]
    wheel = Wheel.build(targets, random.Random(seed))
    turn = len(wheel.slots)
    picks = Counter(p.target_id for p in (wheel.next_peer() for _ in range(turn)) if p)
    if not any(weights):
        assert turn == 0 and wheel.next_peer() is None
        return
    total = sum(weights)
    for i, w in enumerate(weights):
        assert picks[f"t{i}"] * total == w * turn


def test_the_wheel_skips_unavailable_targets() -> None:
    targets = [{"id": "a", "target": "10.0.0.1:80", "weight": 100}]
    targets.append({"id": "b", "target": "10.0.0.2:80", "weight": 100})
    wheel = Wheel.build(targets, random.Random(1))
    assert {wheel.next_peer({"a"}).target_id for _ in range(4)} == {"b"}  # type: ignore[union-attr]
    assert wheel.next_peer({"a", "b"}) is None
