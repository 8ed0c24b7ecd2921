"""Kong 3.x's HTTP router (``router_flavor = traditional_compatible``), without I/O.

Kong compiles each route into an ATC expression with a 64-bit priority
(``kong/router/transform.lua``) and the ATC router tries matchers from the
highest priority down; equal priorities fall back to the larger matcher UUID.
Routes whose paths differ in kind or length are split first, one matcher per
group (regexes together, each prefix length apart). This module reproduces
that ordering, the matching of every field, and how the upstream URI is built
(``kong/router/utils.lua``, ``kong/tools/uri.lua``).
"""

from __future__ import annotations

import ipaddress
import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

Row = dict[str, Any]

# Priority layout, from transform.lua's get_priority (big endian, 64 bits):
MATCH_WEIGHT_SHIFT = 61  # how many kinds of matchers the route uses (3 bits)
PLAIN_HOST_ONLY_BIT = 1 << 60  # hosts given, none with a wildcard
HEADER_COUNT_SHIFT = 52  # number of header matchers (8 bits, capped at 255)
REGEX_URL_BIT = 1 << 51  # the route's paths are regexes
REGEX_PRIORITY_SHIFT = 19  # route.regex_priority (regex routes only)
MAX_LENGTH_MASK = 0x7FFFF  # prefix length (prefix routes only)
MAX_HEADER_COUNT = 255
# transform.lua names the matchers of split routes with uuid v5 in this namespace.
SPLIT_ROUTE_NAMESPACE = uuid.UUID("7f145bf9-0dce-4f91-98eb-debbce4b9f6b")
STREAM_PROTOCOLS = frozenset({"tcp", "tls", "udp", "tls_passthrough"})
HTTP_SUBSYSTEM = frozenset({"http", "https", "grpc", "grpcs"})

# kong/tools/uri.lua: reserved characters stay percent-encoded, others are decoded.
RESERVED = frozenset("!*'();:@&=+$,/?%#[]")
_PERCENT = re.compile(r"%([0-9A-Fa-f]{2})")
_UNSAFE = re.compile(r"[^!#$&'()*+,/:;=?@\[\]A-Za-z0-9\-_.~%]")
_NAMED_GROUP = re.compile(r"\(\?<(?=[A-Za-z_])")


@dataclass(frozen=True)
class RequestFacts:
    """What the router looks at in one request."""

    method: str
    path: str  # normalised (``normalize_path``), without the query
    host: str | None  # the Host header without its port
    port: int  # the Host header's port, else the port Kong listens on
    headers: Mapping[str, Sequence[str]]  # names lower-cased, ``-`` as ``_``
    src_ip: str = "127.0.0.1"
    src_port: int = 0
    dst_ip: str = "127.0.0.1"


@dataclass(frozen=True)
class RouteMatch:
    """The route that won, its service, and the part of the path it matched."""

    route: Row
    service: Row | None
    matched_path: str | None  # the prefix, or the whole regex match
    prefix: str | None  # what strip_path removes (the matched path when strip_path)


@dataclass(frozen=True)
class _HeaderRule:
    name: str  # lower-cased, ``-`` as ``_``
    exact: frozenset[str]
    patterns: tuple[re.Pattern[str], ...]

    def accepts(self, values: Sequence[str]) -> bool:
        for value in values:
            lowered = value.lower()
            if lowered in self.exact or any(p.search(lowered) for p in self.patterns):
                return True
        return False


@dataclass(frozen=True)
class _Matcher:
    priority: int
    key: uuid.UUID
    route: Row
    service: Row | None
    methods: frozenset[str] | None
    hosts: tuple[tuple[str, str, int | None], ...]  # (op, value, port)
    prefixes: tuple[str, ...]
    regexes: tuple[re.Pattern[str], ...]
    headers: tuple[_HeaderRule, ...]
    sources: tuple[tuple[str | None, int | None], ...]
    destinations: tuple[tuple[str | None, int | None], ...]

    def match(self, facts: RequestFacts) -> str | bool | None:
        """False when the request does not match; else the matched path (or None)."""
        if self.methods is not None and facts.method not in self.methods:
            return False
        if self.hosts and not any(_host_matches(h, facts) for h in self.hosts):
            return False
        if self.sources and not _net_matches(self.sources, facts.src_ip, facts.src_port):
            return False
        if self.destinations and not _net_matches(self.destinations, facts.dst_ip, facts.port):
            return False
        for rule in self.headers:
            if not rule.accepts(facts.headers.get(rule.name, ())):
                return False
        if self.prefixes:
            for prefix in self.prefixes:
                if facts.path.startswith(prefix):
                    return prefix
            return False
        if self.regexes:
            for pattern in self.regexes:
                found = pattern.match(facts.path)
                if found:
                    return found.group(0)
            return False
        return None


@dataclass
class Router:
    """Every HTTP route of one configuration, in the order Kong tries them."""

    matchers: list[_Matcher] = field(default_factory=list)

    @classmethod
    def build(cls, routes: Iterable[Row], services: Mapping[str, Row]) -> Router:
        """Compile routes (with their services by id), skipping what Kong leaves out."""
        matchers: list[_Matcher] = []
        for route in routes:
            if not _is_http_route(route):
                continue
            service_ref = route.get("service")
            service = services.get(service_ref["id"]) if service_ref else None
            if service is not None and service.get("enabled") is False:
                continue  # Kong does not put routes of disabled services in the router
            matchers.extend(_compile(route, service))
        matchers.sort(key=lambda m: (m.priority, m.key.int), reverse=True)
        return cls(matchers)

    def match(self, facts: RequestFacts) -> RouteMatch | None:
        for matcher in self.matchers:
            matched = matcher.match(facts)
            if matched is False:
                continue
            path = matched if isinstance(matched, str) else None
            prefix = path if matcher.route.get("strip_path") else None
            return RouteMatch(matcher.route, matcher.service, path, prefix)
        return None


# -- compiling routes -------------------------------------------------------------------


def _is_http_route(route: Row) -> bool:
    protocols = route.get("protocols") or ["http", "https"]
    return any(p in HTTP_SUBSYSTEM for p in protocols)


def _path_groups(paths: list[str]) -> list[list[str]]:
    """transform.lua's group_by_regex_or_length: regexes together, prefixes by length."""
    groups: dict[int, list[str]] = {}
    for path in paths:
        groups.setdefault(0 if path.startswith("~") else len(path), []).append(path)
    return list(groups.values())


def _compile(route: Row, service: Row | None) -> list[_Matcher]:
    paths = list(route.get("paths") or [])
    route_id = uuid.UUID(route["id"])
    groups = _path_groups(paths) if paths else [[]]
    if len(groups) == 1:
        return [_matcher(route, service, groups[0], route_id)]
    return [
        _matcher(route, service, group, uuid.uuid5(SPLIT_ROUTE_NAMESPACE, f"{route['id']}#{i}"))
        for i, group in enumerate(groups, start=1)
    ]


def _matcher(route: Row, service: Row | None, paths: list[str], key: uuid.UUID) -> _Matcher:
    methods = route.get("methods")
    regexes = tuple(_compile_path_regex(p) for p in paths if p.startswith("~"))
    prefixes = tuple(p for p in paths if not p.startswith("~"))
    return _Matcher(
        priority=route_priority(route, paths),
        key=key,
        route=route,
        service=service,
        methods=frozenset(methods) if methods else None,
        hosts=tuple(_host_rule(h) for h in route.get("hosts") or []),
        prefixes=prefixes,
        regexes=regexes,
        headers=tuple(_header_rule(n, v) for n, v in (route.get("headers") or {}).items()),
        sources=tuple(_net_rule(s) for s in route.get("sources") or []),
        destinations=tuple(_net_rule(d) for d in route.get("destinations") or []),
    )


def route_priority(route: Row, paths: Sequence[str]) -> int:
    """transform.lua's get_priority for an HTTP route (with this matcher's paths)."""
    hosts = route.get("hosts")
    headers = route.get("headers") or {}
    used = [
        route.get("sources"),
        route.get("destinations"),
        route.get("methods"),
        hosts,
        headers,
        route.get("snis"),
        paths,
    ]
    match_weight = sum(1 for value in used if value)
    plain_host_only = isinstance(hosts, list) and not any("*" in h for h in hosts)
    header_count = min(len(headers), MAX_HEADER_COUNT)
    regex_url = bool(paths) and paths[0].startswith("~")
    uri_length = 0 if regex_url or not paths else len(paths[0])
    regex_priority = int(route.get("regex_priority") or 0) if regex_url else 0
    return (
        (match_weight << MATCH_WEIGHT_SHIFT)
        | (PLAIN_HOST_ONLY_BIT if plain_host_only else 0)
        | (REGEX_URL_BIT if regex_url else 0)
        | (header_count << HEADER_COUNT_SHIFT)
        | (regex_priority << REGEX_PRIORITY_SHIFT)
        | (uri_length & MAX_LENGTH_MASK)
    )


def _compile_path_regex(path: str) -> re.Pattern[str]:
    # Kong anchors the regex at the start and rewrites named groups for Rust's syntax;
    # Python spells them (?P<name>...) as well.
    return re.compile("^" + _NAMED_GROUP.sub("(?P<", path[1:]))


def split_host_port(value: str) -> tuple[str, int | None]:
    """transform.lua's split_host_port: ``host:port`` with a numeric port, else the whole."""
    host, sep, port = value.partition(":")
    if sep and port.isdigit():
        return host, int(port)
    return value, None


def _host_rule(value: str) -> tuple[str, str, int | None]:
    host, port = split_host_port(value)
    if host.startswith("*"):
        return "suffix", host[1:], port
    if host.endswith("*"):
        return "prefix", host[:-1], port
    return "equal", host, port


def _host_matches(rule: tuple[str, str, int | None], facts: RequestFacts) -> bool:
    op, value, port = rule
    if facts.host is None or (port is not None and port != facts.port):
        return False
    if op == "suffix":
        return facts.host.endswith(value)
    if op == "prefix":
        return facts.host.startswith(value)
    return facts.host == value


def header_key(name: str) -> str:
    """How the router names a header field: lower-cased, dashes as underscores."""
    return name.lower().replace("-", "_")


def _header_rule(name: str, values: list[str]) -> _HeaderRule:
    exact = frozenset(v.lower() for v in values if not v.startswith("~*"))
    patterns = tuple(re.compile(v[2:].lower()) for v in values if v.startswith("~*"))
    return _HeaderRule(header_key(name), exact, patterns)


def _net_rule(value: Mapping[str, Any]) -> tuple[str | None, int | None]:
    return value.get("ip"), value.get("port")


def _net_matches(rules: Iterable[tuple[str | None, int | None]], ip: str, port: int) -> bool:
    for rule_ip, rule_port in rules:
        if rule_port is not None and rule_port != port:
            continue
        if rule_ip is not None and not _ip_in(ip, rule_ip):
            continue
        return True
    return False


def _ip_in(ip: str, network: str) -> bool:
    try:
        return ipaddress.ip_address(ip) in ipaddress.ip_network(network, strict=False)
    except ValueError:
        return False


# -- paths ------------------------------------------------------------------------------


def _decode_unreserved(found: re.Match[str]) -> str:
    char = chr(int(found.group(1), 16))
    return found.group(0).upper() if char in RESERVED else char


def normalize_path(path: str) -> str:
    """kong/tools/uri.lua's normalize(uri, merge_slashes=true), as the router sees paths.

    Percent-encoded characters are decoded unless reserved, dot segments are
    removed and runs of slashes merged.
    """
    if path in ("", "/"):
        return path
    if "%" in path:
        path = _PERCENT.sub(_decode_unreserved, path)
    if "." not in path and "//" not in path:
        return path
    output: list[str] = []
    rest = path
    while rest:
        if rest == "/.":
            rest = "/"
        elif rest == "/..":
            rest = "/"
            if output:
                output.pop()
        elif rest in (".", ".."):
            rest = ""
        elif rest.startswith("../"):
            rest = rest[3:]
        elif rest.startswith("./") or rest.startswith("/./"):
            rest = rest[2:]
        elif rest.startswith("/../"):
            rest = rest[3:]
            if output:
                output.pop()
        elif rest.startswith("//"):
            rest = rest[1:]
        else:
            cut = rest.find("/", 1)
            if cut == -1:
                output.append(rest)
                rest = ""
            else:
                output.append(rest[:cut])
                rest = rest[cut:]
    return "".join(output)


def escape_path(path: str) -> str:
    """kong/tools/uri.lua's escape: percent-encode what is unsafe in a request line."""
    return _UNSAFE.sub(lambda m: "".join(f"%{b:02X}" for b in m.group(0).encode()), path)


def sanitize_postfix(postfix: str) -> str:
    if postfix in (".", ".."):
        return ""
    if postfix.startswith("./"):
        return postfix[2:]
    if postfix.startswith("../"):
        return postfix[3:]
    return postfix


def upstream_uri(strip_path: bool, prefix: str | None, request_path: str, base: str) -> str:
    """utils.lua's get_upstream_uri_v0: the path Kong sends to the service.

    ``request_path`` is the normalised path, ``prefix`` what the route matched
    when ``strip_path`` is on, ``base`` the service's ``path`` (``/`` if unset).
    """
    postfix = sanitize_postfix(request_path[len(prefix or "/") :])
    if base.endswith("/"):
        if not strip_path:
            return base + request_path[1:]
        if postfix == "":
            if base == "/":
                return "/"
            return base if request_path.endswith("/") else base[:-1]
        if postfix.startswith("/"):
            return base[:-1] + postfix
        return base + postfix
    if strip_path:
        if postfix == "":
            return base + "/" if len(request_path) > 1 and request_path.endswith("/") else base
        if postfix.startswith("/"):
            return base + postfix
        return base + "/" + postfix
    if request_path == "/":
        return base
    return base + request_path
