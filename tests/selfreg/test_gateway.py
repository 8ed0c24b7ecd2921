"""``KongGateway``: config-driven self-registration, context manager, signals."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap

import httpx

from bridge import AsyncKongGateway, KongGateway
from bridge.kong import KongConnection
from bridge.selfreg import parse_service_config

CONFIG = parse_service_config(
    {
        "service": {
            "name": "gw",
            "port": 8080,
            "paths": ["/gw"],
            "virtual_host": "gw.service.consul",
            "weight": 10,
            "slots": 100,
            "address": "10.5.0.1",
        },
        "gatewayAdminUrl": "http://unused:8001",
    }
)


def test_context_manager_registers_and_unregisters(kong: httpx.Client) -> None:
    with KongGateway(str(kong.base_url), CONFIG) as gateway:
        assert gateway.service.name == "gw"
        upstream = kong.get("/upstreams/gw.service.consul").json()
        assert upstream["slots"] == 100
        target = kong.get("/upstreams/gw.service.consul/targets/10.5.0.1:8080").json()
        assert target["weight"] == 10
    assert kong.get("/services/gw").status_code == 404


def test_admin_url_from_the_file_when_none_given(kong: httpx.Client) -> None:
    config = CONFIG.model_copy(update={"gatewayAdminUrl": str(kong.base_url)})
    gateway = KongGateway(None, config)
    gateway.self_register()
    assert kong.get("/services/gw").status_code == 200
    gateway.unregister()
    gateway.unregister()  # idempotent
    assert kong.get("/services/gw").status_code == 404


def test_async_gateway(kong: httpx.Client) -> None:
    async def scenario() -> None:
        async with AsyncKongGateway(str(kong.base_url), CONFIG):
            assert kong.get("/services/gw").status_code == 200

    asyncio.run(scenario())
    assert kong.get("/services/gw").status_code == 404


def test_unregister_on_sigterm(kong: httpx.Client) -> None:
    script = textwrap.dedent(f"""
        import time
        from bridge import KongGateway
        from bridge.selfreg import parse_service_config
        config = parse_service_config({CONFIG.model_dump(by_alias=True)!r})
        KongGateway({str(kong.base_url)!r}, config, unregister_on_signals=True).self_register()
        print("ready", flush=True)
        time.sleep(60)
    """)
    process = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, env=dict(os.environ)
    )
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "ready"
    assert kong.get("/services/gw").status_code == 200
    process.send_signal(signal.SIGTERM)
    assert process.wait(30) == -signal.SIGTERM  # the default action still happens
    assert kong.get("/services/gw").status_code == 404


def test_secrets_are_not_in_repr() -> None:
    connection = KongConnection(headers={"Kong-Admin-Token": "s3cret", "X-Trace": "1"})
    assert "s3cret" not in repr(connection) and "X-Trace" in repr(connection)
