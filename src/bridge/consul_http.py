"""A small asyncio Consul HTTP reader: the few reads the bridge needs, with Consul's rules.

Why not py-consul's client: the bridge holds a handful of blocking queries and
many short reads in one event loop, and must be able to stop any of them at
once (cancelling the task closes its connection). The lean HTTP/1.1
transport it shares with the Kong client does that (``http_transport.py``; its
errors are httpx's), and reads a 5 MB watch answer in a third of httpx's
default transport's time, straight into one buffer of the answer's size.
This module adds only Consul's conventions: the token header, ``dc``, the
blocking parameters and a client timeout longer than ``wait + wait/16``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

import httpx

from .http_transport import USER_AGENT, LeanTransport, encode_request, origin_of, preview

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
    """GETs against one Consul agent over pooled keep-alive connections."""

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
        self.dc = dc
        self.origin = origin_of(httpx.URL(f"{scheme}://{host}:{port}"))
        netloc = f"[{host}]" if ":" in host else host
        self.headers = [("Host", f"{netloc}:{port}"), ("User-Agent", USER_AGENT)]
        if token:
            self.headers.append(("X-Consul-Token", token))
        # An http agent needs no TLS context (building one loads the CA bundle).
        tls = httpx.create_ssl_context(verify=verify, cert=cert) if scheme == "https" else None
        self.transport = LeanTransport(max_connections, tls)

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
        timeout = CONNECT_TIMEOUT
        if index and wait is not None:
            query["index"] = index
            query["wait"] = f"{int(wait * 1000)}ms"
            timeout = CONNECT_TIMEOUT + wait + wait / 16 + 5.0
        target = f"{path}?{urlencode(query, quote_via=quote)}" if query else path
        # No httpx.Response here: its stream and the response refer to each other, so each
        # answer (megabytes at 10,000 services) would wait for the cycle collector.
        try:
            answer = await self.transport.exchange(
                self.origin,
                "GET",
                encode_request("GET", target, self.headers, b""),
                timeout,
                CONNECT_TIMEOUT,
            )
        except httpx.HTTPError as exc:
            raise ConsulReadError(f"GET {path}: {type(exc).__name__}: {exc}") from None
        headers = {name.lower(): value for name, value in answer.headers}
        if answer.status != 200:
            raise ConsulReadError(
                f"GET {path}: Consul answered {answer.status}: {preview(answer.body)}"
            )
        try:
            raw_index = int(headers.get("x-consul-index", "0"))
            body = json.loads(answer.body) if decode else answer.body
        except ValueError:
            raise ConsulReadError(
                f"GET {path}: not a Consul answer: {preview(answer.body)!r}"
            ) from None
        leader = headers.get("x-consul-knownleader", "true") != "false"
        return Answer(raw_index, body, leader)

    async def aclose(self) -> None:
        await self.transport.aclose()
