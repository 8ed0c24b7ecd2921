"""Consul emulator: PUT /v1/txn, atomic at one index, with Consul's results and errors."""

from __future__ import annotations

import base64

import consul
import httpx


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def test_kv_ops_apply_at_one_index(consul_http: httpx.Client) -> None:
    response = consul_http.put(
        "/v1/txn",
        json=[
            {"KV": {"Verb": "set", "Key": "t/a", "Value": _b64("1"), "Flags": 3}},
            {"KV": {"Verb": "set", "Key": "t/b", "Value": _b64("2")}},
            {"KV": {"Verb": "get", "Key": "t/a"}},
        ],
    )
    assert response.status_code == 200
    body = response.json()
    assert body["Errors"] is None
    first, second, got = (r["KV"] for r in body["Results"])
    assert first["Value"] is None and first["Flags"] == 3  # writes return no value
    assert got["Value"] == _b64("1")
    assert first["ModifyIndex"] == second["ModifyIndex"] == got["ModifyIndex"]


def test_a_failed_op_rolls_everything_back(consul_http: httpx.Client) -> None:
    consul_http.put("/v1/kv/t/keep", content=b"old").raise_for_status()
    index_before = int(consul_http.get("/v1/kv/t/keep").headers["x-consul-index"])
    response = consul_http.put(
        "/v1/txn",
        json=[
            {"KV": {"Verb": "set", "Key": "t/keep", "Value": _b64("new")}},
            {"KV": {"Verb": "delete", "Key": "t/keep"}},
            {"KV": {"Verb": "cas", "Key": "t/other", "Value": _b64("x"), "Index": 99}},
        ],
    )
    assert response.status_code == 409
    assert response.json() == {
        "Results": None,
        "Errors": [{"OpIndex": 2, "What": 'failed to set key "t/other", index is stale'}],
    }
    (entry,) = consul_http.get("/v1/kv/t/keep").json()
    assert entry["Value"] == _b64("old")
    assert int(consul_http.get("/v1/kv/t/keep").headers["x-consul-index"]) == index_before


def test_check_verbs_and_locks(consul_http: httpx.Client) -> None:
    session = consul_http.put("/v1/session/create", json={"LockDelay": "0s"}).json()["ID"]
    ok = consul_http.put(
        "/v1/txn",
        json=[
            {"KV": {"Verb": "lock", "Key": "t/lock", "Value": _b64("me"), "Session": session}},
            {"KV": {"Verb": "check-session", "Key": "t/lock", "Session": session}},
            {"KV": {"Verb": "check-not-exists", "Key": "t/none"}},
        ],
    )
    assert ok.status_code == 200
    assert ok.json()["Results"][0]["KV"]["Session"] == session
    index = ok.json()["Results"][0]["KV"]["ModifyIndex"]
    stale = consul_http.put(
        "/v1/txn", json=[{"KV": {"Verb": "check-index", "Key": "t/lock", "Index": index + 5}}]
    )
    assert stale.status_code == 409
    assert stale.json()["Errors"][0]["What"] == f"current modify index {index} != {index + 5}"
    missing = consul_http.put("/v1/txn", json=[{"KV": {"Verb": "get", "Key": "t/none"}}])
    assert missing.json()["Errors"][0]["What"] == 'key "t/none" doesn\'t exist'
    bogus = consul_http.put("/v1/txn", json=[{"KV": {"Verb": "explode", "Key": "k"}}])
    assert bogus.json()["Errors"][0]["What"] == 'unknown KV verb "explode"'


def test_catalog_ops(consul_http: httpx.Client, consul_client: consul.Consul) -> None:
    response = consul_http.put(
        "/v1/txn",
        json=[
            {"Node": {"Verb": "set", "Node": {"Node": "tx-node", "Address": "10.1.1.1"}}},
            {
                "Service": {
                    "Verb": "set",
                    "Node": "tx-node",
                    "Service": {"ID": "web-1", "Service": "web", "Port": 80},
                }
            },
            {
                "Check": {
                    "Verb": "set",
                    "Check": {
                        "Node": "tx-node",
                        "CheckID": "web-ok",
                        "Name": "ok",
                        "Status": "passing",
                        "ServiceID": "web-1",
                    },
                }
            },
        ],
    )
    assert response.status_code == 200, response.text
    kinds = [next(iter(r)) for r in response.json()["Results"]]
    assert kinds == ["Node", "Service", "Check"]
    _index, nodes = consul_client.health.service("web", passing=True)
    assert [(n["Node"]["Node"], n["Service"]["Port"]) for n in nodes] == [("tx-node", 80)]
    failed = consul_http.put(
        "/v1/txn",
        json=[
            {"Service": {"Verb": "delete", "Node": "tx-node", "Service": {"ID": "web-1"}}},
            {"Node": {"Verb": "get", "Node": {"Node": "ghost"}}},
        ],
    )
    assert failed.status_code == 409
    assert failed.json()["Errors"] == [{"OpIndex": 1, "What": 'node "ghost" doesn\'t exist'}]
    assert len(consul_client.health.service("web")[1]) == 1  # the delete was rolled back


def test_bad_bodies(consul_http: httpx.Client) -> None:
    assert consul_http.put("/v1/txn", content=b"{").status_code == 400
    assert consul_http.put("/v1/txn", json={"KV": {}}).status_code == 400
    too_many = [{"KV": {"Verb": "get", "Key": f"k{i}"}} for i in range(129)]
    response = consul_http.put("/v1/txn", json=too_many)
    assert response.status_code == 413 and "too many operations (129 > 128)" in response.text
    assert consul_http.get("/v1/txn").status_code == 405


def test_py_consul_txn(consul_client: consul.Consul) -> None:
    result = consul_client.txn.put([{"KV": {"Verb": "set", "Key": "py", "Value": _b64("v")}}])
    assert result["Errors"] is None
    assert consul_client.kv.get("py")[1]["Value"] == b"v"


def test_a_field_of_the_wrong_type_is_400_and_changes_nothing(consul_http: httpx.Client) -> None:
    response = consul_http.put(
        "/v1/txn",
        json=[
            {"KV": {"Verb": "set", "Key": "t/first", "Value": _b64("1")}},
            {"KV": {"Verb": "set", "Key": "t/second", "Flags": "many"}},
        ],
    )
    assert response.status_code == 400 and response.text.startswith("Failed to parse body")
    assert consul_http.get("/v1/kv/t/first").status_code == 404
