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

from .actual import OwnedService
from .desired import ServiceState, owner_tag
from .kong.calls import Call, Flow
from .kong.errors import require
from .plugins_dbless import certificate_entry, plugin_entries

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
# libyaml's safe loader when PyYAML was built with it: the same data, several times faster
# (a config of 1,000 services is megabytes of YAML).
SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


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


def _from_desired(state: ServiceState, owned: OwnedService) -> tuple[Row, Row | None]:
    plugins = plugin_entries(state, owned)
    service = {
        **state.service.body(),
        "routes": [{**r.body(), "plugins": plugins.get(r.name, [])} for r in state.routes],
        "plugins": plugins.get("", []),
    }
    upstream = None
    if state.upstream is not None:
        upstream = {**state.upstream.body(), "targets": [target.body() for target in state.targets]}
    return service, upstream


def _from_actual(owned: OwnedService) -> tuple[Row | None, Row | None]:
    service = None
    if owned.service is not None:
        plugins = plugin_entries(None, owned)
        service = {
            **_clean(owned.service),
            "routes": [
                {**_clean(route), "plugins": plugins.get(name, [])}
                for name, route in owned.routes.items()
            ],
            "plugins": plugins.get("", []),
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
        owned = keep.get(name, OwnedService())
        certificate = None
        if name in desired:
            state = desired[name]
            service, upstream = _from_desired(state, owned) if state is not None else (None, None)
            certificate = certificate_entry(state, owned) if state is not None else None
        else:
            service, upstream = _from_actual(owned)
            certificate = certificate_entry(None, owned)
        if certificate is not None:
            config.setdefault("certificates", []).append(certificate)
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
    loaded = yaml.load(text, Loader=SAFE_LOADER) if isinstance(text, str) else None
    return loaded if isinstance(loaded, dict) else {"_format_version": "3.0"}


def post_config(config: Row) -> Flow[None]:
    call = Call("POST", "/config", config)
    require(call, (yield call), 200, 201)
