"""The plugin and certificate operations of one service, and how their results are recorded.

Only plugins and certificates carrying our owner tag are ever compared, changed
or deleted; a plugin someone added by hand is not in our actual state at all.
Updates are PATCHes of the changed fields only, nested ones included, compared
with Kong's answer (defaults filled in), so an unchanged plugin costs no write.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .desired import CertificateSpec, PluginSpec, ServiceState
from .kong.calls import Call
from .kong.calls import segment as seg
from .operation import Operation
from .plugin_schema import changed_tree, plugin_config_field
from .plugins_mapping import EVERY_PLUGIN

if TYPE_CHECKING:
    from .actual import OwnedService

Row = dict[str, Any]
ROUTE_MARK = "@"


def plugin_op_name(key: tuple[str, str]) -> str:
    """``cors`` for the service's plugin, ``cors@web-admin`` for one on a route."""
    route, name = key
    return f"{name}{ROUTE_MARK}{route}" if route else name


def plugin_key(op_name: str) -> tuple[str, str]:
    name, _mark, route = op_name.partition(ROUTE_MARK)
    return (route, name)


def plugin_changes(spec: PluginSpec, row: Row) -> Row:
    """The fields of our plugin that Kong's ``row`` does not have (nested, minimal)."""
    changes: Row = {}
    config = changed_tree(plugin_config_field(spec.name), spec.config, row.get("config"))
    if config:
        changes["config"] = config
    enabled = True if spec.enabled is None else spec.enabled
    if row.get("enabled") is not enabled:
        changes["enabled"] = enabled
    if spec.protocols is not None and set(spec.protocols) != set(row.get("protocols") or []):
        changes["protocols"] = list(spec.protocols)
    if set(spec.tags) != set(row.get("tags") or []):
        changes["tags"] = list(spec.tags)
    return changes


def _change_paths(changes: Row, prefix: str = "") -> list[str]:
    paths: list[str] = []
    for key, value in sorted(changes.items()):
        path = f"{prefix}{key}"
        paths += _change_paths(value, path + ".") if isinstance(value, dict) else [path]
    return paths


def plugin_operations(
    service: str, desired: ServiceState | None, actual: OwnedService
) -> list[Operation]:
    wanted = {spec.key: spec for spec in desired.plugins} if desired else {}
    kept = desired.kept_plugins if desired else frozenset()
    ops: list[Operation] = []
    for key, spec in sorted(wanted.items()):
        row = actual.plugins.get(key)
        name = plugin_op_name(key)
        if row is None:
            parent = f"/routes/{seg(spec.route)}" if spec.route else f"/services/{seg(service)}"
            call = Call("POST", f"{parent}/plugins", spec.body())
            ops.append(Operation(service, "plugins", "create", name, call, secrets=spec.secrets))
            continue
        changes = plugin_changes(spec, row)
        if changes:
            call = Call("PATCH", f"/plugins/{row['id']}", changes)
            paths = tuple(_change_paths(changes))
            ops.append(Operation(service, "plugins", "update", name, call, paths, spec.secrets))
    for key, row in sorted(actual.plugins.items()):
        if key in wanted or key in kept or EVERY_PLUGIN in kept:
            continue
        call = Call("DELETE", f"/plugins/{row['id']}")
        ops.append(Operation(service, "plugins", "delete", plugin_op_name(key), call))
    return ops


def certificate_changes(spec: CertificateSpec, row: Row) -> Row:
    changes: Row = {}
    for field in ("cert", "key"):
        if str(row.get(field) or "").strip() != getattr(spec, field).strip():
            changes[field] = getattr(spec, field)
    if set(spec.snis) != set(row.get("snis") or []):
        changes["snis"] = list(spec.snis)
    if set(spec.tags) != set(row.get("tags") or []):
        changes["tags"] = list(spec.tags)
    return changes


def certificate_operations(
    service: str, desired: ServiceState | None, actual: OwnedService
) -> list[Operation]:
    spec = desired.certificate if desired else None
    row = actual.certificate
    name = f"for {service}"
    if spec is not None and row is None:
        call = Call("POST", "/certificates", spec.body())
        return [Operation(service, "certificates", "create", name, call, secrets=(spec.key,))]
    if spec is not None and row is not None:
        changes = certificate_changes(spec, row)
        if not changes:
            return []
        call = Call("PATCH", f"/certificates/{row['id']}", changes)
        paths = tuple(sorted(changes))
        return [Operation(service, "certificates", "update", name, call, paths, (spec.key,))]
    if row is not None and not (desired is not None and desired.keep_certificate):
        call = Call("DELETE", f"/certificates/{row['id']}")
        return [Operation(service, "certificates", "delete", name, call)]
    return []


def extra_operations(
    service: str, desired: ServiceState | None, actual: OwnedService
) -> list[Operation]:
    """Plugin and certificate operations for one service (plan.py orders them)."""
    return [
        *plugin_operations(service, desired, actual),
        *certificate_operations(service, desired, actual),
    ]


def record_extra(owned: OwnedService, op: Operation, row: Row | None) -> None:
    """Keep the cached state in step with a plugin or certificate write that succeeded."""
    if op.kind == "plugins":
        key = plugin_key(op.name)
        if op.action == "delete":
            owned.plugins.pop(key, None)
        elif row is not None:
            owned.plugins[key] = row
    elif op.kind == "certificates":
        owned.certificate = row if op.action != "delete" else None
