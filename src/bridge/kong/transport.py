"""A lean HTTP/1.1 keep-alive transport for httpx over asyncio streams.

Why: an initial sync makes tens of thousands of small Admin API calls, and
httpx's default transport (httpcore over anyio) spends about as much CPU per
call as the call itself. This transport does only what the Admin API needs:
keep-alive connections (at most ``max_connections``), Content-Length or
chunked bodies, per-phase timeouts, TLS through the standard ssl module. It
plugs in under httpx, so requests, responses and errors keep httpx's types.
"""

from __future__ import annotations

import asyncio
import ssl
from typing import Any

import httpx

Connection = tuple[asyncio.StreamReader, asyncio.StreamWriter]
NO_BODY_STATUSES = frozenset({204, 304})


class _Stale(Exception):
    """A reused keep-alive connection was closed by the server before it answered."""


class LeanTransport(httpx.AsyncBaseTransport):
    """Pooled HTTP/1.1 connections to one origin (the Kong Admin API, or a Consul agent)."""

    def __init__(
        self,
        max_connections: int,
        ssl_context: ssl.SSLContext | None = None,
        read_limit: int = 1 << 16,
    ) -> None:
        self.max_connections = max_connections
        self.ssl_context = ssl_context
        # asyncio pauses reading whenever twice this much is buffered: a 5 MB Consul
        # answer read in 64 KiB steps costs three times what it does in 4 MiB ones.
        self.read_limit = read_limit
        self._idle: list[Connection] = []
        self._slots: asyncio.Semaphore | None = None

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.max_connections)
        timeouts: dict[str, Any] = request.extensions.get("timeout", {})
        payload = _encode(request, await request.aread())
        async with self._slots:
            for attempt in range(2):
                # After a stale one, a new connection: the others may have gone stale too.
                connection = self._pop_live() if attempt == 0 else None
                reused = connection is not None
                if connection is None:
                    connection = await self._open(request, timeouts)
                try:
                    status, headers, body, keep = await self._exchange(
                        connection, payload, request.method, timeouts, reused
                    )
                except _Stale:
                    _close(connection)
                    continue  # the server had closed it: once more on a new connection
                except BaseException:
                    _close(connection)
                    raise
                if keep:
                    self._idle.append(connection)
                else:
                    _close(connection)
                return httpx.Response(status, headers=headers, content=body, request=request)
        raise httpx.RemoteProtocolError("the server closed the connection twice", request=request)

    def _pop_live(self) -> Connection | None:
        """The most recent idle connection the server has not closed meanwhile (a server
        closes idle keep-alive connections after a while: uvicorn after 30 s)."""
        while self._idle:
            connection = self._idle.pop()
            if not connection[0].at_eof() and not connection[1].is_closing():
                return connection
            _close(connection)
        return None

    async def _open(self, request: httpx.Request, timeouts: dict[str, Any]) -> Connection:
        url = request.url
        secure = url.scheme == "https"
        port = url.port or (443 if secure else 80)
        try:
            return await asyncio.wait_for(
                asyncio.open_connection(
                    url.host,
                    port,
                    ssl=(self.ssl_context or ssl.create_default_context()) if secure else None,
                    server_hostname=url.host if secure else None,
                    limit=self.read_limit,
                ),
                timeouts.get("connect"),
            )
        except TimeoutError:
            raise httpx.ConnectTimeout(
                f"connecting to {url.host}:{port}", request=request
            ) from None
        except OSError as exc:
            raise httpx.ConnectError(str(exc), request=request) from None

    async def _exchange(
        self,
        connection: Connection,
        payload: bytes,
        method: str,
        timeouts: dict[str, Any],
        reused: bool,
    ) -> tuple[int, list[tuple[str, str]], bytes, bool]:
        reader, writer = connection
        try:
            writer.write(payload)
            await asyncio.wait_for(writer.drain(), timeouts.get("write"))
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeouts.get("read"))
        except asyncio.IncompleteReadError as exc:
            if reused and not exc.partial:
                raise _Stale() from None
            raise httpx.ReadError("the server closed the connection") from None
        except (ConnectionError, BrokenPipeError) as exc:
            if reused:
                raise _Stale() from None
            raise httpx.WriteError(str(exc)) from None
        except TimeoutError:
            raise httpx.ReadTimeout("no answer in time") from None
        status, headers = _parse_head(head)
        try:
            body = await asyncio.wait_for(
                _read_body(reader, status, method, headers), timeouts.get("read")
            )
        except TimeoutError:
            raise httpx.ReadTimeout("the body did not arrive in time") from None
        except (asyncio.IncompleteReadError, ConnectionError, ValueError) as exc:
            raise httpx.ReadError(f"a broken answer: {exc}") from None
        delimited = (
            bool(_header(headers, "content-length"))
            or "chunked" in _header(headers, "transfer-encoding").lower()
        )
        keep = _header(headers, "connection").lower() != "close" and (delimited or not body)
        return status, headers, body, keep

    async def aclose(self) -> None:
        while self._idle:
            _close(self._idle.pop())


def _encode(request: httpx.Request, body: bytes) -> bytes:
    target = request.url.raw_path.decode("ascii")
    lines = [f"{request.method} {target} HTTP/1.1"]
    lines += [f"{name}: {value}" for name, value in request.headers.items()]
    if body and "content-length" not in request.headers:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def _parse_head(head: bytes) -> tuple[int, list[tuple[str, str]]]:
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
        raise httpx.RemoteProtocolError(f"not an HTTP answer: {lines[0][:80]!r}")
    headers = []
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            headers.append((name.strip(), value.strip()))
    return int(parts[1]), headers


def _header(headers: list[tuple[str, str]], name: str) -> str:
    return next((value for key, value in headers if key.lower() == name), "")


async def _read_body(
    reader: asyncio.StreamReader, status: int, method: str, headers: list[tuple[str, str]]
) -> bytes:
    if method == "HEAD" or status in NO_BODY_STATUSES or 100 <= status < 200:
        return b""
    if "chunked" in _header(headers, "transfer-encoding").lower():
        chunks: list[bytes] = []
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                while await reader.readuntil(b"\r\n") != b"\r\n":
                    pass  # trailers
                return b"".join(chunks)
            chunks.append((await reader.readexactly(size + 2))[:-2])
    length = _header(headers, "content-length")
    if length:
        return await reader.readexactly(int(length))
    return await reader.read()  # until the server closes


def _close(connection: Connection) -> None:
    connection[1].close()
