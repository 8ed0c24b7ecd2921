"""plan's review output, property-tested: every changed field shows Kong's value and ours."""

from __future__ import annotations

import json

import httpx
from hypothesis import HealthCheck, given, settings

from bridge.actual import read_owned
from bridge.desired import ServiceState, same_value
from bridge.emulators.kong import KongEmulator
from bridge.kong import KongClient, KongConnection
from bridge.plan import diff
from bridge.report import Findings, current_row, field_changes, plan_document, render_plan
from tests.bridge.test_plan import OWNER, _converge, worlds


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(before=worlds(), after=worlds())
def test_each_change_shows_old_and_new_values(
    kong_server: KongEmulator, before: dict[str, ServiceState], after: dict[str, ServiceState]
) -> None:
    httpx.post(kong_server.url + "/_emulator/reset").raise_for_status()
    with KongClient(KongConnection(admin_url=kong_server.url)) as kong:
        _converge(kong_server.url, dict(before))
        state = kong.run(read_owned(OWNER))
    goal: dict[str, ServiceState | None] = {n: after.get(n) for n in set(before) | set(after)}
    plan = diff(goal, state)
    text = render_plan(plan, state, Findings(), set())
    document = plan_document(plan, state, Findings(), set())
    for op, entry in zip(plan.operations, document["changes"], strict=True):
        changes = field_changes(op, state)
        row = current_row(op, state)
        heading = f"{op.action} {op.kind[:-1]} {op.name}"
        assert heading in text
        if op.action == "create":
            assert row is None and all(c.old is None for c in changes)
        elif op.action == "update":
            assert row is not None and {c.name for c in changes} == set(op.changes)
            for change in changes:
                assert change.old == row.get(change.name)
                assert not same_value(change.name, change.new, change.old)
                assert f"{change.name}: {json.dumps(change.old, sort_keys=True)} -> " in text
        else:
            assert row is not None and changes == []  # a delete names what it removes
            assert {"service": op.service, "kind": op.kind[:-1], "name": op.name} in document[
                "deletes"
            ]
        assert set(entry["fields"]) == {c.name for c in changes}
    assert ("no changes" in text) == (not plan)
