"""The initial sync: every entity written once, and DB-less Kong gets one ``POST /config``.

Over 500 services, so the full reconciliation runs in more than one chunk (reconcile.CHUNK)
while the first load's changes are served between chunks.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from bridge.emulators.kong import KongEmulator
from tests.bridge.conftest import Stack, stack_of
from tests.helpers import eventually

SERVICES = 600


def _register_many(consul: httpx.Client) -> None:
    for index in range(SERVICES):
        name = f"svc-{index:04d}"
        consul.put(
            "/v1/catalog/register",
            json={
                "Node": f"node-{index % 7}",
                "Address": f"10.0.{index % 7}.1",
                "Service": {
                    "Service": name,
                    "ID": name,
                    "Port": 8080,
                    "Tags": ["kong.enable=true"],
                },
            },
        ).raise_for_status()


def _count(kong: httpx.Client, kind: str) -> int:
    return len(kong.get(f"/{kind}", params={"size": 1000}).json()["data"])


def _kong_counts(kong: httpx.Client) -> dict[str, int]:
    return dict(kong.get("/_emulator/counters").json()["by_method_and_kind"])


@pytest.fixture
def db_less_stack(consul_url: str) -> Iterator[Stack]:
    with KongEmulator(db_less=True) as kong:
        yield from stack_of(Stack, kong.url, consul_url)


def test_db_mode_writes_each_entity_once(stack: Stack) -> None:
    _register_many(stack.consul)
    stack.kong.delete("/_emulator/counters")
    stack.start()
    eventually(lambda: _count(stack.kong, "routes") == SERVICES, 60, "every route")
    stack.stop()
    counts = _kong_counts(stack.kong)
    for kind in ("upstreams", "targets", "services", "routes"):
        assert counts.get(f"POST {kind}") == SERVICES, counts


def test_db_less_first_load_is_one_post_config(db_less_stack: Stack) -> None:
    stack = db_less_stack
    _register_many(stack.consul)
    stack.kong.delete("/_emulator/counters")
    stack.start()  # returns once the bridge is ready: the first load is done
    assert _count(stack.kong, "routes") == SERVICES
    stack.stop()
    assert _kong_counts(stack.kong).get("POST config") == 1
