"""The diff, property-tested against the Kong emulator: applying a plan reaches the goal."""

from __future__ import annotations

import asyncio

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bridge.actual import KongState, read_owned, read_owned_concurrently
from bridge.apply import apply_plan, record
from bridge.desired import RouteSpec, ServiceSpec, ServiceState, TargetSpec, UpstreamSpec
from bridge.emulators.kong import KongEmulator
from bridge.kong import AsyncKongClient, KongClient, KongConnection
from bridge.mapping import service_tag
from bridge.plan import diff

OWNER = "prop"
TAG = f"managed-by:{OWNER}"
ADDRESSES = [f"10.0.0.{i}:80" for i in range(1, 5)]


@st.composite
def service_states(draw: st.DrawFn, name: str) -> ServiceState:
    tags = (TAG, service_tag(name))
    host = f"{name}.service.consul"
    route_count = draw(st.integers(1, 2))
    routes = tuple(
        RouteSpec(
            name=name if i == 0 else f"{name}-r{i}",
            paths=tuple(draw(st.sets(st.sampled_from(["/a", "/b", f"/{name}"]), min_size=1))),
            strip_path=draw(st.none() | st.booleans()),
            tags=tags,
        )
        for i in range(route_count)
    )
    service = ServiceSpec(
        name=name,
        host=host,
        tags=tags,
        protocol=draw(st.sampled_from([None, "http", "https"])),
        extra=draw(st.sampled_from([{}, {"retries": 2}])),
    )
    if draw(st.booleans()):  # DNS mode
        return ServiceState(
            service=ServiceSpec(name=name, host=host, port=5000, tags=tags), routes=routes
        )
    targets = tuple(
        TargetSpec(target=t, weight=draw(st.integers(0, 100)), tags=tags)
        for t in sorted(draw(st.sets(st.sampled_from(ADDRESSES))))
    )
    upstream = UpstreamSpec(name=host, slots=draw(st.sampled_from([None, 100, 1000])), tags=tags)
    return ServiceState(service=service, routes=routes, upstream=upstream, targets=targets)


@st.composite
def worlds(draw: st.DrawFn) -> dict[str, ServiceState]:
    names = draw(st.sets(st.sampled_from(["a", "b", "c"]), max_size=3))
    return {name: draw(service_states(name)) for name in sorted(names)}


def _converge(url: str, desired: dict[str, ServiceState | None]) -> KongState:
    async def converge() -> KongState:
        async with AsyncKongClient(KongConnection(admin_url=url)) as kong:
            state = await read_owned_concurrently(kong, OWNER)
            async for outcome in apply_plan(kong, diff(desired, state)):
                assert outcome.ok, outcome.error
                record(state, outcome)
            return state

    return asyncio.run(converge())


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(before=worlds(), after=worlds())
def test_applying_the_plan_reaches_the_desired_state(
    kong_server: KongEmulator, before: dict[str, ServiceState], after: dict[str, ServiceState]
) -> None:
    httpx.post(kong_server.url + "/_emulator/reset").raise_for_status()
    with KongClient(KongConnection(admin_url=kong_server.url)) as kong:
        _converge(kong_server.url, dict(before))
        goal: dict[str, ServiceState | None] = {
            name: after.get(name) for name in set(before) | set(after)
        }
        cached = _converge(kong_server.url, goal)
        fresh = kong.run(read_owned(OWNER))
        assert not diff(goal, fresh), "Kong did not reach the desired state"
        assert not diff(goal, cached), "the cached state drifted from Kong's"
        assert {n for n, o in fresh.services.items() if o.service} == set(after)
        for name, state in after.items():
            owned = fresh.services[name]
            expected = {t.target for t in state.targets}
            assert set(owned.targets) == expected
            assert set(owned.routes) == {r.name for r in state.routes}
        writes_before = httpx.get(kong_server.url + "/_emulator/counters").json()["writes"]
        assert not diff(goal, kong.run(read_owned(OWNER)))  # nothing left to do
        assert httpx.get(kong_server.url + "/_emulator/counters").json()["writes"] == (
            writes_before
        )
