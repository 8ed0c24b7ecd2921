"""A lean HTTP/1.1 keep-alive client over asyncio protocols, for the Kong and Consul clients.

It serves both the async Kong client (``kong/client.py``) and the Consul reader
(``consul_http.py``). Why: an initial sync makes tens of thousands of small
Admin API calls. httpx's default transport (httpcore over anyio) spends about
as much CPU per call as the call itself, and httpx's request and response
objects about as much again. So :meth:`LeanTransport.exchange` takes an encoded
request and returns the status, headers and body; both clients call it
directly. It does only what they need: keep-alive connections (at most
``max_connections``), Content-Length, chunked or close-delimited bodies, an
inactivity timeout, TLS through the standard ssl module. Failures are httpx's
exception types, and :class:`LeanTransport` also plugs in under httpx.
"""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass
from typing import Any

import httpx

NO_BODY_STATUSES = frozenset({204, 304})
Origin = tuple[str, str, int]  # scheme, host, port
Headers = list[tuple[str, str]]


@dataclass(frozen=True)
class Answer:
    """One HTTP answer, undecoded."""

    status: int
    headers: Headers
    body: bytes


class _Stale(Exception):
    """A reused keep-alive connection was closed by the server before it answered."""


class _Lost(Exception):
    """The server closed the connection in the middle of an answer."""


class _Parser:
    """Reads one answer at a time out of the bytes received so far."""

    def __init__(self) -> None:
        self.buffer = bytearray()
        self.eof = False
        self.method = "GET"
        # status, headers, the same by lower-case name, where the body starts
        self._head: tuple[int, Headers, dict[str, str], int] | None = None
        self._chunks: list[bytes] = []
        self._chunk_at = 0  # where the next chunk's size line starts

    def start(self, method: str) -> None:
        self.method, self._head, self._chunks = method, None, []

    def answer(self) -> tuple[Answer, bool] | None:
        """The complete answer and whether the connection may be reused, or None (need more)."""
        if self._head is None:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                if self.eof:
                    raise _Lost("the server closed the connection")
                return None
            status, headers = _parse_head(bytes(self.buffer[:end]))
            named = {name.lower(): value for name, value in headers}
            self._head = status, headers, named, end + 4
            self._chunk_at = end + 4
        status, headers, named, start = self._head
        length = named.get("content-length", "")
        chunked = "chunked" in named.get("transfer-encoding", "").lower()
        if self.method == "HEAD" or status in NO_BODY_STATUSES or 100 <= status < 200:
            body, end = b"", start
        elif chunked:
            found = self._chunked()
            if found is None:
                return None
            body, end = found
        elif length:
            end = start + int(length)
            if len(self.buffer) < end:
                if self.eof:
                    raise _Lost("the server closed the connection")
                return None
            with memoryview(self.buffer) as view:  # one copy of a body of megabytes, not two
                body = bytes(view[start:end])
        else:
            if not self.eof:
                return None  # delimited by the server closing the connection
            body, end = bytes(self.buffer[start:]), len(self.buffer)
        del self.buffer[:end]
        keep = named.get("connection", "").lower() != "close" and (
            bool(length) or chunked or not body
        )
        return Answer(status, headers, body), keep

    def _chunked(self) -> tuple[bytes, int] | None:
        buffer = self.buffer
        while True:
            line_end = buffer.find(b"\r\n", self._chunk_at)
            if line_end < 0:
                break
            size = int(bytes(buffer[self._chunk_at : line_end]).split(b";")[0], 16)
            if size == 0:
                end = buffer.find(b"\r\n\r\n", line_end)  # after the trailers, if any
                if end < 0:
                    break
                return b"".join(self._chunks), end + 4
            data_end = line_end + 2 + size
            if len(buffer) < data_end + 2:
                break
            self._chunks.append(bytes(buffer[line_end + 2 : data_end]))
            self._chunk_at = data_end + 2
        if self.eof:
            raise _Lost("the server closed the connection")
        return None


class _Connection(asyncio.Protocol):
    """One keep-alive connection; one exchange at a time."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.parser = _Parser()
        self.waiter: asyncio.Future[tuple[Answer, bool]] | None = None
        self.closed = False
        self.received = False  # any byte of the current answer
        self.progressed = False  # bytes arrived since the timer was last armed

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.received = self.progressed = True
        self.parser.buffer += data
        self._deliver()

    def eof_received(self) -> bool:
        self.parser.eof = True
        self._deliver()
        return False  # close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.parser.eof = True
        self._deliver()

    def _deliver(self) -> None:
        waiter = self.waiter
        if waiter is None or waiter.done():
            return
        try:
            found = self.parser.answer()
        except (_Lost, ValueError, httpx.RemoteProtocolError) as exc:
            waiter.set_exception(exc)
            return
        if found is not None:
            waiter.set_result(found)

    async def exchange(self, method: str, payload: bytes, timeout: float | None) -> Answer:
        assert self.transport is not None
        loop = asyncio.get_running_loop()
        self.parser.start(method)
        self.received = False
        self.waiter = loop.create_future()
        if self.closed:
            raise _Stale()
        self.transport.write(payload)
        self._deliver()  # bytes that arrived early (or a close) are already in
        self.progressed = False
        timer: list[asyncio.TimerHandle] = []  # the armed timer (re-armed while bytes arrive)
        if timeout:
            timer.append(loop.call_later(timeout, self._time_out, timeout, timer))
        try:
            answer, keep = await self.waiter
        finally:
            if timer:
                timer[0].cancel()
            self.waiter = None
        if not keep:
            self.close()
        return answer

    def _time_out(self, timeout: float, timer: list[asyncio.TimerHandle]) -> None:
        """A whole ``timeout`` without a byte fails the exchange; a slow but moving answer waits."""
        if self.waiter is None or self.waiter.done():
            return
        if self.progressed:
            self.progressed = False
            timer[0] = asyncio.get_running_loop().call_later(
                timeout, self._time_out, timeout, timer
            )
            return
        self.waiter.set_exception(TimeoutError())

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()


class LeanTransport(httpx.AsyncBaseTransport):
    """Pooled HTTP/1.1 connections (at most ``max_connections``, shared by every origin)."""

    def __init__(self, max_connections: int, ssl_context: ssl.SSLContext | None = None) -> None:
        self.max_connections = max_connections
        self.ssl_context = ssl_context
        self._idle: dict[Origin, list[_Connection]] = {}
        self._slots: asyncio.Semaphore | None = None

    async def exchange(
        self,
        origin: Origin,
        method: str,
        payload: bytes,
        timeout: float | None = None,
        connect_timeout: float | None = None,
    ) -> Answer:
        """Send one encoded request and read its answer.

        ``timeout`` bounds the wait for each part of the answer (it restarts as
        bytes arrive). Raises httpx's ``ConnectError``, ``ConnectTimeout``,
        ``ReadTimeout``, ``ReadError`` or ``RemoteProtocolError``.
        """
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.max_connections)
        async with self._slots:
            idle = self._idle.setdefault(origin, [])
            for attempt in range(2):
                while idle and idle[-1].closed:
                    idle.pop()  # the server closed it while it sat idle (its keep-alive timeout)
                reused = bool(idle) and attempt == 0  # after a stale one, a new connection
                if reused:
                    connection = idle.pop()
                else:
                    connection = await self._open(origin, connect_timeout)
                try:
                    answer = await connection.exchange(method, payload, timeout)
                except _Stale:
                    connection.close()
                    continue
                except _Lost as exc:
                    connection.close()
                    if reused and not connection.received:
                        continue  # the server had closed it: once more on a new connection
                    raise httpx.ReadError(f"a broken answer: {exc}") from None
                except TimeoutError:
                    connection.close()
                    raise httpx.ReadTimeout("no answer in time") from None
                except ValueError as exc:
                    connection.close()
                    raise httpx.ReadError(f"a broken answer: {exc}") from None
                except BaseException:
                    connection.close()
                    raise
                if not connection.closed:
                    idle.append(connection)
                return answer
        raise httpx.RemoteProtocolError("the server closed the connection twice")

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        timeouts: dict[str, Any] = request.extensions.get("timeout", {})
        payload = encode_request(
            request.method,
            request.url.raw_path.decode("ascii"),
            list(request.headers.items()),
            await request.aread(),
        )
        answer = await self.exchange(
            origin_of(request.url),
            request.method,
            payload,
            timeouts.get("read"),
            timeouts.get("connect"),
        )
        return httpx.Response(
            answer.status, headers=answer.headers, content=answer.body, request=request
        )

    async def _open(self, origin: Origin, timeout: float | None) -> _Connection:
        scheme, host, port = origin
        secure = scheme == "https"
        loop = asyncio.get_running_loop()
        try:
            _transport, connection = await asyncio.wait_for(
                loop.create_connection(
                    _Connection,
                    host,
                    port,
                    ssl=(self.ssl_context or ssl.create_default_context()) if secure else None,
                    server_hostname=host if secure else None,
                ),
                timeout,
            )
        except TimeoutError:
            raise httpx.ConnectTimeout(f"connecting to {host}:{port}") from None
        except OSError as exc:
            raise httpx.ConnectError(str(exc)) from None
        return connection

    async def aclose(self) -> None:
        for idle in self._idle.values():
            while idle:
                idle.pop().close()


USER_AGENT = "kong-bridge"


def preview(body: bytes) -> str:
    """The start of an answer's body, for an error message."""
    return body[:200].decode("utf-8", "replace")


def origin_of(url: httpx.URL) -> Origin:
    secure = url.scheme == "https"
    return url.scheme, url.host, url.port or (443 if secure else 80)


def encode_request(method: str, target: str, headers: Headers, body: bytes) -> bytes:
    """The bytes of one request (``Content-Length`` added when a body needs it)."""
    lines = [f"{method} {target} HTTP/1.1"]
    lines += [f"{name}: {value}" for name, value in headers]
    if body and not any(name.lower() == "content-length" for name, _ in headers):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def _parse_head(head: bytes) -> tuple[int, Headers]:
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
