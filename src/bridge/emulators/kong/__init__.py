"""An emulator of the Kong Gateway 3.x Admin API (DB mode or DB-less)."""

from __future__ import annotations

from ..server import EmulatorServer
from .api import KongAdminAPI
from .responses import KONG_VERSION

__all__ = ["KONG_VERSION", "KongAdminAPI", "KongEmulator"]


class KongEmulator(EmulatorServer):
    """A Kong Admin API emulator on a real socket.

    >>> with KongEmulator() as kong:          # a free port on 127.0.0.1
    ...     httpx.get(kong.url + "/services")
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0, db_less: bool = False) -> None:
        self.api = KongAdminAPI(db_less=db_less)
        super().__init__(self.api, self.api.controls, host=host, port=port)
