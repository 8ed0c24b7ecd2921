"""The KV store and sessions: CAS, flags, locks (acquire/release), lock-delay, TTL expiry.

Rules from ``agent/consul/state/kvs.go`` and ``session.mdx``: a single key
reads its own ``ModifyIndex`` (the table index when missing); a prefix reads
the highest index among its entries and its tombstones.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

from .catalog import Catalog
from .durations import format_duration, parse_duration
from .raft import Raft

Row = dict[str, Any]
DEFAULT_LOCK_DELAY = 15.0
MAX_LOCK_DELAY = 60.0
MAX_SESSION_TTL = 86400.0
SESSION_TTL_MULTIPLIER = 2  # structs.SessionTTLMultiplier: expiry at 2 x TTL after a renewal
SERF_CHECK = "serfHealth"


class SessionError(ValueError):
    """A session request Consul refuses; ``status`` is the HTTP status it answers with."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


class KVStore:
    def __init__(self, raft: Raft) -> None:
        self.raft = raft
        self.entries: dict[str, Row] = {}
        self.tombstones: dict[str, int] = {}
        self.table_index = 1
        self.lock_delays: dict[str, float] = {}  # key -> monotonic time it may be acquired again

    def _write(self, key: str) -> int:
        index = self.raft.next_index()
        self.table_index = index
        self.raft.touch_kv(key)
        return index

    def get(self, key: str) -> tuple[int, Row | None]:
        entry = self.entries.get(key)
        if entry is None:
            return max(self.table_index, max(self.tombstones.values(), default=1)), None
        return entry["ModifyIndex"], entry

    def list(self, prefix: str) -> tuple[int, list[Row]]:
        rows = [self.entries[k] for k in sorted(self.entries) if k.startswith(prefix)]
        index = max((r["ModifyIndex"] for r in rows), default=0)
        if prefix:
            index = max(
                index,
                max((i for k, i in self.tombstones.items() if k.startswith(prefix)), default=0),
            )
        else:
            index = max(self.table_index, max(self.tombstones.values(), default=0))
        return (index or self.table_index), rows

    def put(
        self,
        key: str,
        value: bytes | None,
        flags: int = 0,
        cas: int | None = None,
        acquire: str | None = None,
        release: str | None = None,
        sessions: SessionStore | None = None,
    ) -> bool:
        current = self.entries.get(key)
        if cas is not None:
            if cas == 0 and current is not None:
                return False
            if cas != 0 and (current is None or current["ModifyIndex"] != cas):
                return False
        lock_index = current["LockIndex"] if current else 0
        session = current.get("Session", "") if current else ""
        if acquire is not None:
            assert sessions is not None
            if acquire not in sessions.sessions:
                raise SessionError(f'invalid session "{acquire}"', status=500)
            if session and session != acquire:
                return False
            if session != acquire:
                if self.lock_delays.get(key, 0) > time.monotonic():
                    return False
                lock_index += 1
            session = acquire
        elif release is not None:
            if not current or session != release:
                return False
            session = ""
        index = self._write(key)
        self.tombstones.pop(key, None)
        self.entries[key] = {
            "Key": key,
            "Flags": flags,
            "Value": value,
            "LockIndex": lock_index,
            "Session": session,
            "CreateIndex": current["CreateIndex"] if current else index,
            "ModifyIndex": index,
        }
        return True

    def delete(self, key: str, recurse: bool = False, cas: int | None = None) -> bool:
        keys = (
            [k for k in self.entries if k.startswith(key)]
            if recurse
            else ([key] if key in self.entries else [])
        )
        if cas is not None and not recurse:
            current = self.entries.get(key)
            if current is None or (cas != 0 and current["ModifyIndex"] != cas):
                return cas == 0 and current is None
        if not keys:
            return True
        index = self.raft.next_index()
        self.table_index = index
        for k in keys:
            del self.entries[k]
            self.tombstones[k] = index
            self.raft.touch_kv(k)
        return True

    def release_session(
        self, session_id: str, behavior: str, lock_delay: float, index: int
    ) -> None:
        """``deleteSessionTxn``: the session's locks go at its index, under lock-delay."""
        held = [k for k, e in self.entries.items() if e.get("Session") == session_id]
        for key in held:
            if lock_delay > 0:
                self.lock_delays[key] = time.monotonic() + lock_delay
            self.raft.touch_kv(key)
            if behavior == "delete":
                del self.entries[key]
                self.tombstones[key] = index
            else:
                self.entries[key] = {**self.entries[key], "Session": "", "ModifyIndex": index}
        if held:
            self.table_index = index

    def snapshot(self) -> tuple[Any, ...]:
        """What a failed transaction puts back (entries are replaced, never changed in place)."""
        return (dict(self.entries), dict(self.tombstones), dict(self.lock_delays), self.table_index)

    def restore(self, snapshot: tuple[Any, ...]) -> None:
        entries, tombstones, lock_delays, table_index = snapshot
        self.entries, self.tombstones, self.lock_delays = entries, tombstones, lock_delays
        self.table_index = table_index

    def restore_index(self, index: int) -> None:
        for entry in self.entries.values():
            entry["CreateIndex"] = min(entry["CreateIndex"], index)
            entry["ModifyIndex"] = min(entry["ModifyIndex"], index)
        self.tombstones = {k: min(v, index) for k, v in self.tombstones.items()}
        self.table_index = min(self.table_index, index)


class SessionStore:
    """Sessions as ``agent/consul/session_endpoint.go`` and ``state/session.go`` keep them."""

    def __init__(
        self, raft: Raft, catalog: Catalog, kv: KVStore, agent_node: str, min_ttl: float = 10.0
    ) -> None:
        self.raft = raft
        self.catalog = catalog
        self.kv = kv
        self.agent_node = agent_node
        self.min_ttl = min_ttl
        self.sessions: dict[str, Row] = {}
        self.table_index = 1
        self._timers: dict[str, asyncio.TimerHandle] = {}
        catalog.check_listeners.append(self._on_check)

    def _bump(self) -> int:
        index = self.raft.next_index()
        self.table_index = index
        self.raft.touch(("table", "sessions"))
        return index

    def create(self, body: Row) -> str:
        """A new session; the errors are the RPC's, which the HTTP layer answers with 500."""
        node = body.get("Node") or self.agent_node
        behavior = body.get("Behavior") or "release"
        if behavior not in ("release", "delete"):
            raise SessionError(f"Invalid Behavior setting '{behavior}'", status=500)
        ttl_text = str(body.get("TTL") or "")
        ttl = self._ttl_seconds(ttl_text)
        lock_delay = _lock_delay(body.get("LockDelay"))
        if node not in self.catalog.nodes:
            raise SessionError("Missing node registration", status=500)
        node_checks = body.get("NodeChecks")
        if node_checks is None:
            node_checks = body.get("Checks", [SERF_CHECK])  # Checks: the deprecated name
        service_checks = body.get("ServiceChecks")
        check_ids = list(node_checks or []) + [
            str(c.get("ID", "")) for c in service_checks or [] if isinstance(c, dict)
        ]
        for check_id in check_ids:
            check = self.catalog.checks.get((node, check_id))
            if check is None:
                raise SessionError(f"Missing check '{check_id}' registration", status=500)
            if check["Status"] == "critical":
                raise SessionError(f"Check '{check_id}' is in critical state", status=500)
        session_id = str(uuid.uuid4())
        index = self._bump()
        self.sessions[session_id] = {
            "ID": session_id,
            "Name": body.get("Name") or "",
            "Node": node,
            "LockDelay": int(lock_delay * 1e9),
            "Behavior": behavior,
            "TTL": ttl_text,
            "NodeChecks": list(node_checks) if node_checks is not None else None,
            "ServiceChecks": [
                {"ID": str(c.get("ID", "")), "Namespace": str(c.get("Namespace", ""))}
                for c in service_checks
                if isinstance(c, dict)
            ]
            if service_checks
            else None,
            "CreateIndex": index,
            "ModifyIndex": index,
        }
        if ttl:
            self._arm(session_id, ttl)
        return session_id

    def _ttl_seconds(self, text: str) -> float:
        if not text:
            return 0.0
        try:
            ttl = parse_duration(text)
        except ValueError:
            raise SessionError(
                f"Session TTL '{text}' invalid: time: invalid duration \"{text}\"", status=500
            ) from None
        if ttl != 0 and not self.min_ttl <= ttl <= MAX_SESSION_TTL:
            # Consul formats the TTL with %d: nanoseconds.
            raise SessionError(
                f"Invalid Session TTL '{round(ttl * 1e9)}', must be between "
                f"[{format_duration(self.min_ttl)}={format_duration(MAX_SESSION_TTL)}]",
                status=500,
            )
        return ttl

    def _arm(self, session_id: str, ttl: float) -> None:
        """(Re)start the TTL timer: Consul invalidates at TTL x SessionTTLMultiplier."""
        old = self._timers.pop(session_id, None)
        if old is not None:
            old.cancel()
        self._timers[session_id] = asyncio.get_running_loop().call_later(
            ttl * SESSION_TTL_MULTIPLIER, self._expire, session_id
        )

    def _expire(self, session_id: str) -> None:
        self._timers.pop(session_id, None)
        self.destroy(session_id)
        self.raft.commit()

    def renew(self, session_id: str) -> Row | None:
        session = self.sessions.get(session_id)
        if session is None:
            return None
        ttl = parse_duration(session["TTL"]) if session["TTL"] else 0.0
        if ttl:
            self._arm(session_id, ttl)
        return session

    def destroy(self, session_id: str) -> None:
        """Invalidate: its locks are released (or deleted) at the same index, with lock-delay."""
        session = self.sessions.pop(session_id, None)
        if session is None:
            return
        timer = self._timers.pop(session_id, None)
        if timer is not None:
            timer.cancel()
        index = self._bump()
        self.kv.release_session(session_id, session["Behavior"], session["LockDelay"] / 1e9, index)

    def _check_ids(self, session: Row) -> list[str]:
        service_checks = session["ServiceChecks"] or []
        return list(session["NodeChecks"] or []) + [c["ID"] for c in service_checks]

    def _on_check(self, check: Row, removed: bool) -> None:
        """A check that goes critical or is removed invalidates the sessions tied to it."""
        if check["Status"] != "critical" and not removed:
            return
        for session in list(self.sessions.values()):
            if session["Node"] == check["Node"] and check["CheckID"] in self._check_ids(session):
                self.destroy(session["ID"])

    def invalidate_node(self, node: str) -> None:
        for session in list(self.sessions.values()):
            if session["Node"] == node:
                self.destroy(session["ID"])

    def restore_index(self, index: int) -> None:
        for session in self.sessions.values():
            session["CreateIndex"] = min(session["CreateIndex"], index)
            session["ModifyIndex"] = min(session["ModifyIndex"], index)
        self.table_index = min(self.table_index, index)


def _lock_delay(value: Any) -> float:
    """``LockDelay``: a duration string, or a number (under 1000: seconds; else nanoseconds)."""
    if value is None or value == "":
        return DEFAULT_LOCK_DELAY
    if isinstance(value, int | float):
        seconds = float(value) if value < 1000 else float(value) / 1e9
    else:
        try:
            seconds = parse_duration(str(value))
        except ValueError:
            raise SessionError(f"Request decode failed: invalid LockDelay {value!r}") from None
    if not 0 <= seconds <= MAX_LOCK_DELAY:
        raise SessionError(f"Invalid Session LockDelay '{value}', must be between [0s=1m0s]")
    return seconds
