"""The deletion guard: a sliding window, held until released, reported while held.

Units drive :class:`DeletionGuard` with real plans from the diff and a fake
clock; the chaos scenarios run both emulators and ``kong-bridge run`` as
separate processes and deregister 80 of 100 services at once and spread out.
"""

from __future__ import annotations

import json
import time

import pytest

from bridge.actual import KongState, OwnedService
from bridge.guard import DeletionGuard, GuardPolicy
from bridge.plan import Plan, diff
from tests.chaos import _safety_helpers as helpers
from tests.chaos._safety_helpers import (
    Stack,
    all_names,
    assert_kong_matches_consul,
    cli,
    start_quietly,
)
from tests.helpers import eventually

kong_url, consul_url, stack = helpers.kong_url, helpers.consul_url, helpers.stack


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def owned_state(count: int) -> KongState:
    state = KongState()
    for number in range(count):
        name = f"s{number}"
        state.services[name] = OwnedService(
            service={"id": f"id-{name}", "name": name},
            routes={name: {"id": f"r-{name}", "name": name}},
            upstream={"id": f"u-{name}", "name": f"{name}.service.consul"},
            targets={"10.0.0.1:80": {"id": f"t-{name}", "target": "10.0.0.1:80"}},
        )
    return state


def removals(state: KongState, names: list[str]) -> Plan:
    return diff(dict.fromkeys(names), state, names)


def review(guard: DeletionGuard, state: KongState, names: list[str], **kw: object) -> Plan:
    owned = [n for n, o in state.services.items() if o.service]
    trusted = kw.pop("trusted", lambda _name: True)
    return guard.review(
        removals(state, names), considered=names, owned=owned, trusted=trusted, **kw
    )  # type: ignore[arg-type]


def forget(state: KongState, plan: Plan) -> None:
    for name in {op.service for op in plan.operations}:
        state.services.pop(name, None)


def test_a_burst_of_80_of_100_is_held_whole() -> None:
    clock, state = Clock(), owned_state(100)
    guard = DeletionGuard(GuardPolicy(settle_seconds=5), clock)
    gone = [f"s{n}" for n in range(80)]
    # The burst arrives in pieces, as watch answers do; none is applied while settling.
    for start in range(0, 80, 8):
        assert not review(guard, state, gone[start : start + 8])
        clock.now += 0.1
    clock.now += 5
    assert guard.due() == set(gone)
    assert not review(guard, state, gone)
    held = guard.held
    assert {h.service for h in held} == set(gone)
    assert {h.kind for h in held} == {"services", "routes", "upstreams"}  # targets: cascade
    assert "deletes 80 of 100 owned services within 600s, more than 50%" in held[0].reason
    assert guard.due() == set()  # held: nothing to re-plan until a release


def test_the_same_80_spread_out_are_held_past_the_share() -> None:
    clock, state = Clock(), owned_state(100)
    guard = DeletionGuard(GuardPolicy(settle_seconds=5), clock)
    deleted = 0
    for number in range(80):  # 4 per second
        clock.now += 0.25
        applied = review(guard, state, [f"s{number}", *sorted(guard.due())])
        deleted += sum(op.kind == "services" for op in applied.operations)
        forget(state, applied)
    clock.now += 5
    applied = review(guard, state, sorted(guard.due()))
    deleted += sum(op.kind == "services" for op in applied.operations)
    assert deleted <= 50  # never more than the share of what we owned at the start
    assert len({h.service for h in guard.held}) == 80 - deleted
    assert len(state.services) >= 50


def test_held_survives_later_plans_and_leaves_when_released() -> None:
    clock, state = Clock(), owned_state(10)
    guard = DeletionGuard(GuardPolicy(), clock)
    gone = [f"s{n}" for n in range(8)]
    assert not review(guard, state, gone)
    assert len({h.service for h in guard.held}) == 8
    owned = list(state.services)
    assert not guard.review(Plan(), considered=["s9"], owned=owned, trusted=bool)  # no deletions
    assert not review(guard, state, gone)  # a resync re-plans them: still held
    assert len({h.service for h in guard.held}) == 8
    first_since = {(h.service, h.kind): h.since for h in guard.held}
    assert guard.release(["s0", "s1", "s9"]) == ["s0", "s1"]
    assert guard.due() >= {"s0", "s1"}
    applied = review(guard, state, gone)
    assert {op.service for op in applied.operations} == {"s0", "s1"}
    forget(state, applied)
    assert {h.service for h in guard.held} == set(gone) - {"s0", "s1"}
    assert all(h.since == first_since[(h.service, h.kind)] for h in guard.held)
    assert guard.release() == sorted(set(gone) - {"s0", "s1"})
    rest = [name for name in gone if name in state.services]
    assert {op.service for op in review(guard, state, rest).operations} == set(rest)
    assert guard.held == ()


def test_a_held_service_that_comes_back_is_no_longer_held() -> None:
    state = owned_state(4)
    guard = DeletionGuard(GuardPolicy())
    review(guard, state, ["s0", "s1", "s2"])
    assert len({h.service for h in guard.held}) == 3
    back = guard.review(Plan(), considered=["s0"], owned=list(state.services), trusted=bool)
    assert not back
    assert {h.service for h in guard.held} == {"s1", "s2"}


def test_doubtful_reads_hold_and_an_operator_cannot_release_them() -> None:
    state = owned_state(10)
    guard = DeletionGuard(GuardPolicy())
    applied = review(guard, state, ["s0"], trusted=lambda _name: False)
    assert not applied
    assert "not trusted" in guard.held[0].reason
    assert guard.release(["s0"]) == []
    applied = review(guard, state, ["s0"])  # the trusted read confirms it
    assert {op.service for op in applied.operations} == {"s0"} and guard.held == ()


def test_a_trusted_stable_catalog_confirms_after_the_configured_time() -> None:
    clock, state = Clock(), owned_state(10)
    guard = DeletionGuard(GuardPolicy(confirm_after_seconds=60), clock)
    gone = [f"s{n}" for n in range(8)]
    review(guard, state, gone)
    clock.now += 59
    assert not review(guard, state, gone)
    review(guard, state, ["s9"], trusted=lambda _name: False)  # a doubtful read: not stable
    clock.now += 59
    assert not review(guard, state, gone)
    clock.now += 2
    assert {op.service for op in review(guard, state, gone).operations} == set(gone)


def test_one_shot_release_lets_removals_through() -> None:
    state = owned_state(10)
    guard = DeletionGuard(GuardPolicy(operator_confirmed=True))
    gone = [f"s{n}" for n in range(8)]
    assert {op.service for op in review(guard, state, gone).operations} == set(gone)


def test_a_window_judges_against_the_most_owned_in_it() -> None:
    clock, state = Clock(), owned_state(10)
    guard = DeletionGuard(GuardPolicy(window_seconds=100), clock)
    for number in range(5):  # 5 of 10: at the limit, allowed
        applied = review(guard, state, [f"s{number}"])
        assert applied
        forget(state, applied)
        clock.now += 1
    assert not review(guard, state, ["s5"])  # the 6th within the window is held
    guard.release()
    forget(state, review(guard, state, ["s5"]))
    clock.now += 200  # the window slid past: 4 owned now, one removal is fine
    assert review(guard, state, ["s6"])


# -- chaos: separate processes ---------------------------------------------------------------


def _start_with(stack: Stack, count: int) -> None:
    for number in range(count):
        stack.register(
            f"svc{number:03d}", f"svc{number:03d}-1", f"10.1.{number // 250}.{number % 250}"
        )
    start_quietly(stack, "--delete-settle", "2")
    eventually(lambda: len(all_names(stack, "services")) == count, 60, "initial sync")


def _held_services(stack: Stack) -> set[str]:
    return {h["service"] for h in stack.ready().get("held", [])}


@pytest.mark.timeout(180)
def test_chaos_burst_of_80_deregistrations_is_held_until_release(stack: Stack) -> None:
    _start_with(stack, 100)
    stack.kong.delete("/_emulator/counters")
    gone = [f"svc{n:03d}" for n in range(80)]
    for name in gone:
        stack.deregister(f"{name}-1")
    eventually(lambda: _held_services(stack) == set(gone), 30, "80 removals held")
    assert len(all_names(stack, "services")) == 100  # none deleted
    writes = stack.kong.get("/_emulator/counters").json()["by_method_and_kind"]
    assert not [k for k in writes if k.startswith("DELETE")]
    assert stack.metric("kong_bridge_deletes_held") == 80 * 3  # service, route, upstream
    # a later change, and later plans, do not erase the report
    stack.register("svc099", "svc099-2", "10.9.9.9")
    eventually(lambda: "10.9.9.9:8080" in stack.targets("svc099.service.consul"), 20)
    assert _held_services(stack) == set(gone)
    planned = cli(stack.env, "plan")
    assert planned.returncode == 2, planned.stdout + planned.stderr
    assert "held: svc000: delete service svc000 (deletes 80 of 100 owned" in planned.stdout
    assert "240 deletion(s) held" in planned.stdout  # a service, route and upstream each
    as_json = json.loads(cli(stack.env, "plan", "--json").stdout)
    assert {h["service"] for h in as_json["held"]} == set(gone)
    assert all(h["reason"] and h["since"] > 0 for h in as_json["held"])
    released = cli(stack.env, "release-deletes", "--status", str(stack.status.base_url))
    assert released.returncode == 0, released.stderr
    assert "released 80 service removal(s)" in released.stdout
    eventually(lambda: len(all_names(stack, "services")) == 20, 30, "released removals applied")
    eventually(lambda: not stack.ready().get("held"), 10, "report cleared")
    assert stack.metric("kong_bridge_deletes_held") == 0
    assert_kong_matches_consul(stack)


@pytest.mark.timeout(180)
def test_chaos_80_deregistrations_at_4_per_second_are_still_held(stack: Stack) -> None:
    _start_with(stack, 100)
    gone = [f"svc{n:03d}" for n in range(80)]
    for name in gone:
        stack.deregister(f"{name}-1")
        time.sleep(0.25)  # pacing: 4 deregistrations per second
    eventually(lambda: len(_held_services(stack)) >= 30, 30, "the rest held")
    remaining = all_names(stack, "services")
    assert len(remaining) >= 50  # at most half of what we owned went
    eventually(lambda: _held_services(stack) == set(gone) & remaining, 20, "all the rest held")
    planned = cli(stack.env, "sync", "--once", "--release-deletes")
    assert planned.returncode == 0, planned.stdout + planned.stderr
    assert all_names(stack, "services") == {f"svc{n:03d}" for n in range(80, 100)}
    eventually(lambda: not stack.ready().get("held"), 30, "the daemon forgets what is gone")
    assert_kong_matches_consul(stack)


def test_release_endpoint_refuses_without_a_json_body(stack: Stack) -> None:
    stack.register("web", "web-1", "10.0.0.1")
    stack.start()
    answer = stack.status.post("/release-deletes", content=b"services=web")
    assert answer.status_code == 415
    answer = stack.status.post("/release-deletes", json={"services": "web"})
    assert answer.status_code == 400
    answer = stack.status.post("/release-deletes", json={"services": ["web"]})
    assert answer.status_code == 200 and answer.json() == {"released": [], "not_held": ["web"]}
