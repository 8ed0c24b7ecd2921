"""Consul's per-client connection cap (``limits.http_max_conns_per_client``, default 200).

Consul counts TCP connections per client IP when they are accepted and frees
one as soon as it closes, whatever it was doing (an idle keep-alive, a
blocking query). Beyond the cap a new connection is answered 429 and closed.
The count therefore lives at the protocol level, below the ASGI app.
"""

from __future__ import annotations

import asyncio
import functools
from collections import Counter
from typing import Any, cast

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

TOO_MANY_CONNECTIONS = (
    "Your IP is issuing too many concurrent connections, please rate limit your calls\n"
)
_REFUSAL = (
    "HTTP/1.1 429 Too Many Requests\r\n"
    "Content-Type: text/plain; charset=utf-8\r\n"
    f"Content-Length: {len(TOO_MANY_CONNECTIONS)}\r\n"
    "Connection: close\r\n\r\n"
    f"{TOO_MANY_CONNECTIONS}"
).encode()


class ConnectionLimiter:
    """Open connections per client IP, against a cap."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.open: Counter[str] = Counter()

    def acquire(self, host: str) -> bool:
        if self.limit > 0 and self.open[host] >= self.limit:
            return False
        self.open[host] += 1
        return True

    def release(self, host: str) -> None:
        self.open[host] -= 1
        if self.open[host] <= 0:
            del self.open[host]

    @property
    def total(self) -> int:
        return sum(self.open.values())


class LimitedHttpProtocol(HttpToolsProtocol):
    """uvicorn's HTTP/1.1 protocol, counting its connection against the client's cap."""

    def __init__(self, *args: Any, limiter: ConnectionLimiter, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.limiter = limiter
        self.counted_host: str | None = None
        self.refused = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        host = self.client[0] if self.client else "unknown"
        if self.limiter.acquire(host):
            self.counted_host = host
        else:
            self.refused = True

    def data_received(self, data: bytes) -> None:
        if self.refused:
            # Answer once the request is in, so the client reads the 429 instead of a reset.
            if not self.transport.is_closing():
                self.transport.write(_REFUSAL)
                self.transport.close()
            return
        super().data_received(data)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.counted_host is not None:
            self.limiter.release(self.counted_host)
            self.counted_host = None
        super().connection_lost(exc)


def limited_protocol(limiter: ConnectionLimiter) -> type[asyncio.Protocol]:
    """A protocol factory for ``uvicorn.Config(http=...)`` sharing ``limiter``."""
    # uvicorn only calls the class; a partial carries the limiter to each connection.
    return cast(type[asyncio.Protocol], functools.partial(LimitedHttpProtocol, limiter=limiter))
