"""The lean HTTP transport and the async client against raw HTTP servers: chunked bodies,
closed keep-alives, timeouts, TLS, and the bytes of a request."""

from __future__ import annotations

import asyncio
import itertools
import json
import ssl
import tracemalloc
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bridge.http_transport import Answer, LeanTransport, _Parser
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


def _server_tls(tmp_path: Path) -> ssl.SSLContext:
    (tmp_path / "cert.pem").write_text(CERT_A)
    (tmp_path / "key.pem").write_text(KEY_A)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
    return context


def test_the_async_client_speaks_tls(tmp_path: Path) -> None:
    context = _server_tls(tmp_path)

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


# -- the receive path: bodies straight into their own buffer, at any read boundaries ---------


def _pattern(size: int, seed: int = 0) -> bytes:
    """``size`` bytes in which a shifted or misplaced slice would not compare equal."""
    block = bytes(range(seed % 7, 251)) + bytes(range(seed % 7))
    return (block * (size // len(block) + 1))[:size]


def _length(body: bytes, status: int = 200) -> bytes:
    return b"HTTP/1.1 %d OK\r\nContent-Length: %d\r\n\r\n" % (status, len(body)) + body


def _chunked(body: bytes, sizes: list[int]) -> bytes:
    """``body`` in chunks of ``sizes`` (cycled), with an extension and a trailer."""
    out = [b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"]
    at, turn = 0, 0
    while at < len(body):
        size = sizes[turn % len(sizes)] or 1
        piece = body[at : at + size]
        out.append(b"%x;n=%d\r\n" % (len(piece), turn) + piece + b"\r\n")
        at, turn = at + size, turn + 1
    out.append(b"0\r\nX-Trailer: 1\r\n\r\n")
    return b"".join(out)


def _close_delimited(body: bytes) -> bytes:
    return b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n" + body


HEAD_ANSWER = b"HTTP/1.1 200 OK\r\nContent-Length: 12345\r\n\r\n"
NO_CONTENT = b"HTTP/1.1 204 No Content\r\n\r\n"


def _receive(stream: bytes, cuts: list[int], methods: list[str]) -> list[tuple[int, bytes, bool]]:
    """Feed ``stream`` to a parser as the event loop would (each read fills at most the room
    offered, and no read crosses a cut), reading each answer out as soon as it is complete;
    the server closes the connection at the end."""
    parser = _Parser()
    got: list[tuple[int, bytes, bool]] = []

    def read_out() -> None:
        while len(got) < len(methods) and parser.body is None:
            found = parser.answer()
            if found is None:
                return
            got.append((found[0].status, found[0].body, found[1]))
            if len(got) < len(methods):
                parser.start(methods[len(got)])

    parser.start(methods[0])
    at = 0
    for edge in [*sorted({c for c in cuts if 0 < c < len(stream)}), len(stream)]:
        while at < edge:
            room = parser.room()
            n = min(len(room), edge - at)
            room[:n] = stream[at : at + n]
            parser.received(n)
            at += n
            read_out()
    parser.eof = True
    read_out()
    return got


BODY = b"\r\n\r\n0\r\n\r\n" + _pattern(90)  # looks like a head's end and a last chunk
STREAM = [
    (_length(BODY), "GET", (200, BODY, True)),
    (_chunked(BODY, [1, 7, 30]), "GET", (200, BODY, True)),
    (HEAD_ANSWER, "HEAD", (200, b"", True)),
    (NO_CONTENT, "DELETE", (204, b"", True)),
    (_length(b"", 201), "POST", (201, b"", True)),
    (_close_delimited(BODY), "GET", (200, BODY, False)),
]


def test_answers_back_to_back_cut_at_every_byte() -> None:
    stream = b"".join(answer for answer, _, _ in STREAM)
    methods = [method for _, method, _ in STREAM]
    expected = [result for _, _, result in STREAM]
    for cut in range(len(stream)):  # inside each head, at each head/body border, in each body
        assert _receive(stream, [cut], methods) == expected, f"cut at {cut}"
    assert _receive(stream, list(range(len(stream))), methods) == expected  # a byte per read


@settings(max_examples=60, deadline=None)
@given(
    kinds=st.lists(st.sampled_from(["length", "chunked", "head", "204"]), min_size=1, max_size=4),
    sizes=st.lists(st.integers(0, 70_000), min_size=4, max_size=4),
    chunk_sizes=st.lists(st.integers(1, 40_000), min_size=1, max_size=5),
    last_closes=st.booleans(),
    data=st.data(),
)
def test_answers_of_any_size_cut_anywhere(
    kinds: list[str],
    sizes: list[int],
    chunk_sizes: list[int],
    last_closes: bool,
    data: st.DataObject,
) -> None:
    """Bodies larger than the staging buffer go straight to their own; small ones, heads and
    chunk lines stay staged; either way each answer is exactly what was sent."""
    answers, methods, expected = [], [], []
    for turn, kind in enumerate(kinds):
        body = _pattern(sizes[turn], turn)
        if kind == "length":
            answers.append(_length(body))
        elif kind == "chunked":
            answers.append(_chunked(body, chunk_sizes))
        answers.append(HEAD_ANSWER if kind == "head" else NO_CONTENT if kind == "204" else b"")
        methods.append("HEAD" if kind == "head" else "GET")
        status = 204 if kind == "204" else 200
        expected.append((status, body if kind in ("length", "chunked") else b"", True))
    if last_closes:
        body = _pattern(sizes[-1] + 1, 9)
        answers.append(_close_delimited(body))
        methods.append("GET")
        expected.append((200, body, False))
    stream = b"".join(answers)
    cuts = data.draw(st.lists(st.integers(0, len(stream)), max_size=40))
    assert _receive(stream, cuts, methods) == expected


async def _serve_answers(
    answers: list[list[bytes]],
    close_after_each: bool = False,
    ssl_context: ssl.SSLContext | None = None,
) -> tuple[asyncio.Server, int, list[int]]:
    """A server that answers each request with the next answer, written piece by piece
    (so the client's reads see the pieces' boundaries, or coalesce them), and closes the
    connection after each answer if told; it counts the connections it accepted."""
    accepted: list[int] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(1)
        while answers:
            try:
                await reader.readuntil(b"\r\n\r\n")
            except (asyncio.IncompleteReadError, ConnectionError):
                break
            for piece in answers.pop(0):
                writer.write(piece)
                await writer.drain()
                await asyncio.sleep(0.002)  # a separate segment, most likely a separate read
            if close_after_each:
                writer.close()
                return
        await reader.read()  # keep the connection open until the client closes it

    server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=ssl_context)
    return server, server.sockets[0].getsockname()[1], accepted


def _one_exchange(answer: bytes) -> Answer:
    """One GET on a new connection to a server that writes ``answer`` and closes."""

    async def scenario() -> Answer:
        server, port, _ = await _serve_answers([[answer]], close_after_each=True)
        transport = LeanTransport(1)
        try:
            return await transport.exchange(
                ("http", "127.0.0.1", port), "GET", b"GET / HTTP/1.1\r\n\r\n", 5
            )
        finally:
            await transport.aclose()
            server.close()

    return asyncio.run(scenario())


def _cut(answer: bytes, *cuts: int) -> list[bytes]:
    edges = [0, *cuts, len(answer)]
    return [answer[a:b] for a, b in itertools.pairwise(edges) if b > a]


def test_answers_cut_over_a_socket_on_one_keep_alive_connection() -> None:
    large = _pattern(700_000, 1)  # larger than one read of the event loop (256 KiB)
    length = _length(large)
    border = length.index(b"\r\n\r\n") + 4
    chunked = _chunked(large, [300_000, 5, 99_999])
    answers = [
        _cut(length, 5, 20, border - 1, border, border + 1, border + 70_000),  # in the head too
        _cut(chunked, 10, 60, 60 + 300_000 // 2),
        _cut(_length(b"{}"), 3),
        [HEAD_ANSWER],
    ]

    async def scenario() -> tuple[list[tuple[int, bytes]], int]:
        server, port, accepted = await _serve_answers(answers)
        transport = LeanTransport(1)
        results = []
        for method in ["GET", "GET", "GET", "HEAD"]:
            answer = await transport.exchange(
                ("http", "127.0.0.1", port), method, f"{method} / HTTP/1.1\r\n\r\n".encode(), 5
            )
            results.append((answer.status, answer.body))
        await transport.aclose()
        server.close()
        return results, len(accepted)

    results, connections = asyncio.run(scenario())
    assert results == [(200, large), (200, large), (200, b"{}"), (200, b"")]
    assert connections == 1


def test_a_close_delimited_body_ends_the_connection() -> None:
    large = _pattern(300_000, 2)
    answers = [_cut(_close_delimited(large), 30, 100_000), [_length(b"[]")]]

    async def scenario() -> tuple[list[bytes], int]:
        server, port, accepted = await _serve_answers(answers, close_after_each=True)
        transport = LeanTransport(1)
        bodies = [
            (
                await transport.exchange(
                    ("http", "127.0.0.1", port), "GET", b"GET / HTTP/1.1\r\n\r\n", 5
                )
            ).body
            for _ in range(2)
        ]
        await transport.aclose()
        server.close()
        return bodies, len(accepted)

    bodies, connections = asyncio.run(scenario())
    assert bodies == [large, b"[]"]
    assert connections == 2


@pytest.mark.parametrize(
    "answer",
    [
        _length(_pattern(500_000))[:300_000],  # in a body received straight
        _length(_pattern(100))[:-1],  # in a body received in the staging buffer
        _chunked(_pattern(500_000), [400_000])[:200_000],  # in a chunk's data
        _chunked(_pattern(10), [4])[:-3],  # before the trailers end
        b"HTTP/1.1 200 OK\r\nContent-Le",  # in the head
    ],
    ids=["straight", "staged", "chunk", "trailers", "head"],
)
def test_a_connection_closed_mid_answer_is_a_read_error(answer: bytes) -> None:
    with pytest.raises(httpx.ReadError, match="closed the connection"):
        _one_exchange(answer)


@pytest.mark.parametrize("framing", ["length", "chunked"])
def test_a_large_body_is_received_into_one_buffer_and_not_copied(framing: str) -> None:
    """The body is the one allocation of its size: no buffer that grows by each read, no
    copy out of it (measured with tracemalloc; the server writes from one prepared
    answer through a small socket buffer)."""
    body = _pattern(4_000_000, 3)
    answer = _length(body) if framing == "length" else _chunked(body, [len(body)])
    view = memoryview(answer)

    async def scenario() -> tuple[bool, int]:
        server, port, _ = await _serve_answers(
            [[view[a : a + 65_536] for a in range(0, len(view), 65_536)]]
        )
        transport = LeanTransport(1)
        tracemalloc.start()
        try:
            received = await transport.exchange(
                ("http", "127.0.0.1", port), "GET", b"GET / HTTP/1.1\r\n\r\n", 5
            )
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
            await transport.aclose()
            server.close()
        return received.body == body, peak

    same, peak = asyncio.run(scenario())
    assert same
    assert peak < 1.25 * len(body)  # a second copy would make it 2x


def test_a_chunk_longer_than_its_size_line_says_is_a_read_error() -> None:
    answer = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n0\r\n\r\n"
    with pytest.raises(httpx.ReadError, match="longer than its size"):
        _one_exchange(answer)


def test_large_answers_over_tls_on_one_connection(tmp_path: Path) -> None:
    """TLS hands the decrypted bytes to the same buffers (asyncio's SSL layer reads into
    what the protocol offers)."""
    context = _server_tls(tmp_path)
    client_context = ssl.create_default_context()
    client_context.check_hostname = False
    client_context.verify_mode = ssl.CERT_NONE
    large = _pattern(600_000, 4)
    answers = [_cut(_length(large), 10, 50_000), _cut(_chunked(large, [500_000, 1]), 40)]

    async def scenario() -> tuple[list[bytes], int]:
        server, port, accepted = await _serve_answers(answers, ssl_context=context)
        transport = LeanTransport(1, client_context)
        origin = ("https", "127.0.0.1", port)
        request = b"GET / HTTP/1.1\r\n\r\n"
        bodies = [(await transport.exchange(origin, "GET", request, 5)).body for _ in range(2)]
        await transport.aclose()
        server.close()
        return bodies, len(accepted)

    assert asyncio.run(scenario()) == ([large, large], 1)


def test_a_negative_content_length_is_a_read_error() -> None:
    with pytest.raises(httpx.ReadError, match="negative length"):
        _one_exchange(b"HTTP/1.1 200 OK\r\nContent-Length: -3\r\n\r\n")
