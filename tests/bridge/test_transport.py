"""The lean Kong transport against a raw HTTP server: chunked bodies, closed keep-alives."""

from __future__ import annotations

import asyncio

import httpx

from bridge.kong.transport import LeanTransport

CHUNKED = (
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    b'4\r\n{"a"\r\n4;ext=1\r\n: 1}\r\n0\r\n\r\n'
)
LENGTH = b"HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\n{}"


async def _serve(answers: list[bytes], close_after_each: bool) -> tuple[asyncio.Server, int]:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while answers:
            try:
                await reader.readuntil(b"\r\n\r\n")
            except asyncio.IncompleteReadError:
                break
            writer.write(answers.pop(0))
            await writer.drain()
            if close_after_each:
                break  # a keep-alive the server drops without saying so
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


def test_chunked_bodies_and_connections_closed_by_the_server() -> None:
    async def scenario() -> list[tuple[int, bytes]]:
        server, port = await _serve([CHUNKED, LENGTH, LENGTH], close_after_each=True)
        transport = LeanTransport(max_connections=1)
        async with httpx.AsyncClient(transport=transport, base_url=f"http://127.0.0.1:{port}") as c:
            results = []
            for _ in range(3):
                response = await c.post("/services", json={"name": "x"})
                results.append((response.status_code, response.content))
        server.close()
        return results

    assert asyncio.run(scenario()) == [(200, b'{"a": 1}'), (201, b"{}"), (201, b"{}")]


def test_a_refused_connection_is_an_httpx_connect_error() -> None:
    async def scenario() -> None:
        server, port = await _serve([], close_after_each=True)
        server.close()
        await server.wait_closed()
        async with httpx.AsyncClient(transport=LeanTransport(1)) as client:
            await client.get(f"http://127.0.0.1:{port}/")

    try:
        asyncio.run(scenario())
    except httpx.ConnectError:
        return
    raise AssertionError("expected httpx.ConnectError")


def test_idle_connections_the_server_closed_are_not_reused() -> None:
    """A server closes idle keep-alives (uvicorn after 30 s, the emulators included): after
    a quiet spell every pooled connection may be dead, and a request must still succeed."""

    async def scenario() -> list[int]:
        closed = 0
        all_closed = asyncio.Event()

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            nonlocal closed
            await reader.readuntil(b"\r\n\r\n")
            await asyncio.sleep(0.01)  # keep the first requests' connections open together
            writer.write(LENGTH)
            await writer.drain()
            writer.close()  # answered, then dropped without "Connection: close"
            closed += 1
            if closed == 4:
                all_closed.set()

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        transport = LeanTransport(max_connections=4)
        async with httpx.AsyncClient(transport=transport, base_url=f"http://127.0.0.1:{port}") as c:
            first = await asyncio.gather(*(c.get("/") for _ in range(4)))
            await all_closed.wait()
            later = [await c.get("/") for _ in range(4)]
        server.close()
        return [r.status_code for r in first + later]

    assert asyncio.run(scenario()) == [201] * 8
