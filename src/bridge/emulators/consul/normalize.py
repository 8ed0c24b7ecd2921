"""Request bodies as Consul decodes them: CamelCase or snake_case keys, case-insensitively.

User maps (``Meta``, ``NodeMeta``, check ``Header``) keep their keys as given.
"""

from __future__ import annotations

from typing import Any

SERVICE_FIELDS = (
    "ID",
    "Name",
    "Tags",
    "Address",
    "TaggedAddresses",
    "Meta",
    "Port",
    "Weights",
    "EnableTagOverride",
    "Kind",
    "Proxy",
    "Connect",
    "SocketPath",
    "Check",
    "Checks",
    "Namespace",
    "Partition",
    "Locality",
    "Service",
)
CHECK_FIELDS = (
    "ID",
    "CheckID",
    "Name",
    "Notes",
    "ServiceID",
    "Status",
    "TTL",
    "HTTP",
    "Method",
    "Header",
    "Body",
    "TCP",
    "UDP",
    "GRPC",
    "GRPCUseTLS",
    "Args",
    "ScriptArgs",
    "Interval",
    "Timeout",
    "DeregisterCriticalServiceAfter",
    "TLSSkipVerify",
    "TLSServerName",
    "SuccessBeforePassing",
    "FailuresBeforeWarning",
    "FailuresBeforeCritical",
    "AliasNode",
    "AliasService",
    "DockerContainerID",
    "Shell",
    "H2PING",
    "OutputMaxSize",
    "Node",
    "Output",
    "ServiceName",
    "ServiceTags",
    "Type",
    "Definition",
    "Namespace",
)
CATALOG_FIELDS = (
    "ID",
    "Node",
    "Address",
    "Datacenter",
    "TaggedAddresses",
    "NodeMeta",
    "Service",
    "Check",
    "Checks",
    "SkipNodeUpdate",
    "Namespace",
    "Partition",
)
SESSION_FIELDS = (
    "ID",
    "Name",
    "Node",
    "LockDelay",
    "Behavior",
    "TTL",
    "NodeChecks",
    "ServiceChecks",
    "Checks",
    "Namespace",
)
WEIGHT_FIELDS = ("Passing", "Warning")
ADDRESS_FIELDS = ("Address", "Port")
USER_MAPS = frozenset({"Meta", "NodeMeta", "Header", "TaggedAddresses"})


def _lookup(fields: tuple[str, ...]) -> dict[str, str]:
    return {name.lower().replace("_", ""): name for name in fields}


_SERVICE = _lookup(SERVICE_FIELDS)
_CHECK = _lookup(CHECK_FIELDS)
_CATALOG = _lookup(CATALOG_FIELDS)
_SESSION = _lookup(SESSION_FIELDS)
_WEIGHTS = _lookup(WEIGHT_FIELDS)
_ADDRESS = _lookup(ADDRESS_FIELDS)
_ALIASES = {"taggedaddresses": "TaggedAddresses", "enabletagoverride": "EnableTagOverride"}


def canonical(data: Any, fields: dict[str, str]) -> dict[str, Any]:
    """Rename keys to Consul's canonical CamelCase; unknown keys are kept as given."""
    if not isinstance(data, dict):
        return {}
    out: dict[str, Any] = {}
    for key, value in data.items():
        folded = str(key).lower().replace("_", "").replace("-", "")
        out[fields.get(folded) or _ALIASES.get(folded) or str(key)] = value
    return out


def service_body(data: Any) -> dict[str, Any]:
    body = canonical(data, _SERVICE)
    if isinstance(body.get("Weights"), dict):
        body["Weights"] = canonical(body["Weights"], _WEIGHTS)
    tagged = body.get("TaggedAddresses")
    if isinstance(tagged, dict):
        body["TaggedAddresses"] = {k: canonical(v, _ADDRESS) for k, v in tagged.items()}
    if isinstance(body.get("Check"), dict):
        body["Check"] = check_body(body["Check"])
    if isinstance(body.get("Checks"), list):
        body["Checks"] = [check_body(c) for c in body["Checks"]]
    return body


def check_body(data: Any) -> dict[str, Any]:
    return canonical(data, _CHECK)


def catalog_body(data: Any) -> dict[str, Any]:
    body = canonical(data, _CATALOG)
    if isinstance(body.get("Service"), dict):
        body["Service"] = service_body(body["Service"])
        if "Service" in body["Service"] and "Name" not in body["Service"]:
            body["Service"]["Name"] = body["Service"].pop("Service")
    if isinstance(body.get("Check"), dict):
        body["Check"] = check_body(body["Check"])
    if isinstance(body.get("Checks"), list):
        body["Checks"] = [check_body(c) for c in body["Checks"]]
    return body


def session_body(data: Any) -> dict[str, Any]:
    return canonical(data, _SESSION)
