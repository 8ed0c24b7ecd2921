"""uvicorn's HTTP/1.1 protocol with each answer sent in one piece.

uvicorn writes a response's head and its body separately; on a socket with
TCP_NODELAY (which the emulators set, see server.py) that is two segments and
two system calls per answer, for the server and for the client that reads it.
Kong (nginx) sends a small answer in one. Here the writes made during one turn
of the event loop are joined and sent at the end of that turn: an answer
leaves as one segment, no later than it would have otherwise.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

JOIN_AT_MOST = 1 << 16  # answers up to this size leave in one segment


class CoalescedWrites(asyncio.Transport):
    """A transport that joins the writes of one loop turn into one ``write`` underneath."""

    def __init__(self, transport: asyncio.Transport) -> None:
        super().__init__()
        self._transport = transport
        self._pending: list[bytes] = []
        self._loop = asyncio.get_running_loop()

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not self._pending:
            self._loop.call_soon(self.flush)
        self._pending.append(bytes(data))

    def flush(self) -> None:
        if not self._pending:
            return
        pending, self._pending = self._pending, []
        if self._transport.is_closing():
            return
        if sum(map(len, pending)) <= JOIN_AT_MOST:
            self._transport.write(b"".join(pending))
            return
        # A body of megabytes (health/state/any at 10,000 services) is not copied into a
        # joined one: the transport sends what the socket takes and copies only the rest
        # (a memoryview, so that the rest is not sliced into a copy first).
        for data in pending:
            self._transport.write(memoryview(data))

    def close(self) -> None:
        self.flush()  # what was written goes out before the FIN, as with a plain transport
        self._transport.close()

    def abort(self) -> None:
        self._pending.clear()
        self._transport.abort()

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._transport.get_extra_info(name, default)

    def pause_reading(self) -> None:
        self._transport.pause_reading()

    def resume_reading(self) -> None:
        self._transport.resume_reading()

    def is_reading(self) -> bool:
        return self._transport.is_reading()

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._transport.set_protocol(protocol)

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._transport.get_protocol()

    def get_write_buffer_size(self) -> int:
        return self._transport.get_write_buffer_size() + sum(map(len, self._pending))

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self._transport.set_write_buffer_limits(high, low)

    def can_write_eof(self) -> bool:
        return self._transport.can_write_eof()

    def write_eof(self) -> None:
        self.flush()
        self._transport.write_eof()


class CoalescingHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol writing through :class:`CoalescedWrites`."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        super().connection_made(CoalescedWrites(transport))
