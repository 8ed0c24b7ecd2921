"""Nodes, services and checks with Consul's index rules, and the catalog/health reads.

Index scopes (``agent/consul/state``): ``catalog/services`` reads the services
table index; ``catalog/service/:s`` and ``health/service/:s`` read a
per-service index covering the instances, their checks and their nodes'
checks; a service with no instances reads the last "extinction" index.
"""

from __future__ import annotations

import bisect
import copy
import ipaddress
import re
import uuid
from collections.abc import Callable
from typing import Any

from .raft import Raft

Row = dict[str, Any]
Key = tuple[str, str]  # (node, id)
STATUSES = ("passing", "warning", "critical")
META_MAX_PAIRS, META_MAX_KEY, META_MAX_VALUE = 64, 128, 512
META_KEY_FORMAT = re.compile(r"[a-zA-Z0-9_-]+")  # structs.metaKeyFormat, used whole


class CatalogError(ValueError):
    """A request Consul refuses with this text; ``status`` is 400 unless said (404...)."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def ip_version(value: str) -> int | None:
    """4 or 6 as Go's ``net.ParseIP`` and ``To4`` tell them (agent.go's default tagged
    addresses), else ``None``. Not Python's alone: it takes a zone (``fe80::1%eth0``),
    which Go refuses, and calls ``::ffff:10.0.0.1`` IPv6, which ``To4`` makes IPv4."""
    if "%" in value:
        return None
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return 4
    return address.version


def validate_meta(meta: Any, what: str = "Service") -> dict[str, str]:
    """``structs.ValidateServiceMetadata`` behind "Invalid <what> Meta: ", with its texts
    (it says "Node metadata" for services too) and Go's ``len``: bytes, not characters."""
    if meta is None:
        return {}
    if not isinstance(meta, dict):
        raise CatalogError(f"Invalid {what} Meta: expected a map of strings")
    if len(meta) > META_MAX_PAIRS:
        raise CatalogError(
            f"Invalid {what} Meta: Node metadata cannot contain more than "
            f"{META_MAX_PAIRS} key/value pairs"
        )
    for key, value in meta.items():
        problem = _meta_pair_problem(str(key), str(value), reserved=what == "Service")
        if problem:
            raise CatalogError(
                f"Invalid {what} Meta: Couldn't load metadata pair ('{key}', '{value}'): {problem}"
            )
    return {str(k): str(v) for k, v in meta.items()}


def _meta_pair_problem(key: str, value: str, reserved: bool) -> str | None:
    """``structs.validateMetaPair``, in its order."""
    if not key:
        return "Key cannot be blank"
    if not META_KEY_FORMAT.fullmatch(key):
        return "Key contains invalid characters"
    if len(key) > META_MAX_KEY:  # ASCII only, by the format above
        return f"Key is too long (limit: {META_MAX_KEY} characters)"
    if reserved and key.startswith("consul-"):
        return "Key prefix 'consul-' is reserved for internal use"
    if len(value.encode("utf-8", "surrogatepass")) > META_MAX_VALUE:
        return f"Value is too long (limit: {META_MAX_VALUE} characters)"
    return None


def _weights(value: Any) -> dict[str, int]:
    """``structs.ValidateWeights`` behind the agent's "Invalid Weights: "."""
    if value is None:
        return {"Passing": 1, "Warning": 1}
    if not isinstance(value, dict):
        raise CatalogError("Invalid Weights: expected an object")
    passing = int(value.get("Passing", 1) or 0)
    warning = int(value.get("Warning", 1) if "Warning" in value else 1)
    if passing < 1:
        raise CatalogError("Invalid Weights: Passing must be greater than 0")
    if warning < 0:
        raise CatalogError("Invalid Weights: Warning must be greater or equal than 0")
    if passing > 65535 or warning > 65535:
        raise CatalogError("Invalid Weights: DNS Weight must be between 0 and 65535")
    return {"Passing": passing, "Warning": warning}


def build_service(body: Row, add_default_tagged: bool = True) -> Row:
    """A NodeService from a register body, with the agent's defaults."""
    name = body.get("Name")
    if not name or not isinstance(name, str):
        raise CatalogError("Missing service name")
    port = body.get("Port") or 0
    if not isinstance(port, int) or isinstance(port, bool) or not 0 <= port <= 65535:
        raise CatalogError(f"Invalid service port: {port!r}")
    tags = body.get("Tags") or []
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise CatalogError("Invalid Tags: expected a list of strings")
    address = body.get("Address") or ""
    tagged: dict[str, Row] = {}
    for tag, value in (body.get("TaggedAddresses") or {}).items():
        tagged[tag] = {
            "Address": str(value.get("Address", "")),
            "Port": int(value.get("Port") or 0),
        }
    version = ip_version(address) if address else None
    if add_default_tagged and version is not None:
        suffix = "ipv6" if version == 6 else "ipv4"
        for scope in ("lan", "wan"):
            tagged.setdefault(f"{scope}_{suffix}", {"Address": address, "Port": port})
    return {
        "ID": body.get("ID") or name,
        "Service": name,
        "Tags": list(tags),
        "Address": address,
        "TaggedAddresses": tagged,
        "Meta": validate_meta(body.get("Meta")),
        "Port": port,
        "Weights": _weights(body.get("Weights")),
        "EnableTagOverride": bool(body.get("EnableTagOverride", False)),
        "Kind": body.get("Kind") or "",
        "Proxy": body.get("Proxy") or {"Mode": "", "MeshGateway": {}, "Expose": {}},
        "Connect": body.get("Connect") or {},
        "SocketPath": body.get("SocketPath") or "",
    }


# What a transaction's snapshot holds: every table, secondary index and index counter.
_TABLES = (
    "nodes",
    "services",
    "checks",
    "services_by_name",
    "services_by_node",
    "checks_by_node",
    "checks_by_instance",
    "checks_by_name",
    "table_index",
    "service_index",
    "extinction_index",
)


class Catalog:
    """The catalog of one datacenter: nodes, their services and checks."""

    def __init__(self, raft: Raft, datacenter: str) -> None:
        self.raft = raft
        self.datacenter = datacenter
        self.nodes: dict[str, Row] = {}
        self.services: dict[Key, Row] = {}
        self.checks: dict[Key, Row] = {}
        # Secondary indexes, so reads stay proportional to what they return at 30k instances.
        self.services_by_name: dict[str, set[Key]] = {}
        self.services_by_node: dict[str, set[Key]] = {}
        self.checks_by_node: dict[str, set[Key]] = {}
        # Consul's checks table indexes "node_service" and "service" (agent/consul/state).
        self.checks_by_instance: dict[Key, set[Key]] = {}  # (node, ServiceID or "") -> checks
        self.checks_by_name: dict[str, set[Key]] = {}  # ServiceName -> checks
        # Every check key in (node, CheckID) order, kept up to date as keys come and go, so
        # a status change at 10,000 checks lists them without sorting them again.
        self._check_order: list[Key] | None = None
        self.restores = 0  # tables put back or indexes lowered: cached answers start over
        self._changed_checks: set[Key] = set()  # written or removed since the last take
        self._sorted_checks: tuple[int, list[Row]] | None = None
        self.table_index = {"nodes": 1, "services": 1, "checks": 1}
        self.service_index: dict[str, int] = {}
        # (index, name) of every service index move, in index order: which services moved
        # since an index, without looking at all 10,000 (compacted now and then).
        self._service_moves: list[tuple[int, str]] = []
        self.extinction_index = 1
        # Called with (check, removed) when a check is written or removed (sessions listen).
        self.check_listeners: list[Callable[[Row, bool], None]] = []
        self._names_cache: tuple[int, dict[str, list[str]]] | None = None
        # Moves on every change a read could see (even those that move no index), so a
        # rendered answer stays valid exactly while it stays put.
        self.version = 0

    # -- writes ----------------------------------------------------------------------------

    def _bump(self, *tables: str) -> int:
        index = self.raft.next_index()
        self.version += 1
        for table in tables:
            self.table_index[table] = index
            self.raft.touch(("table", table))
        return index

    def _touch_service(self, name: str, index: int) -> None:
        self.service_index[name] = index
        self._service_moves.append((index, name))
        if len(self._service_moves) > 2 * len(self.service_index) + 1024:
            self._restart_service_moves()
        self.raft.touch(("service", name))

    def _restart_service_moves(self) -> None:
        """Each service's last move only, in index order."""
        self._service_moves = sorted((i, n) for n, i in self.service_index.items())

    def _services_on(self, node: str) -> set[str]:
        return {self.services[key]["Service"] for key in self.services_by_node.get(node, ())}

    def _put_service(self, key: Key, row: Row) -> None:
        self.services[key] = row
        self.services_by_name.setdefault(row["Service"], set()).add(key)
        self.services_by_node.setdefault(key[0], set()).add(key)

    def _pop_service(self, key: Key) -> Row | None:
        row = self.services.pop(key, None)
        if row is not None:
            _discard(self.services_by_name, row["Service"], key)
            _discard(self.services_by_node, key[0], key)
        return row

    def _put_check(self, key: Key, row: Row) -> None:
        # A re-registration may move the check to another service: unindex the old row.
        if self._unindex_check(key) is None and self._check_order is not None:
            bisect.insort(self._check_order, key)
        self.checks[key] = row
        self._changed_checks.add(key)
        self.checks_by_node.setdefault(key[0], set()).add(key)
        self.checks_by_instance.setdefault((key[0], row["ServiceID"]), set()).add(key)
        self.checks_by_name.setdefault(row["ServiceName"], set()).add(key)

    def _pop_check(self, key: Key) -> Row | None:
        row = self._unindex_check(key)
        if row is not None:
            self._changed_checks.add(key)
            if self._check_order is not None:
                del self._check_order[bisect.bisect_left(self._check_order, key)]
        return row

    def _unindex_check(self, key: Key) -> Row | None:
        row = self.checks.pop(key, None)
        if row is not None:
            _discard(self.checks_by_node, key[0], key)
            _discard(self.checks_by_instance, (key[0], row["ServiceID"]), key)
            _discard(self.checks_by_name, row["ServiceName"], key)
        return row

    def ensure_node(
        self,
        node: str,
        address: str,
        node_id: str | None = None,
        tagged: dict[str, str] | None = None,
        meta: dict[str, str] | None = None,
    ) -> Row:
        current = self.nodes.get(node)
        wanted = {
            "ID": node_id or (current or {}).get("ID") or "",
            "Node": node,
            "Address": address,
            "Datacenter": self.datacenter,
            "TaggedAddresses": tagged
            if tagged is not None
            else (current or {}).get("TaggedAddresses"),
            "Meta": meta if meta is not None else (current or {}).get("Meta") or {},
        }
        if current is not None and all(current[k] == v for k, v in wanted.items()):
            return current
        index = self._bump("nodes")
        row = {
            **wanted,
            "CreateIndex": (current or {}).get("CreateIndex", index),
            "ModifyIndex": index,
        }
        self.nodes[node] = row
        self.raft.touch(("node", node))
        for name in self._services_on(node):
            self._touch_service(name, index)
        return row

    def register_service(self, node: str, service: Row) -> Row:
        key = (node, service["ID"])
        current = self.services.get(key)
        if current is not None:
            comparable = {
                k: v for k, v in current.items() if k not in ("CreateIndex", "ModifyIndex")
            }
            if comparable == service:
                return current
            if current["Service"] != service["Service"]:
                self._remove_service_row(key, self.raft.index + 1)
        index = self._bump("services")
        row = {
            **service,
            "CreateIndex": (current or {}).get("CreateIndex", index),
            "ModifyIndex": index,
        }
        self._put_service(key, row)
        self._touch_service(service["Service"], index)
        self.raft.touch(("node", node))
        return row

    def _remove_service_row(self, key: Key, index: int) -> None:
        row = self._pop_service(key)
        if row is None:
            return
        name = row["Service"]
        self._touch_service(name, index)
        if not self.services_by_name.get(name):
            self.extinction_index = index

    def deregister_service(self, node: str, service_id: str) -> bool:
        """Remove an instance and its checks (``deleteServiceTxn``).

        Its checks go as ``deleteCheckTxn`` removes them: the checks table index
        moves, so ``health/state``, ``health/node`` and ``health/checks`` wake.
        """
        key = (node, service_id)
        if key not in self.services:
            return False
        check_keys = list(self.checks_by_instance.get(key, ()))
        index = self._bump("services", *(["checks"] if check_keys else []))
        self._remove_service_row(key, index)
        for check_key in check_keys:
            self._drop_check(check_key, index)
        self.raft.touch(("node", node))
        return True

    def register_check(self, node: str, check: Row) -> Row:
        key = (node, check["CheckID"])
        current = self.checks.get(key)
        if current is not None:
            comparable = {
                k: v for k, v in current.items() if k not in ("CreateIndex", "ModifyIndex")
            }
            if comparable == check:
                return current
        index = self._bump("checks")
        row = {
            **check,
            "CreateIndex": (current or {}).get("CreateIndex", index),
            "ModifyIndex": index,
        }
        self._put_check(key, row)
        self._touch_check(node, row, index)
        for listener in self.check_listeners:
            listener(row, False)
        return row

    def _touch_check(self, node: str, check: Row, index: int) -> None:
        self.raft.touch(("node", node), ("checks", check["ServiceName"] or ""))
        for state in ("any", *STATUSES):
            self.raft.touch(("state", state))
        if check["ServiceID"]:
            self._touch_service(check["ServiceName"], index)
        else:
            for name in self._services_on(node):
                self._touch_service(name, index)

    def set_check_status(
        self, node: str, check_id: str, status: str, output: str | None = None
    ) -> Row | None:
        current = self.checks.get((node, check_id))
        if current is None:
            return None
        if current["Status"] == status:
            # Output-only changes reach the servers later (check_update_interval): no index bump.
            if output is not None:
                current["Output"] = output
                self.version += 1
                self._changed_checks.add((node, check_id))
            return current
        return self.register_check(
            node,
            {
                **{k: v for k, v in current.items() if k not in ("CreateIndex", "ModifyIndex")},
                "Status": status,
                "Output": current["Output"] if output is None else output,
            },
        )

    def deregister_check(self, node: str, check_id: str) -> bool:
        if (node, check_id) not in self.checks:
            return False
        self._drop_check((node, check_id), self._bump("checks"))
        return True

    def _drop_check(self, key: Key, index: int) -> None:
        """``deleteCheckTxn``: remove, move the indexes, invalidate the sessions tied to it."""
        check = self._pop_check(key)
        if check is None:
            return
        self._touch_check(key[0], check, index)
        for listener in self.check_listeners:
            listener(check, True)

    def deregister_node(self, node: str) -> bool:
        if node not in self.nodes:
            return False
        index = self._bump("nodes", "services", "checks")
        for key in list(self.services_by_node.get(node, ())):
            self._remove_service_row(key, index)
        for key in list(self.checks_by_node.get(node, ())):
            self._drop_check(key, index)
        del self.nodes[node]
        self.raft.touch(("node", node))
        return True

    def snapshot(self) -> dict[str, Any]:
        """The tables and their indexes, to put back if a transaction fails."""
        return copy.deepcopy({name: getattr(self, name) for name in _TABLES})

    def restore(self, snapshot: dict[str, Any]) -> None:
        for name in _TABLES:
            setattr(self, name, snapshot[name])
        self._restart_service_moves()
        self.version += 1
        self._names_cache = None
        self._sorted_checks = None
        self._check_order = None
        self.restores += 1

    def restore_index(self, index: int) -> None:
        """A snapshot restore: every index above ``index`` comes back down to it."""

        def lower(row: Row) -> None:
            for field in ("CreateIndex", "ModifyIndex"):
                if row.get(field, 0) > index:
                    row[field] = index

        for rows in (self.nodes.values(), self.services.values(), self.checks.values()):
            for row in rows:
                lower(row)
        for table, value in self.table_index.items():
            self.table_index[table] = min(value, index)
        self.version += 1
        self._names_cache = None
        self._sorted_checks = None
        self._check_order = None
        self.restores += 1
        for name, value in self.service_index.items():
            self.service_index[name] = min(value, index)
        self._restart_service_moves()
        self.extinction_index = min(self.extinction_index, index)

    # -- reads -----------------------------------------------------------------------------

    def services_moved_since(self, index: int) -> set[str]:
        """The services whose index is above ``index``: O(moves since), not O(services)."""
        start = bisect.bisect_right(self._service_moves, index, key=lambda move: move[0])
        return {name for _index, name in self._service_moves[start:]}

    def service_index_for(self, name: str) -> int:
        if self.services_by_name.get(name):
            return self.service_index.get(name, self.table_index["services"])
        return max(self.extinction_index, 1)

    def instances(self, name: str) -> list[tuple[str, Row]]:
        keys = sorted(self.services_by_name.get(name, ()))
        return [(key[0], self.services[key]) for key in keys]

    def checks_for(self, node: str, service_id: str) -> list[Row]:
        """A service instance's checks: its node's checks, then its own (Consul's order)."""
        node_keys = sorted(self.checks_by_instance.get((node, ""), ()))
        own_keys = sorted(self.checks_by_instance.get((node, service_id), ())) if service_id else []
        return [self.checks[key] for key in node_keys + own_keys]

    def checks_of_instance(self, node: str, service_id: str) -> list[Row]:
        """The checks registered for one instance (not its node's)."""
        return [self.checks[k] for k in sorted(self.checks_by_instance.get((node, service_id), ()))]

    def checks_on_node(self, node: str) -> list[Row]:
        return [self.checks[key] for key in sorted(self.checks_by_node.get(node, ()))]

    def checks_of_service(self, name: str) -> list[Row]:
        """The checks of every instance of a service (the ``service`` index of the table)."""
        return [self.checks[key] for key in sorted(self.checks_by_name.get(name, ()))]

    def check_order(self) -> list[Key]:
        """Every check key, in (node, CheckID) order (kept, not sorted again)."""
        if self._check_order is None:
            self._check_order = sorted(self.checks)
        return self._check_order

    def take_changed_checks(self) -> set[Key]:
        """The checks written or removed since the last call (for incremental renderers)."""
        changed, self._changed_checks = self._changed_checks, set()
        return changed

    def all_checks(self) -> list[Row]:
        """Every check by (node, CheckID); sorted once per checks-table index."""
        index = self.table_index["checks"]
        if self._sorted_checks is None or self._sorted_checks[0] != index:
            self._sorted_checks = (index, [self.checks[key] for key in self.check_order()])
        return self._sorted_checks[1]

    def service_names(self) -> dict[str, list[str]]:
        """Service name -> union of tags; cached per services-table index (it is read a lot)."""
        index = self.table_index["services"]
        if self._names_cache is not None and self._names_cache[0] == index:
            return self._names_cache[1]
        names: dict[str, list[str]] = {}
        for svc in self.services.values():
            tags = names.setdefault(svc["Service"], [])
            for tag in svc["Tags"]:
                if tag not in tags:
                    tags.append(tag)
        result = dict(sorted(names.items()))
        self._names_cache = (index, result)
        return result


def _discard(index: dict[Any, set[Key]], name: Any, key: Key) -> None:
    keys = index.get(name)
    if keys is not None:
        keys.discard(key)
        if not keys:
            del index[name]


def new_node_id() -> str:
    return str(uuid.uuid4())
