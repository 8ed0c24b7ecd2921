"""Consul emulator: the catalog's check indexes agree with a scan of every check."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from bridge.emulators.consul.agent import build_check
from bridge.emulators.consul.catalog import Catalog, build_service
from bridge.emulators.consul.raft import Raft

NODES = ("n1", "n2")
SERVICES = ("s1", "s2", "s3")
operation = st.tuples(
    st.sampled_from(["service", "check", "node-check", "deregister", "uncheck", "drop-node"]),
    st.sampled_from(NODES),
    st.sampled_from(SERVICES),
    st.sampled_from(["c1", "c2"]),
)


def _apply(catalog: Catalog, op: str, node: str, sid: str, cid: str) -> None:
    if op == "drop-node":
        catalog.deregister_node(node)
        return
    catalog.ensure_node(node, "10.0.0.1")
    if op == "service":
        catalog.register_service(node, build_service({"Name": f"name-{sid}", "ID": sid}))
    elif op == "deregister":
        catalog.deregister_service(node, sid)
    elif op == "uncheck":
        catalog.deregister_check(node, cid)
    else:
        owner = catalog.services.get((node, sid)) if op == "check" else None
        catalog.register_check(node, build_check(node, {"TTL": "1s"}, owner, cid, cid))


@settings(max_examples=200, deadline=None)
@given(st.lists(operation, max_size=30))
def test_check_indexes_match_a_scan(ops: list[tuple[str, str, str, str]]) -> None:
    catalog = Catalog(Raft(), "dc1")
    for op in ops:
        _apply(catalog, *op)
    checks = sorted(catalog.checks.values(), key=lambda c: (c["Node"], c["CheckID"]))
    assert catalog.all_checks() == checks
    for node in NODES:
        assert catalog.checks_on_node(node) == [c for c in checks if c["Node"] == node]
        for sid in SERVICES:
            expected = [c for c in checks if c["Node"] == node and c["ServiceID"] in ("", sid)]
            expected.sort(key=lambda c: (c["ServiceID"] != "", c["CheckID"]))
            assert catalog.checks_for(node, sid) == expected
    for sid in SERVICES:
        name = f"name-{sid}"
        assert catalog.checks_of_service(name) == [c for c in checks if c["ServiceName"] == name]


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(SERVICES), st.booleans()), max_size=40), st.data())
def test_services_moved_since_equals_a_scan_of_service_indexes(
    writes: list[tuple[str, bool]], data: st.DataObject
) -> None:
    """The move log answers "which services moved since index i" as a scan would, even
    after it was compacted (past 1,024 moves more than twice the services)."""
    catalog = Catalog(Raft(), "dc1")
    catalog.ensure_node("n1", "10.0.0.1")
    for sid, register in writes:
        if register:
            catalog.register_service("n1", build_service({"Name": f"name-{sid}", "ID": sid}))
        else:
            catalog.deregister_service("n1", sid)
        for _ in range(30):  # 40 writes x 30 moves: past the compaction limit
            catalog.register_service("n1", build_service({"Name": "busy", "ID": "busy"}))
    since = data.draw(st.integers(-1, catalog.raft.index + 1))
    expected = {name for name, index in catalog.service_index.items() if index > since}
    assert catalog.services_moved_since(since) == expected
