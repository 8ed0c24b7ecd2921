"""Self-registration library against the Kong emulator (a real server on a socket)."""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import os
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from bridge import AsyncKongGatewayRegistrator, KongGatewayRegistrator, RegistrationError
from bridge.emulators.kong import KongEmulator
from bridge.selfreg import GatewayUnavailable, OwnershipConflict

OWNER_TAG = "managed-by:kong-bridge-selfreg"


def _writes(kong: httpx.Client) -> int:
    return int(kong.get("/_emulator/counters").json()["writes"])


def test_doc_example_verbatim(kong: httpx.Client, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("API_GATEWAY_URL", str(kong.base_url))
    registrator = KongGatewayRegistrator(os.environ.get("API_GATEWAY_URL", "http://localhost:8001"))
    registrator.register(
        name="hello-service", paths=["/hello"], host="hello-service.service.consul", port=5000
    )
    service = kong.get("/services/hello-service").json()
    assert service["host"] == "hello-service.service.consul"
    assert OWNER_TAG in service["tags"]
    route = kong.get("/routes/hello-service").json()
    assert route["paths"] == ["/hello"] and route["service"] == {"id": service["id"]}
    targets = kong.get("/upstreams/hello-service.service.consul/targets").json()["data"]
    assert [t["target"] for t in targets] == ["127.0.0.1:5000"]  # address towards Kong


def test_reregistration_writes_nothing(kong: httpx.Client) -> None:
    registrator = KongGatewayRegistrator(str(kong.base_url))
    first = registrator.register(name="s", paths=["/s"], port=80, weight=5, slots=100)
    assert first.writes == 4
    before = _writes(kong)
    again = registrator.register(name="s", paths=["/s"], port=80, weight=5, slots=100)
    assert again.writes == 0
    assert _writes(kong) == before
    assert {a.outcome for a in again.actions} == {"unchanged"}


def test_changed_paths_update_the_route_only(kong: httpx.Client) -> None:
    registrator = KongGatewayRegistrator(str(kong.base_url))
    registrator.register(name="s", paths=["/old"], port=80)
    result = registrator.register(name="s", paths=["/new", "/v2"], port=80)
    assert [(a.kind, a.outcome) for a in result.actions if a.outcome != "unchanged"] == [
        ("route", "updated")
    ]
    assert kong.get("/routes/s").json()["paths"] == ["/new", "/v2"]


def test_weight_slots_and_route_options(kong: httpx.Client) -> None:
    KongGatewayRegistrator(str(kong.base_url)).register(
        name="s",
        paths=["/s"],
        port=81,
        weight=7,
        slots=64,
        virtual_host="s.dc1.consul",
        hosts=["s.example.com"],
        strip_path=False,
        preserve_host=True,
        methods=["GET"],
        protocols=["https"],
        address="10.1.2.3",
    )
    assert kong.get("/upstreams/s.dc1.consul").json()["slots"] == 64
    target = kong.get("/upstreams/s.dc1.consul/targets/10.1.2.3:81").json()
    assert target["weight"] == 7
    route = kong.get("/routes/s").json()
    assert (
        route["hosts"],
        route["strip_path"],
        route["preserve_host"],
        route["methods"],
        route["protocols"],
    ) == (["s.example.com"], False, True, ["GET"], ["https"])
    assert kong.get("/services/s").json()["host"] == "s.dc1.consul"


def test_dns_mode_has_no_upstream(kong: httpx.Client) -> None:
    KongGatewayRegistrator(str(kong.base_url)).register(
        name="d", paths=["/d"], host="d.service.consul", port=5000, mode="dns"
    )
    service = kong.get("/services/d").json()
    assert (service["host"], service["port"]) == ("d.service.consul", 5000)
    assert kong.get("/upstreams").json()["data"] == []


def test_unowned_service_is_an_error_unless_adopted(kong: httpx.Client) -> None:
    kong.post("/services", json={"name": "taken", "host": "legacy.internal", "tags": ["ops"]})
    registrator = KongGatewayRegistrator(str(kong.base_url), retry_seconds=1)
    with pytest.raises(OwnershipConflict, match="service 'taken' exists in Kong without"):
        registrator.register(name="taken", paths=["/t"], port=80, address="10.0.0.1")
    assert kong.get("/services/taken").json()["host"] == "legacy.internal"
    adopting = KongGatewayRegistrator(str(kong.base_url), adopt=True)
    adopting.register(name="taken", paths=["/t"], port=80, address="10.0.0.1")
    service = kong.get("/services/taken").json()
    assert service["host"] == "taken.service.consul"
    assert set(service["tags"]) == {"ops", OWNER_TAG}


def test_unregister_leaves_other_instances(kong: httpx.Client) -> None:
    first = KongGatewayRegistrator(str(kong.base_url))
    second = KongGatewayRegistrator(str(kong.base_url))
    first.register(name="m", paths=["/m"], port=80, address="10.0.0.1")
    second.register(name="m", paths=["/m"], port=80, address="10.0.0.2")
    result = first.unregister()
    assert [(a.kind, a.outcome) for a in result.actions] == [("target", "deleted")]
    targets = kong.get("/upstreams/m.service.consul/targets").json()["data"]
    assert [t["target"] for t in targets] == ["10.0.0.2:80"]
    assert kong.get("/services/m").status_code == 200
    last = second.unregister()
    assert [(a.kind, a.outcome) for a in last.actions] == [
        ("target", "deleted"),
        ("route", "deleted"),
        ("service", "deleted"),
        ("upstream", "deleted"),
    ]
    assert kong.get("/services/m").status_code == 404
    assert kong.get("/upstreams/m.service.consul").status_code == 404


def test_unregister_remove_service_and_foreign_routes_stay(kong: httpx.Client) -> None:
    registrator = KongGatewayRegistrator(str(kong.base_url))
    registrator.register(name="r", paths=["/r"], port=80, address="10.0.0.1")
    KongGatewayRegistrator(str(kong.base_url)).register(
        name="r", paths=["/r"], port=80, address="10.0.0.2"
    )
    kong.post("/services/r/routes", json={"name": "hand-made", "paths": ["/hand"]})
    result = registrator.unregister(remove_service=True)
    outcomes = {(a.kind, a.outcome) for a in result.actions}
    assert ("route", "deleted") in outcomes and ("service", "kept") in outcomes
    assert kong.get("/routes/hand-made").status_code == 200
    assert kong.get("/services/r").status_code == 200


def test_unregister_keeps_parents_holding_plugins_or_targets_not_ours(kong: httpx.Client) -> None:
    registrator = KongGatewayRegistrator(str(kong.base_url))
    registrator.register(name="p", paths=["/p"], port=80, address="10.0.0.1")
    kong.post("/routes/p/plugins", json={"name": "cors"}).raise_for_status()
    result = registrator.unregister(remove_service=True)
    kept = {a.kind: a.detail for a in result.actions if a.outcome == "kept"}
    assert "plugin cors" in kept["route"] and kept["service"] == "a route stays"
    assert kong.get("/routes/p/plugins").json()["data"][0]["name"] == "cors"

    registrator.register(name="q", paths=["/q"], port=80, address="10.0.0.1")
    kong.post("/upstreams/q.service.consul/targets", json={"target": "10.9.9.9:80"})
    result = registrator.unregister(remove_service=True)
    kept = {a.kind: a.detail for a in result.actions if a.outcome == "kept"}
    assert "target 10.9.9.9:80" in kept["upstream"]
    assert kong.get("/services/q").status_code == 404
    targets = kong.get("/upstreams/q.service.consul/targets").json()["data"]
    assert [t["target"] for t in targets] == ["10.9.9.9:80"]  # ours went, theirs stayed


def test_kong_down_gives_bounded_retries_then_error() -> None:
    with KongEmulator() as server:
        url = server.url
    registrator = KongGatewayRegistrator(url, retry_seconds=0.5, timeout=0.5)
    with pytest.raises(GatewayUnavailable, match=r"Kong unavailable after \d+ attempt"):
        registrator.register(name="x", paths=["/x"], port=80, address="10.0.0.1")


def test_kong_500_then_recovering(kong: httpx.Client) -> None:
    kong.put("/_emulator/faults", json={"fail_next": 3})
    result = KongGatewayRegistrator(str(kong.base_url)).register(
        name="flaky", paths=["/f"], port=80, address="10.0.0.1"
    )
    assert result.writes == 4
    assert kong.get("/services/flaky").status_code == 200


def test_what_kong_would_refuse_is_refused_before_any_write(kong: httpx.Client) -> None:
    registrator = KongGatewayRegistrator(str(kong.base_url))
    with pytest.raises(RegistrationError, match=r"service\.paths: expected paths starting"):
        registrator.register(name="bad", paths=["no-slash"], port=80, address="10.0.0.1")
    with pytest.raises(RegistrationError, match=r"service\.methods: expected upper-case"):
        registrator.register(name="bad", paths=["/a"], port=80, methods=["get"])
    assert kong.get("/_emulator/counters").json()["writes"] == 0


def test_register_argument_errors() -> None:
    registrator = KongGatewayRegistrator("http://127.0.0.1:9")
    with pytest.raises(RegistrationError, match="'name' is required"):
        registrator.register(paths=["/a"], port=80)
    with pytest.raises(RegistrationError, match="give 'paths'"):
        registrator.register(name="a", port=80)
    with pytest.raises(RegistrationError, match="'port' must be an integer"):
        registrator.register(name="a", paths=["/a"], port="http")  # type: ignore[arg-type]


def test_concurrent_registration_threads(kong: httpx.Client) -> None:
    url = str(kong.base_url)

    def register(index: int) -> int:
        return (
            KongGatewayRegistrator(url)
            .register(name="crowd", paths=["/crowd"], port=8080, address=f"10.0.1.{index}")
            .writes
        )

    with ThreadPoolExecutor(max_workers=16) as pool:
        list(pool.map(register, range(16)))
    assert len(kong.get("/services?tags=" + OWNER_TAG).json()["data"]) == 1
    assert len(kong.get("/routes").json()["data"]) == 1
    assert len(kong.get("/upstreams").json()["data"]) == 1
    targets = kong.get("/upstreams/crowd.service.consul/targets").json()["data"]
    assert sorted(t["target"] for t in targets) == sorted(f"10.0.1.{i}:8080" for i in range(16))


def _register_in_process(url: str, index: int) -> None:
    KongGatewayRegistrator(url).register(
        name="procs", paths=["/p"], port=9000, address=f"10.0.2.{index}"
    )


def test_concurrent_registration_processes(kong: httpx.Client) -> None:
    context = mp.get_context("spawn")
    workers = [
        context.Process(target=_register_in_process, args=(str(kong.base_url), i)) for i in range(6)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
    assert [w.exitcode for w in workers] == [0] * 6
    assert len(kong.get("/services").json()["data"]) == 1
    assert len(kong.get("/routes").json()["data"]) == 1
    targets = kong.get("/upstreams/procs.service.consul/targets").json()["data"]
    assert len(targets) == 6


def test_async_twin_registers_and_unregisters(kong: httpx.Client) -> None:
    async def scenario() -> tuple[int, int]:
        registrator = AsyncKongGatewayRegistrator(str(kong.base_url))
        created = await registrator.register(
            name="aio", paths=["/aio"], port=80, address="10.0.3.1"
        )
        again = await registrator.register(name="aio", paths=["/aio"], port=80, address="10.0.3.1")
        assert kong.get("/services/aio").status_code == 200
        await registrator.unregister()
        return created.writes, again.writes

    assert asyncio.run(scenario()) == (4, 0)
    assert kong.get("/services/aio").status_code == 404
