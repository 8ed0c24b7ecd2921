"""What Kong holds that is ours: entities carrying our owner tag, grouped by Consul service."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .desired import owner_tag
from .kong.calls import Call, Flow
from .kong.calls import segment as seg
from .kong.flows import paginate
from .kong.shapes import identify
from .mapping import SERVICE_TAG_PREFIX
from .plugins_actual import read_owned_extras

Row = dict[str, Any]


@dataclass
class OwnedService:
    """Kong's entities for one Consul service, by name (targets by ``host:port``)."""

    service: Row | None = None
    routes: dict[str, Row] = field(default_factory=dict)
    upstream: Row | None = None
    targets: dict[str, Row] = field(default_factory=dict)
    plugins: dict[tuple[str, str], Row] = field(default_factory=dict)  # (route, name)
    certificate: Row | None = None

    def entity_count(self) -> int:
        return (
            bool(self.service)
            + len(self.routes)
            + bool(self.upstream)
            + len(self.targets)
            + len(self.plugins)
            + bool(self.certificate)
        )


@dataclass
class KongState:
    """Everything we own in Kong, keyed by Consul service name."""

    services: dict[str, OwnedService] = field(default_factory=dict)

    def of(self, name: str) -> OwnedService:
        return self.services.setdefault(name, OwnedService())

    def counts(self) -> dict[str, int]:
        owned = self.services.values()
        return {
            "services": sum(1 for o in owned if o.service),
            "routes": sum(len(o.routes) for o in owned),
            "upstreams": sum(1 for o in owned if o.upstream),
            "targets": sum(len(o.targets) for o in owned),
            "plugins": sum(len(o.plugins) for o in owned),
            "certificates": sum(1 for o in owned if o.certificate),
        }


def consul_name(row: Row) -> str | None:
    for tag in row.get("tags") or []:
        if tag.startswith(SERVICE_TAG_PREFIX):
            return str(tag[len(SERVICE_TAG_PREFIX) :])
    return None


def read_owned(owner: str) -> Flow[KongState]:
    """Read our entities with tag filters (targets: per owned upstream, filtered here)."""
    tag = owner_tag(owner)
    state = KongState()
    for row in (yield from paginate("/services", {"tags": tag})):
        name = consul_name(row)
        if name:
            state.of(name).service = row
    for row in (yield from paginate("/routes", {"tags": tag})):
        name = consul_name(row)
        if name:
            state.of(name).routes[row["name"]] = row
    for row in (yield from paginate("/upstreams", {"tags": tag})):
        name = consul_name(row)
        if not name:
            continue
        owned = state.of(name)
        owned.upstream = row
        targets = yield from paginate(f"/upstreams/{seg(row['id'])}/targets")
        owned.targets = {t["target"]: t for t in targets if tag in (t.get("tags") or [])}
    yield from read_owned_extras(tag, state, consul_name)
    return state


def read_database() -> Flow[str]:
    """Kong's ``configuration.database`` (``off``: DB-less, writes go to /config).

    Raises :class:`~bridge.kong.KongBadAnswer` when the server is not Kong 3.x.
    """
    call = Call("GET", "/")
    return identify(call, (yield call)).database


def read_clash(kind: str, name: str) -> Flow[Row | None]:
    """The entity of that name, if any (used by ``plan`` to report clashes)."""
    reply = yield Call("GET", f"/{kind}/{seg(name)}")
    return reply.body if reply.status == 200 else None
