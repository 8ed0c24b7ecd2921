"""Carry out a plan on Kong: services concurrently (bounded), each service's steps in order.

A service whose writes fail stops at the failing step and is reported; the
others carry on. Transient failures were already retried by the Kong client.
A 409 on create means a same-name entity exists: when it carries our owner tag
(another replica with our owner created it meanwhile) it is ours and adopted as
it is; otherwise it is reported as a clash and left alone.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from .actual import KongState
from .desired import OWNER_TAG_PREFIX
from .kong import AsyncKongClient, Call, KongClientError
from .kong.calls import segment
from .plan import Operation, Plan
from .plugins_plan import record_extra

Row = dict[str, Any]
ACCEPT = {"create": (200, 201), "update": (200,), "delete": (204, 404)}
# Nothing else depends on these: when one fails, the service's other steps still run.
INDEPENDENT = frozenset({"plugins", "certificates"})


@dataclass
class ServiceOutcome:
    """What happened to one service's operations."""

    name: str
    done: list[tuple[Operation, Row | None]] = field(default_factory=list)
    error: str | None = None
    clash: bool = False
    skipped: bool = False  # not started: the caller withdrew it (see ``claim``)

    @property
    def ok(self) -> bool:
        return self.error is None


def _describe_failure(op: Operation, status: int, message: str) -> tuple[str, bool]:
    if op.action == "create" and status == 409:
        return (
            f"{op.kind[:-1]} '{op.name}' already exists in Kong without our owner tag; "
            "not overwritten (remove it, or rename the Consul service)",
            True,
        )
    if op.action == "update" and status == 404:
        return f"{op.kind[:-1]} '{op.name}' vanished from Kong; a resync will recreate it", False
    return f"{op} failed: Kong answered {status}: {message}", False


async def apply_service(kong: AsyncKongClient, name: str, ops: list[Operation]) -> ServiceOutcome:
    """Run one service's operations in order; stop at the first failure."""
    outcome = ServiceOutcome(name)
    for op in ops:
        try:
            reply = await kong.call(op.call)
        except KongClientError as exc:
            outcome.error = f"{op} failed: {exc}"
            return outcome
        # Kept as the state holds rows (nulls dropped, values shared) by ``record``.
        row = reply.body if isinstance(reply.body, dict) else None
        if reply.status not in ACCEPT[op.action]:
            conflict = op.action == "create" and reply.status == 409
            row = await _ours_already(kong, op) if conflict else None
            if row is None:
                message = op.redacted(reply.message)
                outcome.error, outcome.clash = _describe_failure(op, reply.status, message)
                if op.kind in INDEPENDENT:
                    continue
                return outcome
        outcome.done.append((op, row))
    return outcome


async def _ours_already(kong: AsyncKongClient, op: Operation) -> Row | None:
    """After a 409 on create: the existing entity, if it carries the owner tag we create with."""
    ours = {t for t in (op.call.body or {}).get("tags") or [] if t.startswith(OWNER_TAG_PREFIX)}
    try:
        reply = await kong.call(Call("GET", f"{op.call.path}/{segment(op.name)}"))
    except KongClientError:
        return None
    row = reply.body if reply.status == 200 and isinstance(reply.body, dict) else None
    if row is None or not ours or not ours <= set(row.get("tags") or []):
        return None
    return row


Group = tuple[str, list[Operation]]  # one service's operations, in order


async def apply_plan(
    kong: AsyncKongClient,
    plan: Plan,
    concurrency: int = 8,
    claim: Callable[[str], bool] | None = None,
) -> AsyncIterator[ServiceOutcome]:
    """Apply each service's operations, ``concurrency`` services at a time; outcomes as they end.

    ``claim(name)`` is asked right before a service starts; False skips it (its
    plan went stale, or someone else is writing it).
    """
    groups = list(plan.by_service().items())
    if not groups:
        return
    async for outcome in apply_groups(kong, _listed(groups), min(concurrency, len(groups)), claim):
        yield outcome


async def apply_groups(
    kong: AsyncKongClient,
    groups: AsyncGenerator[Group, None],
    concurrency: int = 8,
    claim: Callable[[str], bool] | None = None,
) -> AsyncIterator[ServiceOutcome]:
    """Apply services' operations as ``groups`` yields them; outcomes as they end.

    ``groups`` is read just ahead of the writers (``concurrency`` services ahead), so
    whatever plans behind it plans while Kong works on what it planned before, and
    no more is held than the writers are about to need. An error raised by
    ``groups`` ends the writes and is raised here once the started services end.
    """
    todo: asyncio.Queue[Group | None] = asyncio.Queue()
    ahead = asyncio.Semaphore(concurrency)  # groups read and not yet taken by a writer
    done: asyncio.Queue[ServiceOutcome | None] = asyncio.Queue()  # None: a writer ended

    async def feed() -> None:
        try:
            async with contextlib.aclosing(groups):
                async for group in groups:
                    await ahead.acquire()
                    todo.put_nowait(group)
        finally:
            for _ in range(concurrency):
                todo.put_nowait(None)

    async def write() -> None:
        try:
            while (group := await todo.get()) is not None:
                ahead.release()
                done.put_nowait(await _apply_claimed(kong, *group, claim))
        finally:
            done.put_nowait(None)

    feeder = asyncio.create_task(feed())
    writers = [asyncio.create_task(write()) for _ in range(concurrency)]
    try:
        running = len(writers)
        while running:
            outcome = await done.get()
            if outcome is None:
                running -= 1
            else:
                yield outcome
        await feeder
    finally:
        for task in (feeder, *writers):
            task.cancel()
        await asyncio.gather(feeder, *writers, return_exceptions=True)


async def _listed(groups: list[Group]) -> AsyncGenerator[Group, None]:
    for group in groups:
        yield group


async def _apply_claimed(
    kong: AsyncKongClient, name: str, ops: list[Operation], claim: Callable[[str], bool] | None
) -> ServiceOutcome:
    if claim is not None and not claim(name):
        return ServiceOutcome(name, skipped=True)
    try:
        return await apply_service(kong, name, ops)
    except Exception as exc:  # a bug must not hang the loop: report it on that service
        return ServiceOutcome(name, error=f"unexpected error: {exc!r}")


def record(state: KongState, outcome: ServiceOutcome) -> None:
    """Keep the cached Kong state in step with the writes that succeeded."""
    owned = state.of(outcome.name)
    for op, answer in outcome.done:
        row = None if answer is None else state.pool.keep(answer)  # shared values, as read
        if op.kind == "services":
            owned.service = row if op.action != "delete" else None
        elif op.kind == "routes":
            if op.action == "delete":
                owned.routes.pop(op.name, None)
            elif row is not None:
                owned.routes[op.name] = row
        elif op.kind == "upstreams":
            if op.action == "delete":
                if owned.upstream is not None and owned.upstream["name"] == op.name:
                    owned.upstream, owned.targets = None, {}
            else:
                if owned.upstream is None or row is None or owned.upstream["id"] != row["id"]:
                    owned.targets = {}
                owned.upstream = row
        elif op.kind == "targets":
            if op.action == "delete":
                owned.targets.pop(op.name, None)
            elif row is not None:
                owned.targets[op.name] = row
        else:
            record_extra(owned, op, row)
    if owned.entity_count() == 0:
        state.services.pop(outcome.name, None)
