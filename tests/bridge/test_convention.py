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


def test_a_key_given_twice_with_different_values_is_an_error() -> None:
    options, errors = parse_instance(
        "orders", ["kong.paths=/one", "kong.paths=/two"], {}, instance="orders-1"
    )
    assert len(errors) == 1
    assert errors[0].key == "kong.paths" and errors[0].value == "/two"
    assert "one value per key (also given as kong.paths='/one')" in errors[0].expected
    assert "" not in options.routes  # neither value is guessed


def test_a_key_repeated_with_the_same_value_is_not_ambiguous() -> None:
    options, errors = parse_instance("svc", ["kong.paths=/one", "kong.paths=/one"], {})
    assert errors == [] and options.routes[""]["paths"] == ("/one",)


def test_a_conflict_stays_a_conflict_when_the_first_value_comes_back() -> None:
    _options, errors = parse_instance(
        "svc", ["kong.weight=1", "kong.weight=2", "kong.weight=1"], {}
    )
    assert [e.value for e in errors] == ["2", "1"]


@pytest.mark.parametrize("bad", ["/a\x00b", "/a\nb", "/a\rb", "/a\x1bb", "/a\x7fb", "/a\x85b"])
def test_control_characters_are_rejected(bad: str) -> None:
    _options, errors = parse_instance("svc", [f"kong.paths={bad}"], {"kong_hosts": f"a{bad[2:]}"})
    assert {e.key for e in errors} == {"kong.paths", "kong_hosts"}
    assert all("control characters" in e.expected for e in errors)


keys = st.sampled_from(
    ["paths", "hosts", "weight", "strip_path", "service.retries", "upstream.slots"]
)
values = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=12)


@given(keys, values, values)
def test_two_different_values_for_one_key_always_give_an_error(
    key: str, first: str, second: str
) -> None:
    _options, errors = parse_instance("svc", [f"kong.{key}={first}", f"kong.{key}={second}"], {})
    duplicated = [e for e in errors if "one value per key" in e.expected]
    assert bool(duplicated) == (first != second)
    for error in duplicated:
        assert error.key == f"kong.{key}" and error.value == second


@given(keys, values, st.sampled_from([chr(c) for c in (*range(0x20), *range(0x7F, 0xA0))]))
def test_any_control_character_in_a_value_is_an_error(key: str, text: str, control: str) -> None:
    raw = text[: len(text) // 2] + control + text[len(text) // 2 :]
    meta = {"kong_" + key.replace(".", "_"): raw}
    options, errors = parse_instance("svc", [f"kong.{key}={raw}"], meta)
    assert errors and all(e.value == raw for e in errors)
    assert options.routes == {} and options.weight is None
    assert options.service == {} and options.upstream == {}
