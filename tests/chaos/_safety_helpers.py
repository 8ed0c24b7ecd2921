"""Fixtures and checks shared by the safety chaos tests (issue 8, items 4-9).

The emulators and the bridge run as separate processes, as in
``tests/bridge``; every scenario ends by comparing Kong's whole state with
what Consul says.
"""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import httpx

# The end-to-end fixtures of tests/bridge (emulators and the bridge as processes), reused.
from tests.bridge.conftest import Stack, consul_url, kong_url, stack

__all__ = ["Stack", "all_names", "consul_url", "kong_url", "stack"]

OWNER = "managed-by:kong-bridge"


def start_quietly(stack: Stack, *extra: str) -> None:
    """``stack.start``, logging warnings only (a hundred services log a lot)."""
    stack.env["KONG_BRIDGE_LOG_LEVEL"] = "warning"
    stack.start(*extra)


def all_names(stack: Stack, kind: str) -> set[str]:
    """Names of every entity of ``kind`` in Kong (past the first page, unlike ``Stack.names``)."""
    return {row["name"] for row in _pages(stack.kong, f"/{kind}")}


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """``kong-bridge ARGS`` in a separate process with ``env``."""
    return subprocess.run(
        [sys.executable, "-m", "bridge", *args],
        env={**env, "PATH": ""},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _pages(client: httpx.Client, path: str, **params: Any) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    query: dict[str, Any] = {"size": 1000, **params}
    while True:
        body = client.get(path, params=query).json()
        rows += body["data"]
        if not body.get("offset"):
            return rows
        query["offset"] = body["offset"]


def consul_view(consul: httpx.Client) -> dict[str, set[str]]:
    """Opted-in service -> the targets its passing instances should be."""
    wanted: dict[str, set[str]] = {}
    for name, tags in consul.get("/v1/catalog/services").json().items():
        if "kong.enable=true" not in tags:
            continue
        entries = consul.get(f"/v1/health/service/{name}", params={"passing": "1"}).json()
        wanted[name] = {
            f"{e['Service']['Address'] or e['Node']['Address']}:{e['Service']['Port']}"
            for e in entries
        }
    return wanted


def assert_kong_matches_consul(
    stack: Stack,
    held: frozenset[str] | set[str] = frozenset(),
    unowned: dict[str, Any] | None = None,
    skipped: frozenset[str] | set[str] = frozenset(),
) -> None:
    """Every healthy opted-in instance a target, nothing extra, no duplicates.

    ``held``: services whose removal is held (they may stay); ``skipped``:
    services with bad tags (left as they were); ``unowned``: a
    :func:`snapshot_unowned` taken before, which must be unchanged.
    """
    wanted = {n: t for n, t in consul_view(stack.consul).items() if n not in skipped}
    services = {r["name"] for r in _pages(stack.kong, "/services", tags=OWNER)}
    assert set(wanted) <= services, f"missing in Kong: {set(wanted) - services}"
    assert services - set(wanted) <= held, f"extra in Kong: {services - set(wanted) - held}"
    for name, targets in wanted.items():
        rows = _pages(stack.kong, f"/upstreams/{name}.service.consul/targets")
        found = [r["target"] for r in rows]
        assert len(found) == len(set(found)), f"{name}: duplicate targets {found}"
        assert set(found) == targets, f"{name}: Kong {sorted(found)} != Consul {sorted(targets)}"
    if unowned is not None:
        assert snapshot_unowned(stack.kong) == unowned, "an entity we do not own changed"


def snapshot_unowned(kong: httpx.Client) -> dict[str, Any]:
    """Every entity without our owner tag (targets of every upstream included), as Kong has it."""
    snapshot: dict[str, Any] = {}
    for kind in ("services", "routes", "upstreams", "plugins"):
        snapshot[kind] = sorted(
            (r for r in _pages(kong, f"/{kind}") if OWNER not in (r.get("tags") or [])),
            key=lambda r: str(r["id"]),
        )
    targets = []
    for upstream in _pages(kong, "/upstreams"):
        for row in _pages(kong, f"/upstreams/{upstream['id']}/targets"):
            if OWNER not in (row.get("tags") or []):
                targets.append(row)
    snapshot["targets"] = sorted(targets, key=lambda r: str(r["id"]))
    return snapshot
