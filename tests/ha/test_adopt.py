"""A 409 on create: ours (another replica made it) is adopted; anyone else's is a clash."""

from __future__ import annotations

import asyncio

import httpx

from bridge.apply import ServiceOutcome, apply_service
from bridge.emulators.kong import KongEmulator
from bridge.kong import AsyncKongClient, Call, KongConnection
from bridge.plan import Operation

OURS = "managed-by:kong-bridge"


def _create_web(tags: list[str]) -> Operation:
    body = {"name": "web", "host": "web.service.consul", "tags": tags}
    return Operation("web", "services", "create", "web", Call("POST", "/services", body))


def _apply(url: str, op: Operation) -> ServiceOutcome:
    async def run() -> ServiceOutcome:
        async with AsyncKongClient(KongConnection(url)) as client:
            return await apply_service(client, "web", [op])

    return asyncio.run(run())


def test_entity_with_our_owner_tag_is_adopted(
    kong: httpx.Client, kong_server: KongEmulator
) -> None:
    made = kong.post("/services", json={"name": "web", "host": "elsewhere", "tags": [OURS]})
    outcome = _apply(kong_server.url, _create_web([OURS, "consul-service:web"]))
    assert outcome.ok and not outcome.clash
    [(_op, row)] = outcome.done
    assert row is not None and row["id"] == made.json()["id"]  # read back, not overwritten
    assert kong.get("/services/web").json()["host"] == "elsewhere"  # a resync patches it


def test_entity_without_our_owner_tag_is_a_clash(
    kong: httpx.Client, kong_server: KongEmulator
) -> None:
    kong.post("/services", json={"name": "web", "host": "elsewhere", "tags": ["team:a"]})
    outcome = _apply(kong_server.url, _create_web([OURS]))
    assert outcome.clash and "already exists in Kong without our owner tag" in str(outcome.error)


def test_entity_of_another_bridge_is_a_clash(kong: httpx.Client, kong_server: KongEmulator) -> None:
    kong.post("/services", json={"name": "web", "host": "x", "tags": ["managed-by:kong-bridge-b"]})
    outcome = _apply(kong_server.url, _create_web([OURS]))
    assert outcome.clash
