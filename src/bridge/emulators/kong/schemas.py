"""Kong 3.x entity schemas: fields, defaults and entity checks (``kong/db/schema/entities``)."""

from __future__ import annotations

from typing import Any

from ...kong.schema import lua
from ...kong.schema import validators as v
from ...kong.schema.fields import (
    EntitySchema,
    Field,
    boolean,
    common_fields,
    foreign,
    integer,
    record,
    string,
    string_array,
    string_set,
    tags_field,
)
from ...kong.schema.socket_url import parse_url
from ...kong.schema.upstreams import HEALTHCHECKS
from . import errors as e
from .certificates import CA_CERTIFICATES, CERTIFICATES, SNIS
from .credentials import CREDENTIALS

TIMEOUT = (1, 2**31 - 2)
PROTOCOLS = ("grpc", "grpcs", "http", "https", "tcp", "tls", "tls_passthrough", "udp")


_common = common_fields
_tags = tags_field


def _name() -> Field:
    return string(checks=(v.check_name,))


# -- services -----------------------------------------------------------------------------

SERVICE_FIELDS: dict[str, Field] = {
    **_common(),
    "name": _name(),
    "retries": integer(default=5, between=(0, 32767)),
    "protocol": string(default="http", required=True, one_of=PROTOCOLS),
    "host": string(required=True, checks=(v.check_service_host,)),
    "port": integer(default=80, required=True, between=(0, 65535)),
    "path": string(checks=(v.check_service_path,)),
    "connect_timeout": integer(default=60000, between=TIMEOUT),
    "write_timeout": integer(default=60000, between=TIMEOUT),
    "read_timeout": integer(default=60000, between=TIMEOUT),
    "tags": _tags(),
    "client_certificate": foreign("certificates"),
    "tls_verify": boolean(),
    "tls_verify_depth": integer(between=(0, 64)),
    "ca_certificates": string_array(string(checks=(v.check_uuid,))),
    "enabled": boolean(default=True),
}


def _service_url_shorthand(data: dict[str, Any]) -> dict[str, Any]:
    """``url`` is write-only: ``services.lua`` expands it into protocol, host, port and
    path with LuaSocket's parser, and those four replace whatever the body gave."""
    if "url" not in data:
        return data
    data = dict(data)
    url = data.pop("url")
    if url is None:
        url = "userdata: NULL"  # a JSON null passes the string check; Lua's tostring(null)
    elif not isinstance(url, str):
        raise e.schema_violation({"url": "expected a string"})
    elif url == "":
        raise e.schema_violation({"url": "length must be at least 1"})
    parts = parse_url(url)
    if parts is None:
        return data
    number = lua.tonumber(parts.port) if parts.port is not None else None
    inferred = {80: "http", 443: "https"}.get(number) if isinstance(number, int) else None
    protocol = parts.scheme or inferred or "http"
    default_port = {"http": 80, "https": 443}.get(protocol, 80)
    data["protocol"] = protocol
    data["host"] = parts.host
    # An empty or non-numeric port is kept as written (a Lua string, even "", is true):
    # the port field then rejects it.
    written = parts.port if parts.port is not None else default_port
    data["port"] = number if number is not None else written
    data["path"] = parts.path
    return data


def _service_checks(row: dict[str, Any]) -> dict[str, Any]:
    errors: dict[str, Any] = {}
    protocol = row.get("protocol")
    if row.get("path") is not None and protocol in ("tcp", "tls", "udp", "grpc", "grpcs"):
        errors["path"] = f"value must be null when 'protocol' is {protocol}"
    if protocol not in ("https", "tls"):
        for key in ("client_certificate", "tls_verify", "tls_verify_depth", "ca_certificates"):
            if row.get(key) is not None:
                errors[key] = "value must be null when 'protocol' is not 'https' or 'tls'"
    return errors


SERVICES = EntitySchema(
    "services",
    SERVICE_FIELDS,
    endpoint_key="name",
    unique=("name",),
    entity_checks=[_service_checks],
    shorthands=[_service_url_shorthand],
)

# -- routes -------------------------------------------------------------------------------

ROUTE_FIELDS: dict[str, Field] = {
    **_common(),
    "name": _name(),
    "protocols": string_set(
        string(one_of=PROTOCOLS), default=["http", "https"], required=True, len_min=1
    ),
    "methods": string_set(string(checks=(v.check_method,))),
    "hosts": string_array(string(checks=(v.check_route_host,))),
    "paths": string_array(string(checks=(v.check_router_path,))),
    "headers": Field("map", values=string_array()),
    "https_redirect_status_code": integer(
        default=426, required=True, one_of=(426, 301, 302, 307, 308)
    ),
    "regex_priority": integer(default=0),
    "strip_path": boolean(default=True, required=True),
    "path_handling": string(default="v0", one_of=("v0", "v1")),
    "preserve_host": boolean(default=False, required=True),
    "request_buffering": boolean(default=True, required=True),
    "response_buffering": boolean(default=True, required=True),
    "snis": string_set(),
    "sources": Field("set", elements=record({"ip": string(), "port": integer()})),
    "destinations": Field("set", elements=record({"ip": string(), "port": integer()})),
    "tags": _tags(),
    "service": foreign("services"),
}

_HTTP_KEYS = ("methods", "hosts", "headers", "paths")
_STREAM_KEYS = ("sources", "destinations")


def _present(row: dict[str, Any], key: str) -> bool:
    value = row.get(key)
    return value is not None and value != [] and value != {}


def _route_checks(row: dict[str, Any]) -> dict[str, Any]:
    protocols = row.get("protocols") or []
    entity: list[str] = []
    errors: dict[str, Any] = {}
    groups = [{"http", "https"}, {"tcp", "tls", "udp"}, {"tls_passthrough"}, {"grpc", "grpcs"}]
    used = [g for g in groups if g & set(protocols)]
    if len(used) > 1:
        errors["protocols"] = (
            "mixing http and non-http protocols is not allowed"
            if any("http" in g for g in used)
            else "these sets are mutually exclusive: ('http', 'https'), ('tcp', 'tls', 'udp'), "
            "('tls_passthrough'), ('grpc', 'grpcs')"
        )
        return errors
    rules: list[tuple[str, tuple[str, ...]]] = [
        ("https", ("methods", "hosts", "headers", "paths", "snis")),
        ("http", ("methods", "hosts", "headers", "paths")),
        ("grpcs", ("hosts", "headers", "paths", "snis")),
        ("grpc", ("hosts", "headers", "paths")),
        ("tls_passthrough", ("snis",)),
        ("tls", ("sources", "destinations", "snis")),
        ("tcp", ("sources", "destinations", "snis")),
        ("udp", ("sources", "destinations", "snis")),
    ]
    for protocol, keys in rules:
        if protocol in protocols:
            if not any(_present(row, key) for key in keys):
                quoted = ", ".join(f"'{key}'" for key in keys)
                entity.append(f"must set one of {quoted} when 'protocols' is '{protocol}'")
            break
    if _present(row, "snis") and not set(protocols) & {"https", "grpcs", "tls", "tls_passthrough"}:
        errors["snis"] = (
            "'snis' can only be set when 'protocols' is 'grpcs', 'https', 'tls' "
            "or 'tls_passthrough'"
        )
    stream = bool(set(protocols) & {"tcp", "tls", "udp", "tls_passthrough"})
    for key in _HTTP_KEYS if stream else _STREAM_KEYS:
        if _present(row, key):
            kind = "stream" if stream else "http"
            errors[key] = f"cannot set '{key}' when 'protocols' is {kind}"
    headers = row.get("headers") or {}
    if any(name.lower() == "host" for name in headers):
        errors["headers"] = (
            "cannot contain 'host' header, which must be specified in the 'hosts' attribute"
        )
    if "grpc" in protocols or "grpcs" in protocols:
        row["strip_path"] = False
    if entity:
        errors["@entity"] = entity
    return errors


ROUTES = EntitySchema(
    "routes",
    ROUTE_FIELDS,
    endpoint_key="name",
    unique=("name",),
    entity_checks=[_route_checks],
)

# -- upstreams ----------------------------------------------------------------------------

HASH_ON = ("none", "consumer", "ip", "header", "cookie", "path", "query_arg", "uri_capture")
UPSTREAM_FIELDS: dict[str, Field] = {
    **_common(),
    "name": string(required=True, checks=(v.check_upstream_name,)),
    "algorithm": string(
        default="round-robin",
        one_of=("consistent-hashing", "least-connections", "round-robin", "latency"),
    ),
    "hash_on": string(default="none", one_of=HASH_ON),
    "hash_fallback": string(default="none", one_of=HASH_ON),
    "hash_on_header": string(),
    "hash_fallback_header": string(),
    "hash_on_cookie": string(),
    "hash_on_cookie_path": string(default="/"),
    "hash_on_query_arg": string(),
    "hash_fallback_query_arg": string(),
    "hash_on_uri_capture": string(),
    "hash_fallback_uri_capture": string(),
    "slots": integer(default=10000, between=(10, 2**16)),
    "healthchecks": HEALTHCHECKS,
    "tags": _tags(),
    "host_header": string(checks=(v.check_service_host,)),
    "client_certificate": foreign("certificates"),
    "use_srv_name": boolean(default=False),
}

_HASH_FIELD = {
    "header": "hash_on_header",
    "cookie": "hash_on_cookie",
    "query_arg": "hash_on_query_arg",
    "uri_capture": "hash_on_uri_capture",
}
_FALLBACK_FIELD = {
    "header": "hash_fallback_header",
    "query_arg": "hash_fallback_query_arg",
    "uri_capture": "hash_fallback_uri_capture",
}


def _upstream_shorthand(data: dict[str, Any]) -> dict[str, Any]:
    """A non-none ``hash_on`` implies consistent-hashing; ``none`` implies round-robin."""
    if "hash_on" in data and "algorithm" not in data:
        data = dict(data)
        data["algorithm"] = "round-robin" if data["hash_on"] == "none" else "consistent-hashing"
    return data


def _upstream_checks(row: dict[str, Any]) -> dict[str, Any]:
    errors: dict[str, Any] = {}
    hash_on, fallback = row.get("hash_on"), row.get("hash_fallback")
    required = []
    if hash_on in _HASH_FIELD:
        required.append(("hash_on", _HASH_FIELD[hash_on]))
    if fallback in _FALLBACK_FIELD:
        required.append(("hash_fallback", _FALLBACK_FIELD[fallback]))
    for condition, key in required:
        if row.get(key) is None:
            errors[key] = "required field missing"
            errors.setdefault("@entity", []).append(
                f"failed conditional validation given value of field '{condition}'"
            )
    if hash_on in ("none", "cookie") and fallback not in (None, "none"):
        errors["hash_fallback"] = "expected one of: none"
        errors.setdefault("@entity", []).append(
            "failed conditional validation given value of field 'hash_on'"
        )
    if hash_on not in (None, "none") and hash_on == fallback and hash_on not in _HASH_FIELD:
        errors.setdefault("@entity", []).append(
            "values of these fields must be distinct: 'hash_on', 'hash_fallback'"
        )
    return errors


UPSTREAMS = EntitySchema(
    "upstreams",
    UPSTREAM_FIELDS,
    endpoint_key="name",
    unique=("name",),
    entity_checks=[_upstream_checks],
    shorthands=[_upstream_shorthand],
)

# -- targets ------------------------------------------------------------------------------

TARGET_FIELDS: dict[str, Field] = {
    **_common(ms=True),
    "upstream": foreign("upstreams", required=True, on_delete="cascade"),
    "target": string(required=True, checks=(v.check_target,)),
    "weight": integer(default=100, between=(0, 65535)),
    "tags": _tags(),
}

TARGETS = EntitySchema(
    "targets",
    TARGET_FIELDS,
    endpoint_key="target",
    cache_key=("upstream", "target"),
)

# -- consumers ----------------------------------------------------------------------------

CONSUMER_FIELDS: dict[str, Field] = {
    **_common(),
    "username": string(),
    "custom_id": string(),
    "tags": _tags(),
}


def _consumer_checks(row: dict[str, Any]) -> dict[str, Any]:
    if row.get("username") is None and row.get("custom_id") is None:
        return {
            "@entity": ["at least one of these fields must be non-empty: 'custom_id', 'username'"]
        }
    return {}


CONSUMERS = EntitySchema(
    "consumers",
    CONSUMER_FIELDS,
    endpoint_key="username",
    unique=("username", "custom_id"),
    entity_checks=[_consumer_checks],
)

# -- plugins ------------------------------------------------------------------------------

PLUGIN_FIELDS: dict[str, Field] = {
    **_common(),
    "name": string(required=True),
    "instance_name": _name(),
    "route": foreign("routes", on_delete="cascade"),
    "service": foreign("services", on_delete="cascade"),
    "consumer": foreign("consumers", on_delete="cascade"),
    "config": Field("record"),  # replaced per plugin, see plugins.py
    "protocols": string_set(
        string(one_of=PROTOCOLS), default=["grpc", "grpcs", "http", "https"], required=True
    ),
    "enabled": boolean(default=True, required=True),
    "tags": _tags(),
}

PLUGINS = EntitySchema(
    "plugins",
    PLUGIN_FIELDS,
    endpoint_key="instance_name",
    unique=("instance_name",),
    cache_key=("name", "route", "service", "consumer"),
)

ENTITIES: dict[str, EntitySchema] = {
    schema.name: schema
    for schema in (
        CERTIFICATES,
        CA_CERTIFICATES,
        SNIS,
        SERVICES,
        ROUTES,
        UPSTREAMS,
        TARGETS,
        CONSUMERS,
        PLUGINS,
        *CREDENTIALS,
    )
}

# Foreign keys: (child kind, field) pairs, used for nested endpoints and cascades.
FOREIGN_KEYS: list[tuple[str, str, str]] = [
    (kind, name, spec.reference)
    for kind, schema in ENTITIES.items()
    for name, spec in schema.fields.items()
    if spec.type == "foreign" and spec.reference in ENTITIES
]
