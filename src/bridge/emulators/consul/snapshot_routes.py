"""``/v1/snapshot``: save the server state, and restore it (``agent/snapshot_endpoint.go``).

The archive has Consul's layout (a gzipped tar of ``meta.json``, ``state.bin`` and
``SHA256SUMS``), but its ``state.bin`` only names a state this emulator keeps in
memory: the catalog, the KV store and the config entries as they were. So a snapshot
restores into the emulator that took it, never into another one, and the body of a
restore is never deserialised into objects. Sessions are not part of it.
"""

from __future__ import annotations

import copy
import gzip
import hashlib
import io
import json
import secrets
import tarfile
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from .context import Context
from .query import Query
from .web import HTTPError, allow, empty_response

KEPT = 8  # snapshots remembered for a restore


@dataclass(frozen=True)
class SavedState:
    index: int
    catalog: Any
    kv: Any
    config_entries: dict[tuple[str, str], dict[str, Any]]
    config_index: int


class SnapshotRoutes:
    """Snapshots taken by this emulator, kept in memory for a restore."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.saved: OrderedDict[str, SavedState] = OrderedDict()

    async def route(self, request: Request, q: Query, seg: list[str]) -> Response | None:
        if seg != ["v1", "snapshot"]:
            return None
        allow(request.method, ("GET", "PUT"))
        # SnapshotAllowed is denied as acl:write: a snapshot needs management, whatever
        # the default policy (acl.AllowAll() manages nothing).
        self.ctx.require_acl(q, "write")
        self.ctx.require_leader(q)
        if request.method == "GET":
            return self._save(q)
        return self._restore(await request.body())

    def _save(self, q: Query) -> Response:
        ctx = self.ctx
        state_id = secrets.token_hex(16)
        self.saved[state_id] = SavedState(
            index=ctx.raft.index,
            catalog=ctx.catalog.snapshot(),
            kv=ctx.kv.snapshot(),
            config_entries=copy.deepcopy(ctx.config_entries.entries),
            config_index=ctx.config_entries.table_index,
        )
        while len(self.saved) > KEPT:
            self.saved.popitem(last=False)
        archive = _archive(state_id, ctx.raft.index)
        headers = {**ctx.meta(q, ctx.raft.index), "Content-Type": "application/x-gzip"}
        return Response(archive, status_code=200, headers=headers)

    def _restore(self, body: bytes) -> Response:
        state = self.saved.get(_state_id(body))
        if state is None:
            raise HTTPError(500, "failed to restore snapshot: not a snapshot of this emulator")
        ctx = self.ctx
        ctx.catalog.restore(copy.deepcopy(state.catalog))
        # Copies: the restored tables take writes, the saved state must not.
        ctx.kv.restore(tuple(dict(part) if isinstance(part, dict) else part for part in state.kv))
        ctx.config_entries.entries = copy.deepcopy(state.config_entries)
        ctx.config_entries.table_index = state.config_index
        ctx.abandon_blocking_queries()  # as a restore does: every blocked query answers
        return empty_response()


def _archive(state_id: str, index: int) -> bytes:
    """Consul's snapshot layout: meta.json, state.bin and their SHA256SUMS, tarred, gzipped."""
    meta = json.dumps(
        {"ID": f"2-{index}-{int(time.time() * 1000)}", "Index": index, "Term": 2, "Version": 1}
    ).encode()
    state = state_id.encode()
    sums = "".join(
        f"{hashlib.sha256(data).hexdigest()}  {name}\n"
        for name, data in (("meta.json", meta), ("state.bin", state))
    ).encode()
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for name, data in (("meta.json", meta), ("state.bin", state), ("SHA256SUMS", sums)):
            info = tarfile.TarInfo(name)
            info.size, info.mtime = len(data), int(time.time())
            tar.addfile(info, io.BytesIO(data))
    return gzip.compress(raw.getvalue())


def _state_id(body: bytes) -> str:
    """The state a snapshot names; empty when the body is no archive of ours."""
    try:
        with tarfile.open(fileobj=io.BytesIO(gzip.decompress(body)), mode="r") as tar:
            member = tar.extractfile("state.bin")
            return member.read(64).decode() if member is not None else ""
    except (OSError, EOFError, tarfile.TarError, KeyError, UnicodeDecodeError):
        return ""
