"""Property tests for the emulator's parsers and normalisers."""

from __future__ import annotations

import ipaddress

from hypothesis import given
from hypothesis import strategies as st

from bridge.emulators.kong.errors import schema_violation_message
from bridge.kong.schema import validators as v
from bridge.kong.schema.fields import nest_form_pairs

segment = st.text(alphabet="abcXYZ019-._~%2F.", min_size=0, max_size=6)
paths = st.lists(st.sampled_from(["a", "b", ".", "..", "%41", "%2f", "c-d"]), max_size=6).map(
    lambda parts: "/" + "/".join(parts)
)


@given(paths)
def test_normalize_path_is_idempotent_and_accepted(path: str) -> None:
    normalized = v.normalize_path(path)
    assert v.normalize_path(normalized) == normalized
    assert v.check_router_path(normalized) is None
    assert "/./" not in normalized and "/../" not in normalized


@given(st.ip_addresses(v=4), st.integers(min_value=0, max_value=65535) | st.none())
def test_ipv4_targets_get_default_port(address: ipaddress.IPv4Address, port: int | None) -> None:
    text = str(address) if port is None else f"{address}:{port}"
    assert v.normalize_target(text) == f"{address}:{8000 if port is None else port}"


@given(st.ip_addresses(v=6), st.integers(min_value=1, max_value=65535))
def test_ipv6_targets_are_expanded(address: ipaddress.IPv6Address, port: int) -> None:
    normalized = v.normalize_target(f"[{address}]:{port}")
    assert normalized == f"[{address.exploded}]:{port}"
    assert v.normalize_target(normalized) == normalized


@given(st.from_regex(r"[a-z][a-z0-9]{0,8}(\.[a-z][a-z0-9]{0,8}){0,3}", fullmatch=True))
def test_hostnames_are_valid_upstream_names(name: str) -> None:
    assert v.check_upstream_name(name) is None
    assert v.check_service_host(name) is None


@given(st.lists(st.text(alphabet="ab/,\n", max_size=4), max_size=4))
def test_tag_check_rejects_separators(tags: list[str]) -> None:
    for tag in tags:
        bad = any(ch in ",/\n" for ch in tag)
        assert (v.check_tag(tag) is not None) == bad


@given(st.lists(st.text(alphabet="abc", min_size=1, max_size=3), min_size=1, max_size=5))
def test_form_list_keys_collect_in_order(values: list[str]) -> None:
    nested = nest_form_pairs([("paths[]", value) for value in values])
    assert nested == {"paths": values}


@given(
    st.dictionaries(
        st.sampled_from(["host", "port", "name", "path"]),
        st.sampled_from(["required field missing", "expected an integer"]),
        min_size=1,
    )
)
def test_schema_violation_message_counts_and_sorts(errors: dict[str, str]) -> None:
    message = schema_violation_message(errors)
    if len(errors) == 1:
        assert message.startswith("schema violation (")
    else:
        assert message.startswith(f"{len(errors)} schema violations (")
    listed = [part.split(":")[0] for part in message[message.index("(") + 1 : -1].split("; ")]
    assert listed == sorted(errors)


def test_nested_form_keys() -> None:
    assert nest_form_pairs(
        [("config.minute", "5"), ("service.id", "x"), ("a[2]", "z"), ("a[1]", "y")]
    ) == {"config": {"minute": "5"}, "service": {"id": "x"}, "a": ["y", "z"]}
