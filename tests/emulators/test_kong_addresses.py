"""Kong's address rules (kong/tools/ip.lua), and the Admin API answers built on them.

The unit cases are those of Kong 3.9's own spec (spec/01-unit/05-utils_spec.lua).
"""

from __future__ import annotations

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from bridge.kong.schema import validators as v
from bridge.kong.schema.addresses import (
    PORT_ERROR,
    Address,
    check_hostname,
    hostname_type,
    normalize_ip,
    normalize_ipv4,
    normalize_ipv6,
)

LOOPBACK6 = "0000:0000:0000:0000:0000:0000:0000:0001"
VALID_NAMES = [
    "hello.com", "hello.fr", "test.hello.com", "1991.io", "hello.COM", "HELLO.com",
    "123helloWORLD.com", "example.123", "example-api.com", "hello.abcd", "example_api.com",
    "localhost", "example.", "3B-ww4c5e180e575a65lsy2b", "-with-SUPER-MONKEYS-pc58ag80a8qai00g7n9n",
    "Hello-Another-Way--fc4qua05auwb3674vfr0b", "2-u9tlzr9756bt3uc0v", "MajiKoi5-783gue6qz075azm5e",
    "de-jg4avhby1noc0d", "d9juau41awczczp",
]  # fmt: skip
INVALID_NAMES = [
    "/example", ".example", "exam;ple", "example.com/org", "example-.org", "example.org-",
    "hello..example.com", "hello-.example.com",
]  # fmt: skip


def test_the_kind_is_decided_by_exclusion() -> None:
    for text in ("123.123.123.123", "1.2.3.4", "1.2.3.4:80", "123", "1.2.3"):
        assert hostname_type(text) == "ipv4", text
    for text in ("::1", "2345::6789", "0001:0001:0001:0001:0001:0001:0001:0001", "[2345::6789]:80"):
        assert hostname_type(text) == "ipv6", text
    assert hostname_type("localhost:80") == "name"


def test_ipv4_addresses() -> None:
    assert normalize_ipv4("123.123.123.123") == Address("ipv4", "123.123.123.123")
    assert normalize_ipv4("123.123.123.123:80") == Address("ipv4", "123.123.123.123", 80)
    assert normalize_ipv4("001.001.001.001:00080") == Address("ipv4", "1.1.1.1", 80)
    for bad in (
        "123.123:80",
        "123.123.123.999",
        "123.123.123.123:80a",
        "123.123.123.123.123:80",
        "localhost:80",
        "[::1]:80",
    ):
        assert isinstance(normalize_ipv4(bad), str), bad
    assert normalize_ipv4("123.123.123.123:99999") == PORT_ERROR


def test_ipv6_addresses() -> None:
    assert normalize_ipv6("::1") == Address("ipv6", LOOPBACK6)
    assert normalize_ipv6("[::1]") == Address("ipv6", LOOPBACK6)
    assert normalize_ipv6("[::1]:80") == Address("ipv6", LOOPBACK6, 80)
    assert normalize_ipv6(f"[{LOOPBACK6}]:80") == Address("ipv6", LOOPBACK6, 80)
    for bad in ("123.123.123.123", "localhost:80", "::x", "[::x]:80", "[::1]:80a", "1"):
        assert isinstance(normalize_ipv6(bad), str), bad
    assert normalize_ipv6("[::1]:99999") == PORT_ERROR
    # What Python's ipaddress takes and Kong does not: a zone, an embedded IPv4 address.
    assert isinstance(normalize_ipv6("fe80::1%eth0"), str)
    assert isinstance(normalize_ipv6("::ffff:1.2.3.4"), str)


def test_host_names() -> None:
    for name in VALID_NAMES:
        assert check_hostname(name) == Address("name", name), name
        assert check_hostname(f"{name}:80") == Address("name", name, 80), name
        assert isinstance(check_hostname(f"{name}:xx"), str), name
        assert check_hostname(f"{name}:99999") == PORT_ERROR, name
    for name in INVALID_NAMES:
        assert isinstance(check_hostname(name), str), name
        assert isinstance(check_hostname(f"{name}:80"), str), name


def test_addresses() -> None:
    assert normalize_ip("1.2.3.4:80") == Address("ipv4", "1.2.3.4", 80)
    assert normalize_ip("[::1]:80") == Address("ipv6", LOOPBACK6, 80)
    assert normalize_ip("localhost:80") == Address("name", "localhost", 80)
    assert normalize_ip("mashape.test") == Address("name", "mashape.test")
    for bad in ("1.2.3.4:8x0", "1.2.3.400", "[::1]:8x0", ":x:1", "localhost:8x0", "mashape..test"):
        assert isinstance(normalize_ip(bad), str), bad


@given(st.ip_addresses(v=4), st.integers(0, 65535) | st.none())
def test_an_ipv4_target_is_kept_without_leading_zeros(address: object, port: int | None) -> None:
    padded = ".".join(f"{int(part):03d}" for part in str(address).split("."))
    text = padded if port is None else f"{padded}:{port}"
    assert v.normalize_target(text) == f"{address}:{8000 if port is None else port}"


def test_validators_built_on_the_rules() -> None:
    assert v.check_target("123") == "Invalid target ('123'); not a valid hostname or ip address"
    assert v.check_upstream_name("1.2.3") == "Invalid name ('1.2.3'); must be a valid hostname"
    assert v.check_upstream_name("1.2.3.4") == "Invalid name ('1.2.3.4'); no ip addresses allowed"
    assert v.check_upstream_name("up:80") == "Invalid name ('up:80'); no port allowed"
    assert v.check_service_host("a..b") == "invalid value: a..b"
    assert v.check_service_host("a.b:80") == "must not have a port"
    assert v.check_service_host("a.b:99999") == "must not have a port"
    assert v.check_service_host("::1") is None
    assert v.check_route_host("*.example.com:8080") is None
    assert v.check_route_host("a..b") == "invalid hostname: a..b"
    assert v.check_route_host("1.2.3") == "invalid ipv4 address: 1.2.3"
    assert v.check_sni("*.example.com") == "invalid value: *.example.com"
    assert v.check_wildcard_host("*.example.com") is None
    assert v.check_wildcard_host("10.0.0.1") == "must not be an IP"


def test_whole_string_patterns_end_at_the_end() -> None:
    """Lua's "$" ends the string; a Python "$" also matches before a final newline."""
    assert v.check_method("GET\n") is not None
    assert v.check_name("svc\n") is not None
    assert v.check_header_name("X-Id\n") is not None
    assert not v.lua_match("^[a-z]+$", "abc\n")
    assert v.lua_match("^a.c$", "a\nc")  # Lua's "." is any character


def test_a_prefix_length_is_written_plainly() -> None:
    assert v.check_ip_or_cidr("10.0.0.0/8") is None
    assert v.check_ip_or_cidr("10.0.0.1") is None
    assert v.check_ip_or_cidr("::1/128") is None
    for bad in ("10.0.0.0/08", "10.0.0.0/255.0.0.0", "10.0.0.0/33", "fe80::1%eth0"):
        assert v.check_ip_or_cidr(bad) == f"invalid ip or cidr range: '{bad}'", bad


@pytest.mark.parametrize(
    ("target", "stored"),
    [
        ("010.001.002.003:80", "10.1.2.3:80"),
        ("[::1]:81", f"[{LOOPBACK6}]:81"),
        ("Host.Example", "Host.Example:8000"),
    ],
)
def test_the_admin_api_stores_targets_as_kong_does(
    kong: httpx.Client, target: str, stored: str
) -> None:
    kong.put("/upstreams/addresses.test").raise_for_status()
    answer = kong.post("/upstreams/addresses.test/targets", json={"target": target})
    assert answer.status_code == 201, answer.text
    assert answer.json()["target"] == stored


def test_the_admin_api_refuses_a_target_kong_refuses(kong: httpx.Client) -> None:
    kong.put("/upstreams/addresses.test").raise_for_status()
    answer = kong.post("/upstreams/addresses.test/targets", json={"target": "123"})
    assert answer.status_code == 400
    assert answer.json()["fields"] == {
        "target": "Invalid target ('123'); not a valid hostname or ip address"
    }
