"""The tag/meta convention parser: every problem is reported, nothing raises."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bridge.convention import parse_instance

paths = st.lists(st.from_regex(r"/[a-z0-9-]{0,8}", fullmatch=True), min_size=1, max_size=3)


@given(paths, st.booleans(), st.integers(0, 65535))
def test_tags_and_meta_round_trip(path_list: list[str], strip: bool, weight: int) -> None:
    tags = [
        "kong.enable=true",
        f"kong.paths={','.join(path_list)}",
        f"kong.strip_path={str(strip).lower()}",
        f"kong.weight={weight}",
    ]
    from_tags, errors = parse_instance("svc", tags, {})
    assert errors == []
    meta = {
        "kong_enable": "true",
        "kong_paths": ",".join(path_list),
        "kong_strip_path": str(strip).lower(),
        "kong_weight": str(weight),
    }
    from_meta, errors = parse_instance("svc", [], meta)
    assert errors == []
    assert from_tags == from_meta
    assert from_tags.routes[""]["paths"] == tuple(path_list)
    assert from_tags.routes[""]["strip_path"] is strip and from_tags.weight == weight


@given(
    st.lists(st.text(max_size=30), max_size=8),
    st.dictionaries(st.text(max_size=20), st.text(max_size=20), max_size=5),
)
def test_garbage_never_raises(tags: list[str], meta: dict[str, str]) -> None:
    tags = tags + [f"kong.{t}" for t in tags]
    meta = {**meta, **{f"kong_{k}": v for k, v in meta.items()}}
    options, errors = parse_instance("svc", tags, meta)
    for error in errors:
        assert error.service == "svc" and error.key and error.expected
        assert str(error).startswith("svc")
    assert options is not None


def test_named_routes_service_and_upstream_keys() -> None:
    options, errors = parse_instance(
        "svc",
        [
            "kong.enable=true",
            "kong.route.admin.paths=/admin",
            "kong.route.admin.methods=GET,POST",
            "kong.service.protocol=https",
            "kong.service.read_timeout=5000",
            "kong.upstream.slots=100",
            "kong.upstream.algorithm=least-connections",
            "kong.mode=dns",
            "unrelated=tag",
        ],
        {"kong_route_public_api_hosts": "api.example.com", "kong_service_retries": "2"},
    )
    assert errors == []
    assert options.routes == {
        "admin": {"paths": ("/admin",), "methods": ("GET", "POST")},
        "public_api": {"hosts": ("api.example.com",)},
    }
    assert options.service == {"protocol": "https", "read_timeout": 5000, "retries": 2}
    assert options.upstream == {"slots": 100, "algorithm": "least-connections"}
    assert options.mode == "dns"


def test_meta_wins_over_tags() -> None:
    options, errors = parse_instance("svc", ["kong.paths=/tag"], {"kong_paths": "/meta"})
    assert errors == [] and options.routes[""]["paths"] == ("/meta",)


@pytest.mark.parametrize(
    ("tag", "expected"),
    [
        ("kong.enable=maybe", "true or false"),
        ("kong.paths=api", "paths starting with '/'"),
        ("kong.paths=/a,,/b", "comma-separated list"),
        ("kong.methods=get", "upper-case HTTP methods"),
        ("kong.weight=70000", "an integer from 0 to 65535"),
        ("kong.upstream.slots=5", "an integer from 10 to 65536"),
        ("kong.service.protocol=ftp", "one of http, https"),
        ("kong.colour=blue", "a known key"),
        ("kong.route.bad name.paths=/x", "a route name"),
        ("kong.enable", "key=value"),
        ("kong.paths=~/(unclosed", "a valid regex"),
    ],
)
def test_each_problem_names_service_key_value_and_expectation(tag: str, expected: str) -> None:
    _options, errors = parse_instance("orders", [tag], {}, instance="orders-1")
    assert len(errors) == 1
    error = errors[0]
    assert error.service == "orders" and error.instance == "orders-1"
    assert error.key == tag.split("=")[0]
    assert expected in error.expected
    assert str(error).startswith("orders (instance orders-1): ")


def test_custom_prefix() -> None:
    options, errors = parse_instance(
        "svc", ["gw.enable=true", "kong.enable=false"], {}, prefix="gw"
    )
    assert errors == [] and options.enable is True
