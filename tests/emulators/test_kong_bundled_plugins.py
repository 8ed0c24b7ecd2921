"""Kong emulator: the bundled plugins (``plugins = bundled``) with their real config schemas.

Expected values below were read from Kong 3.9.1's sources (kong/constants.lua,
kong/plugins/<name>/schema.lua and handler.lua), not from the emulator's dump.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

# kong/constants.lua at 3.9.1: the 45 plugins of BUNDLED_PLUGINS.
BUNDLED = {
    "jwt", "acl", "correlation-id", "cors", "oauth2", "tcp-log", "udp-log", "file-log",
    "http-log", "key-auth", "hmac-auth", "basic-auth", "ip-restriction",
    "request-transformer", "response-transformer", "request-size-limiting", "rate-limiting",
    "response-ratelimiting", "syslog", "loggly", "datadog", "ldap-auth", "statsd",
    "bot-detection", "aws-lambda", "request-termination", "prometheus", "proxy-cache",
    "session", "acme", "grpc-gateway", "grpc-web", "pre-function", "post-function",
    "azure-functions", "zipkin", "opentelemetry", "ai-proxy", "ai-prompt-decorator",
    "ai-prompt-template", "ai-prompt-guard", "ai-request-transformer",
    "ai-response-transformer", "standard-webhooks", "redirect",
}  # fmt: skip


def _create(kong: httpx.Client, body: dict[str, Any]) -> httpx.Response:
    return kong.post("/plugins", json=body)


def test_root_lists_every_bundled_plugin_with_version_and_priority(kong: httpx.Client) -> None:
    available = kong.get("/").json()["plugins"]["available_on_server"]
    assert set(available) == BUNDLED
    assert available["basic-auth"] == {"version": "3.9.1", "priority": 1100}
    assert available["key-auth"] == {"version": "3.9.1", "priority": 1250}
    assert available["pre-function"]["priority"] == 1000000
    assert available["post-function"]["priority"] == -1000


def test_plugins_enabled_lists_the_bundled_set(kong: httpx.Client) -> None:
    assert set(kong.get("/plugins/enabled").json()["enabled_plugins"]) == BUNDLED


def test_basic_auth_gets_its_config_defaults(kong: httpx.Client) -> None:
    response = _create(kong, {"name": "basic-auth"})
    assert response.status_code == 201, response.text
    assert response.json()["config"] == {
        "anonymous": None,
        "hide_credentials": False,
        "realm": "service",
    }


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"name": "key-auth"}, {"key_names": ["apikey"], "key_in_body": False, "realm": None}),
        ({"name": "jwt"}, {"uri_param_names": ["jwt"], "key_claim_name": "iss"}),
        ({"name": "acl", "config": {"allow": ["a"]}}, {"deny": None, "hide_groups_header": False}),
        ({"name": "hmac-auth"}, {"clock_skew": 300, "enforce_headers": []}),
        (
            {"name": "oauth2", "config": {"enable_client_credentials": True}},
            {"token_expiration": 7200, "refresh_token_ttl": 1209600, "pkce": "lax"},
        ),
        (
            {"name": "rate-limiting", "config": {"minute": 5}},
            {"policy": "local", "limit_by": "consumer", "sync_rate": -1, "error_code": 429},
        ),
        (
            {"name": "request-size-limiting"},
            {"allowed_payload_size": 128, "size_unit": "megabytes"},
        ),
        ({"name": "ip-restriction", "config": {"deny": ["10.0.0.0/8"]}}, {"status": None}),
        ({"name": "cors"}, {"credentials": False, "max_age": None, "origins": None}),
        ({"name": "request-transformer"}, {"http_method": None}),
        ({"name": "response-transformer"}, {"add": {"headers": [], "json": [], "json_types": []}}),
        ({"name": "correlation-id"}, {"header_name": "Kong-Request-ID"}),
        (
            {"name": "proxy-cache", "config": {"strategy": "memory"}},
            {"response_code": [200, 301, 404], "cache_ttl": 300},
        ),
        ({"name": "prometheus"}, {"per_consumer": False, "status_code_metrics": False}),
        ({"name": "bot-detection"}, {"allow": [], "deny": []}),
    ],
)
def test_commonly_used_plugins_have_kongs_defaults(
    kong: httpx.Client, body: dict[str, Any], expected: dict[str, Any]
) -> None:
    response = _create(kong, body)
    assert response.status_code == 201, response.text
    config = response.json()["config"]
    assert {key: config[key] for key in expected} == expected


def test_nested_records_are_filled_with_defaults(kong: httpx.Client) -> None:
    config = _create(kong, {"name": "rate-limiting", "config": {"hour": 1}}).json()["config"]
    assert config["redis"]["port"] == 6379 and config["redis"]["timeout"] == 2000
    assert config["redis"]["host"] is None


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        (
            {"name": "rate-limiting"},
            {
                "@entity": [
                    "at least one of these fields must be non-empty: 'config.second', "
                    "'config.minute', 'config.hour', 'config.day', 'config.month', 'config.year'"
                ]
            },
        ),
        (
            {"name": "rate-limiting", "config": {"minute": 5, "limit_by": "header"}},
            {
                "config": {"header_name": "required field missing"},
                "@entity": ["failed conditional validation given value of field 'config.limit_by'"],
            },
        ),
        (
            {"name": "rate-limiting", "config": {"minute": 0}},
            {"config": {"minute": "value must be greater than 0"}},
        ),
        (
            {"name": "rate-limiting", "config": {"minute": 5, "policy": "nope"}},
            {"config": {"policy": "expected one of: local, cluster, redis"}},
        ),
        (
            {"name": "ip-restriction", "config": {"allow": ["1.2.3.4/33"]}},
            {"config": {"allow": ["invalid ip or cidr range: '1.2.3.4/33'"]}},
        ),
        (
            {"name": "acl", "config": {"allow": ["a"], "deny": ["b"]}},
            {
                "@entity": [
                    "exactly one of these fields must be non-empty: 'config.allow', 'config.deny'"
                ]
            },
        ),
        (
            {"name": "key-auth", "config": {"key_names": ["bad name"]}},
            {
                "config": {
                    "key_names": [
                        "bad header name 'bad name', allowed characters are A-Z, a-z, 0-9, "
                        "'_', and '-'"
                    ]
                }
            },
        ),
        (
            {"name": "cors", "config": {"max_age": "x"}},
            {"config": {"max_age": "expected a number"}},
        ),
        (
            {"name": "request-size-limiting", "config": {"size_unit": "gigabytes"}},
            {"config": {"size_unit": "expected one of: megabytes, kilobytes, bytes"}},
        ),
        (
            {"name": "proxy-cache"},
            {"config": {"strategy": "required field missing"}},
        ),
        (
            {"name": "basic-auth", "config": {"nope": True}},
            {"config": {"nope": "unknown field"}},
        ),
    ],
)
def test_validation_messages_are_kongs(
    kong: httpx.Client, body: dict[str, Any], fields: dict[str, Any]
) -> None:
    response = _create(kong, body)
    assert response.status_code == 400, response.text
    assert response.json()["code"] == 2
    assert response.json()["fields"] == fields


def test_auth_plugins_cannot_be_scoped_to_a_consumer(kong: httpx.Client) -> None:
    consumer = kong.post("/consumers", json={"username": "ann"}).json()
    response = kong.post(f"/consumers/{consumer['id']}/plugins", json={"name": "key-auth"})
    assert response.status_code == 400
    assert response.json()["fields"] == {"consumer": "value must be null"}


def test_deprecated_shorthand_writes_the_field_that_replaced_it(kong: httpx.Client) -> None:
    body = {"name": "rate-limiting", "config": {"minute": 5, "redis_host": "cache.local"}}
    config = _create(kong, body).json()["config"]
    assert config["redis"]["host"] == "cache.local"
    assert "redis_host" not in config


def test_form_encoded_plugin_config_is_typed_by_the_schema(kong: httpx.Client) -> None:
    response = kong.post(
        "/plugins",
        data={"name": "key-auth", "config.key_names": "apikey", "config.hide_credentials": "true"},
    )
    assert response.status_code == 201, response.text
    config = response.json()["config"]
    assert config["key_names"] == ["apikey"] and config["hide_credentials"] is True


@pytest.mark.parametrize(
    "body",
    [
        {"name": "zipkin"},
        {"name": "grpc-web"},
        {"name": "session"},
        {"name": "request-termination"},
        {"name": "http-log", "config": {"http_endpoint": "http://log.example/"}},
        {"name": "pre-function", "config": {"access": ["return"]}},
    ],
)
def test_the_rest_of_the_bundled_list_is_enabled(kong: httpx.Client, body: dict[str, Any]) -> None:
    response = _create(kong, body)
    assert response.status_code == 201, response.text
    assert response.json()["enabled"] is True


def test_unknown_plugin_is_not_enabled(kong: httpx.Client) -> None:
    response = _create(kong, {"name": "nope"})
    assert response.status_code == 400
    assert response.json()["fields"]["name"] == (
        "plugin 'nope' not enabled; add it to the 'plugins' configuration property"
    )


def test_schemas_endpoints(kong: httpx.Client) -> None:
    schema = kong.get("/schemas/plugins/basic-auth").json()
    assert set(schema) == {"entity_checks", "fields"}  # api_helpers.schema_to_jsonable
    names = [next(iter(item)) for item in schema["fields"]]
    assert names == ["consumer", "protocols", "config"]
    checks = kong.get("/schemas/plugins/acl").json()["entity_checks"]
    assert {"only_one_of": ["config.allow", "config.deny"]} in checks
    config = kong.get("/plugins/schema/basic-auth").json()
    assert config["type"] == "record" and config["required"] is True
    realm = next(item["realm"] for item in config["fields"] if "realm" in item)
    assert realm["default"] == "service" and realm["type"] == "string"
    assert kong.get("/schemas/plugins/nope").json() == {"message": "No plugin named 'nope'"}
    services = kong.get("/schemas/services").json()
    fields = {name: spec for item in services["fields"] for name, spec in item.items()}
    assert fields["host"]["required"] is True and fields["port"]["default"] == 80
    assert fields["name"]["unique"] is True and fields["created_at"]["timestamp"] is True
    assert kong.get("/schemas/nope").status_code == 404


def test_schemas_validate_answers_without_writing(kong: httpx.Client) -> None:
    body = {"name": "rate-limiting", "config": {"day": 1}}
    ok = kong.post("/schemas/plugins/validate", json=body)
    assert ok.status_code == 200
    assert ok.json() == {"message": "schema validation successful"}
    bad = kong.post("/schemas/plugins/validate", json={"name": "rate-limiting"})
    assert bad.status_code == 400 and bad.json()["code"] == 2
    assert kong.get("/plugins").json()["data"] == []
    route = kong.post("/schemas/routes/validate", json={"protocols": ["http"]})
    assert route.status_code == 400


def test_form_encoded_patch_without_name_is_typed_by_the_stored_plugin(
    kong: httpx.Client,
) -> None:
    plugin = _create(kong, {"name": "rate-limiting", "config": {"minute": 5}}).json()
    response = kong.patch(f"/plugins/{plugin['id']}", data={"config.minute": "7"})
    assert response.status_code == 200, response.text
    assert response.json()["config"]["minute"] == 7
