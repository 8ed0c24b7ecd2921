"""DB-less rendering of our plugins and certificates (used by :mod:`bridge.dbless`).

Plugins nest under their service or route; a certificate goes to the
top-level ``certificates`` with its SNIs nested and owner-tagged, so that the
next render can drop them with the rest of what is ours.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .desired import ServiceState
from .plugins_mapping import EVERY_PLUGIN

if TYPE_CHECKING:
    from .actual import OwnedService

Row = dict[str, Any]
_DROPPED = ("id", "created_at", "updated_at", "service", "route", "consumer")


def _clean(row: Row) -> Row:
    return {k: v for k, v in row.items() if k not in _DROPPED and v is not None}


def plugin_entries(state: ServiceState | None, owned: OwnedService) -> dict[str, list[Row]]:
    """Our plugins by Kong route name (``""``: the service's): desired, plus the kept ones."""
    entries: dict[str, list[Row]] = {}
    wanted = {spec.key for spec in state.plugins} if state is not None else set()
    for spec in state.plugins if state is not None else ():
        entries.setdefault(spec.route, []).append(spec.body())
    for key, row in sorted(owned.plugins.items()):
        kept = state is None or key in state.kept_plugins or EVERY_PLUGIN in state.kept_plugins
        if kept and key not in wanted:
            entries.setdefault(key[0], []).append(_clean(row))
    return entries


def certificate_entry(state: ServiceState | None, owned: OwnedService) -> Row | None:
    """Our certificate with nested, owner-tagged SNIs; the one Kong holds when it is kept."""
    if state is not None and state.certificate is not None:
        spec = state.certificate
        cert, key, snis, tags = spec.cert, spec.key, list(spec.snis), list(spec.tags)
    elif owned.certificate is not None and (state is None or state.keep_certificate):
        row = owned.certificate
        cert, key, tags = row["cert"], row["key"], list(row.get("tags") or [])
        snis = list(row.get("snis") or [])
    else:
        return None
    return {
        "cert": cert,
        "key": key,
        "tags": tags,
        "snis": [{"name": name, "tags": tags} for name in snis],
    }
