"""Kong emulator: consumers' query filter and their credentials (kong/plugins/*/daos.lua).

Expected values come from Kong 3.9.1's sources: kong/api/routes/consumers.lua (the
custom_id filter), the daos.lua of key-auth, basic-auth, jwt, hmac-auth, acl and
oauth2, kong/plugins/basic-auth/crypto.lua and kong/plugins/acl/api.lua.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

import httpx
import pytest

from tests.helpers import eventually

GENERATED = re.compile(r"^[A-Za-z0-9]{32}$")  # kong.tools.rand.random_string


def _consumer(kong: httpx.Client, **fields: Any) -> dict[str, Any]:
    response = kong.post("/consumers", json=fields or {"username": "ann"})
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


# -- GET /consumers?custom_id= -------------------------------------------------------------


def test_custom_id_filter_finds_the_one_consumer(kong: httpx.Client) -> None:
    ann = _consumer(kong, username="ann", custom_id="c-1")
    _consumer(kong, username="bob", custom_id="c-2")
    assert kong.get("/consumers", params={"custom_id": "c-1"}).json() == {
        "data": [ann],
        "next": None,
    }
    assert kong.get("/consumers", params={"custom_id": "zz"}).json() == {"data": [], "next": None}


@pytest.mark.parametrize("query", ["custom_id=", "custom_id=a&custom_id=b"])
def test_custom_id_must_be_one_unempty_string(kong: httpx.Client, query: str) -> None:
    response = kong.get(f"/consumers?{query}")
    assert response.status_code == 400
    assert response.json() == {"message": "custom_id must be an unempty string"}


def test_tags_filter_credentials_like_other_entities(kong: httpx.Client) -> None:
    _consumer(kong)
    kong.post("/consumers/ann/key-auth", json={"key": "k1", "tags": ["t"]})
    kong.post("/consumers/ann/key-auth", json={"key": "k2"})
    top = kong.get("/key-auths", params={"tags": "t"}).json()["data"]
    assert [row["key"] for row in top] == ["k1"]
    # As on every nested list, Kong ignores tags there (14-tags_spec.lua, #6779).
    nested = kong.get("/consumers/ann/key-auth", params={"tags": "t"}).json()["data"]
    assert sorted(row["key"] for row in nested) == ["k1", "k2"]


# -- credentials ---------------------------------------------------------------------------

CREDENTIALS = [
    ("key-auth", "key-auths", {}),
    ("basic-auth", "basic-auths", {"username": "u1", "password": "pw"}),
    ("jwt", "jwts", {}),
    ("hmac-auth", "hmac-auths", {"username": "h1"}),
    ("acls", "acls", {"group": "admins"}),
    ("oauth2", "oauth2", {"name": "app"}),
]


@pytest.mark.parametrize(("nested", "top", "body"), CREDENTIALS)
def test_credential_endpoints_nested_and_top_level(
    kong: httpx.Client, nested: str, top: str, body: dict[str, Any]
) -> None:
    consumer = _consumer(kong)
    created = kong.post(f"/consumers/ann/{nested}", json=body)
    assert created.status_code == 201, created.text
    row = created.json()
    assert row["consumer"] == {"id": consumer["id"]}
    assert kong.get(f"/consumers/ann/{nested}").json()["data"] == [row]
    assert kong.get(f"/consumers/ann/{nested}/{row['id']}").json() == row
    assert kong.get(f"/{top}").json() == {"data": [row], "next": None}
    assert kong.get(f"/{top}/{row['id']}").json() == row
    assert kong.get(f"/{top}/{row['id']}/consumer").json() == consumer
    patched = kong.patch(f"/{top}/{row['id']}", json={"tags": ["x"]})
    assert patched.status_code == 200 and patched.json()["tags"] == ["x"]
    assert kong.delete(f"/consumers/ann/{nested}/{row['id']}").status_code == 204
    assert kong.get(f"/{top}/{row['id']}").status_code == 404


@pytest.mark.parametrize(("nested", "top", "body"), CREDENTIALS)
def test_credentials_go_with_their_consumer(
    kong: httpx.Client, nested: str, top: str, body: dict[str, Any]
) -> None:
    _consumer(kong)
    assert kong.post(f"/consumers/ann/{nested}", json=body).status_code == 201
    assert kong.delete("/consumers/ann").status_code == 204
    assert kong.get(f"/{top}").json()["data"] == []


def test_generated_keys_and_secrets(kong: httpx.Client) -> None:
    _consumer(kong)
    key = kong.post("/consumers/ann/key-auth", json={}).json()
    assert GENERATED.match(key["key"]) and key["ttl"] is None
    jwt = kong.post("/consumers/ann/jwt", json={}).json()
    assert GENERATED.match(jwt["key"]) and GENERATED.match(jwt["secret"])
    assert jwt["algorithm"] == "HS256" and jwt["rsa_public_key"] is None
    hmac = kong.post("/consumers/ann/hmac-auth", json={"username": "h"}).json()
    assert GENERATED.match(hmac["secret"])
    oauth2 = kong.post("/consumers/ann/oauth2", json={"name": "app"}).json()
    assert GENERATED.match(oauth2["client_id"]) and GENERATED.match(oauth2["client_secret"])
    assert oauth2["hash_secret"] is False and oauth2["client_type"] == "confidential"
    assert oauth2["redirect_uris"] is None


def test_basic_auth_password_is_sha1_of_password_and_consumer_id(kong: httpx.Client) -> None:
    consumer = _consumer(kong)
    body = {"username": "bob", "password": "s3cret"}
    row = kong.post("/consumers/ann/basic-auth", json=body).json()
    assert row["password"] == hashlib.sha1(f"s3cret{consumer['id']}".encode()).hexdigest()
    # A PATCH without a password leaves the hash alone; one with a password rehashes.
    tagged = kong.patch(f"/basic-auths/{row['id']}", json={"tags": ["t"]}).json()
    assert tagged["password"] == row["password"]
    repatched = kong.patch("/basic-auths/bob", json={"password": "new"}).json()
    assert repatched["password"] == hashlib.sha1(f"new{consumer['id']}".encode()).hexdigest()


def test_oauth2_hash_secret_stores_a_pbkdf2_hash(kong: httpx.Client) -> None:
    _consumer(kong)
    body = {"name": "app", "client_secret": "plain", "hash_secret": True}
    row = kong.post("/consumers/ann/oauth2", json=body).json()
    assert row["client_secret"].startswith("$pbkdf2-sha512$i=10000,l=32$")


@pytest.mark.parametrize(
    ("nested", "body", "key"),
    [
        ("key-auth", {"key": "k"}, {"key": "k"}),
        ("basic-auth", {"username": "u", "password": "p"}, {"username": "u"}),
        ("jwt", {"key": "iss"}, {"key": "iss"}),
        ("hmac-auth", {"username": "h"}, {"username": "h"}),
        ("oauth2", {"name": "a", "client_id": "cid"}, {"client_id": "cid"}),
    ],
)
def test_unique_credential_fields_conflict(
    kong: httpx.Client, nested: str, body: dict[str, Any], key: dict[str, str]
) -> None:
    _consumer(kong)
    _consumer(kong, username="bob")
    assert kong.post(f"/consumers/ann/{nested}", json=body).status_code == 201
    response = kong.post(f"/consumers/bob/{nested}", json=body)
    assert response.status_code == 409
    ((field, value),) = key.items()
    assert response.json() == {
        "code": 5,
        "name": "unique constraint violation",
        "message": f"UNIQUE violation detected on '{{{field}=\"{value}\"}}'",
        "fields": key,
    }


def test_acl_group_is_unique_per_consumer_and_found_by_name(kong: httpx.Client) -> None:
    ann, bob = _consumer(kong), _consumer(kong, username="bob")
    acl = kong.post("/consumers/ann/acls", json={"group": "admins"}).json()
    assert kong.post("/consumers/bob/acls", json={"group": "admins"}).status_code == 201
    again = kong.post("/consumers/ann/acls", json={"group": "admins"})
    assert again.status_code == 409
    assert again.json()["fields"] == {"consumer": {"id": ann["id"]}, "group": "admins"}
    assert kong.get("/consumers/ann/acls/admins").json() == acl
    assert kong.get("/consumers/ann/acls/nope").status_code == 404
    created = kong.put("/consumers/bob/acls/ops", json={})
    assert created.status_code == 200 and created.json()["group"] == "ops"
    assert created.json()["consumer"] == {"id": bob["id"]}
    assert kong.delete("/consumers/ann/acls/admins").status_code == 204
    assert [row["group"] for row in kong.get("/consumers/ann/acls").json()["data"]] == []


@pytest.mark.parametrize(
    ("nested", "body", "fields"),
    [
        ("basic-auth", {"username": "u"}, {"password": "required field missing"}),
        ("hmac-auth", {}, {"username": "required field missing"}),
        ("acls", {}, {"group": "required field missing"}),
        ("oauth2", {}, {"name": "required field missing"}),
        ("jwt", {"algorithm": "XX"}, {"algorithm": "expected one of: HS256, HS384, HS512, "
            "RS256, RS384, RS512, ES256, ES384, ES512, PS256, PS384, PS512, EdDSA"}),
        (
            "jwt",
            {"algorithm": "RS256"},
            {
                "rsa_public_key": "required field missing",
                "@entity": ["failed conditional validation given value of field 'algorithm'"],
            },
        ),
        (
            "oauth2",
            {"name": "a", "redirect_uris": ["nope"]},
            {"redirect_uris": ["cannot parse 'nope'"]},
        ),
        ("key-auth", {"nope": 1}, {"nope": "unknown field"}),
    ],
)  # fmt: skip
def test_credential_validation_messages(
    kong: httpx.Client, nested: str, body: dict[str, Any], fields: dict[str, Any]
) -> None:
    _consumer(kong)
    response = kong.post(f"/consumers/ann/{nested}", json=body)
    assert response.status_code == 400
    assert response.json()["code"] == 2
    assert response.json()["fields"] == fields


def test_acls_without_endpoint_key_need_a_uuid(kong: httpx.Client) -> None:
    response = kong.get("/acls/admins")
    assert response.status_code == 400
    assert response.json() == {
        "code": 1,
        "name": "invalid primary key",
        "message": "invalid primary key: '{id=\"expected a valid UUID\"}'",
        "fields": {"id": "expected a valid UUID"},
    }


def test_credentials_of_an_unknown_consumer_are_not_found(kong: httpx.Client) -> None:
    assert kong.get("/consumers/nobody/key-auth").status_code == 404
    assert kong.post("/consumers/nobody/key-auth", json={}).status_code == 404


def test_credentials_page_like_other_entities(kong: httpx.Client) -> None:
    _consumer(kong)
    for index in range(5):
        kong.post("/consumers/ann/key-auth", json={"key": f"k{index}"})
    first = kong.get("/key-auths", params={"size": 2}).json()
    assert len(first["data"]) == 2 and first["next"].startswith("/key-auths?offset=")
    seen = [row["key"] for row in first["data"]]
    page = first
    while page["next"]:
        page = kong.get(page["next"]).json()
        seen += [row["key"] for row in page["data"]]
    assert sorted(seen) == [f"k{index}" for index in range(5)]
    nested = kong.get("/consumers/ann/key-auth", params={"size": 2}).json()
    assert nested["next"].startswith("/consumers/ann/key-auth?offset=")


def test_dbless_config_nests_credentials_in_consumers(kong_dbless: httpx.Client) -> None:
    config = {
        "_format_version": "3.0",
        "consumers": [
            {
                "username": "ann",
                "keyauth_credentials": [{"key": "k1"}],
                "basicauth_credentials": [{"username": "b", "password": "p"}],
                "acls": [{"group": "g"}],
            }
        ],
    }
    assert kong_dbless.post("/config", json=config).status_code == 201
    consumer = kong_dbless.get("/consumers/ann").json()
    assert kong_dbless.get("/key-auths/k1").json()["consumer"] == {"id": consumer["id"]}
    password = kong_dbless.get("/basic-auths/b").json()["password"]
    assert password == hashlib.sha1(f"p{consumer['id']}".encode()).hexdigest()
    assert kong_dbless.post("/consumers/ann/key-auth", json={}).status_code == 405


def test_a_key_with_a_ttl_shows_the_seconds_left_then_is_gone(kong: httpx.Client) -> None:
    """key-auth's ttl = true: an expiry, not a field (kong/api/endpoints.lua extract_options,
    the postgres strategy's FLOOR(ttl - CURRENT_TIMESTAMP) and its expired-row filter)."""
    _consumer(kong)
    created = kong.post("/consumers/ann/key-auth", json={"key": "brief", "ttl": 10}).json()
    assert 0 <= created["ttl"] < 10  # seconds left, rounded down
    lasting = kong.post("/consumers/ann/key-auth", json={"key": "lasting"}).json()
    assert lasting["ttl"] is None
    patched = kong.patch("/key-auths/brief", json={"tags": ["t"]}).json()
    assert 0 <= patched["ttl"] < 10  # a PATCH without ttl keeps the expiry
    kong.patch("/key-auths/brief", json={"ttl": 1}).raise_for_status()
    eventually(lambda: kong.get("/key-auths/brief").status_code == 404, 5, "expired")
    assert [row["key"] for row in kong.get("/key-auths").json()["data"]] == ["lasting"]
    assert kong.post("/consumers/ann/key-auth", json={"key": "brief"}).status_code == 201
