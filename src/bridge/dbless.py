"""DB-less Kong: our entities rendered into the declarative config for ``POST /config``.

A DB-less Kong takes no entity writes; its whole configuration is replaced at
once. So the bridge reads the current config (``GET /config``), removes what
carries our owner tag, adds our entities (services with nested routes,
upstreams with nested targets) and posts the result. Entities that are not
ours keep their ids and stay exactly as they were.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import yaml

from .actual import KongState, OwnedService, own_targets, owned_rows
from .desired import ServiceState, owner_tag
from .kong.calls import Call, Flow
from .kong.errors import require

Row = dict[str, Any]
ENTITY_LISTS = (
    "services",
    "routes",
    "upstreams",
    "targets",
    "plugins",
    "consumers",
    "certificates",
    "ca_certificates",
    "snis",
    "vaults",
    "keys",
    "key_sets",
)
NESTED = {"services": ("routes", "plugins"), "routes": ("plugins",), "upstreams": ("targets",)}
DROPPED = ("id", "created_at", "updated_at", "service", "upstream")


def _ours(row: Any, tag: str) -> bool:
    return isinstance(row, dict) and tag in (row.get("tags") or [])


def _without_ours(rows: list[Any], kind: str, tag: str) -> list[Any]:
    kept = []
    for row in rows:
        if _ours(row, tag):
            continue
        if isinstance(row, dict):
            row = dict(row)
            for child in NESTED.get(kind, ()):
                if isinstance(row.get(child), list):
                    row[child] = _without_ours(row[child], child, tag)
        kept.append(row)
    return kept


def _clean(row: Mapping[str, Any]) -> Row:
    """A row Kong returned, as a declarative entry (no ids, timestamps or parent keys)."""
    return {k: v for k, v in row.items() if k not in DROPPED and v is not None}


def _from_desired(state: ServiceState) -> tuple[Row, Row | None]:
    service = {**state.service.body(), "routes": [route.body() for route in state.routes]}
    upstream = None
    if state.upstream is not None:
        upstream = {**state.upstream.body(), "targets": [target.body() for target in state.targets]}
    return service, upstream


def _from_actual(owned: OwnedService) -> tuple[Row | None, Row | None]:
    service = None
    if owned.service is not None:
        service = {
            **_clean(owned.service),
            "routes": [_clean(route) for route in owned.routes.values()],
        }
    upstream = None
    if owned.upstream is not None:
        upstream = {
            **_clean(owned.upstream),
            "targets": [_clean(target) for target in owned.targets.values()],
        }
    return service, upstream


def render(
    current: Mapping[str, Any],
    owner: str,
    desired: Mapping[str, ServiceState | None],
    keep: Mapping[str, OwnedService],
    names: Iterable[str],
) -> Row:
    """The next config: ``current`` minus our entities, plus ``desired`` (or ``keep``).

    ``names`` are the services to render; for each, the desired state is used
    when known, else what Kong holds today (``keep``), so services that are
    skipped or whose deletions are held back stay exactly as they are.
    """
    tag = owner_tag(owner)
    config: Row = {key: value for key, value in current.items() if key not in ENTITY_LISTS}
    config["_format_version"] = "3.0"
    for kind in ENTITY_LISTS:
        rows = current.get(kind)
        if isinstance(rows, list):
            config[kind] = _without_ours(rows, kind, tag)
    for name in sorted(set(names)):
        if name in desired:
            state = desired[name]
            service, upstream = _from_desired(state) if state is not None else (None, None)
        else:
            service, upstream = _from_actual(keep.get(name, OwnedService()))
        if service is not None:
            config.setdefault("services", []).append(service)
        if upstream is not None:
            config.setdefault("upstreams", []).append(upstream)
    return config


def read_config() -> Flow[Row]:
    """The current declarative config of a DB-less Kong (``GET /config``)."""
    call = Call("GET", "/config")
    reply = require(call, (yield call), 200)
    text = reply.body.get("config") if isinstance(reply.body, dict) else None
    loaded = yaml.safe_load(text) if isinstance(text, str) else None
    return loaded if isinstance(loaded, dict) else {"_format_version": "3.0"}


def post_config(config: Row) -> Flow[Any]:
    """Post a whole config; Kong answers with the flattened entities, keyed by kind then id."""
    call = Call("POST", "/config", config)
    return require(call, (yield call), 200, 201).body


def owned_from_flattened(body: Any, owner: str) -> KongState | None:
    """Our entities from ``POST /config``'s answer (None when it is not the expected shape)."""
    if not isinstance(body, dict) or not all(
        isinstance(body.get(kind, {}), dict) for kind in ("services", "routes", "upstreams")
    ):
        return None
    tag = owner_tag(owner)

    def ours(kind: str) -> list[Row]:
        rows = body.get(kind) or {}
        return [row for row in rows.values() if _ours(row, tag)]

    state = KongState()
    pending = owned_rows(state, ours("services"), ours("routes"), ours("upstreams"))
    by_upstream: dict[str, list[Row]] = {}
    for target in ours("targets"):
        parent = target.get("upstream")
        if isinstance(parent, dict):
            by_upstream.setdefault(str(parent.get("id")), []).append(target)
    for owned, upstream in pending:
        owned.targets = own_targets(by_upstream.get(str(upstream["id"]), []), tag)
    return state
