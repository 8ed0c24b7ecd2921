"""Consul emulator: catalog and health reads, shapes, passing semantics, filters."""

from __future__ import annotations

import consul
import httpx
import pytest


def _register_node(
    http: httpx.Client,
    node: str,
    address: str,
    service: dict | None = None,
    checks: list[dict] | None = None,
) -> None:
    body: dict = {"Node": node, "Address": address}
    if service is not None:
        body["Service"] = service
    if checks is not None:
        body["Checks"] = checks
    response = http.put("/v1/catalog/register", json=body)
    assert response.status_code == 200 and response.json() is True


def test_services_includes_consul_and_unions_tags(consul_client: consul.Consul) -> None:
    consul_client.agent.service.register("web", service_id="w1", tags=["a", "b"])
    consul_client.agent.service.register("web", service_id="w2", tags=["b", "c"])
    consul_client.agent.service.register("bare", service_id="b1")
    _index, services = consul_client.catalog.services()
    assert services == {"bare": [], "consul": [], "web": ["a", "b", "c"]}


def test_catalog_service_shape_and_empty_address(consul_http: httpx.Client) -> None:
    _register_node(
        consul_http, "n1", "10.0.0.1", {"Service": "api", "ID": "api-1", "Port": 80, "Tags": ["x"]}
    )
    (row,) = consul_http.get("/v1/catalog/service/api").json()
    assert row["Address"] == "10.0.0.1" and row["ServiceAddress"] == ""
    assert row["ServicePort"] == 80 and row["ServiceTags"] == ["x"]
    assert row["ServiceWeights"] == {"Passing": 1, "Warning": 1}
    assert row["TaggedAddresses"] is None and "ServiceTaggedAddresses" not in row
    assert "ServiceLocality" in row and "Namespace" not in row
    assert consul_http.get("/v1/catalog/service/unknown").json() == []


def test_catalog_service_tag_filter(
    consul_client: consul.Consul, consul_http: httpx.Client
) -> None:
    consul_client.agent.service.register("t", service_id="t1", tags=["a", "b"])
    consul_client.agent.service.register("t", service_id="t2", tags=["a"])
    assert {r["ServiceID"] for r in consul_client.catalog.service("t", tag="a")[1]} == {"t1", "t2"}
    both = consul_http.get("/v1/catalog/service/t", params=[("tag", "a"), ("tag", "b")]).json()
    assert [r["ServiceID"] for r in both] == ["t1"]
    assert [e["Service"]["ID"] for e in consul_client.health.service("t", tag=["a", "b"])[1]] == [
        "t1"
    ]


def test_nodes_node_and_datacenters(consul_http: httpx.Client) -> None:
    _register_node(consul_http, "n2", "10.0.0.2", {"Service": "s", "Port": 1})
    names = [n["Node"] for n in consul_http.get("/v1/catalog/nodes").json()]
    assert "n2" in names
    node = consul_http.get("/v1/catalog/node/n2").json()
    assert node["Node"]["Address"] == "10.0.0.2" and list(node["Services"]) == ["s"]
    assert consul_http.get("/v1/catalog/datacenters").json() == ["dc1"]
    assert consul_http.get("/v1/catalog/node/none").json() is None


def test_catalog_deregister_service_and_node(consul_http: httpx.Client) -> None:
    _register_node(consul_http, "n3", "10.0.0.3", {"Service": "gone", "ID": "g1"})
    consul_http.put("/v1/catalog/deregister", json={"Node": "n3", "ServiceID": "g1"})
    assert consul_http.get("/v1/catalog/service/gone").json() == []
    consul_http.put("/v1/catalog/deregister", json={"Node": "n3"})
    assert "n3" not in [n["Node"] for n in consul_http.get("/v1/catalog/nodes").json()]


def test_health_service_shape(consul_client: consul.Consul) -> None:
    consul_client.agent.service.register(
        "h", service_id="h1", port=0, check=consul.Check.ttl("60s")
    )
    (entry,) = consul_client.health.service("h")[1]
    assert set(entry) == {"Node", "Service", "Checks"}
    assert "Port" not in entry["Service"]  # omitempty
    assert [c["CheckID"] for c in entry["Checks"]] == ["serfHealth", "service:h1"]
    assert entry["Checks"][1]["ServiceTags"] == []
    assert consul_client.health.service("none")[1] == []


def test_passing_excludes_warning_and_node_checks_count(
    consul_client: consul.Consul, consul_http: httpx.Client
) -> None:
    for sid in ("p1", "p2", "p3"):
        consul_client.agent.service.register("p", service_id=sid, check=consul.Check.ttl("60s"))
    consul_client.agent.check.ttl_pass("service:p1")
    consul_client.agent.check.ttl_warn("service:p2")
    index_all, all_entries = consul_client.health.service("p")
    index_passing, passing = consul_client.health.service("p", passing=True)
    assert len(all_entries) == 3
    assert [e["Service"]["ID"] for e in passing] == ["p1"]
    assert index_all == index_passing  # the index ignores the filter
    assert consul_http.get("/v1/health/service/p?passing=false").json().__len__() == 3
    _register_node(
        consul_http,
        "sick",
        "10.9.9.9",
        {"Service": "p", "ID": "p4"},
        [{"CheckID": "serfHealth", "Name": "serf", "Status": "critical"}],
    )
    assert [e["Service"]["ID"] for e in consul_client.health.service("p", passing=True)[1]] == [
        "p1"
    ]


def test_health_state_node_and_checks(consul_client: consul.Consul) -> None:
    consul_client.agent.service.register("s", check=consul.Check.ttl("60s"))
    _index, critical = consul_client.health.state("critical")
    assert [c["CheckID"] for c in critical] == ["service:s"]
    assert {c["CheckID"] for c in consul_client.health.state("any")[1]} >= {
        "serfHealth",
        "service:s",
    }
    node = consul_client.agent.self()["Config"]["NodeName"]
    assert {c["CheckID"] for c in consul_client.health.node(node)[1]} == {"serfHealth", "service:s"}
    assert [c["CheckID"] for c in consul_client.health.checks("s")[1]] == ["service:s"]


def test_invalid_state_is_400(consul_http: httpx.Client) -> None:
    assert consul_http.get("/v1/health/state/sleepy").status_code == 400


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ('Service.Tags contains "kong.enable=true"', {"f1"}),
        ('"kong.enable=true" not in Service.Tags', {"f2"}),
        ("Service.Meta.team == payments", {"f1"}),
        ('Service.Meta["team"] != payments and Service.ID == f2 or Service.Tags is empty', {"f2"}),
        ('Checks.Status == "critical"', {"f1", "f2"}),
        ("Service.Tags is empty", {"f2"}),
        ('Service.ID matches "^f[0-9]$"', {"f1", "f2"}),
    ],
)
def test_filter_on_health_service(
    consul_client: consul.Consul, expression: str, expected: set[str]
) -> None:
    consul_client.agent.service.register(
        "f",
        service_id="f1",
        tags=["kong.enable=true"],
        meta={"team": "payments"},
        port=80,
        check=consul.Check.ttl("60s"),
    )
    consul_client.agent.service.register(
        "f", service_id="f2", port=81, check=consul.Check.ttl("60s")
    )
    _index, entries = consul_client.health.service("f", filter_expr=expression)
    assert {e["Service"]["ID"] for e in entries} == expected


def test_filter_on_catalog_services(consul_http: httpx.Client) -> None:
    consul_http.put("/v1/agent/service/register", json={"Name": "on", "Tags": ["kong.enable=true"]})
    consul_http.put("/v1/agent/service/register", json={"Name": "off"})
    body = consul_http.get(
        "/v1/catalog/services", params={"filter": 'ServiceTags contains "kong.enable=true"'}
    ).json()
    assert body == {"on": ["kong.enable=true"]}


def test_bad_filter_is_400(consul_http: httpx.Client) -> None:
    response = consul_http.get("/v1/health/service/x", params={"filter": "Service.ID =="})
    assert response.status_code == 400
    assert response.text.startswith("Failed to create boolean expression evaluator")


def test_dc_ns_and_tokens(consul_http: httpx.Client) -> None:
    assert consul_http.get("/v1/catalog/services?dc=dc2").text == "No path to datacenter"
    ns = consul_http.get("/v1/catalog/services?ns=default")
    assert ns.status_code == 400 and "Namespaces are a Consul Enterprise feature" in ns.text
    assert consul_http.get("/v1/catalog/services?dc=dc1").status_code == 200
    for headers in ({"X-Consul-Token": "t"}, {"Authorization": "Bearer t"}):
        assert consul_http.get("/v1/catalog/services", headers=headers).status_code == 200
    assert consul_http.get("/v1/catalog/services?token=t").status_code == 200


def test_status_leader_is_a_json_string(consul_http: httpx.Client) -> None:
    assert isinstance(consul_http.get("/v1/status/leader").json(), str)
    assert len(consul_http.get("/v1/status/peers").json()) == 1


def test_catalog_writes_for_another_datacenter_change_nothing(consul_http: httpx.Client) -> None:
    before = consul_http.get("/v1/catalog/nodes").json()
    for body, params in (
        ({"Node": "n1", "Address": "10.0.0.1", "Datacenter": "dc2"}, {}),
        ({"Node": "n1", "Address": "10.0.0.1"}, {"dc": "dc2"}),
    ):
        response = consul_http.put("/v1/catalog/register", json=body, params=params)
        assert (response.status_code, response.text) == (500, "No path to datacenter")
    consul_http.put(
        "/v1/catalog/register", json={"Node": "n1", "Address": "10.0.0.1"}
    ).raise_for_status()
    gone = consul_http.put("/v1/catalog/deregister", json={"Node": "n1", "Datacenter": "dc9"})
    assert gone.status_code == 500
    names = [n["Node"] for n in consul_http.get("/v1/catalog/nodes").json()]
    assert names == sorted([n["Node"] for n in before] + ["n1"])


def test_catalog_node_filter_applies_to_its_services(consul_http: httpx.Client) -> None:
    for name, port in (("a", 1), ("b", 2)):
        consul_http.put(
            "/v1/catalog/register",
            json={"Node": "n1", "Address": "10.0.0.1", "Service": {"Service": name, "Port": port}},
        ).raise_for_status()
    params = {"filter": "Port == 2"}
    node = consul_http.get("/v1/catalog/node/n1", params=params).json()
    assert list(node["Services"]) == ["b"] and node["Node"]["Node"] == "n1"
    listed = consul_http.get("/v1/catalog/node-services/n1", params=params).json()
    assert [s["ID"] for s in listed["Services"]] == ["b"]


def test_unknown_peer_finds_nothing(
    consul_http: httpx.Client, consul_client: consul.Consul
) -> None:
    consul_client.agent.service.register("web", port=80)
    response = consul_http.get("/v1/health/service/web", params={"peer": "other"})
    assert response.json() == [] and int(response.headers["x-consul-index"]) >= 1
    assert consul_http.get("/v1/catalog/services", params={"peer": "other"}).json() == {}
    assert len(consul_http.get("/v1/health/service/web").json()) == 1


@pytest.mark.parametrize(
    "path", ["/v1/catalog/connect/web", "/v1/health/connect/web", "/v1/health/ingress/web"]
)
def test_connect_reads_of_a_plain_service_are_empty(
    consul_http: httpx.Client, consul_client: consul.Consul, path: str
) -> None:
    consul_client.agent.service.register("web", port=80)
    params = {"filter": 'Service.Tags contains "x"', "peer": "", "merge-central-config": ""}
    response = consul_http.get(path, params=params)
    assert response.status_code == 200 and response.json() == []
    assert int(response.headers["x-consul-index"]) >= 1
    assert consul_http.get(path, params={"filter": "=="}).status_code == 400


def test_dc_is_read_only_by_endpoints_that_go_through_rpc(consul_http: httpx.Client) -> None:
    """Agent endpoints answer locally and never parse ?dc=; RPC-backed ones cannot route it."""
    assert consul_http.get("/v1/agent/services?dc=dc2").status_code == 200
    assert consul_http.get("/v1/agent/self?dc=dc2").status_code == 200
    assert consul_http.get("/v1/event/list?dc=dc2").status_code == 200
    for path in ("/v1/catalog/services", "/v1/status/leader", "/v1/kv/x", "/v1/session/list"):
        response = consul_http.get(path, params={"dc": "dc2"})
        assert (response.status_code, response.text) == (500, "No path to datacenter"), path
    fired = consul_http.put("/v1/event/fire/x?dc=dc2")
    assert fired.status_code == 500
