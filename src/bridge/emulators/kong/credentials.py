"""Consumer credentials of the bundled auth plugins (``kong/plugins/<name>/daos.lua``).

key-auth, basic-auth, jwt, hmac-auth, acl and oauth2 each add an entity that
belongs to a consumer (deleted with it), with Kong's URL names, generated keys and
secrets, and the transformations Kong applies on write (basic-auth hashes the
password with the consumer's id as salt; oauth2 may hash the client secret).
"""

from __future__ import annotations

import base64
import hashlib
import os
from typing import Any

from ...kong.schema.fields import (
    EntitySchema,
    Field,
    boolean,
    common_fields,
    foreign,
    integer,
    string,
    string_array,
    tags_field,
)
from ...kong.schema.socket_url import parse_url

Row = dict[str, Any]

JWT_ALGORITHMS = (
    "HS256",
    "HS384",
    "HS512",
    "RS256",
    "RS384",
    "RS512",
    "ES256",
    "ES384",
    "ES512",
    "PS256",
    "PS384",
    "PS512",
    "EdDSA",
)
_JWT_NEEDS_PUBLIC_KEY = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "EdDSA")


def _consumer() -> Field:
    return foreign("consumers", required=True, on_delete="cascade")


def basic_auth_hash(consumer_id: str, password: str | None) -> str:
    """``kong/plugins/basic-auth/crypto.lua``: SHA1 hex of password .. consumer_id."""
    salted = consumer_id if password is None else password + consumer_id
    return hashlib.sha1(salted.encode()).hexdigest()


def _hash_basic_auth_password(row: Row, given: Row) -> Row:
    # Kong's transformation runs when the write carries a password (input = {"password"}).
    if "password" in given and isinstance(row.get("consumer"), dict):
        row["password"] = basic_auth_hash(row["consumer"]["id"], row.get("password"))
    return row


def pbkdf2_secret(secret: str) -> str:
    """``kong/plugins/oauth2/secret.lua``'s PBKDF2 format (Kong's argon2 needs a C library)."""
    salt = os.urandom(16)
    digest = hashlib.pbkdf2_hmac("sha512", secret.encode(), salt, 10000, 32)

    def b64(raw: bytes) -> str:
        return base64.b64encode(raw).decode().rstrip("=")

    return f"$pbkdf2-sha512$i=10000,l=32${b64(salt)}${b64(digest)}"


def _hash_oauth2_secret(row: Row, given: Row) -> Row:
    # input = {"hash_secret"}: only a write that carries hash_secret (true) hashes.
    secret = row.get("client_secret")
    if given.get("hash_secret") and isinstance(secret, str):
        row["client_secret"] = pbkdf2_secret(secret)
    return row


def _check_redirect_uri(uri: str) -> str | None:
    """``oauth2/daos.lua`` validate_uri, with LuaSocket's parser."""
    parts = parse_url(uri)
    if parts is None or parts.host is None or parts.scheme is None:
        return f"cannot parse '{uri}'"
    if parts.fragment is not None:
        return f"fragment not allowed in '{uri}'"
    return None


def _jwt_checks(row: Row) -> dict[str, Any]:
    if row.get("algorithm") in _JWT_NEEDS_PUBLIC_KEY and row.get("rsa_public_key") is None:
        return {
            "rsa_public_key": "required field missing",
            "@entity": ["failed conditional validation given value of field 'algorithm'"],
        }
    return {}


KEY_AUTH = EntitySchema(
    "keyauth_credentials",
    {
        **common_fields(updated=False),
        "consumer": _consumer(),
        "key": string(auto="random"),
        "tags": tags_field(),
        "ttl": integer(),
    },
    endpoint_key="key",
    unique=("key",),
    admin_name="key-auths",
    nested_name="key-auth",
    ttl=True,
)

BASIC_AUTH = EntitySchema(
    "basicauth_credentials",
    {
        **common_fields(updated=False),
        "consumer": _consumer(),
        "username": string(required=True),
        "password": string(required=True),
        "tags": tags_field(),
    },
    endpoint_key="username",
    unique=("username",),
    admin_name="basic-auths",
    nested_name="basic-auth",
    on_write=[_hash_basic_auth_password],
)

JWT = EntitySchema(
    "jwt_secrets",
    {
        **common_fields(updated=False),
        "consumer": _consumer(),
        "key": string(auto="random"),
        "secret": string(auto="random"),
        "rsa_public_key": string(),
        "algorithm": string(default="HS256", one_of=JWT_ALGORITHMS),
        "tags": tags_field(),
    },
    endpoint_key="key",
    unique=("key",),
    entity_checks=[_jwt_checks],
    admin_name="jwts",
    nested_name="jwt",
)

HMAC_AUTH = EntitySchema(
    "hmacauth_credentials",
    {
        **common_fields(updated=False),
        "consumer": _consumer(),
        "username": string(required=True),
        "secret": string(auto="random"),
        "tags": tags_field(),
    },
    endpoint_key="username",
    unique=("username",),
    admin_name="hmac-auths",
    nested_name="hmac-auth",
)

ACLS = EntitySchema(
    "acls",
    {
        **common_fields(updated=False),
        "consumer": _consumer(),
        "group": string(required=True),
        "tags": tags_field(),
    },
    cache_key=("consumer", "group"),
)

OAUTH2 = EntitySchema(
    "oauth2_credentials",
    {
        **common_fields(updated=False),
        "consumer": _consumer(),
        "name": string(required=True),
        "client_id": string(auto="random"),
        "client_secret": string(auto="random"),
        "hash_secret": boolean(default=False, required=True),
        "redirect_uris": string_array(string(checks=(_check_redirect_uri,))),
        "tags": tags_field(),
        "client_type": string(
            default="confidential", required=True, one_of=("confidential", "public")
        ),
    },
    endpoint_key="client_id",
    unique=("client_id",),
    admin_name="oauth2",
    on_write=[_hash_oauth2_secret],
)

CREDENTIALS = (KEY_AUTH, BASIC_AUTH, JWT, HMAC_AUTH, ACLS, OAUTH2)
