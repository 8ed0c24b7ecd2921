"""The Kong client honours the bridge's stop: no new call, retries and backoff cut short."""

from __future__ import annotations

import threading
import time

import pytest

from bridge.kong import Call, KongClient, KongClientError, KongConnection, RetryPolicy
from bridge.kong.errors import KongStopped
from tests.bridge.conftest import free_port


def _refusing_client(stop: threading.Event) -> KongClient:
    nothing_listens = f"http://127.0.0.1:{free_port()}"
    return KongClient(KongConnection(nothing_listens), RetryPolicy(total_seconds=30), stop=stop)


def test_a_stopped_client_sends_nothing() -> None:
    stop = threading.Event()
    stop.set()
    with _refusing_client(stop) as client, pytest.raises(KongStopped):
        client.call(Call("POST", "/services", {"name": "web"}))
    assert client.requests_sent == 0


def test_a_stop_cuts_the_retries_of_the_call_in_flight() -> None:
    stop = threading.Event()
    threading.Timer(0.3, stop.set).start()
    began = time.monotonic()
    with _refusing_client(stop) as client, pytest.raises(KongClientError):
        client.call(Call("GET", "/services"))  # would retry for 30 s
    assert time.monotonic() - began < 1.5
    assert client.requests_sent >= 1
