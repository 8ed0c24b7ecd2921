"""Kong emulator in DB-less mode: refused writes and ``/config``."""

from __future__ import annotations

import httpx
import pytest
import yaml

CONFIG = {
    "_format_version": "3.0",
    "services": [
        {
            "name": "svc",
            "host": "svc.service.consul",
            "routes": [{"name": "svc-route", "paths": ["/svc"]}],
            "plugins": [{"name": "key-auth"}],
        }
    ],
    "upstreams": [
        {"name": "svc.service.consul", "targets": [{"target": "10.0.0.1"}, {"target": "b:81"}]}
    ],
}


def test_root_reports_database_off(kong_dbless: httpx.Client) -> None:
    assert kong_dbless.get("/").json()["configuration"]["database"] == "off"
    status = kong_dbless.get("/status").json()
    assert "database" not in status and "configuration_hash" in status


@pytest.mark.parametrize(
    ("method", "path", "message"),
    [
        ("POST", "/services", "cannot create 'services' entities when not using a database"),
        (
            "PUT",
            "/services/x",
            "cannot create or update 'services' entities by 'name' when not using a database",
        ),
    ],
)
def test_writes_refused_with_405_code_12(
    kong_dbless: httpx.Client, method: str, path: str, message: str
) -> None:
    response = kong_dbless.request(method, path, json={"host": "h"})
    assert response.status_code == 405
    assert response.json() == {"code": 12, "name": "operation unsupported", "message": message}


def test_validation_runs_before_refusal(kong_dbless: httpx.Client) -> None:
    response = kong_dbless.post("/services", json={"name": "x"})
    assert response.status_code == 400 and response.json()["code"] == 2


def test_patch_missing_404_delete_missing_204(kong_dbless: httpx.Client) -> None:
    assert kong_dbless.patch("/services/none", json={"port": 1}).status_code == 404
    assert kong_dbless.delete("/services/none").status_code == 204


def test_post_config_flattens_with_stable_ids(kong_dbless: httpx.Client) -> None:
    response = kong_dbless.post("/config", json=CONFIG)
    assert response.status_code == 201
    body = response.json()
    assert set(body) == {"services", "routes", "plugins", "upstreams", "targets"}
    (service,) = body["services"].values()
    (route,) = body["routes"].values()
    assert route["service"] == {"id": service["id"]}
    targets = sorted(t["target"] for t in body["targets"].values())
    assert targets == ["10.0.0.1:8000", "b:81"]
    again = kong_dbless.post("/config", json=CONFIG).json()
    assert set(again["services"]) == set(body["services"])
    assert kong_dbless.get("/services/svc").json()["id"] == service["id"]
    assert kong_dbless.get("/upstreams/svc.service.consul/targets").json()["data"]
    # writes are still refused once configured
    assert kong_dbless.patch("/services/svc", json={"port": 81}).status_code == 405
    assert kong_dbless.delete("/services/svc").status_code == 405


def test_config_replaces_everything(kong_dbless: httpx.Client) -> None:
    kong_dbless.post("/config", json=CONFIG)
    kong_dbless.post("/config", json={"_format_version": "3.0"})
    assert kong_dbless.get("/services").json()["data"] == []


def test_check_hash_answers_304_for_unchanged_text(kong_dbless: httpx.Client) -> None:
    text = yaml.safe_dump(CONFIG)
    first = kong_dbless.post("/config?check_hash=1", json={"config": text})
    assert first.status_code == 201
    second = kong_dbless.post("/config?check_hash=1", json={"config": text})
    assert second.status_code == 304
    raw = kong_dbless.post(
        "/config?check_hash=1", content=text.encode(), headers={"content-type": "application/yaml"}
    )
    assert raw.status_code == 304
    assert kong_dbless.get("/status").json()["configuration_hash"] != "0" * 32


def test_invalid_config_is_code_14(kong_dbless: httpx.Client) -> None:
    response = kong_dbless.post(
        "/config", json={"_format_version": "3.0", "services": [{"name": "x"}]}
    )
    assert response.status_code == 400
    assert response.json() == {
        "code": 14,
        "name": "invalid declarative configuration",
        "message": 'declarative config is invalid: {services={{host="required field missing"}}}',
        "fields": {"services": [{"host": "required field missing"}]},
    }


def test_flatten_errors(kong_dbless: httpx.Client) -> None:
    response = kong_dbless.post(
        "/config?flatten_errors=1",
        json={"_format_version": "3.0", "services": [{"name": "x", "tags": ["t"]}]},
    )
    (flat,) = response.json()["flattened_errors"]
    assert flat["entity_type"] == "service" and flat["entity_name"] == "x"
    assert flat["entity_tags"] == ["t"]
    assert flat["errors"] == [
        {"type": "field", "field": "host", "message": "required field missing"}
    ]


def test_duplicate_names_in_config(kong_dbless: httpx.Client) -> None:
    body = kong_dbless.post(
        "/config",
        json={
            "_format_version": "3.0",
            "services": [{"name": "a", "host": "h"}, {"name": "a", "host": "h"}],
        },
    ).json()
    assert body["fields"]["services"][1] == (
        "uniqueness violation: 'services' entity with name set to 'a' already declared"
    )


def test_old_format_migrates_regex_paths(kong_dbless: httpx.Client) -> None:
    body = kong_dbless.post(
        "/config",
        json={
            "_format_version": "2.1",
            "routes": [{"name": "r", "paths": ["/users/\\d+", "/plain"]}],
        },
    ).json()
    (route,) = body["routes"].values()
    assert route["paths"] == ["~/users/\\d+", "/plain"]


def test_missing_config_and_bad_version(kong_dbless: httpx.Client) -> None:
    assert kong_dbless.post("/config", json={}).json() == {
        "message": "expected a declarative configuration"
    }
    bad = kong_dbless.post("/config", json={"_format_version": "9.9"}).json()
    assert bad["code"] == 14


def test_get_config_exports_yaml(kong_dbless: httpx.Client) -> None:
    kong_dbless.post("/config", json=CONFIG)
    exported = yaml.safe_load(kong_dbless.get("/config").json()["config"])
    assert exported["_format_version"] == "3.0"
    assert [s["name"] for s in exported["services"]] == ["svc"]


def test_config_endpoint_refused_in_db_mode(kong: httpx.Client) -> None:
    response = kong.post("/config", json=CONFIG)
    assert response.status_code == 400
    assert response.json() == {
        "message": "this endpoint is only available when Kong is configured to not use a database"
    }
