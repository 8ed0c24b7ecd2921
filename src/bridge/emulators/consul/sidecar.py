"""The sidecar proxy a ``Connect.SidecarService`` block registers (``agent/sidecar_service.go``).

Consul registers it as a service of its own, with defaults drawn from the parent:
``<id>-sidecar-proxy`` as ID and name, kind ``connect-proxy``, the parent's tags and
meta when it has none, the first free port of 21000-21255, a proxy pointing at the
parent, and two checks unless it brings its own: a TCP check of its listener and an
alias of the parent.
"""

from __future__ import annotations

from typing import Any

from .normalize import service_body

Row = dict[str, Any]
SIDECAR_SUFFIX = "-sidecar-proxy"
SIDECAR_PORTS = range(21000, 21256)  # sidecar_min_port .. sidecar_max_port


class SidecarError(ValueError):
    """The sidecar cannot be registered (no free port)."""


def sidecar_id(parent_id: str) -> str:
    return parent_id + SIDECAR_SUFFIX


def sidecar_block(connect: Any) -> Row | None:
    """The parent's ``Connect.SidecarService`` (snake_case too), or None."""
    if not isinstance(connect, dict):
        return None
    for key, value in connect.items():
        if str(key).lower().replace("_", "") == "sidecarservice" and isinstance(value, dict):
            return value
    return None


def sidecar_registration(parent: Row, block: Row, used_ports: set[int]) -> Row:
    """The register body of the sidecar of ``parent`` (a stored NodeService)."""
    body = service_body(block)
    body["ID"] = body.get("ID") or sidecar_id(parent["ID"])
    body["Name"] = body.get("Name") or parent["Service"] + SIDECAR_SUFFIX
    body["Kind"] = "connect-proxy"
    body["Tags"] = body.get("Tags") or list(parent["Tags"])
    body["Meta"] = body.get("Meta") or dict(parent["Meta"])
    body["Port"] = body.get("Port") or _free_port(used_ports)
    proxy = dict(body.get("Proxy") or {})
    proxy.setdefault("Mode", "")
    proxy.setdefault("MeshGateway", {})
    proxy.setdefault("Expose", {})
    proxy["DestinationServiceName"] = parent["Service"]
    proxy["DestinationServiceID"] = parent["ID"]
    proxy["LocalServiceAddress"] = proxy.get("LocalServiceAddress") or "127.0.0.1"
    proxy["LocalServicePort"] = proxy.get("LocalServicePort") or parent["Port"]
    body["Proxy"] = proxy
    if not body.get("Check") and not body.get("Checks"):
        address = body.get("Address") or proxy["LocalServiceAddress"]
        body["Checks"] = _default_checks(parent["ID"], address, body["Port"])
    return body


def _free_port(used: set[int]) -> int:
    for port in SIDECAR_PORTS:
        if port not in used:
            return port
    raise SidecarError("No sidecar ports available in the range 21000 - 21255")


def _default_checks(parent_id: str, address: str, port: int) -> list[Row]:
    """``sidecarDefaultChecks``."""
    host = f"[{address}]" if ":" in address else address
    return [
        {"Name": "Connect Sidecar Listening", "TCP": f"{host}:{port}", "Interval": "10s"},
        {"Name": f"Connect Sidecar Aliasing {parent_id}", "AliasService": parent_id},
    ]
