"""An emulator of the Kong Gateway 3.x Admin API (DB mode or DB-less), and its proxy."""

from __future__ import annotations

from typing import Self

import uvicorn

from ..coalesce import CoalescingHttpProtocol
from ..controls import Controls
from ..server import EmulatorServer
from .api import KongAdminAPI
from .proxy import KongProxy
from .responses import KONG_VERSION

__all__ = ["KONG_VERSION", "KongAdminAPI", "KongEmulator", "KongProxy"]


class _ProxyServer(EmulatorServer):
    """The proxy listener: the service's Date header passes (Kong's proxy_pass_header), and
    the client's X-Forwarded-* headers are Kong's business (trusted_ips), not uvicorn's."""

    def _make_server(self) -> uvicorn.Server:
        server = super()._make_server()
        server.config.date_header = False
        server.config.proxy_headers = False
        return server


class KongEmulator(EmulatorServer):
    """A Kong Admin API emulator on a real socket; with ``proxy_port``, Kong's proxy too.

    >>> with KongEmulator(proxy_port=0) as kong:   # free ports on 127.0.0.1
    ...     httpx.get(kong.url + "/services")       # the Admin API
    ...     httpx.get(kong.proxy_url + "/orders")   # routed as Kong routes it
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        db_less: bool = False,
        proxy_port: int | None = None,
    ) -> None:
        self.api = KongAdminAPI(db_less=db_less)
        super().__init__(
            self.api, self.api.controls, host=host, port=port, http_protocol=CoalescingHttpProtocol
        )
        self.proxy: EmulatorServer | None = None
        if proxy_port is not None:
            # The proxy has no /_emulator/ of its own: every path is routed, as in Kong.
            self.proxy = _ProxyServer(
                KongProxy(self.api), Controls(reset_data=lambda: None), host, proxy_port
            )

    @property
    def proxy_url(self) -> str:
        if self.proxy is None:
            raise RuntimeError("this Kong emulator was started without a proxy (proxy_port)")
        return self.proxy.url

    def start(self) -> Self:
        super().start()
        if self.proxy is not None:
            self.proxy.start()
        return self

    def stop(self) -> None:
        if self.proxy is not None:
            self.proxy.stop()
        super().stop()
