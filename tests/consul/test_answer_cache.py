"""Consul emulator: shared rendered answers of list reads equal freshly built ones.

A fresh answer is asked with an extra, ignored query parameter: every parameter is part
of the cache key, so ``&fresh=N`` is built from the catalog, not taken from the cache.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Iterator

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bridge.emulators.consul import ConsulEmulator
from bridge.emulators.consul.context import Context
from bridge.emulators.consul.filter import compile_filter
from bridge.emulators.consul.shapes import check_json, service_node_json
from bridge.emulators.consul.web import render_json
from tests.helpers import eventually

LIST_READS = [
    "/v1/catalog/services",
    "/v1/catalog/services?filter=ServiceMeta.expose%20%3D%3D%20%22yes%22",
    "/v1/catalog/services?filter=NodeMeta.zone%20%3D%3D%20%22a%22",
    "/v1/catalog/nodes",
    "/v1/catalog/service/web",
    "/v1/health/state/any",
    "/v1/health/state/critical",
    "/v1/health/service/web",
    "/v1/health/service/web?passing=1",
    "/v1/health/node/n1",
    "/v1/health/checks/web",
]
_fresh = itertools.count()


def register(http: httpx.Client, service_id: str, node: str = "n1", **service: object) -> None:
    body = {
        "Node": node,
        "Address": "10.0.0.1",
        "Service": {"ID": service_id, "Service": "web", "Port": 80, **service},
        "Check": {"CheckID": f"c-{service_id}", "ServiceID": service_id, "Status": "passing"},
    }
    http.put("/v1/catalog/register", json=body).raise_for_status()


def answer(http: httpx.Client, path: str, fresh: bool = False) -> tuple[str, bytes]:
    if fresh:
        path += ("&" if "?" in path else "?") + f"fresh={next(_fresh)}"
    response = http.get(path)
    response.raise_for_status()
    return response.headers["x-consul-index"], response.content


def assert_all_fresh(http: httpx.Client) -> None:
    for path in LIST_READS:
        first, again = answer(http, path), answer(http, path)
        assert first == again == answer(http, path, fresh=True), path


@pytest.fixture
def seeded(consul_http: httpx.Client) -> Iterator[httpx.Client]:
    register(consul_http, "web-1", Meta={"expose": "yes"})
    register(consul_http, "web-2", node="n2")
    assert_all_fresh(consul_http)  # every answer is now in the cache (or evicted by size)
    yield consul_http


def _register(http: httpx.Client) -> None:
    register(http, "web-3", Meta={"expose": "yes"}, Tags=["new"])


def _reregister_with_new_tags(http: httpx.Client) -> None:
    register(http, "web-1", Meta={"expose": "no"}, Tags=["moved"])


def _deregister_service(http: httpx.Client) -> None:
    http.put("/v1/catalog/deregister", json={"Node": "n1", "ServiceID": "web-1"})


def _deregister_node(http: httpx.Client) -> None:
    http.put("/v1/catalog/deregister", json={"Node": "n2"})


def _node_meta(http: httpx.Client) -> None:
    body = {"Node": "n2", "Address": "10.0.0.1", "NodeMeta": {"zone": "a"}}
    http.put("/v1/catalog/register", json=body).raise_for_status()


def _check_update(http: httpx.Client) -> None:
    check = {"CheckID": "c-web-2", "ServiceID": "web-2", "Status": "critical"}
    body = {"Node": "n2", "Address": "10.0.0.1", "Check": check}
    http.put("/v1/catalog/register", json=body).raise_for_status()


def _kv_write(http: httpx.Client) -> None:
    http.put("/v1/kv/some/key", content=b"value").raise_for_status()


WRITES: dict[str, Callable[[httpx.Client], None]] = {
    "register": _register,
    "re-register": _reregister_with_new_tags,
    "deregister service": _deregister_service,
    "deregister node": _deregister_node,
    "node meta": _node_meta,
    "check update": _check_update,
    "kv write": _kv_write,
}


def filtered_names(ctx: Context, text: str) -> dict[str, list[str]]:
    """``catalog/services?filter=`` evaluated row by row, with no cache."""
    predicate = compile_filter(text)
    names: dict[str, list[str]] = {}
    for (node, _id), svc in sorted(ctx.catalog.services.items()):
        if predicate(service_node_json(ctx.catalog.nodes[node], svc)):
            tags = names.setdefault(svc["Service"], [])
            tags.extend(t for t in svc["Tags"] if t not in tags)
    return dict(sorted(names.items()))


def assert_filters_evaluated_afresh(http: httpx.Client, ctx: Context) -> None:
    for text in ('ServiceMeta.expose == "yes"', 'NodeMeta.zone == "a"'):
        got = http.get("/v1/catalog/services", params={"filter": text}).json()
        assert got == filtered_names(ctx, text), text


@pytest.mark.parametrize("write", WRITES.values(), ids=list(WRITES))
def test_cached_answers_equal_fresh_ones_after_a_write(
    consul_server: ConsulEmulator, seeded: httpx.Client, write: Callable[[httpx.Client], None]
) -> None:
    before = {path: answer(seeded, path) for path in LIST_READS}
    write(seeded)
    assert_all_fresh(seeded)
    assert_filters_evaluated_afresh(seeded, consul_server.api.ctx)
    after = {path: answer(seeded, path) for path in LIST_READS}
    changed = {path for path in LIST_READS if after[path] != before[path]}
    # A catalog write changes something; a KV write nothing a list read shows.
    assert bool(changed) == (write is not _kv_write)


def test_an_unchanged_catalog_is_served_from_the_cache(consul_server: ConsulEmulator) -> None:
    with httpx.Client(base_url=consul_server.url) as http:
        http.post("/_emulator/reset").raise_for_status()
        register(http, "web-1")
        cache = consul_server.api.ctx.answers
        answer(http, "/v1/health/state/any")
        builds = cache.builds
        _kv_write(http)  # moves the raft index, not the catalog
        answer(http, "/v1/health/state/any")
        assert cache.builds == builds
        check = {"CheckID": "c-web-1", "ServiceID": "web-1", "Status": "warning"}
        body = {"Node": "n1", "Address": "10.0.0.1", "Check": check}
        http.put("/v1/catalog/register", json=body).raise_for_status()
        _index, text = answer(http, "/v1/health/state/any")
        assert cache.builds == builds + 1
        assert b'"Status":"warning"' in text


def test_the_body_depends_on_the_token() -> None:
    """With ACLs on, an anonymous reader sees nothing, even right after the master's read."""
    with (
        ConsulEmulator(acl_master_token="root", acl_default_policy="deny") as server,
        httpx.Client(base_url=server.url) as http,
    ):
        master = {"X-Consul-Token": "root"}
        body = {"Node": "n1", "Address": "10.0.0.1", "Service": {"Service": "web"}}
        http.put("/v1/catalog/register", json=body, headers=master).raise_for_status()
        assert "web" in http.get("/v1/catalog/services", headers=master).json()
        assert http.get("/v1/catalog/services").json() == {}
        assert "web" in http.get("/v1/catalog/services?token=root").json()


def test_a_blocked_watcher_wakes_with_the_new_answer(consul_server: ConsulEmulator) -> None:
    with httpx.Client(base_url=consul_server.url, timeout=30) as http:
        http.post("/_emulator/reset").raise_for_status()
        register(http, "web-1")
        index, _ = answer(http, "/v1/health/state/any")
        with httpx.Client(base_url=consul_server.url, timeout=30) as watcher:
            result: list[httpx.Response] = []
            waiting = threading.Thread(
                target=lambda: result.append(
                    watcher.get(f"/v1/health/state/any?index={index}&wait=20s")
                )
            )
            waiting.start()
            eventually(lambda: http.get("/_emulator/state").json()["blocked_queries"] == 1)
            register(http, "web-2")
            waiting.join(20)
        assert int(result[0].headers["x-consul-index"]) > int(index)
        assert (result[0].headers["x-consul-index"], result[0].content) == answer(
            http, "/v1/health/state/any", fresh=True
        )


# -- the "empty_lists" fault ---------------------------------------------------------------

EMPTIED = {
    "/v1/catalog/services": {},
    "/v1/health/service/web": [],
    "/v1/health/state/any": [],
}


def test_empty_lists_for_n_answers_keep_the_real_index(consul_http: httpx.Client) -> None:
    register(consul_http, "web-1")
    real = {path: answer(consul_http, path) for path in EMPTIED}
    consul_http.put("/_emulator/faults", json={"empty_lists_next": 3}).raise_for_status()
    assert consul_http.get("/_emulator/faults").json()["empty_lists_next"] == 3
    assert consul_http.get("/v1/kv/?recurse").status_code == 404  # other reads: untouched
    for path, empty in EMPTIED.items():
        response = consul_http.get(path)
        assert response.json() == empty, path
        assert response.headers["x-consul-index"] == real[path][0]
    for path in EMPTIED:
        assert answer(consul_http, path) == real[path]  # the 3 answers are used up


def test_empty_lists_for_n_seconds_then_cleared(consul_http: httpx.Client) -> None:
    register(consul_http, "web-1")
    consul_http.put("/_emulator/faults", json={"empty_lists_s": 60}).raise_for_status()
    assert consul_http.get("/v1/catalog/nodes").json() != []  # not one of the three
    for _ in range(2):
        assert consul_http.get("/v1/health/state/any").json() == []
    consul_http.delete("/_emulator/faults").raise_for_status()
    assert consul_http.get("/v1/health/state/any").json() != []
    assert consul_http.get("/_emulator/faults").json()["empty_lists_s"] == 0


def test_empty_lists_period_ends(consul_http: httpx.Client) -> None:
    register(consul_http, "web-1")
    consul_http.put("/_emulator/faults", json={"empty_lists_s": 0.2}).raise_for_status()
    assert consul_http.get("/v1/catalog/services").json() == {}
    eventually(lambda: "web" in consul_http.get("/v1/catalog/services").json())


def test_check_lists_equal_a_full_render() -> None:
    """Per-check fragments follow output-only updates and a restart's lowered indexes.

    A server of its own: the restart refuses connections for a moment.
    """
    with (
        ConsulEmulator() as server,
        httpx.Client(base_url=server.url, timeout=30) as http,
    ):
        ctx = server.api.ctx

        def full_render() -> bytes:
            return render_json([check_json(c) for c in ctx.catalog.all_checks()])

        register(http, "web-1")
        ttl = {"ID": "ttl", "Name": "ttl", "TTL": "60s"}
        http.put("/v1/agent/check/register", json=ttl).raise_for_status()
        for output in ("first", "second"):  # same status: the output changes, no index moves
            http.put("/v1/agent/check/warn/ttl", params={"note": output}).raise_for_status()
            body = answer(http, "/v1/health/state/any")[1]
            assert output.encode() in body
            assert body == full_render()
        http.post("/_emulator/restart", json={"index_drop": 3}).raise_for_status()
        eventually(lambda: http.get("/v1/health/state/any").content == full_render())
        assert_filters_evaluated_afresh(http, ctx)


OPS = st.lists(
    st.tuples(
        st.sampled_from(["register", "deregister", "status", "output", "drop node", "zone"]),
        st.integers(0, 5),
        st.sampled_from(["passing", "warning", "critical"]),
    ),
    min_size=1,
    max_size=10,
)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(ops=OPS)
def test_every_check_list_follows_any_sequence_of_writes(
    consul_server: ConsulEmulator, consul_http: httpx.Client, ops: list[tuple[str, int, str]]
) -> None:
    """``health/state/any`` is kept one check at a time, filtered ``catalog/services`` one
    service at a time: both always equal an answer built from scratch."""
    ctx = consul_server.api.ctx
    for kind, number, status in ops:
        node, sid = f"n{number % 2}", f"web-{number}"
        if kind == "register":
            meta = {"expose": "yes" if status == "passing" else "no"}
            register(consul_http, sid, node=node, Meta=meta, Tags=[status])
        elif kind == "zone":
            body = {
                "Node": node,
                "Address": "10.0.0.1",
                "NodeMeta": {"zone": "a" if status == "passing" else "b"},
            }
            consul_http.put("/v1/catalog/register", json=body).raise_for_status()
        elif kind == "deregister":
            body = {"Node": node, "ServiceID": sid}
            consul_http.put("/v1/catalog/deregister", json=body).raise_for_status()
        elif kind == "drop node":
            consul_http.put("/v1/catalog/deregister", json={"Node": node}).raise_for_status()
        elif (node, f"c-{sid}") in ctx.catalog.checks:
            output = f"out {number}" if kind == "output" else ""
            ctx.catalog.set_check_status(node, f"c-{sid}", status, output)
        body = consul_http.get("/v1/health/state/any").content
        assert body == render_json([check_json(c) for c in ctx.catalog.all_checks()])
        assert_filters_evaluated_afresh(consul_http, ctx)
