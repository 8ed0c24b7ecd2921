"""URLs as Kong reads them: LuaSocket's ``socket.url.parse``, and Lua's ``tonumber`` for ports.

The parser's cases are LuaSocket 3.0-rc1's own (``test/urltest.lua``, the version Kong
3.9 pins); the Admin API cases are Kong 3.9's (``spec/02-integration/04-admin_api``)
and the places where Python's ``urlsplit`` drew other lines.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from bridge.kong.schema.socket_url import parse_url
from bridge.kong.schema.validators import check_url
from tests.emulators.luasocket_url_cases import LUASOCKET_CASES


@pytest.mark.parametrize(("url", "parts"), LUASOCKET_CASES)
def test_urls_parse_as_luasocket_parses_them(url: str, parts: dict[str, str]) -> None:
    parsed = parse_url(url)
    assert parsed is not None
    assert {key: value for key, value in asdict(parsed).items() if value is not None} == parts


def test_the_empty_url_does_not_parse() -> None:
    assert parse_url("") is None
    assert check_url("") == "could not parse url. invalid url"


@given(st.text(alphabet="ab:/@[]?#;%.1 \n", max_size=30))
def test_the_parts_put_back_together_give_the_url(url: str) -> None:
    parsed = parse_url(url)
    if parsed is None:
        assert url == ""
        return
    rebuilt = "".join(
        [
            f"{parsed.scheme}:" if parsed.scheme is not None else "",
            f"//{parsed.authority}" if parsed.authority is not None else "",
            parsed.path or "",
            f";{parsed.params}" if parsed.params is not None else "",
            f"?{parsed.query}" if parsed.query is not None else "",
            f"#{parsed.fragment}" if parsed.fragment is not None else "",
        ]
    )
    assert rebuilt == url
    if parsed.host is not None:
        assert parsed.host in (parsed.authority or "")


def test_url_fields_need_the_host_and_the_scheme_luasocket_finds() -> None:
    assert check_url("http://example.test/log") is None
    assert check_url("1http://example.test") is None  # a scheme may start with a digit
    assert check_url("http://:80/log") == "missing host in url"  # urlsplit saw ":80"
    assert check_url("http://user@/log") == "missing host in url"
    assert check_url("//example.test/log") == "missing scheme in url"
    assert check_url("localhost:8080") == "missing host in url"  # "localhost" is the scheme


def _service(kong: httpx.Client, body: dict[str, Any]) -> httpx.Response:
    return kong.post("/services", json=body)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://service.test/", ("http", "service.test", 80, "/")),
        ("https://service.test/", ("https", "service.test", 443, "/")),
        ("https://example2.test:80/", ("https", "example2.test", 80, "/")),
        # Python's urlsplit lowercased the host and kept ";v=1" in the path.
        ("http://Example.TEST/a;v=1?q=2#f", ("http", "Example.TEST", 80, "/a")),
        ("//example.test:443/a", ("https", "example.test", 443, "/a")),  # port 443: https
        ("grpcs://example.test", ("grpcs", "example.test", 80, None)),  # Kong's default is 80
        ("http://example.test:0x50", ("http", "example.test", 80, None)),  # Lua's tonumber
        ("http://[::1]:8080/a", ("http", "::1", 8080, "/a")),
    ],
)
def test_the_url_shorthand_expands_as_kong_expands_it(
    kong: httpx.Client, url: str, expected: tuple[str, str, int, str | None]
) -> None:
    response = _service(kong, {"url": url})
    assert response.status_code == 201, response.text
    body = response.json()
    assert (body["protocol"], body["host"], body["port"], body["path"]) == expected


@pytest.mark.parametrize(
    ("url", "fields"),
    [
        ("", {"url": "length must be at least 1"}),
        (8080, {"url": "expected a string"}),
        (" ", {"host": "required field missing", "path": "should start with: /"}),
        # An empty or non-numeric port is kept as written, and refused (urlsplit dropped it).
        ("http://example.test:", {"port": "expected an integer"}),
        ("http://example.test:80abc", {"port": "expected an integer"}),
        ("http://example.test:65536", {"port": "value should be between 0 and 65535"}),
        ("http://:80/a", {"host": "required field missing"}),
    ],
)
def test_a_url_kong_refuses_is_refused(kong: httpx.Client, url: object, fields: Any) -> None:
    response = _service(kong, {"url": url})
    assert response.status_code == 400
    assert response.json()["fields"] == fields


def test_a_patch_with_a_url_replaces_all_four_fields(kong: httpx.Client) -> None:
    created = _service(kong, {"url": "https://old.test:8443/base"}).json()
    response = kong.patch(f"/services/{created['id']}", json={"url": "http://example.test:443"})
    assert response.status_code == 200
    body = response.json()
    assert (body["protocol"], body["host"], body["port"], body["path"]) == (
        "http",
        "example.test",
        443,
        None,
    )


def test_a_plugin_url_without_a_host_is_refused(kong: httpx.Client) -> None:
    response = kong.post(
        "/plugins", json={"name": "http-log", "config": {"http_endpoint": "http://:80/log"}}
    )
    assert response.status_code == 400
    assert response.json()["fields"]["config"] == {"http_endpoint": "missing host in url"}
