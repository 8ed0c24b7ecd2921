"""User events: ``PUT /v1/event/fire/:name`` and ``GET /v1/event/list``.

As ``agent/event_endpoint.go`` serves them. Events travel by gossip, not Raft,
so they have no Raft index: the list's ``X-Consul-Index`` is derived from the
last event's ID (``uuidToUint64``: the first 64 bits of the UUID XOR the last
64), and a blocking list returns as soon as that value differs from ``?index``
(it is not monotonic). The agent keeps its last 256 events, and only those its
own filters let through.
"""

from __future__ import annotations

import asyncio
import base64
import re
import uuid
from collections import deque
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import Response

from .context import Context
from .query import Query
from .raft import WatchKey
from .web import GET, PUT, HTTPError, Row, allow, json_response, text_response

USER_EVENT_SIZE = 256  # agent.userEventSize: the ring of recent events
USER_EVENT_VERSION = 1
MAX_QUERY_TIME = 600.0  # the agent's maxQueryTime for this simulated blocking query
EVENTS_KEY: WatchKey = ("events", "")


def uuid_to_uint64(event_id: str) -> int:
    """``uuidToUint64``: the high and low 64 bits of the UUID, XORed."""
    lower = int(event_id[0:8] + event_id[9:13] + event_id[14:18], 16)
    upper = int(event_id[19:23] + event_id[24:36], 16)
    return lower ^ upper


@dataclass
class UserEvent:
    id: str
    name: str
    payload: bytes | None
    node_filter: str = ""
    service_filter: str = ""
    tag_filter: str = ""
    ltime: int = 0

    def json(self) -> Row:
        return {
            "ID": self.id,
            "Name": self.name,
            "Payload": base64.b64encode(self.payload).decode() if self.payload else None,
            "NodeFilter": self.node_filter,
            "ServiceFilter": self.service_filter,
            "TagFilter": self.tag_filter,
            "Version": USER_EVENT_VERSION,
            "LTime": self.ltime,
        }


def validate_filters(event: UserEvent) -> None:
    """``validateUserEventParams``; the agent's errors are answered with 500."""
    if event.tag_filter and not event.service_filter:
        raise HTTPError(500, "Cannot provide tag filter without service filter")
    for what, pattern in (
        ("node", event.node_filter),
        ("service", event.service_filter),
        ("tag", event.tag_filter),
    ):
        if pattern:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise HTTPError(500, f"Invalid {what} filter: {exc}") from None


class EventRoutes:
    """Fire and list user events; the ring of recent events is this agent's."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.recent: deque[UserEvent] = deque(maxlen=USER_EVENT_SIZE)
        self.clock = 1  # Serf's event clock starts incremented

    def reset(self) -> None:
        self.recent.clear()
        self.clock = 1

    async def route(self, request: Request, q: Query, seg: list[str]) -> Response | None:
        match seg:
            case ["v1", "event", "fire", *name]:
                allow(request.method, PUT)
                return self._fire("/".join(name), q, await request.body())
            case ["v1", "event", "list"]:
                allow(request.method, GET)
                return await self._list(q)
        return None

    def _fire(self, name: str, q: Query, payload: bytes) -> Response:
        if not name:
            return text_response(400, "Missing name")
        event = UserEvent(
            id=str(uuid.uuid4()),
            name=name,
            payload=payload or None,
            node_filter=q.params.get("node", ""),
            service_filter=q.params.get("service", ""),
            tag_filter=q.params.get("tag", ""),
        )
        validate_filters(event)
        answer = event.json()  # as fired: LTime is set when gossip delivers it
        if self._should_process(event):
            event.ltime = self.clock
            self.recent.append(event)
            self.ctx.raft.watchers.notify([EVENTS_KEY])
        self.clock += 1
        return json_response(200, answer)

    def _should_process(self, event: UserEvent) -> bool:
        """``shouldProcessUserEvent``: this agent takes the event only if its filters match."""
        if event.node_filter and not re.match(event.node_filter, self.ctx.config.node):
            return False
        if event.service_filter:
            services = self.ctx.agent.local_services().values()
            return any(
                re.match(event.service_filter, svc["Service"])
                and (
                    not event.tag_filter
                    or any(re.match(event.tag_filter, tag) for tag in svc["Tags"])
                )
                for svc in services
            )
        return True

    def _snapshot(self, name: str) -> tuple[int, list[Row]]:
        events = [e for e in self.recent if not name or e.name == name]
        index = uuid_to_uint64(events[-1].id) if events else 1
        return index, [e.json() for e in events]

    async def _list(self, q: Query) -> Response:
        name = q.params.get("name", "")
        index, events = self._snapshot(name)
        if q.index and index == q.index:
            wait = min(q.wait, MAX_QUERY_TIME) if q.wait > 0 else MAX_QUERY_TIME
            loop = asyncio.get_running_loop()
            deadline = loop.time() + wait
            while index == q.index and loop.time() < deadline:
                future = self.ctx.raft.watchers.register([EVENTS_KEY])
                try:
                    await asyncio.wait_for(future, deadline - loop.time())
                except TimeoutError:
                    pass
                finally:
                    self.ctx.raft.watchers.unregister(future, [EVENTS_KEY])
                index, events = self._snapshot(name)
        return json_response(200, events, {"X-Consul-Index": str(index)})
