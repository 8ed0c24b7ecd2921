"""Config entries: the central configuration of mesh features, one per kind and name.

As Consul's state store keeps them (``agent/consul/state/config_entry.go``): each
entry carries its Create/ModifyIndex, a write or delete may be check-and-set on the
ModifyIndex, and a write is decoded as ``structs.DecodeConfigEntry`` decodes it
(``Kind`` required, a known kind). Kind-specific defaults are those Go's encoder
writes for the kinds' zero values (``Protocol: ""``, empty ``MeshGateway``...); the
kinds' own validation beyond the name is not reproduced, and fields are kept as sent.
"""

from __future__ import annotations

import copy
from typing import Any

from .raft import Raft, WatchKey

Row = dict[str, Any]
CONFIG_KEY: WatchKey = ("table", "config-entries")

# structs.MakeConfigEntry's kinds (Consul 1.20, CE).
KINDS = (
    "service-defaults",
    "proxy-defaults",
    "service-router",
    "service-splitter",
    "service-resolver",
    "ingress-gateway",
    "terminating-gateway",
    "service-intentions",
    "mesh",
    "exported-services",
    "sameness-group",
    "api-gateway",
    "bound-api-gateway",
    "inline-certificate",
    "file-system-certificate",
    "http-route",
    "tcp-route",
    "jwt-provider",
)
# The fields Go's encoder writes for a kind's zero value (struct fields have no
# omitempty effect): what a read shows beside the fields the write carried.
ZERO_FIELDS: dict[str, Row] = {
    "service-defaults": {
        "Protocol": "",
        "TransparentProxy": {},
        "MeshGateway": {},
        "Expose": {},
    },
    "proxy-defaults": {"TransparentProxy": {}, "MeshGateway": {}, "Expose": {}},
    "ingress-gateway": {"TLS": {"Enabled": False}, "Listeners": None},
    "terminating-gateway": {"Services": None},
    "service-intentions": {"Sources": None},
    "service-resolver": {},
}


class ConfigEntryError(ValueError):
    """A write Consul refuses (400, or 404 where the text says so)."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def check_kind(kind: str) -> None:
    """``structs.MakeConfigEntry``: the kinds it knows."""
    if kind not in KINDS:
        raise ConfigEntryError(f"invalid config entry kind: {kind}")


def decode_entry(raw: Any) -> Row:
    """``structs.DecodeConfigEntry`` and the entry's ``Normalize``: a writable entry."""
    if not isinstance(raw, dict):
        raise ConfigEntryError("Request decoding failed: expected a JSON object")
    kind = raw.get("Kind", raw.get("kind"))
    if kind is None:
        raise ConfigEntryError(
            "Request decoding failed: Payload does not contain a kind/Kind key at the top level"
        )
    if not isinstance(kind, str):
        raise ConfigEntryError("Request decoding failed: Kind value in payload is not a string")
    try:
        check_kind(kind)
    except ConfigEntryError as exc:
        raise ConfigEntryError(f"Request decoding failed: {exc}") from None
    entry = {key: value for key, value in raw.items() if key not in ("kind", "name")}
    entry["Kind"] = kind
    entry["Name"] = raw.get("Name", raw.get("name", ""))
    if kind in ("service-defaults", "proxy-defaults") and isinstance(entry.get("Protocol"), str):
        entry["Protocol"] = entry["Protocol"].lower()
    _validate_name(entry)
    return entry


def _validate_name(entry: Row) -> None:
    name = entry["Name"]
    if entry["Kind"] in ("proxy-defaults", "mesh"):
        wanted = "global" if entry["Kind"] == "proxy-defaults" else "mesh"
        if name != wanted:
            raise ConfigEntryError(f'invalid name ("{name}"), only "{wanted}" is supported')
    elif not name:
        raise ConfigEntryError("Name is required")


class ConfigEntryStore:
    """Entries by (kind, name), with the table index blocking reads use."""

    def __init__(self, raft: Raft) -> None:
        self.raft = raft
        self.entries: dict[tuple[str, str], Row] = {}
        self.table_index = 1

    def get(self, kind: str, name: str) -> Row | None:
        entry = self.entries.get((kind, name))
        return _rendered(entry) if entry is not None else None

    def listing(self, kind: str | None = None) -> list[Row]:
        """Sorted by kind, then name (the state store's index order)."""
        keys = sorted(key for key in self.entries if kind is None or key[0] == kind)
        return [_rendered(self.entries[key]) for key in keys]

    def set(self, entry: Row, cas: int | None = None) -> bool:
        """Insert or replace; with ``cas``, only over ModifyIndex ``cas`` (0: none yet)."""
        key = (entry["Kind"], entry["Name"])
        existing = self.entries.get(key)
        if cas is not None and (existing["ModifyIndex"] if existing else 0) != cas:
            return False
        index = self._next_index()
        stored = copy.deepcopy(entry)
        stored["CreateIndex"] = existing["CreateIndex"] if existing else index
        stored["ModifyIndex"] = index
        self.entries[key] = stored
        return True

    def delete(self, kind: str, name: str, cas: int | None = None) -> bool:
        """Remove; with ``cas``, only while its ModifyIndex is ``cas``."""
        existing = self.entries.get((kind, name))
        if cas is not None and (existing is None or existing["ModifyIndex"] != cas):
            return False
        if existing is not None:
            del self.entries[(kind, name)]
            self._next_index()
        return True

    def restore_index(self, index: int) -> None:
        self.table_index = min(self.table_index, index)

    def _next_index(self) -> int:
        self.table_index = self.raft.next_index()
        self.raft.touch(CONFIG_KEY)
        return self.table_index


def _rendered(entry: Row) -> Row:
    """An entry as a read shows it: the kind's zero fields, the stored ones, the indexes."""
    zero = copy.deepcopy(ZERO_FIELDS.get(entry["Kind"], {}))
    fields = {k: v for k, v in entry.items() if k not in ("CreateIndex", "ModifyIndex")}
    indexes = {"CreateIndex": entry["CreateIndex"], "ModifyIndex": entry["ModifyIndex"]}
    head = {"Kind": entry["Kind"], "Name": entry["Name"]}
    return {**head, **zero, **copy.deepcopy(fields), **indexes}
