"""The emulators' write coalescing: one underlying write per loop turn, nothing lost on close."""

from __future__ import annotations

import asyncio

import httpx

from bridge.emulators.coalesce import JOIN_AT_MOST, CoalescedWrites
from bridge.emulators.consul import ConsulEmulator
from bridge.emulators.kong import KongEmulator


class _Recording(asyncio.Transport):
    """A transport with no wire: it records what is written (a unit test of the wrapper)."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.writes.append(bytes(data))

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed


def test_writes_of_one_turn_leave_together_and_close_flushes_first() -> None:
    async def scenario() -> tuple[list[bytes], list[bytes], bool]:
        inner = _Recording()
        outer = CoalescedWrites(inner)
        outer.write(b"HTTP/1.1 200 OK\r\n\r\n")
        outer.write(b"{}")
        await asyncio.sleep(0)  # the end of this turn
        after_turn = list(inner.writes)
        outer.write(b"bye")
        outer.close()
        return after_turn, inner.writes, inner.closed

    after_turn, writes, closed = asyncio.run(scenario())
    assert after_turn == [b"HTTP/1.1 200 OK\r\n\r\n{}"]
    assert writes == [b"HTTP/1.1 200 OK\r\n\r\n{}", b"bye"] and closed


def test_a_large_answer_is_written_piece_by_piece_without_a_joined_copy() -> None:
    body = bytes(range(256)) * (JOIN_AT_MOST // 128)  # twice the size that is joined

    async def scenario() -> list[bytes]:
        inner = _Recording()
        outer = CoalescedWrites(inner)
        outer.write(b"HTTP/1.1 200 OK\r\n\r\n")
        outer.write(body)
        await asyncio.sleep(0)
        return inner.writes

    writes = asyncio.run(scenario())
    assert writes == [b"HTTP/1.1 200 OK\r\n\r\n", body]


def test_a_large_answer_arrives_whole_over_a_socket() -> None:
    value = bytes(range(256)) * 1024  # 256 KiB, above what is joined: sent unjoined
    with ConsulEmulator() as consul, httpx.Client(base_url=consul.url) as client:
        client.put("/v1/kv/big", content=value).raise_for_status()
        for _ in range(3):  # the same keep-alive connection, answer after answer
            assert client.get("/v1/kv/big", params={"raw": "true"}).content == value


def test_the_kong_emulator_answers_through_it() -> None:
    with KongEmulator() as kong, httpx.Client(base_url=kong.url) as client:
        created = client.post("/services", json={"name": "s", "host": "h"})
        assert created.status_code == 201 and created.json()["name"] == "s"
        assert client.delete("/services/s").status_code == 204
        assert client.get("/services/s").status_code == 404
