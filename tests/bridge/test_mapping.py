"""From Consul instances to desired Kong entities: targets, modes, the disagreement rule."""

from __future__ import annotations

from bridge.mapping import MappingOptions, map_service
from bridge.snapshot import Instance, ServiceSnapshot


def instance(
    iid: str,
    address: str = "10.0.0.1",
    port: int = 80,
    tags: tuple[str, ...] = ("kong.enable=true",),
    status: str = "passing",
    create_index: int = 1,
    weight: int = 1,
) -> Instance:
    return Instance(
        id=iid,
        node="n1",
        address=address,
        port=port,
        tags=tags,
        status=status,
        create_index=create_index,
        weight_passing=weight,
    )


def test_targets_follow_health_and_weights() -> None:
    snapshot = ServiceSnapshot(
        "web",
        (
            instance("a", "10.0.0.1", weight=3),
            instance("b", "10.0.0.2", status="warning"),
            instance("c", "10.0.0.3", status="critical"),
            instance("d", "::1", tags=("kong.enable=true", "kong.weight=7")),
        ),
        10,
    )
    state = map_service(snapshot, MappingOptions()).state
    assert state is not None and state.upstream is not None
    assert {(t.target, t.weight) for t in state.targets} == {("10.0.0.1:80", 3), ("[::1]:80", 7)}
    with_warning = map_service(snapshot, MappingOptions(include_warning=True)).state
    assert with_warning is not None
    assert "10.0.0.2:80" in {t.target for t in with_warning.targets}


def test_virtual_host_and_default_route() -> None:
    state = map_service(
        ServiceSnapshot("web", (instance("a"),), 1),
        MappingOptions(datacenter="dc2", domain="example"),
    ).state
    assert state is not None and state.upstream is not None
    assert state.upstream.name == "web.service.dc2.example"
    assert state.service.host == "web.service.dc2.example"
    assert [(r.name, r.paths) for r in state.routes] == [("web", ("/web",))]


def test_dns_mode_has_no_upstream() -> None:
    snapshot = ServiceSnapshot(
        "web", (instance("a", tags=("kong.enable=true", "kong.mode=dns"), port=5000),), 1
    )
    state = map_service(snapshot, MappingOptions()).state
    assert state is not None and state.upstream is None and state.targets == ()
    assert (state.service.host, state.service.port) == ("web.service.consul", 5000)


def test_not_opted_in_and_expose_by_default() -> None:
    snapshot = ServiceSnapshot("web", (instance("a", tags=()),), 1)
    assert map_service(snapshot, MappingOptions()).state is None
    assert map_service(snapshot, MappingOptions(expose_by_default=True)).state is not None


def test_majority_wins_and_ties_go_to_the_newest() -> None:
    old = ("kong.enable=true", "kong.paths=/old")
    new = ("kong.enable=true", "kong.paths=/new")
    majority = ServiceSnapshot(
        "web",
        (
            instance("a", tags=old, create_index=1),
            instance("b", tags=old, create_index=2),
            instance("c", tags=new, create_index=9),
        ),
        9,
    )
    mapped = map_service(majority, MappingOptions())
    assert mapped.state is not None and mapped.state.routes[0].paths == ("/old",)
    assert mapped.notes and "disagree" in mapped.notes[0]
    tie = ServiceSnapshot(
        "web", (instance("a", tags=old, create_index=1), instance("c", tags=new, create_index=9)), 9
    )
    tied = map_service(tie, MappingOptions()).state
    assert tied is not None and tied.routes[0].paths == ("/new",)


def test_errors_skip_the_service() -> None:
    snapshot = ServiceSnapshot(
        "web", (instance("a", tags=("kong.enable=true", "kong.paths=x")),), 1
    )
    mapped = map_service(snapshot, MappingOptions())
    assert mapped.skipped and mapped.state is None
