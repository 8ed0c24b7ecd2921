"""The JSON shapes Consul answers with (``agent/structs``): what is omitted, what is null."""

from __future__ import annotations

import base64
from typing import Any

from .catalog import Row


def node_json(node: Row) -> Row:
    return {
        "ID": node["ID"],
        "Node": node["Node"],
        "Address": node["Address"],
        "Datacenter": node["Datacenter"],
        "TaggedAddresses": node["TaggedAddresses"],
        "Meta": node["Meta"] or None,
        "CreateIndex": node["CreateIndex"],
        "ModifyIndex": node["ModifyIndex"],
    }


def _service_identity(svc: Row) -> Row:
    """The fields both service shapes open with: Kind (omitempty), ID, Service, Tags."""
    out: Row = {"Kind": svc["Kind"]} if svc["Kind"] else {}
    out.update({"ID": svc["ID"], "Service": svc["Service"], "Tags": list(svc["Tags"])})
    return out


def node_service_json(svc: Row, with_indexes: bool = True) -> Row:
    """``structs.NodeService``; Port, SocketPath, Kind and tagged addresses are omitempty."""
    out = _service_identity(svc)
    out["Address"] = svc["Address"]
    if svc["TaggedAddresses"]:
        out["TaggedAddresses"] = svc["TaggedAddresses"]
    out["Meta"] = svc["Meta"] or {}
    if svc["Port"]:
        out["Port"] = svc["Port"]
    if svc["SocketPath"]:
        out["SocketPath"] = svc["SocketPath"]
    out.update(
        {
            "Weights": svc["Weights"],
            "EnableTagOverride": svc["EnableTagOverride"],
            "Proxy": svc["Proxy"],
            "Connect": svc["Connect"],
        }
    )
    if with_indexes:
        out["CreateIndex"] = svc["CreateIndex"]
        out["ModifyIndex"] = svc["ModifyIndex"]
    return out


def service_node_json(node: Row, svc: Row) -> Row:
    """``structs.ServiceNode`` as ``/catalog/service/:s`` renders it."""
    out: Row = {
        "ID": node["ID"],
        "Node": node["Node"],
        "Address": node["Address"],
        "Datacenter": node["Datacenter"],
        "TaggedAddresses": node["TaggedAddresses"],
        "NodeMeta": node["Meta"] or None,
        "ServiceKind": svc["Kind"],
        "ServiceID": svc["ID"],
        "ServiceName": svc["Service"],
        "ServiceTags": list(svc["Tags"]),
        "ServiceAddress": svc["Address"],
    }
    if svc["TaggedAddresses"]:
        out["ServiceTaggedAddresses"] = svc["TaggedAddresses"]
    out.update(
        {
            "ServiceWeights": svc["Weights"],
            "ServiceMeta": svc["Meta"] or {},
            "ServicePort": svc["Port"],
            "ServiceSocketPath": svc["SocketPath"],
            "ServiceEnableTagOverride": svc["EnableTagOverride"],
            "ServiceProxy": svc["Proxy"],
            "ServiceConnect": svc["Connect"],
            "ServiceLocality": None,
            "CreateIndex": svc["CreateIndex"],
            "ModifyIndex": svc["ModifyIndex"],
        }
    )
    return out


def check_json(check: Row, with_indexes: bool = True) -> Row:
    out = {
        key: check[key]
        for key in (
            "Node",
            "CheckID",
            "Name",
            "Status",
            "Notes",
            "Output",
            "ServiceID",
            "ServiceName",
            "ServiceTags",
            "Type",
            "Interval",
            "Timeout",
            "ExposedPort",
            "Definition",
        )
    }
    out["ServiceTags"] = list(out["ServiceTags"] or [])
    out["CreateIndex"] = check["CreateIndex"] if with_indexes else 0
    out["ModifyIndex"] = check["ModifyIndex"] if with_indexes else 0
    return out


PROXY_KINDS = frozenset(
    {"connect-proxy", "mesh-gateway", "terminating-gateway", "ingress-gateway", "api-gateway"}
)


def agent_service_json(svc: Row, datacenter: str) -> Row:
    """``api.AgentService``: Port always; Proxy only for proxies and gateways, Connect if native."""
    out = _service_identity(svc)
    out.update({"Meta": svc["Meta"] or {}, "Port": svc["Port"], "Address": svc["Address"]})
    if svc["SocketPath"]:
        out["SocketPath"] = svc["SocketPath"]
    if svc["TaggedAddresses"]:
        out["TaggedAddresses"] = svc["TaggedAddresses"]
    out["Weights"] = svc["Weights"]
    out["EnableTagOverride"] = svc["EnableTagOverride"]
    if svc["Kind"] in PROXY_KINDS:
        out["Proxy"] = svc["Proxy"]
    if (svc["Connect"] or {}).get("Native"):
        out["Connect"] = {"Native": True}
    out["Datacenter"] = datacenter
    return out


def kv_json(entry: Row) -> Row:
    value: Any = entry["Value"]
    out: Row = {
        "LockIndex": entry["LockIndex"],
        "Key": entry["Key"],
        "Flags": entry["Flags"],
        # An empty value is stored as Go's nil slice: JSON null, whatever wrote it.
        "Value": base64.b64encode(value).decode() if value else None,
        "CreateIndex": entry["CreateIndex"],
        "ModifyIndex": entry["ModifyIndex"],
    }
    if entry.get("Session"):
        out["Session"] = entry["Session"]
    return out
