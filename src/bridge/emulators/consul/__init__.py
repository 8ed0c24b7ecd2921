"""An emulator of the Consul HTTP API: a one-node ``consul agent -dev`` of Consul 1.20."""

from __future__ import annotations

import threading
import time
from typing import Any

from ..server import EmulatorServer
from .api import CONSUL_VERSION, ConsulAPI
from .connections import limited_protocol

__all__ = ["CONSUL_VERSION", "ConsulAPI", "ConsulEmulator"]


class ConsulEmulator(EmulatorServer):
    """A Consul HTTP API emulator on a real socket.

    >>> with ConsulEmulator() as consul:      # a free port on 127.0.0.1
    ...     consul.Consul(host="127.0.0.1", port=consul_server.port).catalog.services()
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0, **options: Any) -> None:
        self.api = ConsulAPI(**options)
        super().__init__(
            self.api,
            self.api.controls,
            host=host,
            port=port,
            http_protocol=limited_protocol(self.api.connections),
        )
        self.api.ctx.on_leave = self._leave

    def _leave(self) -> None:
        """After ``PUT /v1/agent/leave`` has answered, the agent stops listening."""

        def stop_soon() -> None:
            time.sleep(0.05)  # let the answer leave first
            self.stop()

        threading.Thread(target=stop_soon, daemon=True).start()

    def stop(self) -> None:
        # Blocked queries answer first, so the shutdown does not have to cancel them.
        self.api.abandon_blocking_queries()
        super().stop()
