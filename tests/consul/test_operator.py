"""Consul emulator: coordinates, the operator endpoints and usage of a one-server dev agent."""

from __future__ import annotations

import consul
import httpx
import pytest

NODE = "consul-emulator"


def test_coordinate_datacenters_and_nodes(consul_http: httpx.Client) -> None:
    (dc,) = consul_http.get("/v1/coordinate/datacenters").json()
    assert dc["Datacenter"] == "dc1" and dc["AreaID"] == "wan"
    assert [c["Node"] for c in dc["Coordinates"]] == [f"{NODE}.dc1"]
    nodes = consul_http.get("/v1/coordinate/nodes")
    assert [c["Node"] for c in nodes.json()] == [NODE]
    assert len(nodes.json()[0]["Coord"]["Vec"]) == 8
    assert int(nodes.headers["x-consul-index"]) >= 1
    assert consul_http.get("/v1/coordinate/node/ghost").status_code == 404


def test_coordinate_update(consul_http: httpx.Client, consul_client: consul.Consul) -> None:
    consul_http.put(
        "/v1/catalog/register", json={"Node": "n1", "Address": "10.0.0.1"}
    ).raise_for_status()
    coord = {"Vec": [0.1] * 8, "Error": 0.5, "Adjustment": 0.0, "Height": 0.0001}
    before = int(consul_http.get("/v1/coordinate/nodes").headers["x-consul-index"])
    response = consul_http.put("/v1/coordinate/update", json={"Node": "n1", "Coord": coord})
    assert response.status_code == 200
    (entry,) = consul_http.get("/v1/coordinate/node/n1").json()
    assert entry == {"Node": "n1", "Segment": "", "Coord": coord}
    assert int(consul_http.get("/v1/coordinate/nodes").headers["x-consul-index"]) > before
    assert [c["Node"] for c in consul_client.coordinate.nodes()[1]] == ["consul-emulator", "n1"]
    bad = consul_http.put("/v1/coordinate/update", json={"Node": "n1", "Coord": {"Vec": [1]}})
    assert bad.status_code == 500
    other_dc = consul_http.put(
        "/v1/coordinate/update", json={"Node": "n1", "Coord": coord, "Datacenter": "dc2"}
    )
    assert (other_dc.status_code, other_dc.text) == (500, "No path to datacenter")
    consul_http.put("/v1/catalog/deregister", json={"Node": "n1"}).raise_for_status()
    assert consul_http.get("/v1/coordinate/node/n1").status_code == 404


def test_raft_configuration_has_one_leader_voter(consul_http: httpx.Client) -> None:
    config = consul_http.get("/v1/operator/raft/configuration").json()
    (server,) = config["Servers"]
    assert server["Leader"] and server["Voter"] and server["Node"] == NODE
    assert server["Address"] == consul_http.get("/v1/status/leader").json()
    assert config["Index"] == 0  # raft's lock-free GetConfiguration (Consul >= 1.13.8)


def test_raft_peer_removal_and_leader_transfer_fail(consul_http: httpx.Client) -> None:
    unknown = consul_http.delete("/v1/operator/raft/peer?address=10.9.9.9:8300")
    assert unknown.status_code == 500
    assert unknown.text == 'address "10.9.9.9:8300" was not found in the Raft configuration'
    by_id = consul_http.delete("/v1/operator/raft/peer?id=nope")
    assert by_id.status_code == 500 and 'id "nope" was not found' in by_id.text
    assert consul_http.delete("/v1/operator/raft/peer").status_code == 400
    assert consul_http.post("/v1/operator/raft/transfer-leader").status_code == 500


def test_autopilot_configuration_with_cas(consul_http: httpx.Client) -> None:
    config = consul_http.get("/v1/operator/autopilot/configuration").json()
    assert config["CleanupDeadServers"] is True and config["LastContactThreshold"] == "200ms"
    assert config["MaxTrailingLogs"] == 250 and config["ServerStabilizationTime"] == "10s"
    stale = consul_http.put(
        f"/v1/operator/autopilot/configuration?cas={config['ModifyIndex'] + 100}",
        json={**config, "MaxTrailingLogs": 1},
    )
    assert stale.json() is False
    applied = consul_http.put(
        f"/v1/operator/autopilot/configuration?cas={config['ModifyIndex']}",
        json={**config, "MaxTrailingLogs": 500, "LastContactThreshold": "1s"},
    )
    assert applied.json() is True
    after = consul_http.get("/v1/operator/autopilot/configuration").json()
    assert after["MaxTrailingLogs"] == 500 and after["LastContactThreshold"] == "1s"
    assert after["ModifyIndex"] > config["ModifyIndex"]
    assert after["CreateIndex"] == config["CreateIndex"]


def test_autopilot_health(consul_http: httpx.Client) -> None:
    health = consul_http.get("/v1/operator/autopilot/health")
    assert health.status_code == 200
    body = health.json()
    assert body["Healthy"] is True and body["FailureTolerance"] == 0
    assert [s["Name"] for s in body["Servers"]] == [NODE]


@pytest.mark.parametrize("method", ["GET", "POST", "PUT", "DELETE"])
def test_keyring_without_gossip_encryption(consul_http: httpx.Client, method: str) -> None:
    response = consul_http.request(method, "/v1/operator/keyring", json={"Key": "x"})
    assert response.status_code == 500
    assert "encryption not enabled" in response.text


def test_usage(consul_http: httpx.Client, consul_client: consul.Consul) -> None:
    consul_client.agent.service.register("web", service_id="web-1")
    consul_client.agent.service.register("web", service_id="web-2")
    response = consul_http.get("/v1/operator/usage")
    usage = response.json()["Usage"]["dc1"]
    assert usage["Services"] == 2  # consul and web
    assert usage["ServiceInstances"] == 3 and usage["BillableServiceInstances"] == 2
    assert usage["Nodes"] == 1 and usage["ConnectServiceInstances"]["connect-proxy"] == 0
    body = response.json()
    assert body["Index"] == int(response.headers["x-consul-index"])
    # structs.Usage embeds QueryMeta: its fields are in the body too.
    assert body["KnownLeader"] is True and body["ConsistencyLevel"] == "leader"
    assert (body["LastContact"], body["NotModified"], body["Backend"]) == (0, False, 0)
    stale = consul_http.get("/v1/operator/usage?stale").json()
    assert stale["ConsistencyLevel"] == "stale"


def test_status_peers_contain_the_leader(consul_http: httpx.Client) -> None:
    leader = consul_http.get("/v1/status/leader").json()
    assert consul_http.get("/v1/status/peers").json() == [leader]


def test_unknown_endpoints_stay_404(consul_http: httpx.Client) -> None:
    response = consul_http.get("/v1/operator/nothing")
    assert (response.status_code, response.text) == (404, "404 page not found\n")


def test_py_consul_operator(consul_client: consul.Consul) -> None:
    assert consul_client.operator.raft_config()["Servers"][0]["Leader"] is True
