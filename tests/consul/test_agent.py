"""Consul emulator: the agent endpoints, with py-consul and raw HTTP."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator

import consul
import httpx
import pytest

from bridge.emulators.consul import ConsulEmulator
from tests.helpers import eventually


@pytest.fixture(scope="module")
def probe_target() -> Iterator[str]:
    """An HTTP server whose paths answer 200, 429 and 500, for HTTP checks."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            status = {"/ok": 200, "/busy": 429}.get(self.path, 500)
            self.send_response(status)
            self.end_headers()
            self.wfile.write(b"hello")

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


def _status(c: consul.Consul, check_id: str) -> str:
    return str(c.agent.checks()[check_id]["Status"])


def test_register_defaults(consul_client: consul.Consul) -> None:
    consul_client.agent.service.register(
        "web", service_id="web-1", address="10.0.0.5", port=8080, tags=["a"]
    )
    service = consul_client.agent.services()["web-1"]
    assert service["Weights"] == {"Passing": 1, "Warning": 1}
    assert service["TaggedAddresses"] == {
        "lan_ipv4": {"Address": "10.0.0.5", "Port": 8080},
        "wan_ipv4": {"Address": "10.0.0.5", "Port": 8080},
    }
    assert service["Meta"] == {} and service["Tags"] == ["a"]


@pytest.mark.parametrize(
    ("address", "tagged"),
    [
        ("::ffff:10.0.0.5", ("lan_ipv4", "wan_ipv4")),  # Go's To4: an IPv4 address
        ("2001:db8::5", ("lan_ipv6", "wan_ipv6")),
        ("fe80::1%eth0", ()),  # Go's ParseIP takes no zone
        ("010.0.0.5", ()),  # nor leading zeros
        ("web.internal", ()),
    ],
)
def test_default_tagged_addresses_follow_gos_parse_ip(
    consul_client: consul.Consul, address: str, tagged: tuple[str, ...]
) -> None:
    consul_client.agent.service.register("web", service_id="web-1", address=address, port=80)
    service = consul_client.agent.services()["web-1"]
    expected = {name: {"Address": address, "Port": 80} for name in tagged}
    assert service.get("TaggedAddresses") == (expected or None)  # empty: omitted


def test_register_accepts_camel_and_snake_case(consul_http: httpx.Client) -> None:
    consul_http.put(
        "/v1/agent/service/register",
        json={
            "name": "snake",
            "id": "s1",
            "port": 1,
            "enable_tag_override": True,
            "tagged_addresses": {"lan": {"address": "10.1.1.1", "port": 1}},
            "weights": {"passing": 3, "warning": 2},
            "meta": {"Team": "x"},
        },
    ).raise_for_status()
    consul_http.put(
        "/v1/agent/service/register", json={"Name": "camel", "ID": "c1", "Port": 2}
    ).raise_for_status()
    services = consul_http.get("/v1/agent/services").json()
    assert services["s1"]["EnableTagOverride"] is True
    assert services["s1"]["Weights"] == {"Passing": 3, "Warning": 2}
    assert services["s1"]["TaggedAddresses"]["lan"] == {"Address": "10.1.1.1", "Port": 1}
    assert services["s1"]["Meta"] == {"Team": "x"}  # user keys keep their case
    assert services["c1"]["Port"] == 2


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"Port": 1}, "Missing service name"),
        (
            {"Name": "x", "Weights": {"Passing": 0}},
            "Invalid Weights: Passing must be greater than 0",
        ),
        (
            {"Name": "x", "Weights": {"Passing": 65536}},
            "Invalid Weights: DNS Weight must be between 0 and 65535",
        ),
        (
            {"Name": "x", "Meta": {f"k{i}": "v" for i in range(65)}},
            # Consul's text says "Node" for services too (structs.validateMetadata).
            "Invalid Service Meta: Node metadata cannot contain more than 64 key/value pairs",
        ),
        (
            {"Name": "x", "Meta": {"k" * 129: "v"}},
            f"Invalid Service Meta: Couldn't load metadata pair ('{'k' * 129}', 'v'): "
            "Key is too long (limit: 128 characters)",
        ),
        (
            {"Name": "x", "Meta": {"k": "é" * 257}},  # 514 bytes: Go's len counts bytes
            f"Invalid Service Meta: Couldn't load metadata pair ('k', '{'é' * 257}'): "
            "Value is too long (limit: 512 characters)",
        ),
        (
            {"Name": "x", "Meta": {"consul-x": "v"}},
            "Invalid Service Meta: Couldn't load metadata pair ('consul-x', 'v'): "
            "Key prefix 'consul-' is reserved for internal use",
        ),
        (
            {"Name": "x", "Meta": {"": "v"}},
            "Invalid Service Meta: Couldn't load metadata pair ('', 'v'): Key cannot be blank",
        ),
        (
            {"Name": "x", "Meta": {"kong.enable": "true"}},
            "Invalid Service Meta: Couldn't load metadata pair ('kong.enable', 'true'): "
            "Key contains invalid characters",
        ),
    ],
)
def test_register_validation(consul_http: httpx.Client, body: dict, message: str) -> None:
    response = consul_http.put("/v1/agent/service/register", json=body)
    assert response.status_code == 400
    assert response.text.strip() == message
    assert response.headers["content-type"].startswith("text/plain")


def test_register_is_put_only(consul_http: httpx.Client) -> None:
    response = consul_http.get("/v1/agent/service/register")
    assert response.status_code == 405 and response.headers["allow"] == "PUT"


def test_new_checks_start_critical_and_ttl_updates(consul_client: consul.Consul) -> None:
    consul_client.agent.service.register("t", service_id="t1", check=consul.Check.ttl("30s"))
    assert _status(consul_client, "service:t1") == "critical"
    consul_client.agent.check.ttl_pass("service:t1", notes="fine")
    check = consul_client.agent.checks()["service:t1"]
    assert (check["Status"], check["Output"]) == ("passing", "fine")
    consul_client.agent.check.ttl_warn("service:t1")
    assert _status(consul_client, "service:t1") == "warning"
    consul_client.agent.check.ttl_fail("service:t1")
    assert _status(consul_client, "service:t1") == "critical"


def test_check_status_given_and_update_endpoint(consul_http: httpx.Client) -> None:
    consul_http.put(
        "/v1/agent/service/register",
        json={"Name": "u", "Check": {"TTL": "30s", "Status": "passing"}},
    ).raise_for_status()
    assert consul_http.get("/v1/agent/checks").json()["service:u"]["Status"] == "passing"
    consul_http.put(
        "/v1/agent/check/update/service:u", json={"Status": "warning", "Output": "slow"}
    ).raise_for_status()
    check = consul_http.get("/v1/agent/checks").json()["service:u"]
    assert (check["Status"], check["Output"]) == ("warning", "slow")
    assert consul_http.put("/v1/agent/check/pass/nope").status_code == 404


def test_ttl_expires_to_critical(consul_client: consul.Consul) -> None:
    consul_client.agent.service.register("e", check=consul.Check.ttl("1s"))
    consul_client.agent.check.ttl_pass("service:e")
    eventually(lambda: _status(consul_client, "service:e") == "critical")
    assert consul_client.agent.checks()["service:e"]["Output"] == "TTL expired"


@pytest.mark.parametrize(
    ("path", "status"), [("/ok", "passing"), ("/busy", "warning"), ("/fail", "critical")]
)
def test_http_checks_run(
    consul_client: consul.Consul, probe_target: str, path: str, status: str
) -> None:
    consul_client.agent.service.register(
        "h", check=consul.Check.http(probe_target + path, interval="1s")
    )
    eventually(lambda: "Output: hello" in consul_client.agent.checks()["service:h"]["Output"])
    assert _status(consul_client, "service:h") == status


def test_tcp_checks_run(consul_client: consul.Consul, consul_server: object) -> None:
    port = consul_server.port  # type: ignore[attr-defined]
    consul_client.agent.service.register(
        "up", check=consul.Check.tcp("127.0.0.1", port, interval="1s")
    )
    consul_client.agent.service.register(
        "down", check=consul.Check.tcp("127.0.0.1", 9, interval="1s")
    )
    eventually(lambda: _status(consul_client, "service:up") == "passing")
    eventually(lambda: consul_client.agent.checks()["service:down"]["Output"] != "")
    assert _status(consul_client, "service:down") == "critical"


def test_check_for_unknown_service_is_not_found(consul_http: httpx.Client) -> None:
    response = consul_http.put(
        "/v1/agent/check/register", json={"Name": "c", "ServiceID": "ghost", "TTL": "10s"}
    )
    assert response.status_code == 404
    assert 'ServiceID "ghost" does not exist' in response.text


def test_multiple_checks_get_numbered_ids(consul_http: httpx.Client) -> None:
    consul_http.put(
        "/v1/agent/service/register", json={"Name": "m", "Checks": [{"TTL": "10s"}, {"TTL": "20s"}]}
    ).raise_for_status()
    assert {"service:m:1", "service:m:2"} <= set(consul_http.get("/v1/agent/checks").json())


def test_deregister_removes_checks_and_unknown_ids_are_not_found(
    consul_client: consul.Consul, consul_http: httpx.Client
) -> None:
    consul_client.agent.service.register("d", check=consul.Check.ttl("10s"))
    assert consul_client.agent.service.deregister("d")
    assert "service:d" not in consul_client.agent.checks()
    gone = consul_http.put("/v1/agent/service/deregister/d")
    assert gone.status_code == 404
    assert gone.text == (
        'Unknown service ID "d". Ensure that the service ID is passed, not the service name.'
    )
    # The server's own "consul" service is in the catalog, not the agent's.
    assert consul_http.put("/v1/agent/service/deregister/consul").status_code == 404
    check = consul_http.put("/v1/agent/check/deregister/ghost")
    assert check.status_code == 404 and 'Unknown check ID "ghost"' in check.text


def test_agent_service_content_hash_blocking(consul_http: httpx.Client) -> None:
    consul_http.put("/v1/agent/service/register", json={"Name": "hs", "Port": 1})
    first = consul_http.get("/v1/agent/service/hs")
    digest = first.headers["x-consul-contenthash"]
    assert first.json()["ContentHash"] == digest
    same = consul_http.get(f"/v1/agent/service/hs?hash={digest}&wait=100ms")
    assert same.headers["x-consul-contenthash"] == digest
    consul_http.put("/v1/agent/service/register", json={"Name": "hs", "Port": 2})
    changed = consul_http.get(f"/v1/agent/service/hs?hash={digest}&wait=5s")
    assert changed.headers["x-consul-contenthash"] != digest
    assert consul_http.get("/v1/agent/service/none").status_code == 404


def test_service_and_node_maintenance(
    consul_client: consul.Consul, consul_http: httpx.Client
) -> None:
    consul_client.agent.service.register("mt", check=consul.Check.ttl("60s"))
    consul_client.agent.check.ttl_pass("service:mt")
    assert len(consul_client.health.service("mt", passing=True)[1]) == 1
    consul_client.agent.service.maintenance("mt", "true", reason="deploy")
    check = consul_client.agent.checks()["_service_maintenance:mt"]
    assert (check["Status"], check["Notes"]) == ("critical", "deploy")
    assert consul_client.health.service("mt", passing=True)[1] == []
    consul_client.agent.service.maintenance("mt", "false")
    assert len(consul_client.health.service("mt", passing=True)[1]) == 1
    consul_http.put("/v1/agent/maintenance?enable=true").raise_for_status()
    assert consul_client.health.service("mt", passing=True)[1] == []
    consul_http.put("/v1/agent/maintenance?enable=false").raise_for_status()
    assert len(consul_client.health.service("mt", passing=True)[1]) == 1


def test_self_and_members(consul_client: consul.Consul) -> None:
    me = consul_client.agent.self()
    assert me["Config"]["Datacenter"] == "dc1" and me["Config"]["Version"] == "1.20.1"
    (member,) = consul_client.agent.members()
    assert member["Status"] == 1 and member["Name"] == me["Config"]["NodeName"]


def test_fresh_agent_has_no_local_checks(consul_http: httpx.Client) -> None:
    assert consul_http.get("/v1/agent/checks").json() == {}
    # serfHealth still exists, as a catalog check of the node.
    node_checks = consul_http.get("/v1/health/node/consul-emulator").json()
    assert [c["CheckID"] for c in node_checks] == ["serfHealth"]


def test_agent_services_shape_of_a_plain_service(consul_http: httpx.Client) -> None:
    consul_http.put("/v1/agent/service/register", json={"Name": "plain"}).raise_for_status()
    service = consul_http.get("/v1/agent/services").json()["plain"]
    assert list(service) == [
        "ID",
        "Service",
        "Tags",
        "Meta",
        "Port",
        "Address",
        "Weights",
        "EnableTagOverride",
        "Datacenter",
    ]
    assert service["Port"] == 0


def test_agent_services_proxy_and_connect_only_where_consul_sets_them(
    consul_http: httpx.Client,
) -> None:
    consul_http.put(
        "/v1/agent/service/register", json={"Name": "native", "Connect": {"Native": True}}
    ).raise_for_status()
    consul_http.put(
        "/v1/agent/service/register",
        json={
            "Name": "web-proxy",
            "Kind": "connect-proxy",
            "Port": 21000,
            "Proxy": {"DestinationServiceName": "web"},
        },
    ).raise_for_status()
    services = consul_http.get("/v1/agent/services").json()
    assert services["native"]["Connect"] == {"Native": True} and "Proxy" not in services["native"]
    assert services["web-proxy"]["Kind"] == "connect-proxy"
    assert services["web-proxy"]["Proxy"]["DestinationServiceName"] == "web"
    assert "Connect" not in services["web-proxy"]


def test_percent_encoded_path_segments_are_decoded(
    consul_http: httpx.Client, consul_client: consul.Consul
) -> None:
    sid = "app#127.0.0.1#3000"
    consul_http.put(
        "/v1/agent/service/register", json={"Name": "app", "ID": sid, "Port": 3000}
    ).raise_for_status()
    found = consul_http.get("/v1/health/service/app").json()
    assert [e["Service"]["ID"] for e in found] == [sid]
    by_agent = consul_http.get("/v1/agent/service/app%23127.0.0.1%233000")
    assert by_agent.status_code == 200 and by_agent.json()["ID"] == sid
    consul_http.put("/v1/kv/a%23b%3Fc", content=b"v").raise_for_status()
    assert consul_client.kv.get("a#b?c")[1]["Value"] == b"v"
    consul_http.put("/v1/agent/service/deregister/app%23127.0.0.1%233000").raise_for_status()
    assert consul_http.get("/v1/health/service/app").json() == []


def test_root_redirects_to_the_ui(consul_http: httpx.Client) -> None:
    root = consul_http.get("/")
    assert root.status_code == 301 and root.headers["location"] == "/ui/"
    assert consul_http.get("/", follow_redirects=True).status_code == 200
    assert consul_http.get("/ui/").status_code == 200


def test_http_check_against_the_agent_itself_passes(
    consul_server: object, consul_client: consul.Consul
) -> None:
    url = consul_server.url
    consul_client.agent.service.register(
        "self-probe", check=consul.Check.http(f"{url}/", interval="1s")
    )
    eventually(lambda: _status(consul_client, "service:self-probe") == "passing")


def test_agent_self_stats_name_the_leader(consul_http: httpx.Client) -> None:
    stats = consul_http.get("/v1/agent/self").json()["Stats"]
    leader = consul_http.get("/v1/status/leader").json()
    assert stats["consul"]["leader_addr"] == leader == "127.0.0.1:8300"
    assert leader in consul_http.get("/v1/status/peers").json()
    assert {"agent", "build", "consul", "raft", "runtime", "serf_lan", "serf_wan"} <= set(stats)
    assert stats["raft"]["state"] == "Leader"
    assert all(isinstance(v, str) for section in stats.values() for v in section.values())


def test_wan_members(consul_http: httpx.Client) -> None:
    (lan,) = consul_http.get("/v1/agent/members").json()
    (wan,) = consul_http.get("/v1/agent/members?wan=1").json()
    assert (lan["Name"], lan["Port"]) == ("consul-emulator", 8301)
    assert (wan["Name"], wan["Port"]) == ("consul-emulator.dc1", 8302)


def test_reload(consul_http: httpx.Client) -> None:
    assert consul_http.put("/v1/agent/reload").status_code == 200
    assert consul_http.get("/v1/agent/reload").status_code == 405


def test_leave_stops_the_agent() -> None:
    with ConsulEmulator() as server:
        assert httpx.put(f"{server.url}/v1/agent/leave").status_code == 200

        def refused() -> bool:
            try:
                httpx.get(f"{server.url}/v1/status/leader", timeout=2)
            except httpx.ConnectError:
                return True
            return False

        eventually(refused, timeout=10)


def test_metrics_json_and_prometheus(consul_http: httpx.Client) -> None:
    body = consul_http.get("/v1/agent/metrics").json()
    assert set(body) == {"Timestamp", "Gauges", "Points", "Counters", "Samples"}
    assert body["Timestamp"].endswith("+0000 UTC")
    names = {g["Name"] for g in body["Gauges"]}
    assert {"consul.runtime.num_goroutines", "consul.state.nodes"} <= names
    text = consul_http.get("/v1/agent/metrics?format=prometheus")
    assert text.headers["content-type"].startswith("text/plain; version=0.0.4")
    assert "# TYPE consul_state_nodes gauge\nconsul_state_nodes 1\n" in text.text


def test_monitor_streams_logs(consul_server: ConsulEmulator, consul_http: httpx.Client) -> None:
    opened_before = consul_http.get("/_emulator/state").json()["open_connections"]
    bogus = consul_http.get("/v1/agent/monitor?loglevel=bogus")
    assert (bogus.status_code, bogus.text) == (400, "Unknown log level: bogus")
    with httpx.stream("GET", f"{consul_server.url}/v1/agent/monitor", timeout=10) as stream:
        assert stream.status_code == 200
        consul_http.put("/v1/agent/service/register", json={"Name": "logged"})
        line = next(stream.iter_lines())
    assert "[INFO]  agent: Synced service: service=logged" in line
    with httpx.stream(
        "GET", f"{consul_server.url}/v1/agent/monitor?logjson&loglevel=debug", timeout=10
    ) as stream:
        consul_http.put("/v1/agent/service/deregister/logged")
        record = json.loads(next(stream.iter_lines()))
    assert record["@message"] == "Deregistered service" and record["service"] == "logged"
    state = "/_emulator/state"
    eventually(lambda: consul_http.get(state).json()["open_connections"] == opened_before)


def test_force_leave(consul_http: httpx.Client) -> None:
    unknown = consul_http.put("/v1/agent/force-leave/ghost")
    assert (unknown.status_code, unknown.text) == (500, "agent: No node found with name 'ghost'")
    assert consul_http.put("/v1/agent/force-leave/consul-emulator").status_code == 200


def test_agent_token_needs_acls(consul_http: httpx.Client) -> None:
    response = consul_http.put("/v1/agent/token/default", json={"Token": "x"})
    assert (response.status_code, response.text) == (401, "ACL support disabled")
    # Consul's default policy, allow: it does not reach ACL management.
    with ConsulEmulator(acl_master_token="root") as server:
        headers = {"X-Consul-Token": "root"}
        ok = httpx.put(f"{server.url}/v1/agent/token/agent", json={"Token": "t"}, headers=headers)
        assert ok.status_code == 200
        bad = httpx.put(f"{server.url}/v1/agent/token/nope", json={"Token": "t"}, headers=headers)
        assert bad.status_code == 404
        # It takes acl:write, which the default policy never gives.
        anonymous = httpx.put(f"{server.url}/v1/agent/token/agent", json={"Token": "t"})
        assert anonymous.status_code == 403


def test_ids_with_slashes_take_the_rest_of_the_path(consul_http: httpx.Client) -> None:
    consul_http.put(
        "/v1/agent/service/register", json={"Name": "web", "ID": "web/1", "Check": {"TTL": "9s"}}
    ).raise_for_status()
    assert consul_http.get("/v1/agent/service/web%2F1").json()["ID"] == "web/1"
    assert consul_http.put("/v1/agent/check/pass/service:web/1").status_code == 200
    assert consul_http.get("/v1/agent/checks").json()["service:web/1"]["Status"] == "passing"
    assert consul_http.put("/v1/agent/service/deregister/web/1").status_code == 200
    assert consul_http.get("/v1/agent/services").json() == {}


def test_a_sidecar_service_block_registers_the_proxy(consul_client: consul.Consul) -> None:
    """agent/sidecar_service.go: a service of its own, with defaults from the parent."""
    consul_client.agent.service.register(
        "web", port=8080, tags=["v1"], connect={"sidecar_service": {}}
    )
    consul_client.agent.service.register("api", port=9090, connect={"SidecarService": {}})
    services = consul_client.agent.services()
    proxy = services["web-sidecar-proxy"]
    assert (proxy["Kind"], proxy["Service"], proxy["Port"], proxy["Tags"]) == (
        "connect-proxy",
        "web-sidecar-proxy",
        21000,
        ["v1"],
    )
    assert proxy["Proxy"]["DestinationServiceID"] == "web"
    assert proxy["Proxy"]["LocalServicePort"] == 8080
    assert services["api-sidecar-proxy"]["Port"] == 21001  # the next free one
    assert "Connect" not in services["web"]  # the block is not kept on the parent
    checks = consul_client.agent.checks()
    assert checks["service:web-sidecar-proxy:1"]["Name"] == "Connect Sidecar Listening"
    assert checks["service:web-sidecar-proxy:2"]["Status"] == "passing"  # alias, no checks
    consul_client.agent.service.deregister("web")
    assert set(consul_client.agent.services()) == {"api", "api-sidecar-proxy"}


def test_an_alias_check_follows_the_service_it_aliases(consul_client: consul.Consul) -> None:
    """agent/checks/alias.go: critical wins, then warning; a missing service is critical."""
    agent = consul_client.agent
    agent.service.register("web", service_id="web-1", check=consul.Check.ttl("60s"))
    # On a service of its own, as a sidecar's: a node-level alias reads itself too.
    agent.service.register("proxy", service_id="proxy-1")
    agent.check.register(
        "web alias", check={"AliasService": "web-1"}, check_id="alias", service_id="proxy-1"
    )

    def alias() -> tuple[str, str]:
        row = agent.checks()["alias"]
        return row["Status"], row["Output"]

    assert alias() == ("critical", "Aliased check \"Service 'web' check\" failing: ")
    agent.check.ttl_pass("service:web-1")
    assert alias() == ("passing", "All checks passing.")
    agent.check.ttl_warn("service:web-1", notes="slow")
    assert alias() == ("warning", "Aliased check \"Service 'web' check\" failing: slow")
    agent.service.deregister("web-1")
    assert alias() == ("critical", "Service web-1 could not be found on node ")
