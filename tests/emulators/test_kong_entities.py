"""Kong emulator: entity schemas, defaults, validation messages and constraints."""

from __future__ import annotations

import uuid

import httpx


def test_service_has_every_field_with_kong_defaults(kong: httpx.Client) -> None:
    response = kong.post("/services", json={"name": "svc", "host": "example.com"})
    assert response.status_code == 201
    body = response.json()
    assert body["protocol"] == "http"
    assert body["port"] == 80
    assert body["retries"] == 5
    assert body["connect_timeout"] == body["read_timeout"] == body["write_timeout"] == 60000
    assert body["enabled"] is True
    for unset in (
        "path",
        "tags",
        "client_certificate",
        "tls_verify",
        "tls_verify_depth",
        "ca_certificates",
    ):
        assert unset in body and body[unset] is None
    assert isinstance(body["created_at"], int)
    uuid.UUID(body["id"])


def test_service_url_shorthand_expands_and_is_write_only(kong: httpx.Client) -> None:
    body = kong.post("/services", json={"name": "s", "url": "https://api.example.com/v1"}).json()
    assert (body["protocol"], body["host"], body["port"], body["path"]) == (
        "https",
        "api.example.com",
        443,
        "/v1",
    )
    assert "url" not in body


def test_invalid_url_gives_two_violations(kong: httpx.Client) -> None:
    response = kong.post("/services", json={"url": "invalid url"})
    assert response.status_code == 400
    body = response.json()
    assert body["fields"] == {"host": "required field missing", "path": "should start with: /"}
    assert body["message"] == (
        "2 schema violations (host: required field missing; path: should start with: /)"
    )


def test_schema_violation_body_is_exactly_kongs(kong: httpx.Client) -> None:
    response = kong.post("/services", json={"name": "x"})
    assert response.status_code == 400
    assert response.json() == {
        "code": 2,
        "name": "schema violation",
        "message": "schema violation (host: required field missing)",
        "fields": {"host": "required field missing"},
    }


def test_unknown_field_rejected(kong: httpx.Client) -> None:
    response = kong.post("/services", json={"host": "h", "colour": "red"})
    assert response.status_code == 400
    assert response.json()["fields"] == {"colour": "unknown field"}


def test_type_range_and_enum_messages(kong: httpx.Client) -> None:
    body = kong.post(
        "/services", json={"host": "h", "port": "eighty", "retries": 99999, "protocol": "ftp"}
    ).json()
    assert body["fields"] == {
        "port": "expected an integer",
        "retries": "value should be between 0 and 32767",
        "protocol": "expected one of: grpc, grpcs, http, https, tcp, tls, tls_passthrough, udp",
    }
    assert body["message"].startswith("3 schema violations (port: expected an integer; ")


def test_empty_string_and_bad_name(kong: httpx.Client) -> None:
    body = kong.post("/services", json={"host": "h", "name": "has space", "path": ""}).json()
    assert body["fields"]["name"] == (
        "invalid value 'has space': the only accepted ascii "
        "characters are alphanumerics or ., -, _, and ~"
    )
    assert body["fields"]["path"] == "length must be at least 1"


def test_host_with_port_rejected(kong: httpx.Client) -> None:
    body = kong.post("/services", json={"host": "example.com:80"}).json()
    assert body["fields"] == {"host": "must not have a port"}


def test_tags_deduplicated_and_validated(kong: httpx.Client) -> None:
    body = kong.post("/services", json={"host": "h", "tags": ["a", "a", "b c"]}).json()
    assert body["tags"] == ["a", "b c"]
    bad = kong.post("/services", json={"host": "h", "tags": ["a/b"]}).json()
    assert bad["fields"]["tags"] == [
        "invalid tag 'a/b': expected printable ascii (except `,` and `/`) or valid utf-8 sequences"
    ]
    assert bad["message"].startswith("schema violation (tags.1: invalid tag 'a/b'")


def test_unique_name_conflict_is_409(kong: httpx.Client) -> None:
    kong.post("/services", json={"name": "dup", "host": "h"})
    response = kong.post("/services", json={"name": "dup", "host": "h2"})
    assert response.status_code == 409
    assert response.json() == {
        "code": 5,
        "name": "unique constraint violation",
        "message": "UNIQUE violation detected on '{name=\"dup\"}'",
        "fields": {"name": "dup"},
    }


def test_primary_key_violation(kong: httpx.Client) -> None:
    entity_id = str(uuid.uuid4())
    kong.post("/services", json={"id": entity_id, "host": "h"})
    response = kong.post("/services", json={"id": entity_id, "host": "h"})
    assert response.status_code == 400
    assert response.json()["code"] == 3


def test_put_is_upsert_200_and_url_name_wins(kong: httpx.Client) -> None:
    created = kong.put("/services/by-put", json={"name": "other", "host": "h"})
    assert created.status_code == 200
    assert created.json()["name"] == "by-put"
    replaced = kong.put("/services/by-put", json={"host": "h2"})
    assert replaced.status_code == 200
    assert replaced.json()["id"] == created.json()["id"]
    assert replaced.json()["host"] == "h2"


def test_put_replaces_whole_entity(kong: httpx.Client) -> None:
    kong.put("/services/full", json={"host": "h", "retries": 1, "tags": ["t"]})
    body = kong.put("/services/full", json={"host": "h"}).json()
    assert body["retries"] == 5 and body["tags"] is None


def test_patch_merges_and_missing_is_404_code_6(kong: httpx.Client) -> None:
    kong.post("/services", json={"name": "p", "host": "h", "retries": 1})
    patched = kong.patch("/services/p", json={"port": 8080})
    assert patched.status_code == 200
    assert (patched.json()["port"], patched.json()["retries"]) == (8080, 1)
    missing = kong.patch("/services/nope", json={"port": 1})
    assert missing.status_code == 404
    assert missing.json() == {
        "code": 6,
        "name": "not found",
        "message": "could not find the entity with '{name=\"nope\"}'",
        "fields": {"name": "nope"},
    }
    missing_id = str(uuid.uuid4())
    by_id = kong.patch(f"/services/{missing_id}", json={"port": 1}).json()
    assert (
        by_id["message"] == f"could not find the entity with primary key '{{id=\"{missing_id}\"}}'"
    )


def test_get_missing_is_plain_not_found_and_delete_is_idempotent(kong: httpx.Client) -> None:
    response = kong.get("/services/ghost")
    assert response.status_code == 404
    assert response.json() == {"message": "Not found"}
    assert kong.delete("/services/ghost").status_code == 204
    assert kong.delete(f"/services/{uuid.uuid4()}").status_code == 204


def test_invalid_name_in_url_is_400_code_10(kong: httpx.Client) -> None:
    response = kong.get("/upstreams/1.2.3.4")
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == 10
    assert body["message"] == "Invalid name ('1.2.3.4'); no ip addresses allowed"


def test_service_with_routes_cannot_be_deleted(kong: httpx.Client) -> None:
    kong.post("/services", json={"name": "s", "host": "h"})
    kong.post("/services/s/routes", json={"name": "r", "paths": ["/s"]})
    response = kong.delete("/services/s")
    assert response.status_code == 400
    assert response.json() == {
        "code": 4,
        "name": "foreign key violation",
        "message": "an existing 'routes' entity references this 'services' entity",
        "fields": {"@referenced_by": "routes"},
    }
    assert kong.delete("/routes/r").status_code == 204
    assert kong.delete("/services/s").status_code == 204
    assert kong.get("/services/s").status_code == 404


def test_route_defaults_and_service_reference(kong: httpx.Client) -> None:
    service = kong.post("/services", json={"name": "s", "host": "h"}).json()
    route = kong.post("/routes", json={"paths": ["/a"], "service": {"name": "s"}}).json()
    assert route["service"] == {"id": service["id"]}
    assert route["protocols"] == ["http", "https"]
    assert route["strip_path"] is True and route["preserve_host"] is False
    assert route["https_redirect_status_code"] == 426
    assert route["path_handling"] == "v0"
    assert route["request_buffering"] is True and route["response_buffering"] is True


def test_route_without_service_is_valid(kong: httpx.Client) -> None:
    assert kong.post("/routes", json={"hosts": ["a.example"]}).status_code == 201


def test_route_unknown_service_name_is_code_13(kong: httpx.Client) -> None:
    body = kong.post("/routes", json={"paths": ["/a"], "service": {"name": "nope"}}).json()
    assert body["code"] == 13
    # kong/db/errors.lua foreign_keys_unresolved: the field holds the message.
    message = (
        "the foreign key cannot be resolved with '{name=\"nope\"}' "
        "for an existing 'services' entity"
    )
    assert body["fields"] == {"service": {"name": message}}
    assert body["message"] == f"foreign key unresolved (service.name: {message})"


def test_route_unknown_service_id_is_code_4(kong: httpx.Client) -> None:
    missing = str(uuid.uuid4())
    body = kong.post("/routes", json={"paths": ["/a"], "service": {"id": missing}}).json()
    assert body["code"] == 4
    assert body["message"] == (
        f"the foreign key '{{id=\"{missing}\"}}' does not reference an existing 'services' entity."
    )


def test_route_needs_one_matching_attribute(kong: httpx.Client) -> None:
    body = kong.post("/routes", json={"protocols": ["https"]}).json()
    assert body["fields"] == {
        "@entity": [
            "must set one of 'methods', 'hosts', 'headers', 'paths', 'snis' when 'protocols' "
            "is 'https'"
        ]
    }


def test_route_paths_kong3_rules(kong: httpx.Client) -> None:
    assert kong.post("/routes", json={"paths": ["~/users/\\d+$"]}).status_code == 201
    assert kong.post("/routes", json={"paths": ["/users/\\d+"]}).status_code == 201
    body = kong.post("/routes", json={"paths": ["users"]}).json()
    assert body["fields"]["paths"] == ["should start with: / (fixed path) or ~/ (regex path)"]
    body = kong.post("/routes", json={"paths": ["/a/../b"]}).json()
    assert body["fields"]["paths"] == ["non-normalized path, consider use '/b' instead"]
    body = kong.post("/routes", json={"paths": ["~/(unclosed"]}).json()
    assert body["fields"]["paths"][0].startswith("invalid regex: '/(unclosed'")


def test_route_methods_uppercase_and_set(kong: httpx.Client) -> None:
    body = kong.post("/routes", json={"methods": ["GET", "GET", "POST"]}).json()
    assert body["methods"] == ["GET", "POST"]
    bad = kong.post("/routes", json={"methods": ["get"]}).json()
    assert bad["code"] == 2 and "methods" in bad["fields"]


def test_route_names_are_global(kong: httpx.Client) -> None:
    kong.post("/services", json={"name": "a", "host": "h"})
    kong.post("/services", json={"name": "b", "host": "h"})
    assert (
        kong.post("/services/a/routes", json={"name": "default", "paths": ["/a"]}).status_code
        == 201
    )
    assert (
        kong.post("/services/b/routes", json={"name": "default", "paths": ["/b"]}).status_code
        == 409
    )


def test_upstream_defaults_and_slots_range(kong: httpx.Client) -> None:
    body = kong.post("/upstreams", json={"name": "svc.service.consul"}).json()
    assert body["slots"] == 10000 and body["algorithm"] == "round-robin"
    assert body["hash_on"] == body["hash_fallback"] == "none"
    active = body["healthchecks"]["active"]
    assert active["healthy"]["http_statuses"] == [200, 302]
    assert active["unhealthy"]["http_statuses"] == [429, 404, 500, 501, 502, 503, 504, 505]
    assert body["healthchecks"]["passive"]["unhealthy"]["http_statuses"] == [429, 500, 503]
    bad = kong.post("/upstreams", json={"name": "x.consul", "slots": 5}).json()
    assert bad["fields"] == {"slots": "value should be between 10 and 65536"}


def test_upstream_name_rules(kong: httpx.Client) -> None:
    assert kong.post("/upstreams", json={"name": "10.0.0.1"}).json()["fields"] == {
        "name": "Invalid name ('10.0.0.1'); no ip addresses allowed"
    }
    assert kong.post("/upstreams", json={"name": "host:80"}).json()["fields"] == {
        "name": "Invalid name ('host:80'); no port allowed"
    }


def test_upstream_hash_on_switches_algorithm(kong: httpx.Client) -> None:
    body = kong.post("/upstreams", json={"name": "h.consul", "hash_on": "ip"}).json()
    assert body["algorithm"] == "consistent-hashing"
    bad = kong.post("/upstreams", json={"name": "h2.consul", "hash_on": "header"}).json()
    assert bad["fields"]["hash_on_header"] == "required field missing"


def test_deleting_upstream_cascades_targets(kong: httpx.Client) -> None:
    kong.post("/upstreams", json={"name": "u.consul"})
    kong.post("/upstreams/u.consul/targets", json={"target": "10.0.0.1:80"})
    assert kong.delete("/upstreams/u.consul").status_code == 204
    kong.post("/upstreams", json={"name": "u.consul"})
    assert kong.get("/upstreams/u.consul/targets").json()["data"] == []


def test_plugins_defaults_unknown_and_cascade(kong: httpx.Client) -> None:
    kong.post("/services", json={"name": "s", "host": "h"})
    plugin = kong.post("/services/s/plugins", json={"name": "key-auth"}).json()
    assert plugin["config"]["key_names"] == ["apikey"]
    assert plugin["protocols"] == ["grpc", "grpcs", "http", "https"]
    assert plugin["enabled"] is True
    duplicate = kong.post("/services/s/plugins", json={"name": "key-auth"})
    assert duplicate.status_code == 409
    unknown = kong.post("/plugins", json={"name": "nope"}).json()
    assert unknown["fields"] == {
        "name": "plugin 'nope' not enabled; add it to the 'plugins' configuration property"
    }
    limited = kong.post("/plugins", json={"name": "rate-limiting", "config": {"minute": 5}})
    assert limited.status_code == 201
    assert limited.json()["config"]["policy"] == "local"
    kong.delete("/services/s")
    assert kong.get(f"/plugins/{plugin['id']}").status_code == 404


def test_consumer_needs_username_or_custom_id(kong: httpx.Client) -> None:
    body = kong.post("/consumers", json={}).json()
    assert body["fields"] == {
        "@entity": ["at least one of these fields must be non-empty: 'custom_id', 'username'"]
    }
    assert kong.post("/consumers", json={"username": "alice"}).status_code == 201
    assert kong.get("/consumers/alice").json()["username"] == "alice"
