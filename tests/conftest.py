"""Shared fixtures: emulators as real servers on free loopback ports."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import consul
import httpx
import pytest

from bridge.emulators.consul import ConsulEmulator
from bridge.emulators.kong import KongEmulator


def _docker_available() -> bool:
    try:
        import docker  # type: ignore[import-not-found]
    except ImportError:
        return False
    try:
        docker.from_env().ping()
    except Exception:
        return False
    return True


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if any("docker" in item.keywords for item in items) and not _docker_available():
        skip = pytest.mark.skip(reason="no Docker engine runs here")
        for item in items:
            if "docker" in item.keywords:
                item.add_marker(skip)
    if shutil.which("deck") is None:
        skip = pytest.mark.skip(reason="decK is not installed (.ci/run installs it)")
        for item in items:
            if "deck" in item.keywords:
                item.add_marker(skip)


@pytest.fixture(scope="session")
def kong_server() -> Iterator[KongEmulator]:
    with KongEmulator() as server:
        yield server


@pytest.fixture(scope="session")
def kong_dbless_server() -> Iterator[KongEmulator]:
    with KongEmulator(db_less=True) as server:
        yield server


def _client(server: KongEmulator) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=10) as client:
        client.post("/_emulator/reset").raise_for_status()
        yield client


@pytest.fixture
def kong(kong_server: KongEmulator) -> Iterator[httpx.Client]:
    """A client of a freshly reset Kong emulator (database mode)."""
    yield from _client(kong_server)


@pytest.fixture
def kong_dbless(kong_dbless_server: KongEmulator) -> Iterator[httpx.Client]:
    """A client of a freshly reset Kong emulator in DB-less mode."""
    yield from _client(kong_dbless_server)


@pytest.fixture(scope="session")
def consul_server() -> Iterator[ConsulEmulator]:
    with ConsulEmulator(min_session_ttl=0.5) as server:
        yield server


@pytest.fixture
def consul_http(consul_server: ConsulEmulator) -> Iterator[httpx.Client]:
    """Raw HTTP access to a freshly reset Consul emulator."""
    with httpx.Client(base_url=consul_server.url, timeout=30) as client:
        client.post("/_emulator/reset").raise_for_status()
        yield client


@pytest.fixture
def consul_client(
    consul_server: ConsulEmulator, consul_http: httpx.Client
) -> Iterator[consul.Consul]:
    """A py-consul client (the library the bridge uses) of the reset emulator."""
    client = consul.Consul(host="127.0.0.1", port=consul_server.port)
    yield client
    # Its keep-alive connection is closed here (py-consul's http.close() does nothing):
    # left open, it closes whenever the session is collected, perhaps during a later
    # test that counts the emulator's open connections (test_monitor_streams_logs).
    client.http.session.close()
