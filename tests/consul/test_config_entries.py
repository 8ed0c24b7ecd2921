"""Config entries, intentions, gateway services and discovery chains (``/v1/config``...)."""

from __future__ import annotations

import threading

import consul
import httpx
import pytest

from bridge.emulators.consul import ConsulEmulator


def test_an_entry_is_written_read_listed_and_deleted(consul_client: consul.Consul) -> None:
    config = consul_client.config
    assert config.set(kind="service-defaults", name="web", config_entry={"Protocol": "HTTP"})
    entry = config.get(kind="service-defaults", name="web")
    assert {k: entry[k] for k in ("Kind", "Name", "Protocol")} == {
        "Kind": "service-defaults",
        "Name": "web",
        "Protocol": "http",  # Normalize lowercases it
    }
    assert entry["MeshGateway"] == {} and entry["CreateIndex"] == entry["ModifyIndex"] > 0
    assert [e["Name"] for e in config.list(kind="service-defaults")] == ["web"]
    assert config.delete(kind="service-defaults", name="web")
    assert config.get(kind="service-defaults", name="web") is None


def test_writes_and_deletes_check_and_set_on_the_modify_index(consul_http: httpx.Client) -> None:
    def put(cas: int | None = None, protocol: str = "grpc") -> bool:
        params = {} if cas is None else {"cas": cas}
        body = {"Kind": "service-defaults", "Name": "web", "Protocol": protocol}
        return bool(consul_http.put("/v1/config", params=params, json=body).json())

    assert put(cas=0, protocol="http")  # 0: only while there is none
    assert not put(cas=0)
    index = consul_http.get("/v1/config/service-defaults/web").json()["ModifyIndex"]
    assert not put(cas=index + 1000)
    assert put(cas=index)
    assert consul_http.get("/v1/config/service-defaults/web").json()["Protocol"] == "grpc"
    modify = consul_http.get("/v1/config/service-defaults/web").json()["ModifyIndex"]
    stale = consul_http.delete("/v1/config/service-defaults/web", params={"cas": modify - 1})
    assert stale.json() is False
    plain = consul_http.delete("/v1/config/service-defaults/web")
    assert plain.status_code == 200 and plain.json() == {}  # struct{}{} without cas


@pytest.mark.parametrize(
    ("body", "status", "text"),
    [
        ({"Name": "web"}, 400, "Payload does not contain a kind/Kind key at the top level"),
        ({"Kind": "nope", "Name": "web"}, 400, "invalid config entry kind: nope"),
        ({"Kind": "proxy-defaults", "Name": "web"}, 400, 'only "global" is supported'),
    ],
)
def test_a_bad_entry_is_refused(
    consul_http: httpx.Client, body: dict[str, str], status: int, text: str
) -> None:
    response = consul_http.put("/v1/config", json=body)
    assert response.status_code == status and text in response.text


def test_a_missing_entry_is_a_404_with_consuls_text(consul_http: httpx.Client) -> None:
    response = consul_http.get("/v1/config/service-defaults/ghost")
    assert (response.status_code, response.text) == (
        404,
        'Config entry not found for "service-defaults" / "ghost"',
    )
    assert consul_http.get("/v1/config/nope").status_code == 400


def test_a_list_blocks_until_an_entry_of_the_kind_changes(consul_http: httpx.Client) -> None:
    first = consul_http.get("/v1/config/service-defaults")
    index = int(first.headers["x-consul-index"])
    answers: list[httpx.Response] = []
    waiter = threading.Thread(
        target=lambda: answers.append(
            consul_http.get("/v1/config/service-defaults", params={"index": index, "wait": "10s"})
        )
    )
    waiter.start()
    consul_http.put("/v1/config", json={"Kind": "service-defaults", "Name": "web"})
    waiter.join(15)
    assert [e["Name"] for e in answers[0].json()] == ["web"]
    assert int(answers[0].headers["x-consul-index"]) > index


def test_intentions_are_kept_as_a_service_intentions_entry(consul_client: consul.Consul) -> None:
    intentions = consul_client.connect.intentions
    assert intentions.upsert(source="web", destination="db", action="allow")
    assert intentions.upsert(source="*", destination="db", action="deny")
    exact = intentions.read(source="web", destination="db")
    assert (exact["SourceName"], exact["Action"], exact["Precedence"]) == ("web", "allow", 9)
    assert intentions.check(source="web", destination="db") is True
    assert intentions.check(source="api", destination="db") is False  # the wildcard's deny
    matched = intentions.match(by="destination", name="db")["db"]
    assert [(m["SourceName"], m["Precedence"]) for m in matched] == [("web", 9), ("*", 8)]
    entry = consul_client.config.get(kind="service-intentions", name="db")
    assert [s["Name"] for s in entry["Sources"]] == ["web", "*"]
    assert intentions.delete(source="web", destination="db")
    assert intentions.read(source="web", destination="db") is None
    assert intentions.check(source="other", destination="cache") is True  # ACLs off: allow


def test_gateway_services_come_from_the_gateways_entry(consul_client: consul.Consul) -> None:
    assert consul_client.catalog.gateway_services("ingress-1") == []
    listeners = [{"Port": 8080, "Protocol": "http", "Services": [{"Name": "web"}, {"Name": "api"}]}]
    consul_client.config.set("ingress-gateway", "ingress-1", {"Listeners": listeners})
    services = consul_client.catalog.gateway_services("ingress-1")
    assert [(s["Service"]["Name"], s["Port"], s["Protocol"]) for s in services] == [
        ("api", 8080, "http"),
        ("web", 8080, "http"),
    ]
    assert {s["GatewayKind"] for s in services} == {"ingress-gateway"}


def test_a_service_without_entries_has_the_default_chain(consul_client: consul.Consul) -> None:
    chain = consul_client.discovery_chain.get("web")["Chain"]
    assert (chain["ServiceName"], chain["Protocol"], chain["Default"]) == ("web", "tcp", True)
    assert chain["StartNode"] == "resolver:web.default.default.dc1"
    consul_client.config.set("service-defaults", "web", {"Protocol": "http"})
    assert consul_client.discovery_chain.get("web")["Chain"]["Protocol"] == "http"
    overridden = consul_client.discovery_chain.get("web", override_protocol="grpc")
    assert overridden["Chain"]["Protocol"] == "grpc"


def test_without_a_matching_intention_the_acl_default_policy_decides() -> None:
    with ConsulEmulator(acl_master_token="root", acl_default_policy="deny") as server:
        root = consul.Consul(host="127.0.0.1", port=server.port, token="root")
        assert root.connect.intentions.check(source="web", destination="db") is False
        root.connect.intentions.upsert(source="web", destination="db", action="allow")
        assert root.connect.intentions.check(source="web", destination="db") is True
