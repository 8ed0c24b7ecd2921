"""Kong's address rules (``kong/tools/ip.lua``): what a host, a target or a name may be.

Kong decides the kind of an address by exclusion before validating it: more
than one colon is IPv6, digits and dots (and one colon) are IPv4, anything else
a name. So ``123`` or ``1.2.3`` is an IPv4 address that fails, not a host name;
``010.001.002.003`` is ``10.1.2.3``; an IPv6 address is spelled out in full and
takes no zone (``%eth0``) and no embedded IPv4. Python's ``ipaddress`` draws
all these lines elsewhere, so the rules are kept here as Kong writes them.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Literal

PORT_ERROR = "invalid port number"
DEFAULT_TARGET_PORT = 8000  # kong/db/dao/targets.lua

_DIGITS_AND_DOTS = re.compile(r"[0-9.]+")
_IPV4 = re.compile(r"([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})(?::([0-9]+))?")
_IPV6 = re.compile(":".join([r"([0-9a-fA-F]{1,4})"] * 8))
_PORT_SUFFIX = re.compile(r":([0-9]+)\Z")
_NAME = re.compile(r"[0-9A-Za-z\-._]+")


@dataclass(frozen=True)
class Address:
    """An address as ``normalize_ip`` returns it: IPv4 without leading zeros, IPv6
    expanded (lower case, no brackets), a name as given; the port if one was given."""

    kind: Literal["ipv4", "ipv6", "name"]
    host: str
    port: int | None = None


def hostname_type(address: str) -> Literal["ipv4", "ipv6", "name"]:
    """``hostname_type``: the kind by exclusion, not by validation."""
    if address.count(":") > 1:
        return "ipv6"
    if _DIGITS_AND_DOTS.fullmatch(address.replace(":", "")):
        return "ipv4"
    return "name"


@functools.lru_cache(maxsize=4096)
def normalize_ip(address: str) -> Address | str:
    """``normalize_ip``: the address, or Kong's error text for it.

    Remembered per string: one write asks about the same address several times.
    """
    kind = hostname_type(address)
    if kind == "ipv4":
        return normalize_ipv4(address)
    if kind == "ipv6":
        return normalize_ipv6(address)
    return check_hostname(address)


def format_target(address: Address) -> str:
    """The stored form of a target (``format_host`` with Kong's default port)."""
    host = f"[{address.host}]" if address.kind == "ipv6" else address.host
    port = DEFAULT_TARGET_PORT if address.port is None else address.port
    return f"{host}:{port}"


def normalize_ipv4(address: str) -> Address | str:
    found = _IPV4.fullmatch(address)
    if found is None or any(int(part) > 255 for part in found.groups()[:4]):
        return f"invalid ipv4 address: {address}"
    port: int | None = None
    if found.group(5) is not None:
        port = _port(found.group(5))
        if port is None:
            return PORT_ERROR
    return Address("ipv4", ".".join(str(int(part)) for part in found.groups()[:4]), port)


def normalize_ipv6(address: str) -> Address | str:
    check: str = address
    port: int | None = None
    end = _bracketed(address)
    if end:
        check, rest = address[1 : end - 1], address[end:]
        if rest:
            # ``^:(%d-)$``; an empty port ("[::1]:") breaks Kong's own comparison, and
            # no valid answer comes of it: taken as malformed.
            if not (rest.startswith(":") and len(rest) > 1 and _all_digits(rest[1:])):
                return "invalid ipv6 address"
            port = _port(rest[1:])
            if port is None:
                return PORT_ERROR
    if check.startswith(":"):
        check = "0" + check
    if check.endswith(":"):
        check = check + "0"
    if "::" in check:
        check = check.replace("::", ":" + "0:" * (8 - check.count(":")), 1)
    found = _IPV6.fullmatch(check)
    if found is None:
        return f"invalid ipv6 address: {address}"
    host = ":".join(group.zfill(4) for group in found.groups()).lower()
    return Address("ipv6", host, port)


def check_hostname(address: str) -> Address | str:
    name: str = address
    port: int | None = None
    suffix = _PORT_SUFFIX.search(address)
    if suffix is not None:
        name = address[: suffix.start()]
        port = _port(suffix.group(1))
        if port is None:
            return PORT_ERROR
    if not _NAME.fullmatch(name):
        return f"invalid hostname: {address}"
    # No label ends in a dash; only the last may be empty (a fully qualified name).
    labels = _labels(name)
    for index, label in enumerate(labels, start=1):
        if label.endswith("-") or (label == "" and index != len(labels)):
            return f"invalid hostname: {address}"
    return Address("name", name, port)


def _port(digits: str) -> int | None:
    """The port, or None past 65535 (Kong's "invalid port number")."""
    port = int(digits)
    return port if port <= 65535 else None


def _all_digits(text: str) -> bool:
    return text.isascii() and text.isdigit()


def _bracketed(address: str) -> int:
    """The length of a balanced ``[...]`` at the start (Lua's ``%b[]``), else 0."""
    if not address.startswith("["):
        return 0
    depth = 0
    for index, char in enumerate(address):
        if char == "[":
            depth += 1
        elif char == "]":
            depth -= 1
            if depth == 0:
                return index + 1
    return 0


def _labels(name: str) -> list[str]:
    """``pl.stringx.split(name, ".")``: as ``str.split``, but ``"."`` is one empty label."""
    return [""] if name == "." else name.split(".")
