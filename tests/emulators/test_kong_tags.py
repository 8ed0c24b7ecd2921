"""``/tags`` and ``/tags/{tag}``, as Kong's tags table lists tagged entities."""

from __future__ import annotations

import httpx


def _tagged(kong: httpx.Client) -> tuple[str, str]:
    service = kong.post("/services", json={"name": "s", "host": "a.test", "tags": ["b", "a"]})
    route = kong.post("/services/s/routes", json={"paths": ["/"], "tags": ["a"]})
    return service.json()["id"], route.json()["id"]


def test_every_tag_of_every_entity_in_entity_id_then_list_order(kong: httpx.Client) -> None:
    service_id, route_id = _tagged(kong)
    kong.post("/upstreams", json={"name": "u"})  # no tags: not listed
    rows = kong.get("/tags").json()["data"]
    expected = sorted(
        [
            (service_id, 1, "services", "b"),
            (service_id, 2, "services", "a"),
            (route_id, 1, "routes", "a"),
        ]
    )
    assert [(r["entity_id"], r["entity_name"], r["tag"]) for r in rows] == [
        (eid, kind, tag) for eid, _, kind, tag in expected
    ]


def test_one_tag_lists_the_entities_carrying_it(kong: httpx.Client) -> None:
    service_id, route_id = _tagged(kong)
    body = kong.get("/tags/a").json()
    assert sorted((r["entity_id"], r["entity_name"]) for r in body["data"]) == sorted(
        [(service_id, "services"), (route_id, "routes")]
    )
    assert body["next"] is None
    assert kong.get("/tags/b").json()["data"] == [
        {"entity_id": service_id, "entity_name": "services", "tag": "b"}
    ]


def test_pages_follow_their_offsets_to_the_end(kong: httpx.Client) -> None:
    for number in range(5):
        kong.post("/consumers", json={"username": f"c{number}", "tags": ["x", "y"]})
    seen: list[tuple[str, str]] = []
    link: str | None = "/tags?size=3"
    while link:
        body = kong.get(link).json()
        seen += [(r["entity_id"], r["tag"]) for r in body["data"]]
        assert "=" not in body.get("offset", "")  # ngx.encode_base64(s, true): no padding
        link = body["next"]
    assert len(seen) == 10 and len(set(seen)) == 10
    tagged = kong.get("/tags/y", params={"size": 2}).json()
    assert len(tagged["data"]) == 2 and tagged["next"].startswith("/tags/y?offset=")


def test_a_bad_tag_or_offset_is_refused_as_kong_refuses_it(kong: httpx.Client) -> None:
    bad_tag = kong.get("/tags/a,b")
    assert bad_tag.status_code == 400
    assert bad_tag.json()["name"] == "invalid unique tag"
    bad_offset = kong.get("/tags", params={"offset": "!!"})
    assert bad_offset.status_code == 400
    assert bad_offset.json()["message"] == "'!!' is not a valid offset: bad base64 encoding"
