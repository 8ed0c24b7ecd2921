"""Reading the plugins and certificates we own, added to what :mod:`bridge.actual` reads."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .kong.calls import Flow
from .kong.flows import paginate

if TYPE_CHECKING:
    from .actual import KongState

Row = dict[str, Any]


def _reference(row: Row, key: str) -> str | None:
    value = row.get(key)
    return str(value["id"]) if isinstance(value, dict) and value.get("id") else None


def read_owned_extras(
    tag: str, state: KongState, consul_name: Callable[[Row], str | None]
) -> Flow[None]:
    """Our plugins (by route name and plugin name) and certificates, by Consul service.

    A plugin is placed by its parent: the service's, or one of its routes (known
    by id from the routes already read). One on something else is not ours to manage.
    """
    for row in (yield from paginate("/plugins", {"tags": tag})):
        name = consul_name(row)
        if not name or name not in state.services:
            continue
        owned = state.services[name]
        route_id = _reference(row, "route")
        if route_id is None:
            service_id = _reference(row, "service")
            if owned.service is None or service_id != owned.service.get("id"):
                continue
            owned.plugins[("", str(row["name"]))] = row
            continue
        route = next((r for r in owned.routes.values() if r.get("id") == route_id), None)
        if route is not None:
            owned.plugins[(str(route["name"]), str(row["name"]))] = row
    for row in (yield from paginate("/certificates", {"tags": tag})):
        name = consul_name(row)
        if name:
            state.of(name).certificate = row
