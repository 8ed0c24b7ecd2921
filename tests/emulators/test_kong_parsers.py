"""Property and unit tests for the emulator's parsers, normalisers and Lua rules."""

from __future__ import annotations

import ipaddress
import math
import uuid

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from bridge.emulators.kong import foreign
from bridge.emulators.kong.errors import schema_violation_message
from bridge.emulators.kong.schemas import ENTITIES
from bridge.kong.schema import validators as v
from bridge.kong.schema.fields import Field, nest_form_pairs
from bridge.kong.schema.lua import tonumber

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


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner),
    max_leaves=6,
)


@given(st.uuids(), st.dictionaries(st.text(max_size=8).filter(lambda k: k != "id"), _json_values))
def test_a_reference_with_a_primary_key_ignores_everything_else(
    entity_id: uuid.UUID, extra: dict[str, object]
) -> None:
    """resolve_foreign: with a valid id, the other fields of the object are never read."""
    fields = {"service": Field("foreign", reference="services")}
    data = {"service": {**extra, "id": str(entity_id)}}
    resolved = foreign.resolve(fields, data, ENTITIES, lambda kind, key: None)
    assert resolved["service"] == {"id": str(entity_id)}


@given(st.text(min_size=1, max_size=12).filter(lambda t: t.strip() != ""))
def test_lua_literal_patterns_match_like_lua(word: str) -> None:
    """``^...$`` with Lua's escapes (``%.``) for punctuation matches exactly the word."""
    escaped = "".join(f"%{c}" if not c.isalnum() else c for c in word)
    assert v.lua_match(f"^{escaped}$", word)
    assert not v.lua_match(f"^{escaped}$", word + "x")


@given(st.text())
def test_a_tag_is_printable_ascii_but_comma_and_slash_or_any_non_ascii(tag: str) -> None:
    allowed = all(
        char not in ",/" and (ord(char) >= 0x80 or 0x20 <= ord(char) <= 0x7E) for char in tag
    )
    assert (v.check_tag(tag) is None) == allowed


HEX = "0123456789abcdefABCDEF"


def _kong_uuid(text: str) -> bool:
    """kong/tools/uuid.lua's rule, spelled out: 36 characters, hyphens at 8, 13, 18, 23."""
    return len(text) == 36 and all(
        (char == "-") if index in (8, 13, 18, 23) else (char in HEX)
        for index, char in enumerate(text)
    )


def _swapped(text: str, first: int, second: int) -> str:
    chars = list(text)
    chars[first], chars[second] = chars[second], chars[first]
    return "".join(chars)


near_uuids = st.builds(_swapped, st.uuids().map(str), st.integers(0, 35), st.integers(0, 35))


@given(near_uuids | st.text(alphabet=HEX + "-{}:urn", min_size=30, max_size=40))
def test_a_uuid_is_8_4_4_4_12_hex_digits_as_kong_checks_it(text: str) -> None:
    assert v.is_uuid(text) == _kong_uuid(text)
    assert v.is_uuid(text.upper()) == _kong_uuid(text.upper())


def test_uuid_forms_python_takes_and_kong_refuses() -> None:
    plain = str(uuid.uuid4())
    assert v.is_uuid(plain)
    for text in (
        plain.replace("-", ""),  # no hyphens
        "{" + plain + "}",
        "urn:uuid:" + plain,
        plain[:7] + "-" + plain[7:8] + plain[9:],  # a hyphen one place early
        plain + "\n",
    ):
        assert not v.is_uuid(text), text


def test_lua_patterns_see_bytes() -> None:
    """Lua strings are bytes: "." is one byte of UTF-8, and no class matches half a letter."""
    assert not v.lua_match("^.$", "é")
    assert v.lua_match("^..$", "é")
    assert not v.lua_match("^%a+$", "héllo")
    assert v.lua_match("^[^:]+:.*$", "X-Naïve: yes")


@pytest.mark.parametrize(("pattern", "status"), [("é" * 250, 201), ("é" * 251, 400)])
def test_string_lengths_are_counted_in_bytes(kong: httpx.Client, pattern: str, status: int) -> None:
    """Kong's len_max is Lua's "#": 251 "é" are 502 bytes, over ai-prompt-guard's 500."""
    response = kong.post(
        "/plugins", json={"name": "ai-prompt-guard", "config": {"allow_patterns": [pattern]}}
    )
    assert response.status_code == status, response.text
    if status == 400:
        errors = response.json()["fields"]["config"]["allow_patterns"]
        assert errors == ["length must be at most 500"]


@pytest.mark.parametrize(
    ("text", "number"),
    [
        ("80", 80), (" 80\t", 80), ("+80", 80), ("0x50", 80), ("8e1", 80), ("80.0", 80),
        ("80.5", 80.5), (".5", 0.5), ("5.", 5), ("-0x10", -16), ("0x1.8p1", 3), ("0b101", 5),
        ("inf", math.inf), ("-Infinity", -math.inf),
        ("", None), ("port", None), ("80abc", None), ("1_000", None), ("0x", None),
        ("8 0", None), ("1e", None), (".", None), ("infx", None),
    ],
)  # fmt: skip
def test_numbers_are_read_as_luajits_tonumber_reads_them(text: str, number: float | None) -> None:
    assert tonumber(text) == number
    assert type(tonumber(text)) is type(number)
    assert tonumber("nan") != tonumber("nan")  # NaN, as Lua's


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_a_number_python_writes_is_read_back(number: float) -> None:
    assert tonumber(repr(number)) == number


@pytest.mark.parametrize(("size", "status"), [("0x10", 200), ("1_0", 400), (" 10 ", 200)])
def test_a_page_size_is_read_with_tonumber(kong: httpx.Client, size: str, status: int) -> None:
    response = kong.get("/services", params={"size": size})
    assert response.status_code == status, response.text
    if status == 400:
        assert response.json()["message"] == "size must be a number"


def test_form_numbers_are_read_with_tonumber(kong: httpx.Client) -> None:
    """kong/api/arguments.lua infers a number field's value with tonumber."""
    response = kong.post("/services", data={"name": "s", "host": "a.test", "port": "0x50"})
    assert response.status_code == 201, response.text
    assert response.json()["port"] == 80
    response = kong.post("/services", data={"name": "t", "host": "a.test", "port": "8_0"})
    assert response.status_code == 400
    assert response.json()["fields"] == {"port": "expected an integer"}
