"""A small asyncio Consul HTTP reader: the few reads the bridge needs, with Consul's rules.

Why not py-consul's client: the bridge holds a handful of blocking queries and
many short reads in one event loop, and must be able to stop any of them at
once (cancelling the task closes its connection). httpx does that, here over
the same lean HTTP/1.1 transport as the Kong client (it reads a 5 MB watch
answer in a third of the default transport's time). This module adds only
Consul's conventions: the token header, ``dc``, the blocking parameters and a
client timeout longer than ``wait + wait/16``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import httpx

from .kong.transport import LeanTransport

CONNECT_TIMEOUT = 10.0
DURATION = re.compile(r"^(\d+)(ms|s|m)$")
UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0}


class ConsulReadError(Exception):
    """A Consul read failed (connection, status or body); the message says which."""


def wait_seconds(wait: str) -> float:
    """``"5m"`` -> 300.0 (the bridge's ``--wait`` takes ms, s or m)."""
    match = DURATION.match(wait)
    if not match:
        raise ValueError(f"wait must look like 500ms, 20s or 5m, not {wait!r}")
    return int(match.group(1)) * UNITS[match.group(2)]


@dataclass(frozen=True)
class Answer:
    """One Consul answer: the decoded body and its ``X-Consul-Index``."""

    index: int
    body: Any
    known_leader: bool = True


class ConsulReader:
    """GETs against one Consul agent over a pooled httpx.AsyncClient."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 8500,
        scheme: str = "http",
        token: str | None = None,
        verify: bool | str = True,
        cert: Any = None,
        dc: str | None = None,
        max_connections: int = 32,
    ) -> None:
        headers = {"X-Consul-Token": token} if token else {}
        self.dc = dc
        ssl_context = httpx.create_ssl_context(verify=verify, cert=cert)
        self.http = httpx.AsyncClient(
            base_url=f"{scheme}://{host}:{port}",
            headers=headers,
            timeout=httpx.Timeout(CONNECT_TIMEOUT),
            transport=LeanTransport(max_connections, ssl_context),
        )

    async def get(
        self,
        path: str,
        params: dict[str, Any] | None = None,
        *,
        index: int = 0,
        wait: float | None = None,
        decode: bool = True,
    ) -> Answer:
        """One read; blocking when ``index`` is given, with a timeout beyond Consul's jitter.

        ``decode=False`` leaves the body as the bytes Consul sent (for callers that
        compare answers before parsing them).
        """
        query: dict[str, Any] = dict(params or {})
        if self.dc:
            query["dc"] = self.dc
        timeout = httpx.Timeout(CONNECT_TIMEOUT)
        if index and wait is not None:
            query["index"] = index
            query["wait"] = f"{int(wait * 1000)}ms"
            timeout = httpx.Timeout(CONNECT_TIMEOUT + wait + wait / 16 + 5.0)
        try:
            response = await self.http.get(path, params=query, timeout=timeout)
        except httpx.HTTPError as exc:
            raise ConsulReadError(f"GET {path}: {type(exc).__name__}: {exc}") from None
        if response.status_code != 200:
            raise ConsulReadError(
                f"GET {path}: Consul answered {response.status_code}: {response.text[:200]}"
            )
        try:
            raw_index = int(response.headers.get("X-Consul-Index", "0"))
            body = response.json() if decode else response.content
        except ValueError:
            raise ConsulReadError(
                f"GET {path}: not a Consul answer: {response.text[:200]!r}"
            ) from None
        leader = response.headers.get("X-Consul-KnownLeader", "true") != "false"
        return Answer(raw_index, body, leader)

    async def aclose(self) -> None:
        await self.http.aclose()
