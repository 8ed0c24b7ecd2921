"""Kong emulator: foreign keys given as objects, for every foreign key and every body kind.

Kong (``resolve_foreign`` in kong/db/dao/init.lua, ``validate_primary_key(value, true)``
in kong/db/schema/init.lua) reads only the primary key of a foreign object, else one
of the referenced entity's unique or endpoint-key fields, and ignores the rest.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.emulators.kong_pem import CERT_A, KEY_A


def _service(kong: httpx.Client, name: str = "svc") -> dict[str, Any]:
    response = kong.post("/services", json={"name": name, "host": "a.example"})
    assert response.status_code == 201
    body: dict[str, Any] = response.json()
    return body


def _consumer(kong: httpx.Client) -> dict[str, Any]:
    body: dict[str, Any] = kong.post("/consumers", json={"username": "ann"}).json()
    return body


def test_route_with_the_whole_service_object_as_get_returned_it(kong: httpx.Client) -> None:
    service = kong.get(f"/services/{_service(kong)['id']}").json()
    response = kong.post("/routes", json={"paths": ["/a"], "service": service})
    assert response.status_code == 201, response.text
    assert response.json()["service"] == {"id": service["id"]}


def test_route_with_name_and_other_fields_resolves_by_name(kong: httpx.Client) -> None:
    service = _service(kong)
    body = {"paths": ["/a"], "service": {"name": "svc", "host": "ignored!", "port": "x"}}
    response = kong.post("/routes", json=body)
    assert response.status_code == 201, response.text
    assert response.json()["service"] == {"id": service["id"]}


@pytest.mark.parametrize(
    ("reference", "fields"),
    [
        ({}, {"service": {"id": "missing primary key"}}),
        ({"foo": 1}, {"service": {"foo": "unknown field"}}),
        ({"id": "nope"}, {"service": {"id": "expected a valid UUID"}}),
        ({"port": "x"}, {"service": {"port": "expected an integer"}}),
    ],
)
def test_reference_without_usable_key_is_a_schema_violation(
    kong: httpx.Client, reference: dict[str, Any], fields: dict[str, Any]
) -> None:
    response = kong.post("/routes", json={"paths": ["/a"], "service": reference})
    assert response.status_code == 400
    assert response.json()["code"] == 2
    assert response.json()["fields"] == fields


def test_unknown_consumer_username_and_custom_id_are_both_reported(kong: httpx.Client) -> None:
    consumer = {"username": "x", "custom_id": "y"}
    body = {"name": "rate-limiting", "config": {"minute": 5}, "consumer": consumer}
    response = kong.post("/plugins", json=body)
    assert response.status_code == 400
    error = response.json()
    assert error["code"] == 13
    assert set(error["fields"]["consumer"]) == {"username", "custom_id"}
    assert error["message"].startswith("2 foreign keys unresolved (consumer.custom_id: ")


def test_plugin_consumer_resolved_by_custom_id(kong: httpx.Client) -> None:
    consumer = kong.post("/consumers", json={"custom_id": "c-1"}).json()
    body = {"name": "rate-limiting", "config": {"minute": 5}, "consumer": {"custom_id": "c-1"}}
    response = kong.post("/plugins", json=body)
    assert response.status_code == 201, response.text
    assert response.json()["consumer"] == {"id": consumer["id"]}


def test_form_encoded_and_multipart_foreign_keys(kong: httpx.Client) -> None:
    service = _service(kong)
    form = kong.post("/routes", data={"paths[]": "/f", "service.id": service["id"]})
    assert form.status_code == 201, form.text
    assert form.json()["service"] == {"id": service["id"]}
    by_name = kong.post("/routes", data={"paths[]": "/n", "service.name": "svc"})
    assert by_name.json()["service"] == {"id": service["id"]}
    multipart = kong.post(
        "/routes",
        data={"paths[]": "/m", "service.id": service["id"], "service.host": "x"},
        files={"unused": ("f.txt", b"x")},
    )
    assert multipart.status_code == 201, multipart.text
    assert multipart.json()["service"] == {"id": service["id"]}


@pytest.mark.parametrize("method", ["PUT", "PATCH"])
def test_put_and_patch_take_objects_and_replace_the_reference(
    kong: httpx.Client, method: str
) -> None:
    first, second = _service(kong, "one"), _service(kong, "two")
    route = kong.post("/routes", json={"name": "r", "paths": ["/"], "service": first}).json()
    body = {"name": "r", "paths": ["/"], "service": kong.get("/services/two").json()}
    response = kong.request(method, f"/routes/{route['id']}", json=body)
    assert response.status_code == 200, response.text
    assert response.json()["service"] == {"id": second["id"]}
    # PATCH by name must not merge into the stored {"id": first}.
    patched = kong.patch("/routes/r", json={"service": {"name": "one"}})
    assert patched.json()["service"] == {"id": first["id"]}


def _plugin_on(field: str, parent: dict[str, Any]) -> dict[str, Any]:
    return {"name": "correlation-id", field: parent}


Maker = Callable[[httpx.Client], tuple[str, dict[str, Any], dict[str, Any]]]


def _route_service(kong: httpx.Client) -> tuple[str, dict[str, Any], dict[str, Any]]:
    service = _service(kong)
    return "/routes", {"paths": ["/"], "service": service}, service


def _plugin_route(kong: httpx.Client) -> tuple[str, dict[str, Any], dict[str, Any]]:
    route = kong.post("/routes", json={"paths": ["/"]}).json()
    return "/plugins", _plugin_on("route", route), route


def _plugin_service(kong: httpx.Client) -> tuple[str, dict[str, Any], dict[str, Any]]:
    service = _service(kong)
    return "/plugins", _plugin_on("service", service), service


def _plugin_consumer(kong: httpx.Client) -> tuple[str, dict[str, Any], dict[str, Any]]:
    consumer = _consumer(kong)
    return "/plugins", _plugin_on("consumer", consumer), consumer


def _target_upstream(kong: httpx.Client) -> tuple[str, dict[str, Any], dict[str, Any]]:
    upstream = kong.post("/upstreams", json={"name": "up"}).json()
    return "/upstreams/up/targets", {"target": "10.0.0.1:80", "upstream": upstream}, upstream


def _certificate(kong: httpx.Client) -> dict[str, Any]:
    body: dict[str, Any] = kong.post("/certificates", json={"cert": CERT_A, "key": KEY_A}).json()
    return body


def _sni_certificate(kong: httpx.Client) -> tuple[str, dict[str, Any], dict[str, Any]]:
    certificate = _certificate(kong)
    return "/snis", {"name": "a.example", "certificate": certificate}, certificate


def _service_certificate(kong: httpx.Client) -> tuple[str, dict[str, Any], dict[str, Any]]:
    certificate = _certificate(kong)
    body = {"url": "https://a.example", "client_certificate": certificate}
    return "/services", body, certificate


def _upstream_certificate(kong: httpx.Client) -> tuple[str, dict[str, Any], dict[str, Any]]:
    certificate = _certificate(kong)
    return "/upstreams", {"name": "u", "client_certificate": certificate}, certificate


def _credential(path: str, body: dict[str, Any]) -> Maker:
    def make(kong: httpx.Client) -> tuple[str, dict[str, Any], dict[str, Any]]:
        consumer = _consumer(kong)
        return path, {**body, "consumer": consumer}, consumer

    return make


@pytest.mark.parametrize(
    "make",
    [
        _route_service,
        _plugin_route,
        _plugin_service,
        _plugin_consumer,
        _target_upstream,
        _sni_certificate,
        _service_certificate,
        _upstream_certificate,
        _credential("/key-auths", {}),
        _credential("/basic-auths", {"username": "u", "password": "p"}),
        _credential("/jwts", {}),
        _credential("/hmac-auths", {"username": "u"}),
        _credential("/acls", {"group": "g"}),
        _credential("/oauth2", {"name": "app"}),
    ],
)
def test_every_foreign_key_takes_the_whole_object(kong: httpx.Client, make: Maker) -> None:
    path, body, parent = make(kong)
    field = next(k for k, value in body.items() if value is parent)
    response = kong.post(path, json=body)
    assert response.status_code == 201, response.text
    assert response.json()[field] == {"id": parent["id"]}


def test_dbless_config_reference_objects_use_their_id(kong_dbless: httpx.Client) -> None:
    service_id = str(uuid.uuid4())
    config = {
        "_format_version": "3.0",
        "services": [{"id": service_id, "name": "s", "host": "a.example"}],
        "routes": [{"name": "r", "paths": ["/"], "service": {"id": service_id, "name": "s"}}],
    }
    response = kong_dbless.post("/config", json=config)
    assert response.status_code == 201, response.text
    assert kong_dbless.get("/routes/r").json()["service"] == {"id": service_id}


@pytest.mark.parametrize(
    ("reference", "shown"),
    [("nope", "nope"), ({"name": "s"}, '{"name":"s"}'), ({"id": str(uuid.UUID(int=7))}, None)],
)
def test_dbless_unknown_reference_is_reported_where_kong_files_it(
    kong_dbless: httpx.Client, reference: Any, shown: str | None
) -> None:
    """validate_references: an object counts by its ``id`` only; errors go by route name."""
    config = {
        "_format_version": "3.0",
        "services": [{"name": "s", "host": "a.example"}],
        "routes": [{"name": "r", "paths": ["/"], "service": reference}],
    }
    response = kong_dbless.post("/config", json=config)
    assert response.status_code == 400
    shown = shown or f'{{"id":"{reference["id"]}"}}'
    message = f"invalid reference 'service: {shown}' (no such entry in 'services')"
    assert response.json()["fields"] == {"routes": {"r": [message]}}
