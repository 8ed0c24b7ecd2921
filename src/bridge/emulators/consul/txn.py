"""``PUT /v1/txn``: KV, node, service and check operations applied atomically at one index.

Verbs, results and error texts follow ``agent/consul/state/txn.go``: a write's
KV result carries no Value, a ``get`` carries it, a delete has no result; any
failed operation rolls the whole transaction back and answers 409 with
``Errors`` (``OpIndex``, ``What``).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from .agent import build_check
from .catalog import CatalogError, build_service
from .context import Context
from .kv import SessionError
from .normalize import check_body, service_body
from .query import BadRequest, Query
from .shapes import check_json, kv_json, node_json, node_service_json
from .web import PUT, HTTPError, Row, allow, get_ci, json_body, json_response

MAX_TXN_OPS = 128  # txn_max_ops... Consul's default limit on operations per transaction
READ_VERBS = frozenset({"get", "get-tree", "check-index", "check-session", "check-not-exists"})


class TxnFailed(Exception):
    """An operation that failed: the transaction rolls back."""


class TxnRoutes:
    """``/v1/txn`` (``agent/txn_endpoint.go``)."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    async def route(self, request: Request, q: Query, seg: list[str]) -> Response | None:
        if seg != ["v1", "txn"]:
            return None
        allow(request.method, PUT)
        ops = _parse_ops(await _txn_body(request))
        read_only = all(_outer_verb(op) in READ_VERBS for op in ops)
        if read_only:
            self.ctx.require_leader(q)
        else:
            self.ctx.require_write(q)
        results, errors = self.apply(ops)
        headers = self.ctx.meta(q, self.ctx.raft.index) if read_only else None
        if errors:
            return json_response(409, {"Results": None, "Errors": errors}, headers)
        return json_response(200, {"Results": results, "Errors": None}, headers)

    def apply(self, ops: list[Row]) -> tuple[list[Row], list[Row]]:
        """Run every operation at one index; on the first failure put everything back."""
        ctx = self.ctx
        index_before = ctx.raft.index
        kv_before = ctx.kv.snapshot()
        touches_catalog = any(_kind(op) != "KV" for op in ops)
        catalog_before = ctx.catalog.snapshot() if touches_catalog else None
        results: list[Row] = []

        def roll_back() -> None:
            ctx.kv.restore(kv_before)
            if catalog_before is not None:
                ctx.catalog.restore(catalog_before)
            ctx.raft.discard(index_before)

        with ctx.raft.one_entry():
            for number, op in enumerate(ops):
                try:
                    results.extend(self._one(op))
                except (TxnFailed, CatalogError, SessionError) as exc:
                    roll_back()
                    return [], [{"OpIndex": number, "What": str(exc)}]
                except (BadRequest, ValueError, TypeError, AttributeError) as exc:
                    # A field of the wrong type: Consul's decoder refuses the body.
                    roll_back()
                    raise BadRequest(f"Failed to parse body: op {number}: {exc}") from None
        ctx.raft.commit()
        return results, []

    def _one(self, op: Row) -> list[Row]:
        kind = _kind(op)
        body = op[kind]
        if kind == "KV":
            return self._kv(body)
        if kind == "Node":
            return self._node(body)
        if kind == "Service":
            return self._service(body)
        return self._check(body)

    # -- KV --------------------------------------------------------------------------------

    def _kv(self, op: Row) -> list[Row]:
        kv = self.ctx.kv
        verb = _verb_of(op)
        key = str(get_ci(op, "Key") or "")
        index = int(get_ci(op, "Index") or 0)
        session = str(get_ci(op, "Session") or "")
        current = kv.entries.get(key)
        if verb in ("set", "cas", "lock", "unlock"):
            value = _value(get_ci(op, "Value"))
            flags = int(get_ci(op, "Flags") or 0)
            ok = kv.put(
                key,
                value,
                flags=flags,
                cas=index if verb == "cas" else None,
                acquire=session if verb == "lock" else None,
                release=session if verb == "unlock" else None,
                sessions=self.ctx.sessions,
            )
            if not ok:
                raise TxnFailed(_kv_refusal(verb, key))
            return [{"KV": kv_json({**kv.entries[key], "Value": None})}]
        if verb in ("delete", "delete-tree"):
            kv.delete(key, recurse=verb == "delete-tree")
            return []
        if verb == "delete-cas":
            if current is None or current["ModifyIndex"] != index:
                raise TxnFailed(f'failed to delete key "{key}", index is stale')
            kv.delete(key)
            return []
        if verb == "get":
            if current is None:
                raise TxnFailed(f'key "{key}" doesn\'t exist')
            return [{"KV": kv_json(current)}]
        if verb == "get-tree":
            return [{"KV": kv_json(entry)} for entry in kv.list(key)[1]]
        if verb == "check-not-exists":
            if current is not None:
                raise TxnFailed(f'key "{key}" exists')
            return []
        if verb not in ("check-index", "check-session"):
            raise TxnFailed(f'unknown KV verb "{verb}"')
        if current is None:
            raise TxnFailed(f'key "{key}" doesn\'t exist')
        if verb == "check-index" and current["ModifyIndex"] != index:
            raise TxnFailed(f"current modify index {current['ModifyIndex']} != {index}")
        held = current.get("Session", "")
        if verb == "check-session" and held != session:
            raise TxnFailed(
                f'failed session check for key "{key}", current session "{held}" != "{session}"'
            )
        return [{"KV": kv_json({**current, "Value": None})}]

    # -- catalog ---------------------------------------------------------------------------

    def _node(self, op: Row) -> list[Row]:
        catalog = self.ctx.catalog
        node = get_ci(op, "Node") or {}
        name = str(get_ci(node, "Node") or "")

        def write() -> Row:
            if not name:
                raise TxnFailed("Must provide node")
            return catalog.ensure_node(
                name,
                str(get_ci(node, "Address") or ""),
                str(get_ci(node, "ID") or "") or None,
                get_ci(node, "TaggedAddresses"),
                get_ci(node, "Meta"),
            )

        return _entity_op(
            Entity("Node", f'node "{name}"', catalog.nodes.get(name), node, node_json),
            _verb_of(op),
            write,
            lambda: self.ctx.deregister_node(name),
        )

    def _service(self, op: Row) -> list[Row]:
        catalog = self.ctx.catalog
        node = str(get_ci(op, "Node") or "")
        body = service_body(get_ci(op, "Service") or {})
        if "Service" in body and "Name" not in body:
            body["Name"] = body.pop("Service")
        sid = str(body.get("ID") or body.get("Name") or "")

        def write() -> Row:
            _require_node(catalog.nodes, node)
            return catalog.register_service(node, build_service(body, add_default_tagged=False))

        where = f'service "{sid}" on node "{node}"'
        return _entity_op(
            Entity("Service", where, catalog.services.get((node, sid)), body, node_service_json),
            _verb_of(op),
            write,
            lambda: catalog.deregister_service(node, sid),
        )

    def _check(self, op: Row) -> list[Row]:
        catalog = self.ctx.catalog
        body = check_body(get_ci(op, "Check") or {})
        node = str(body.get("Node") or "")
        check_id = str(body.get("CheckID") or "")

        def write() -> Row:
            _require_node(catalog.nodes, node)
            owner = None
            if body.get("ServiceID"):
                owner = catalog.services.get((node, str(body["ServiceID"])))
                if owner is None:
                    owner_id = body["ServiceID"]
                    raise TxnFailed(f'service "{owner_id}" on node "{node}" doesn\'t exist')
            name = str(body.get("Name") or "")
            return catalog.register_check(
                node, build_check(node, body, owner, check_id, name, validate=False)
            )

        where = f'check "{check_id}" on node "{node}"'
        return _entity_op(
            Entity("Check", where, catalog.checks.get((node, check_id)), body, check_json),
            _verb_of(op),
            write,
            lambda: catalog.deregister_check(node, check_id),
        )


@dataclass(frozen=True)
class Entity:
    """A node, service or check a catalog op names: how to find, describe and render it."""

    kind: str  # "Node", "Service" or "Check"
    where: str  # 'service "web-1" on node "n1"', for the error texts
    current: Row | None
    body: Row  # the op's body, with the ModifyIndex a cas compares
    render: Callable[[Row], Row]


def _entity_op(
    entity: Entity, verb: str, write: Callable[[], Row], delete: Callable[[], object]
) -> list[Row]:
    """The verbs node, service and check ops share: set, cas, get, delete, delete-cas."""
    current, where = entity.current, entity.where
    if verb in ("set", "cas"):
        if verb == "cas" and (current or {}).get("ModifyIndex", 0) != _modify_index(entity.body):
            raise TxnFailed(f"failed to set {where}, index is stale")
        return [{entity.kind: entity.render(write())}]
    if verb not in ("get", "delete", "delete-cas"):
        raise TxnFailed(f'unknown {entity.kind} verb "{verb}"')
    if current is None:
        if verb == "delete":
            return []
        raise TxnFailed(f"{where} doesn't exist")
    if verb == "get":
        return [{entity.kind: entity.render(current)}]
    if verb == "delete-cas" and current["ModifyIndex"] != _modify_index(entity.body):
        raise TxnFailed(f"failed to delete {where}, index is stale")
    delete()
    return []


def _require_node(nodes: dict[str, Row], node: str) -> None:
    if node not in nodes:
        raise TxnFailed(f'node "{node}" doesn\'t exist')


def _verb_of(op: Row) -> str:
    return str(get_ci(op, "Verb") or "")


async def _txn_body(request: Request) -> Any:
    try:
        return await json_body(request)
    except BadRequest as exc:
        raise BadRequest(
            str(exc).replace("Request decode failed", "Failed to parse body")
        ) from None


def _parse_ops(body: Any) -> list[Row]:
    if not isinstance(body, list) or not all(isinstance(op, dict) for op in body):
        raise BadRequest("Failed to parse body: expected a JSON array of operations")
    if len(body) > MAX_TXN_OPS:
        raise HTTPError(
            413, f"Transaction contains too many operations ({len(body)} > {MAX_TXN_OPS})"
        )
    for op in body:
        if len(op) != 1 or _kind(op) not in ("KV", "Node", "Service", "Check"):
            raise BadRequest(
                "Failed to parse body: each operation has one of KV, Node, Service, Check"
            )
    return body


def _kind(op: Row) -> str:
    (key,) = op.keys() if len(op) == 1 else ("",)
    return {"kv": "KV", "node": "Node", "service": "Service", "check": "Check"}.get(
        str(key).lower(), str(key)
    )


def _outer_verb(op: Row) -> str:
    """The verb of an operation as sent: ``{"KV": {"Verb": ...}}``."""
    body: Any = next(iter(op.values()), {})
    return str(get_ci(body, "Verb") or "") if isinstance(body, dict) else ""


def _value(raw: Any) -> bytes | None:
    if raw in (None, ""):
        return None
    try:
        return base64.b64decode(str(raw), validate=True)
    except (binascii.Error, ValueError):
        raise BadRequest(f"Failed to parse body: illegal base64 data in Value {raw!r}") from None


def _modify_index(body: Row) -> int:
    return int(get_ci(body, "ModifyIndex") or 0)


def _kv_refusal(verb: str, key: str) -> str:
    return {
        "set": f'failed to set key "{key}"',
        "cas": f'failed to set key "{key}", index is stale',
        "lock": f'failed to lock key "{key}", lock is already held',
        "unlock": f'failed to unlock key "{key}", lock isn\'t held, or is held by another session',
    }[verb]
