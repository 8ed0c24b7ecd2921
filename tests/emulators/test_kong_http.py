"""Kong emulator: HTTP semantics, nested endpoints, content types, pagination, tag filters."""

from __future__ import annotations

import json
from urllib.parse import quote

import httpx
import pytest


def test_root_reports_kong_3(kong: httpx.Client) -> None:
    body = kong.get("/").json()
    assert body["version"].startswith("3.")
    assert body["tagline"] == "Welcome to kong"
    assert body["configuration"]["database"] == "postgres"
    assert body["plugins"]["available_on_server"]["key-auth"]["priority"] == 1250
    for key in ("hostname", "node_id", "timers", "lua_version", "pids"):
        assert key in body


def test_status_has_server_and_database(kong: httpx.Client) -> None:
    body = kong.get("/status").json()
    assert body["database"] == {"reachable": True}
    assert "total_requests" in body["server"]
    assert kong.get("/status?unit=x").status_code == 400


def test_unknown_path_and_method_not_allowed(kong: httpx.Client) -> None:
    assert kong.get("/nothing-here").json() == {"message": "Not found"}
    response = kong.delete("/services")
    assert response.status_code == 405
    assert response.json() == {"message": "Method not allowed"}
    assert kong.put("/routes", json={}).status_code == 405
    assert kong.get("/targets").status_code == 404


def test_options_lists_allowed_methods(kong: httpx.Client) -> None:
    response = kong.options("/services")
    assert response.status_code == 204
    assert set(response.headers["allow"].split(", ")) == {"GET", "POST", "OPTIONS"}


def test_head_and_trailing_slash(kong: httpx.Client) -> None:
    kong.post("/services", json={"name": "s", "host": "h"})
    assert kong.get("/services/s/").status_code == 200
    head = kong.head("/services/s")
    assert head.status_code == 200 and head.content == b""


def test_form_encoded_body_is_coerced(kong: httpx.Client) -> None:
    kong.post("/services", data={"name": "s", "host": "h", "port": "8080"})
    body = kong.post(
        "/services/s/routes",
        data={"paths[]": ["/a", "/b"], "strip_path": "false", "methods": "GET"},
    ).json()
    assert body["paths"] == ["/a", "/b"] and body["strip_path"] is False
    assert body["methods"] == ["GET"]
    assert kong.get("/services/s").json()["port"] == 8080


def test_multipart_body(kong: httpx.Client) -> None:
    response = kong.post("/services", files={"name": (None, "mp"), "host": (None, "h")})
    assert response.status_code == 201
    assert response.json()["name"] == "mp"


def test_bad_json_and_unsupported_media_type(kong: httpx.Client) -> None:
    bad = kong.post("/services", content=b"{nope", headers={"content-type": "application/json"})
    assert bad.status_code == 400
    assert bad.json() == {"message": "Cannot parse JSON body"}
    empty = kong.post("/services", content=b"", headers={"content-type": "application/json"})
    assert empty.status_code == 400
    text = kong.post("/services", content=b"host=h", headers={"content-type": "text/plain"})
    assert text.status_code == 415


def test_nested_routes_endpoints(kong: httpx.Client) -> None:
    kong.post("/services", json={"name": "a", "host": "h"})
    kong.post("/services", json={"name": "b", "host": "h"})
    route = kong.post("/services/a/routes", json={"name": "ra", "paths": ["/a"]}).json()
    assert kong.get("/services/a/routes/ra").json()["id"] == route["id"]
    assert kong.get("/services/b/routes/ra").status_code == 404
    assert kong.delete("/services/b/routes/ra").status_code == 404
    assert kong.delete("/services/a/routes/missing").status_code == 404
    assert kong.get("/services/nope/routes").json() == {"message": "Not found"}
    assert kong.get("/routes/ra/service").json()["name"] == "a"
    assert kong.delete("/routes/ra/service").status_code == 405
    patched = kong.patch("/routes/ra/service", json={"retries": 2}).json()
    assert patched["name"] == "a" and patched["retries"] == 2
    lonely = kong.post("/routes", json={"name": "lonely", "hosts": ["x"]}).json()
    assert kong.get(f"/routes/{lonely['id']}/service").status_code == 404
    assert kong.delete("/services/a/routes/ra").status_code == 204


def test_nested_post_forces_parent(kong: httpx.Client) -> None:
    a = kong.post("/services", json={"name": "a", "host": "h"}).json()
    kong.post("/services", json={"name": "b", "host": "h"})
    route = kong.post("/services/a/routes", json={"paths": ["/x"], "service": {"name": "b"}})
    assert route.json()["service"] == {"id": a["id"]}


def _create_services(kong: httpx.Client, count: int, tags: list[str] | None = None) -> None:
    for index in range(count):
        kong.post("/services", json={"name": f"s{index}", "host": "h", "tags": tags})


def test_pagination_by_id_with_next_and_offset(kong: httpx.Client) -> None:
    _create_services(kong, 5)
    first = kong.get("/services?size=2").json()
    assert len(first["data"]) == 2
    assert first["next"] == f"/services?offset={quote(first['offset'], safe='')}&size=2"
    seen = [row["id"] for row in first["data"]]
    page = first
    while page["next"]:
        page = kong.get(page["next"]).json()
        seen += [row["id"] for row in page["data"]]
    assert len(seen) == 5
    assert seen == sorted(seen)  # Postgres pages by primary key
    assert "offset" not in page and page["next"] is None


def test_pagination_errors(kong: httpx.Client) -> None:
    assert kong.get("/services?size=abc").json() == {
        "code": 9,
        "name": "invalid size",
        "message": "size must be a number",
    }
    assert kong.get("/services?size=1001").json()["message"] == (
        "size must be an integer between 1 and 1000"
    )
    bad = kong.get("/services?offset=%25%25%25").json()
    assert bad["code"] == 7
    assert bad["message"] == "'%%%' is not a valid offset: bad base64 encoding"


def test_empty_list_shape(kong: httpx.Client) -> None:
    response = kong.get("/services")
    assert response.text == '{"data":[],"next":null}'


def test_tag_filters_and_or_and_errors(kong: httpx.Client) -> None:
    kong.post("/services", json={"name": "ab", "host": "h", "tags": ["a", "b"]})
    kong.post("/services", json={"name": "a", "host": "h", "tags": ["a"]})
    kong.post("/services", json={"name": "c", "host": "h", "tags": ["c"]})

    def names(query: str) -> set[str]:
        return {row["name"] for row in kong.get(f"/services?tags={query}").json()["data"]}

    assert names("a,b") == {"ab"}
    assert names("a/c") == {"ab", "a", "c"}
    assert names("zzz") == set()
    mixed = kong.get("/services?tags=a,b/c").json()
    assert mixed == {
        "code": 11,
        "name": "invalid options",
        "message": "invalid option (tags: invalid filter syntax)",
        "fields": {"tags": "invalid filter syntax"},
    }
    many = kong.get("/services?tags=1,2,3,4,5,6").json()
    assert many["message"] == "invalid option (tags: cannot query more than 5 tags)"
    assert kong.get("/services?tags=").json()["message"] == "invalid option (tags: cannot be null)"


def test_tag_filter_paginates(kong: httpx.Client) -> None:
    _create_services(kong, 5, tags=["owned"])
    kong.post("/services", json={"name": "other", "host": "h", "tags": ["x"]})
    page = kong.get("/services?tags=owned&size=3").json()
    assert "&tags=owned" in page["next"]
    rest = kong.get(page["next"]).json()
    assert len(page["data"]) + len(rest["data"]) == 5


def test_tags_ignored_on_nested_lists(kong: httpx.Client) -> None:
    kong.post("/services", json={"name": "s", "host": "h"})
    kong.post("/services/s/routes", json={"paths": ["/a"], "tags": ["x"]})
    kong.post("/services/s/routes", json={"paths": ["/b"]})
    assert len(kong.get("/services/s/routes?tags=x").json()["data"]) == 2


@pytest.mark.parametrize("collection", ["certificates", "ca_certificates", "snis", "vaults"])
def test_other_collections_answer_empty(kong: httpx.Client, collection: str) -> None:
    assert kong.get(f"/{collection}").json() == {"data": [], "next": None}


def test_responses_are_json_with_kong_server_header(kong: httpx.Client) -> None:
    response = kong.get("/services")
    assert response.headers["content-type"].startswith("application/json")
    assert response.headers["server"].startswith("kong/3.")
    json.loads(response.text)


@pytest.mark.parametrize("path", ["/consumer_groups", "/workspaces", "/mtls-auths"])
def test_enterprise_collections_are_not_found_as_in_kong_oss(kong: httpx.Client, path: str) -> None:
    assert kong.get(path).status_code == 404
    assert kong.post(path, json={"name": "x"}).status_code == 404


def test_cluster_endpoints_answer_that_this_node_is_no_control_plane(kong: httpx.Client) -> None:
    for path in ("/clustering/data-planes", "/clustering/status"):
        response = kong.get(path)
        assert response.status_code == 400
        assert response.json() == {
            "message": "this endpoint is only available when Kong is configured to run as "
            "Control Plane for the cluster"
        }
