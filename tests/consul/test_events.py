"""Consul emulator: user events, fired and listed, with the index derived from the last ID."""

from __future__ import annotations

import base64
import concurrent.futures

import consul
import httpx

from bridge.emulators.consul.events import uuid_to_uint64
from tests.helpers import eventually


def test_fire_answers_the_event(consul_http: httpx.Client) -> None:
    response = consul_http.put("/v1/event/fire/deploy", content=b"v1.2")
    assert response.status_code == 200
    event = response.json()
    assert list(event) == [
        "ID",
        "Name",
        "Payload",
        "NodeFilter",
        "ServiceFilter",
        "TagFilter",
        "Version",
        "LTime",
    ]
    assert event["Name"] == "deploy" and event["Version"] == 1 and event["LTime"] == 0
    assert base64.b64decode(event["Payload"]) == b"v1.2"
    empty = consul_http.put("/v1/event/fire/ping").json()
    assert empty["Payload"] is None


def test_list_index_is_derived_from_the_last_event_id(consul_http: httpx.Client) -> None:
    empty = consul_http.get("/v1/event/list")
    assert empty.json() == [] and empty.headers["x-consul-index"] == "1"
    first = consul_http.put("/v1/event/fire/a").json()
    last = consul_http.put("/v1/event/fire/b").json()
    listed = consul_http.get("/v1/event/list")
    assert [e["ID"] for e in listed.json()] == [first["ID"], last["ID"]]
    assert [e["LTime"] for e in listed.json()] == [1, 2]
    assert listed.headers["x-consul-index"] == str(uuid_to_uint64(last["ID"]))
    only_a = consul_http.get("/v1/event/list?name=a")
    assert [e["Name"] for e in only_a.json()] == ["a"]
    assert only_a.headers["x-consul-index"] == str(uuid_to_uint64(first["ID"]))


def test_uuid_to_uint64_xors_the_halves() -> None:
    assert uuid_to_uint64("00000000-0000-0001-0000-000000000003") == 2
    assert uuid_to_uint64("ffffffff-ffff-ffff-0000-000000000000") == 2**64 - 1


def test_blocking_list_returns_on_a_new_event(consul_http: httpx.Client) -> None:
    consul_http.put("/v1/event/fire/a").raise_for_status()
    index = consul_http.get("/v1/event/list").headers["x-consul-index"]
    url = f"{str(consul_http.base_url).rstrip('/')}/v1/event/list?index={index}&wait=20s"
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        watch = pool.submit(httpx.get, url, timeout=30)
        eventually(lambda: consul_http.get("/_emulator/state").json()["blocked_queries"])
        fired = consul_http.put("/v1/event/fire/b").json()
        response = watch.result(10)
    assert response.headers["x-consul-index"] == str(uuid_to_uint64(fired["ID"]))
    timed_out = consul_http.get(f"/v1/event/list?index={uuid_to_uint64(fired['ID'])}&wait=50ms")
    assert len(timed_out.json()) == 2


def test_filters(consul_http: httpx.Client) -> None:
    consul_http.put(
        "/v1/agent/service/register", json={"Name": "web", "Tags": ["blue"]}
    ).raise_for_status()
    consul_http.put("/v1/event/fire/hit?service=web&tag=bl.*").raise_for_status()
    consul_http.put("/v1/event/fire/miss?node=other-node").raise_for_status()
    consul_http.put("/v1/event/fire/miss?service=api").raise_for_status()
    assert [e["Name"] for e in consul_http.get("/v1/event/list").json()] == ["hit"]
    bad = consul_http.put("/v1/event/fire/x?tag=blue")
    assert (bad.status_code, bad.text) == (500, "Cannot provide tag filter without service filter")
    assert consul_http.put("/v1/event/fire/x?node=(").status_code == 500
    assert consul_http.put("/v1/event/fire/").text == "Missing name"


def test_py_consul_events(consul_client: consul.Consul) -> None:
    assert consul_client.event.fire("deploy", body="x")
    _index, events = consul_client.event.list(name="deploy")
    assert [e["Name"] for e in events] == ["deploy"]
