"""The lean HTTP transport and the async client against raw HTTP servers: chunked bodies,
closed keep-alives, timeouts, TLS, and the bytes of a request."""

from __future__ import annotations

import asyncio
import json
import ssl
from pathlib import Path
from typing import Any

import httpx
import pytest

from bridge.http_transport import LeanTransport
from bridge.kong import AsyncKongClient, Call, KongConnection
from tests.emulators.kong_pem import CERT_A, KEY_A

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


async def _capture(answer: bytes, ssl_context: ssl.SSLContext | None = None) -> tuple[Any, int]:
    """A server that records each request (head and body) and answers ``answer``."""
    seen: list[bytes] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(
            (
                int(line.split(b":")[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            ),
            0,
        )
        seen.append(head + await reader.readexactly(length))
        writer.write(answer)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=ssl_context)
    server.seen = seen  # type: ignore[attr-defined]
    return server, server.sockets[0].getsockname()[1]


def test_the_async_client_encodes_paths_params_headers_and_json_bodies() -> None:
    async def scenario() -> bytes:
        server, port = await _capture(
            b'HTTP/1.1 201 Created\r\nContent-Length: 11\r\n\r\n{"id": "x"}'
        )
        connection = KongConnection(
            admin_url=f"http://127.0.0.1:{port}/admin/", headers={"Kong-Admin-Token": "s3cret"}
        )
        async with AsyncKongClient(connection) as client:
            reply = await client.call(
                Call("POST", "/services/a b/routes", {"name": "é", "n": 1}, {"tags": "a:b"})
            )
        server.close()
        assert reply.status == 201 and reply.body == {"id": "x"}
        return server.seen[0]  # type: ignore[no-any-return]

    request = asyncio.run(scenario())
    head, _, body = request.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    assert lines[0] == "POST /admin/services/a%20b/routes?tags=a%3Ab HTTP/1.1"
    headers = {
        name.lower(): value.strip() for name, _, value in (x.partition(":") for x in lines[1:])
    }
    assert headers["host"] == f"127.0.0.1:{headers['host'].split(':')[1]}"
    assert headers["kong-admin-token"] == "s3cret"
    assert headers["content-type"] == "application/json"
    assert int(headers["content-length"]) == len(body)
    assert json.loads(body) == {"name": "é", "n": 1}


def test_no_answer_in_time_is_a_read_timeout() -> None:
    async def scenario() -> None:
        async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.read()  # never answers

        server = await asyncio.start_server(silent, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        transport = LeanTransport(1)
        try:
            await transport.exchange(
                ("http", "127.0.0.1", port), "GET", b"GET / HTTP/1.1\r\n\r\n", 0.2
            )
        finally:
            server.close()
            await transport.aclose()

    with pytest.raises(httpx.ReadTimeout):
        asyncio.run(scenario())


def test_a_slow_answer_that_keeps_arriving_is_not_cut_short() -> None:
    pieces = [b"HTTP/1.1 200 OK\r\n", b"Content-Length: 2\r\n\r\n", b"{", b"}"]

    async def scenario() -> tuple[int, bytes]:
        async def trickle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.readuntil(b"\r\n\r\n")
            for piece in pieces:
                writer.write(piece)
                await writer.drain()
                await asyncio.sleep(0.1)  # each gap is shorter than the timeout, the sum longer
            writer.close()

        server = await asyncio.start_server(trickle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        transport = LeanTransport(1)
        answer = await transport.exchange(
            ("http", "127.0.0.1", port), "GET", b"GET / HTTP/1.1\r\n\r\n", 0.25
        )
        server.close()
        await transport.aclose()
        return answer.status, answer.body

    assert asyncio.run(scenario()) == (200, b"{}")


def test_the_async_client_speaks_tls(tmp_path: Path) -> None:
    (tmp_path / "cert.pem").write_text(CERT_A)
    (tmp_path / "key.pem").write_text(KEY_A)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")

    async def scenario() -> Any:
        server, port = await _capture(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n[]", context)
        connection = KongConnection(admin_url=f"https://127.0.0.1:{port}", verify=False)
        async with AsyncKongClient(connection) as client:
            reply = await client.call(Call("GET", "/services"))
        server.close()
        return reply.body

    assert asyncio.run(scenario()) == []


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
