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

Consul's watch answers are megabytes at 10,000 services, so the connection is
a buffered protocol: a body (or chunk) of known length that did not come with
its head is received straight into a buffer of its size and handed out as
``bytes`` without a further copy (see :class:`_Body`).
"""

from __future__ import annotations

import asyncio
import io
import ssl
from dataclasses import dataclass
from typing import Any, Literal

import httpx

NO_BODY_STATUSES = frozenset({204, 304})
Origin = tuple[str, str, int]  # scheme, host, port
Headers = list[tuple[str, str]]
STAGE_SIZE = 16 * 1024  # a connection's buffer for heads and small bodies, to begin with
MIN_ROOM = 4 * 1024  # the least room in it offered to one read
STAGE_KEPT = 256 * 1024  # grown beyond this (a long chunked answer), it is not kept idle


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


class _Body:
    """A buffer of a known size that received bytes go straight into, ending as ``bytes``.

    Why ``bytes``: every caller wants it (the Kong client and the Consul reader
    decode JSON from it; :class:`~bridge.list_delta.ListDelta` keeps the last
    answer to compare the next with, and would copy a ``bytearray``), and a
    mutable body handed out would be a trap. Why without a copy: ``bytes(size)``
    is calloc'ed (fresh zero pages, nothing written); a ``BytesIO`` built on it
    alone owns it, so its ``getbuffer()`` lets the socket write into it in place,
    and once every view is released ``getvalue()`` returns that very object
    (CPython; elsewhere it would copy once, still correct). Measured on a 5.7 MB
    answer on a 2-core VM: 1.5 ms of client CPU and a 5.5 MB tracemalloc peak,
    the same as handing out the ``bytearray`` itself; a ``bytearray`` copied to
    ``bytes`` took 9 ms and 11 MB (touching fresh memory twice).
    """

    def __init__(self, size: int, start: memoryview) -> None:
        self._file = io.BytesIO(bytes(size))
        self._view = self._file.getbuffer()
        self._view[: len(start)] = start
        self.filled = len(start)
        self._lent: memoryview | None = None  # the part offered to the last read

    @property
    def full(self) -> bool:
        return self.filled == len(self._view)

    def room(self) -> memoryview:
        """The part still to fill (the event loop reads into it)."""
        self._release_lent()
        self._lent = self._view[self.filled :]
        return self._lent

    def take(self) -> bytes:
        self._release_lent()
        self._view.release()
        return self._file.getvalue()

    def _release_lent(self) -> None:
        if self._lent is not None:
            self._lent.release()  # the event loop holds it still; it reads into it no more
            self._lent = None


ChunkedStep = Literal["size", "data", "crlf", "trailers"]


class _Parser:
    """Reads one answer at a time out of the bytes received so far.

    Received bytes land in ``staged`` (heads, small bodies, chunk size lines)
    unless a :class:`_Body` waits for them: a Content-Length body, or a chunk's
    data, that did not all come with what preceded it is received straight into
    a buffer of exactly its size, so a body of megabytes is copied once (by the
    kernel) and never grows a buffer.
    """

    def __init__(self) -> None:
        self.staged = bytearray(STAGE_SIZE)  # never resized: a new one replaces it
        self._staged_view = memoryview(self.staged)
        self.begin = 0  # the first byte in ``staged`` not yet read out
        self.end = 0  # the end of the bytes received into ``staged``
        self.eof = False
        self.method = "GET"
        self.body: _Body | None = None  # where the next bytes go instead of ``staged``
        self._run: bytes | None = None  # what the last ``body`` received, not yet read out
        # status, headers, the same by lower-case name
        self._head: tuple[int, Headers, dict[str, str]] | None = None
        self._searched = 0  # bytes after ``begin`` known not to hold the head's end
        self._chunks: list[bytes] = []
        self._step: ChunkedStep = "size"
        self._chunk_size = 0

    def start(self, method: str) -> None:
        """Expect the answer to a new request (bytes already received stay)."""
        self.method, self._head, self._searched = method, None, 0
        self._chunks, self._step, self._run = [], "size", None
        if self.begin == self.end and len(self.staged) > STAGE_KEPT:
            self._stage(bytearray(STAGE_SIZE), 0)  # a long answer grew it: not kept idle

    def room(self) -> memoryview:
        """Where the next received bytes go (at least ``MIN_ROOM`` of ``staged``)."""
        if self.body is not None:
            return self.body.room()
        if self.begin == self.end:
            self.begin = self.end = 0
        if len(self.staged) - self.end < MIN_ROOM:
            kept = self.end - self.begin
            if len(self.staged) - kept < MIN_ROOM:
                self._stage(bytearray(max(2 * len(self.staged), kept + MIN_ROOM)), kept)
            else:  # the same length moved to the front: no resize, so views stay valid
                self.staged[:kept] = self._staged_view[self.begin : self.end]
                self.begin, self.end = 0, kept
        return self._staged_view[self.end :]

    def received(self, nbytes: int) -> None:
        """``nbytes`` arrived in the last :meth:`room`."""
        body = self.body
        if body is None:
            self.end += nbytes
            return
        body.filled += nbytes
        if body.full:
            self.body, self._run = None, body.take()

    def answer(self) -> tuple[Answer, bool] | None:
        """The complete answer and whether the connection may be reused, or None (need more)."""
        if self._head is None and not self._read_head():
            self._need_more()
            return None
        assert self._head is not None
        status, headers, named = self._head
        length = named.get("content-length", "")
        chunked = "chunked" in named.get("transfer-encoding", "").lower()
        body: bytes | None
        if self.method == "HEAD" or status in NO_BODY_STATUSES or 100 <= status < 200:
            body = b""
        elif chunked:
            body = self._chunked()
        elif length:
            body = self._take(int(length))
        else:
            body = self._until_closed()
        if body is None:
            self._need_more()
            return None
        keep = named.get("connection", "").lower() != "close" and (
            bool(length) or chunked or not body
        )
        return Answer(status, headers, body), keep

    def _need_more(self) -> None:
        """More bytes are needed: none will come after the server closed the connection."""
        if self.eof:
            raise _Lost("the server closed the connection")

    def _read_head(self) -> bool:
        end = self.staged.find(b"\r\n\r\n", self.begin + self._searched, self.end)
        if end < 0:
            self._searched = max(0, self.end - self.begin - 3)
            return False
        status, headers = _parse_head(bytes(self._staged_view[self.begin : end]))
        self._head = status, headers, {name.lower(): value for name, value in headers}
        self.begin = end + 4
        return True

    def _take(self, size: int) -> bytes | None:
        """The next ``size`` bytes of the body, or None: they are still arriving, straight
        into a buffer of their own."""
        if self._run is not None:
            run, self._run = self._run, None
            return run
        if self.body is not None:
            return None
        if size < 0:
            raise ValueError(f"a negative length: {size}")
        if self.end - self.begin >= size:
            run = bytes(self._staged_view[self.begin : self.begin + size])
            self.begin += size
            return run
        self.body = _Body(size, self._staged_view[self.begin : self.end])
        self.begin = self.end = 0
        return None

    def _chunked(self) -> bytes | None:
        staged = self.staged
        while True:
            if self._step == "size":
                line_end = staged.find(b"\r\n", self.begin, self.end)
                if line_end < 0:
                    return None
                line = bytes(self._staged_view[self.begin : line_end])
                self._chunk_size = int(line.split(b";")[0], 16)
                if self._chunk_size == 0:  # the last chunk; trailers may follow
                    self.begin, self._step = line_end, "trailers"
                else:
                    self.begin, self._step = line_end + 2, "data"
            elif self._step == "data":
                run = self._take(self._chunk_size)
                if run is None:
                    return None
                self._chunks.append(run)
                self._step = "crlf"
            elif self._step == "crlf":
                if self.end - self.begin < 2:
                    return None
                if staged[self.begin : self.begin + 2] != b"\r\n":
                    raise ValueError("a chunk's data is longer than its size says")
                self.begin += 2
                self._step = "size"
            else:
                end = staged.find(b"\r\n\r\n", self.begin, self.end)
                if end < 0:
                    return None
                self.begin = end + 4
                chunks, self._chunks = self._chunks, []  # an idle connection keeps no body
                return b"".join(chunks)  # one chunk (Go's large writes): no copy

    def _until_closed(self) -> bytes | None:
        if not self.eof:
            return None  # delimited by the server closing the connection
        body = bytes(self._staged_view[self.begin : self.end])
        self.begin = self.end
        return body

    def _stage(self, staged: bytearray, kept: int) -> None:
        """Receive into ``staged`` from now on, the ``kept`` unread bytes moved to its start."""
        staged[:kept] = self._staged_view[self.begin : self.end]
        self.staged, self._staged_view = staged, memoryview(staged)
        self.begin, self.end = 0, kept


class _Connection(asyncio.BufferedProtocol):
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

    def get_buffer(self, sizehint: int) -> memoryview:
        return self.parser.room()

    def buffer_updated(self, nbytes: int) -> None:
        self.received = self.progressed = True
        self.parser.received(nbytes)
        if self.parser.body is None:  # nothing to parse while a body arrives straight
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
