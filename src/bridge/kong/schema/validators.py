"""Field validators with Kong 3.x's rules and messages (``kong/db/schema/typedefs.lua``).

Each returns ``None`` when the value is valid, else the error text Kong gives.
"""

from __future__ import annotations

import ipaddress
import re

from .addresses import PORT_ERROR, Address, format_target, normalize_ip
from .socket_url import parse_url

_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
# Whole-string patterns, used with fullmatch: Lua's "$" ends the string, where a Python
# "$" also matches before a final newline ("GET\n" is no method).
_NAME = re.compile(r"[0-9A-Za-z.\-_~\x80-\U0010ffff]+")
_METHOD = re.compile(r"[A-Z]+")
_UNRESERVED = re.compile(r"[A-Za-z0-9\-._~]")
_PCT = re.compile(r"%([0-9A-Fa-f]{2})")
_RFC3986 = re.compile(r"[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]*")

NAME_ERROR = (
    "invalid value '{}': the only accepted ascii characters are alphanumerics or ., -, _, and ~"
)
TAG_ERROR = (
    "invalid tag '{}': expected printable ascii (except `,` and `/`) or valid utf-8 sequences"
)


def is_uuid(value: str) -> bool:
    """``kong/tools/uuid.lua`` is_valid_uuid: 8-4-4-4-12 hex digits, either case.

    Not ``uuid.UUID``: it takes braces and a ``urn:uuid:`` prefix, and drops hyphens
    wherever they stand, so ``1234567-81234-...`` would pass where Kong says no.
    """
    return isinstance(value, str) and _UUID.fullmatch(value) is not None


def check_uuid(value: str) -> str | None:
    return None if is_uuid(value) else "expected a valid UUID"


def check_name(value: str) -> str | None:
    return None if _NAME.fullmatch(value) else NAME_ERROR.format(value)


# A comma, a slash or an ASCII control character (Kong: printable ASCII but , and /, or
# any non-ASCII character).
_BAD_TAG_CHAR = re.compile(r"[,/\x00-\x1f\x7f]")


def check_tag(value: str) -> str | None:
    return TAG_ERROR.format(value) if _BAD_TAG_CHAR.search(value) else None


def check_service_host(value: str) -> str | None:
    """``typedefs.host`` (validate_host): a name or an address, without a port."""
    found = normalize_ip(value)
    if found == PORT_ERROR or (isinstance(found, Address) and found.port is not None):
        return "must not have a port"
    return f"invalid value: {value}" if isinstance(found, str) else None


def check_route_host(value: str) -> str | None:
    """``typedefs.hosts``' element: at most one wildcard, as the leftmost or rightmost
    label; then validate_host_with_wildcards (the wildcard read as ``abc``)."""
    if value.count("*") > 1:
        return "invalid wildcard: must have at most one wildcard"
    if "*" in value and not (value.startswith("*.") or value.endswith(".*")):
        return "invalid wildcard: must be placed at leftmost or rightmost label"
    found = normalize_ip(value.replace("*", "abc"))
    return found if isinstance(found, str) else None


def check_upstream_name(value: str) -> str | None:
    """``upstreams.lua`` validate_name: a host name, no address, no port."""
    found = normalize_ip(value)
    if isinstance(found, str):
        return f"Invalid name ('{value}'); must be a valid hostname"
    if found.kind != "name":
        return f"Invalid name ('{value}'); no ip addresses allowed"
    if found.port is not None:
        return f"Invalid name ('{value}'); no port allowed"
    return None


def normalize_target(value: str) -> str | None:
    """A target as Kong stores it (``host:port``, port 8000 by default, IPv4 without
    leading zeros, IPv6 expanded in brackets), or None when Kong refuses it."""
    found = normalize_ip(value)
    return None if isinstance(found, str) else format_target(found)


def check_target(value: str) -> str | None:
    if normalize_target(value) is None:
        return f"Invalid target ('{value}'); not a valid hostname or ip address"
    return None


def check_method(value: str) -> str | None:
    return None if _METHOD.fullmatch(value) else "invalid value: " + value


def _check_percent_encoding(path: str) -> str | None:
    for index, char in enumerate(path):
        if char == "%" and not _PCT.match(path, index):
            return f"invalid url-encoded value: '{path[index : index + 3]}'"
    return None


def normalize_path(path: str) -> str:
    """RFC 3986 normalisation as Kong's ``normalize`` does: decode unreserved, drop dots."""

    def decode(match: re.Match[str]) -> str:
        char = chr(int(match.group(1), 16))
        return char if _UNRESERVED.match(char) else "%" + match.group(1).upper()

    decoded = _PCT.sub(decode, path)
    segments: list[str] = []
    parts = decoded.split("/")
    for index, segment in enumerate(parts):
        if segment == ".":
            if index == len(parts) - 1:
                segments.append("")
            continue
        if segment == "..":
            if len(segments) > 1:
                segments.pop()
            if index == len(parts) - 1:
                segments.append("")
            continue
        segments.append(segment)
    return "/".join(segments) or "/"


def check_router_path(path: str) -> str | None:
    """Kong 3.x ``router_path``: ``/plain`` (normalised) or ``~/regex`` (compiled)."""
    if path.startswith("~/"):
        try:
            re.compile(path[1:])
        except re.error as exc:
            return f"invalid regex: '{path[1:]}' (PCRE returned: {exc})"
        return None
    if not path.startswith("/"):
        return "should start with: / (fixed path) or ~/ (regex path)"
    error = _check_percent_encoding(path)
    if error:
        return error
    normalized = normalize_path(path)
    if normalized != path:
        return f"non-normalized path, consider use '{normalized}' instead"
    return None


def check_service_path(path: str) -> str | None:
    if not path.startswith("/"):
        return "should start with: /"
    if "//" in path:
        return "must not have empty segments"
    if not _RFC3986.fullmatch(path):
        return (
            "invalid path: '"
            + path
            + "' (characters outside of the reserved list of RFC 3986 found)"
        )
    return _check_percent_encoding(path)


_HEADER_NAME = re.compile(r"[A-Za-z0-9_\-]+")
_LUA_CLASSES = {
    "a": "A-Za-z",
    "d": "0-9",
    "l": "a-z",
    "s": r" \t\n\x0b\x0c\r",  # isspace in the C locale (Python's \s is Unicode's)
    "u": "A-Z",
    "w": "A-Za-z0-9",
    "x": "0-9A-Fa-f",
    "p": r"!-/:-@\[-`{-~",
    "c": r"\x00-\x1f\x7f",
}


def lua_pattern_to_regex(pattern: str) -> str:
    """Translate the Lua patterns Kong's schemas use (``%w``, ``%.``, ``-``) to a regex."""
    out: list[str] = []
    index = 0
    in_set = False
    while index < len(pattern):
        char = pattern[index]
        if char == "%" and index + 1 < len(pattern):
            nxt = pattern[index + 1]
            cls = _LUA_CLASSES.get(nxt.lower())
            if cls is None:
                out.append(re.escape(nxt))
            elif nxt.isupper():
                out.append(f"[^{cls}]" if not in_set else cls)  # negated classes, roughly
            else:
                out.append(cls if in_set else f"[{cls}]")
            index += 2
            continue
        if char == "[":
            in_set = True
        elif char == "]":
            in_set = False
        elif char == "-" and not in_set:
            char = "*?"
        elif char == "$" and not in_set:
            # An anchor only at the pattern's end, and then the string's very end.
            char = r"\Z" if index == len(pattern) - 1 else r"\$"
        elif char == "^" and not in_set and index > 0:
            char = r"\^"  # an anchor only at the pattern's start
        elif char in "\\{}|" and not in_set:
            char = "\\" + char
        out.append(char)
        index += 1
    return "".join(out)


def lua_match(pattern: str, value: str) -> bool:
    """``string.match(value, pattern) ~= nil``; an untranslatable pattern matches.

    Matched on the UTF-8 bytes, as Lua does: ``.`` is one byte, so ``^.$`` does not
    match ``é``, and a class such as ``%w`` never matches a byte of a non-ASCII letter.
    """
    try:
        regex = re.compile(lua_pattern_to_regex(pattern).encode(), re.DOTALL)
    except re.error:
        return True
    return regex.search(value.encode("utf-8", "surrogatepass")) is not None


def check_header_name(value: str) -> str | None:
    """``kong.tools.http.validate_header_name``."""
    if _HEADER_NAME.fullmatch(value):
        return None
    return f"bad header name '{value}', allowed characters are A-Z, a-z, 0-9, '_', and '-'"


_PREFIXES = {4: {str(bits) for bits in range(33)}, 6: {str(bits) for bits in range(129)}}


def check_ip_or_cidr(value: str) -> str | None:
    """``typedefs.ip_or_cidr``: an address as inet_pton reads it, or one with a prefix
    length written plainly (``/8``; not ``/08``, not a netmask as Python also takes)."""
    address, slash, prefix = value.partition("/")
    version = _inet_pton(address)
    if version is not None and (not slash or prefix in _PREFIXES[version]):
        return None
    return f"invalid ip or cidr range: '{value}'"


def _inet_pton(text: str) -> int | None:
    """4 or 6 when ``inet_pton`` (lua-resty-ipmatcher) takes ``text``, else None. Python
    parses the same, but for an IPv6 zone (``%eth0``), which inet_pton refuses."""
    if "%" in text:
        return None
    try:
        return ipaddress.ip_address(text).version
    except ValueError:
        return None


def check_wildcard_host(value: str) -> str | None:
    """``typedefs.wildcard_host`` (SNI names): one wildcard at either end, no IP, no port."""
    host = value
    if "*" in value:
        if value.find("*") not in (0, len(value) - 1):
            return "wildcard must be leftmost or rightmost character"
        if value.count("*") > 1:
            return "only one wildcard must be specified"
        host = value.replace("*", "wildcard")
    return check_sni(host)


def check_sni(value: str) -> str | None:
    """``typedefs.sni`` (validate_sni): a host name, no IP, no port."""
    found = normalize_ip(value)
    if isinstance(found, str) and found != PORT_ERROR:
        return f"invalid value: {value}"
    if isinstance(found, Address) and found.kind != "name":
        return "must not be an IP"
    if found == PORT_ERROR or (isinstance(found, Address) and found.port is not None):
        return "must not have a port"
    return None


def check_url(value: str) -> str | None:
    """``typedefs.url``'s validate_url: LuaSocket must find a host and a scheme."""
    parts = parse_url(value)
    if parts is None:
        return "could not parse url. invalid url"
    if parts.host is None:
        return "missing host in url"
    if parts.scheme is None:
        return "missing scheme in url"
    return None


# Kong's custom validators by their Lua names, as the plugin schema dump records them.
CUSTOM_VALIDATORS = {
    "validate_header_name": check_header_name,
    "validate_ip_or_cidr": check_ip_or_cidr,
    "validate_host": check_service_host,
    "validate_path": check_service_path,
    "validate_url": check_url,
    "validate_wildcard_host": check_wildcard_host,
    "validate_sni": check_sni,
}
