"""Kong emulator: Kong 3.x target rules and health endpoints."""

from __future__ import annotations

import time

import httpx
import pytest

UP = "svc.service.consul"


@pytest.fixture
def upstream(kong: httpx.Client) -> dict[str, object]:
    body: dict[str, object] = kong.post("/upstreams", json={"name": UP}).json()
    return body


def test_target_normalised_with_default_port(kong: httpx.Client, upstream: dict) -> None:
    body = kong.post(f"/upstreams/{UP}/targets", json={"target": "10.0.0.1"}).json()
    assert body["target"] == "10.0.0.1:8000"
    assert body["weight"] == 100
    assert body["upstream"] == {"id": upstream["id"]}
    # auto_timestamp_ms: seconds, to the millisecond (ngx.now()), like the seconds of others
    assert isinstance(body["created_at"], float)
    assert abs(body["created_at"] - time.time()) < 60
    assert round(body["created_at"], 3) == body["created_at"]


def test_ipv6_target_expanded_and_bracketed(kong: httpx.Client, upstream: dict) -> None:
    body = kong.post(f"/upstreams/{UP}/targets", json={"target": "[::1]:8080"}).json()
    assert body["target"] == "[0000:0000:0000:0000:0000:0000:0000:0001]:8080"


def test_invalid_target_and_weight(kong: httpx.Client, upstream: dict) -> None:
    bad = kong.post(f"/upstreams/{UP}/targets", json={"target": "bad host!"}).json()
    assert bad["fields"] == {
        "target": "Invalid target ('bad host!'); not a valid hostname or ip address"
    }
    heavy = kong.post(f"/upstreams/{UP}/targets", json={"target": "a:1", "weight": 70000})
    assert heavy.json()["fields"] == {"weight": "value should be between 0 and 65535"}


def test_duplicate_post_is_409(kong: httpx.Client, upstream: dict) -> None:
    kong.post(f"/upstreams/{UP}/targets", json={"target": "10.0.0.1:80"})
    again = kong.post(f"/upstreams/{UP}/targets", json={"target": "10.0.0.1:80", "weight": 5})
    assert again.status_code == 409
    assert again.json()["code"] == 5
    assert again.json()["fields"] == {"upstream": {"id": upstream["id"]}, "target": "10.0.0.1:80"}


def test_put_and_patch_update_only(kong: httpx.Client, upstream: dict) -> None:
    assert kong.put(f"/upstreams/{UP}/targets/10.0.0.9:80", json={"weight": 1}).status_code == 404
    kong.post(f"/upstreams/{UP}/targets", json={"target": "10.0.0.1:80"})
    patched = kong.patch(f"/upstreams/{UP}/targets/10.0.0.1:80", json={"weight": 7})
    assert patched.status_code == 200 and patched.json()["weight"] == 7
    put = kong.put(f"/upstreams/{UP}/targets/10.0.0.1:80", json={"weight": 9})
    assert put.status_code == 200 and put.json()["weight"] == 9
    assert put.json()["target"] == "10.0.0.1:80"


def test_delete_missing_target_is_404(kong: httpx.Client, upstream: dict) -> None:
    assert kong.delete(f"/upstreams/{UP}/targets/10.0.0.1:80").status_code == 404
    kong.post(f"/upstreams/{UP}/targets", json={"target": "10.0.0.1:80"})
    assert kong.delete(f"/upstreams/{UP}/targets/10.0.0.1:80").status_code == 204
    assert kong.get(f"/upstreams/{UP}/targets").json()["data"] == []


def test_target_addressed_by_id_and_unnormalised_form(kong: httpx.Client, upstream: dict) -> None:
    body = kong.post(f"/upstreams/{UP}/targets", json={"target": "10.0.0.1"}).json()
    assert kong.get(f"/upstreams/{UP}/targets/{body['id']}").json()["id"] == body["id"]
    assert kong.get(f"/upstreams/{UP}/targets/10.0.0.1").json()["id"] == body["id"]


def test_target_collection_writes_are_405(kong: httpx.Client, upstream: dict) -> None:
    for method in ("PUT", "PATCH", "DELETE"):
        assert kong.request(method, f"/upstreams/{UP}/targets").status_code == 405


def test_targets_list_newest_first_with_numeric_offset(kong: httpx.Client, upstream: dict) -> None:
    for index in range(3):
        kong.post(f"/upstreams/{UP}/targets", json={"target": f"10.0.0.{index}:80"})
    page = kong.get(f"/upstreams/{UP}/targets?size=2").json()
    assert page["offset"] == "2"
    assert page["data"][0]["created_at"] >= page["data"][1]["created_at"]
    rest = kong.get(page["next"]).json()
    assert len(rest["data"]) == 1 and rest["next"] is None
    assert len(kong.get(f"/upstreams/{UP}/targets/all").json()["data"]) == 3


def test_missing_upstream_is_404(kong: httpx.Client) -> None:
    assert kong.get("/upstreams/missing.consul/targets").json() == {"message": "Not found"}


def test_health_endpoints(kong: httpx.Client, upstream: dict) -> None:
    kong.post(f"/upstreams/{UP}/targets", json={"target": "10.0.0.1:80"})
    health = kong.get(f"/upstreams/{UP}/health").json()
    assert health["data"][0]["health"] == "HEALTHCHECKS_OFF"
    assert health["data"][0]["data"]["addresses"][0] == {
        "ip": "10.0.0.1",
        "port": 80,
        "health": "HEALTHCHECKS_OFF",
        "weight": 100,
    }
    assert "node_id" in health
    marked = kong.put(f"/upstreams/{UP}/targets/10.0.0.1:80/unhealthy")
    assert marked.status_code == 204
    assert kong.get(f"/upstreams/{UP}/health").json()["data"][0]["health"] == "UNHEALTHY"
    assert kong.put(f"/upstreams/{UP}/targets/10.0.0.1:80/10.0.0.1:80/healthy").status_code == 204
    assert kong.post(f"/upstreams/{UP}/targets/10.0.0.1:80/healthy").status_code == 405
    assert kong.put(f"/upstreams/{UP}/targets/10.9.9.9:80/healthy").status_code == 404
    balancer = kong.get(f"/upstreams/{UP}/health?balancer_health=1").json()
    assert balancer["data"]["balancer_health"] == "HEALTHY"
