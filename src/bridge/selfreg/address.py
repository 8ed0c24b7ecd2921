"""Find the address this instance is reachable at, as the Admin API host would see it."""

from __future__ import annotations

import socket
from urllib.parse import urlsplit

_UNSPECIFIED = frozenset({"0.0.0.0", "::"})


def detect_local_address(admin_url: str) -> str | None:
    """The local address of the route towards the Admin API host, or ``None``.

    A connected UDP socket makes the kernel pick the source address it would
    use for that destination, without sending anything: unlike "the first
    non-loopback interface", this is the right network in a multi-homed
    container.
    """
    parts = urlsplit(admin_url)
    if not parts.hostname:
        return None
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        infos = socket.getaddrinfo(parts.hostname, port, type=socket.SOCK_DGRAM)
    except OSError:
        return None
    for family, _type, _proto, _name, sockaddr in infos:
        try:
            with socket.socket(family, socket.SOCK_DGRAM) as probe:
                probe.connect(sockaddr)
                address = str(probe.getsockname()[0])
        except OSError:
            continue
        if address not in _UNSPECIFIED:
            return address.split("%", 1)[0]
    return None
