"""The opt-in convention: Consul tags and Service Meta parsed into Kong options.

Tags look like ``kong.paths=/a,/b``; Service Meta keys like ``kong_paths``
(``_`` for ``.``, since Consul meta keys allow no dots). The prefix ``kong`` is
configurable. Parsing never raises: every problem becomes a
:class:`ConventionError` naming the service, the key, the value and what was
expected, so ``lint`` can list them all.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

Parser = Callable[[str], Any]

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")
_HOST = re.compile(
    r"^(\*\.)?[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*"
    r"[A-Za-z0-9])?)*(\.\*)?(:\d{1,5})?$"
)
_METHOD = re.compile(r"^[A-Z]+$")
# C0 controls, DEL and C1 controls: never meaningful in a tag value, and a NUL
# or newline would reach Kong (or a log line) as something else than it looks.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


class ValueProblem(ValueError):
    """A value that does not fit; the message says what was expected."""


@dataclass(frozen=True)
class ExtraKeys:
    """Keys another module adds to the convention (plugins, health checks, TLS).

    ``classify`` maps key parts to a destination path and a parser (None: not
    its key); ``meta_parts`` does the same for a Service Meta key's rest;
    destinations starting with one of ``groups`` land in ``InstanceOptions.extras``.
    """

    classify: Callable[[list[str]], tuple[tuple[str, ...], Parser] | str | None]
    meta_parts: Callable[[str], list[str] | None]
    groups: frozenset[str]
    described: str


@dataclass(frozen=True)
class ConventionError:
    """One problem with one key of one service (``lint`` prints these)."""

    service: str
    key: str
    value: str
    expected: str
    instance: str = ""

    def __str__(self) -> str:
        where = f"{self.service}" + (f" (instance {self.instance})" if self.instance else "")
        return f"{where}: {self.key}={self.value!r}: expected {self.expected}"


# -- value parsers ------------------------------------------------------------------------


def parse_bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("true", "1", "yes", "on"):
        return True
    if lowered in ("false", "0", "no", "off"):
        return False
    raise ValueProblem("true or false")


def _int(low: int, high: int) -> Parser:
    def parse(text: str) -> int:
        try:
            value = int(text.strip())
        except ValueError:
            raise ValueProblem(f"an integer from {low} to {high}") from None
        if not low <= value <= high:
            raise ValueProblem(f"an integer from {low} to {high}")
        return value

    return parse


def _choice(*choices: str) -> Parser:
    def parse(text: str) -> str:
        value = text.strip()
        if value not in choices:
            raise ValueProblem("one of " + ", ".join(choices))
        return value

    return parse


def _list(item: Callable[[str], str], what: str) -> Parser:
    def parse(text: str) -> tuple[str, ...]:
        items = [part.strip() for part in text.split(",")]
        if not items or any(not part for part in items):
            raise ValueProblem(f"a comma-separated list of {what}")
        return tuple(item(part) for part in items)

    return parse


# The value checks below are shared with self-registration's config file (selfreg/config.py):
# both must refuse what Kong would refuse, before anything is written.


def route_path(text: str) -> str:
    """A Kong 3.x route path: ``/plain`` or ``~/regex``."""
    if text.startswith("~/"):
        try:
            re.compile(text[1:])
        except re.error as exc:
            raise ValueProblem(f"a valid regex after '~' ({exc})") from None
        return text
    if not text.startswith("/") or "//" in text or any(c.isspace() for c in text):
        raise ValueProblem("paths starting with '/' (or '~/' for a regex)")
    return text


def host_name(text: str) -> str:
    """A route host: a DNS name, ``*`` only as the first or last label, optional port."""
    if not _HOST.match(text):
        raise ValueProblem("host names (a '*' only as the first or last label)")
    return text


def http_method(text: str) -> str:
    """An upper-case HTTP method."""
    if not _METHOD.match(text):
        raise ValueProblem("upper-case HTTP methods such as GET,POST")
    return text


def route_protocol(text: str) -> str:
    """A protocol Kong routes accept."""
    return str(
        _choice("http", "https", "grpc", "grpcs", "tcp", "tls", "udp", "tls_passthrough")(text)
    )


def _service_path(text: str) -> str:
    if not text.startswith("/") or "//" in text:
        raise ValueProblem("a path starting with '/'")
    return text


def _text(text: str) -> str:
    if not text.strip():
        raise ValueProblem("a non-empty value")
    return text.strip()


TIMEOUT = _int(1, 2**31 - 2)
ROUTE_KEYS: dict[str, Parser] = {
    "paths": _list(route_path, "paths starting with '/' (or '~/' for a regex)"),
    "hosts": _list(host_name, "host names"),
    "methods": _list(http_method, "upper-case HTTP methods"),
    "protocols": _list(route_protocol, "protocols (http, https, grpc, grpcs, tcp, tls, udp)"),
    "strip_path": parse_bool,
    "preserve_host": parse_bool,
    "regex_priority": _int(-(2**31), 2**31 - 1),
    "https_redirect_status_code": lambda t: int(_choice("426", "301", "302", "307", "308")(t)),
    "request_buffering": parse_bool,
    "response_buffering": parse_bool,
}
SERVICE_KEYS: dict[str, Parser] = {
    "protocol": _choice("http", "https", "grpc", "grpcs", "tcp", "tls", "udp"),
    "path": _service_path,
    "port": _int(1, 65535),
    "retries": _int(0, 32767),
    "connect_timeout": TIMEOUT,
    "read_timeout": TIMEOUT,
    "write_timeout": TIMEOUT,
    "tls_verify": parse_bool,
    "enabled": parse_bool,
}
UPSTREAM_KEYS: dict[str, Parser] = {
    "slots": _int(10, 65536),
    "algorithm": _choice("round-robin", "consistent-hashing", "least-connections", "latency"),
    "hash_on": _choice(
        "none", "consumer", "ip", "header", "cookie", "path", "query_arg", "uri_capture"
    ),
    "hash_fallback": _choice(
        "none", "consumer", "ip", "header", "cookie", "path", "query_arg", "uri_capture"
    ),
    "hash_on_header": _text,
    "hash_fallback_header": _text,
    "hash_on_cookie": _text,
    "hash_on_cookie_path": _service_path,
    "hash_on_query_arg": _text,
    "host_header": _text,
    "use_srv_name": parse_bool,
}
TOP_KEYS: dict[str, Parser] = {
    "enable": parse_bool,
    "mode": _choice("upstream", "dns"),
    "weight": _int(0, 65535),
}


@dataclass(frozen=True)
class RouteOptions:
    """One route's settings; unset keys are Kong's defaults."""

    values: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class InstanceOptions:
    """What one instance's tags and meta say."""

    enable: bool | None = None
    mode: str | None = None
    weight: int | None = None
    service: Mapping[str, Any] = field(default_factory=dict)
    upstream: Mapping[str, Any] = field(default_factory=dict)
    routes: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # "" = default
    extras: tuple[tuple[tuple[str, ...], Any], ...] = ()  # (destination, value), sorted

    def shared(self) -> tuple[Any, ...]:
        """The service-level settings (all but the per-instance weight), comparable."""

        def frozen(values: Mapping[str, Any]) -> tuple[tuple[str, Any], ...]:
            return tuple(sorted(values.items()))

        return (
            self.enable,
            self.mode,
            frozen(self.service),
            frozen(self.upstream),
            tuple(sorted((name, frozen(v)) for name, v in self.routes.items())),
            self.extras,
        )


@dataclass
class _Collector:
    service: str
    instance: str
    errors: list[ConventionError] = field(default_factory=list)
    values: dict[tuple[str, ...], tuple[str, Any]] = field(default_factory=dict)
    raws: dict[tuple[str, ...], tuple[str, str]] = field(default_factory=dict)
    conflicted: set[tuple[str, ...]] = field(default_factory=set)

    def set(self, path: tuple[str, ...], source_key: str, parser: Parser, raw: str) -> None:
        if _CONTROL.search(raw):
            self.error(source_key, raw, "a value without control characters (NUL, newline...)")
            return
        try:
            value = parser(raw)
        except ValueProblem as problem:
            self.errors.append(
                ConventionError(self.service, source_key, raw, str(problem), self.instance)
            )
            return
        self.values[path] = (source_key, value)

    def set_once(self, path: tuple[str, ...], source_key: str, parser: Parser, raw: str) -> None:
        """Like :meth:`set`, for tags: the same key twice with different values is an error.

        Consul keeps every tag it is given, so ``kong.paths=/one`` and
        ``kong.paths=/two`` can both be there; picking one would be a guess.
        """
        earlier = self.raws.setdefault(path, (source_key, raw))
        if earlier[1] != raw or path in self.conflicted:
            self.conflicted.add(path)
            self.values.pop(path, None)
            self.error(
                source_key,
                raw,
                f"one value per key (also given as {earlier[0]}={earlier[1]!r})",
            )
            return
        self.set(path, source_key, parser, raw)

    def error(self, key: str, raw: str, expected: str) -> None:
        self.errors.append(ConventionError(self.service, key, raw, expected, self.instance))


def _route_name_ok(name: str) -> bool:
    return bool(_NAME.match(name))


def _classify(
    parts: list[str], extra: ExtraKeys | None = None
) -> tuple[tuple[str, ...], Parser] | str:
    """Map key parts (after the prefix) to a destination and parser, or an error text."""
    found = extra.classify(parts) if extra is not None else None
    if found is not None:
        return found
    head = parts[0]
    if len(parts) == 1 and head in TOP_KEYS:
        return (head,), TOP_KEYS[head]
    if len(parts) == 1 and head in ROUTE_KEYS:
        return ("route", "", head), ROUTE_KEYS[head]
    if head == "service" and len(parts) == 2 and parts[1] in SERVICE_KEYS:
        return ("service", parts[1]), SERVICE_KEYS[parts[1]]
    if head == "upstream" and len(parts) == 2 and parts[1] in UPSTREAM_KEYS:
        return ("upstream", parts[1]), UPSTREAM_KEYS[parts[1]]
    if head == "route" and len(parts) == 3 and parts[2] in ROUTE_KEYS:
        if not _route_name_ok(parts[1]):
            return "a route name of letters, digits, '-' and '_'"
        return ("route", parts[1], parts[2]), ROUTE_KEYS[parts[2]]
    return (
        "a known key: enable, mode, weight, "
        + ", ".join(ROUTE_KEYS)
        + ", route.<name>.<key>, service.<field>, upstream.<field>"
        + (f", {extra.described}" if extra is not None else "")
    )


def _meta_parts(rest: str, extra: ExtraKeys | None = None) -> list[str] | None:
    """``route_api_strip_path`` -> ``["route", "api", "strip_path"]``: known keys decide."""
    found = extra.meta_parts(rest) if extra is not None else None
    if found is not None:
        return found
    for key in (*TOP_KEYS, *ROUTE_KEYS):
        if rest == key:
            return [key]
    for group, keys in (("service", SERVICE_KEYS), ("upstream", UPSTREAM_KEYS)):
        if rest.startswith(group + "_") and rest[len(group) + 1 :] in keys:
            return [group, rest[len(group) + 1 :]]
    if rest.startswith("route_"):
        tail = rest[len("route_") :]
        for key in sorted(ROUTE_KEYS, key=len, reverse=True):
            if tail.endswith("_" + key) and len(tail) > len(key) + 1:
                return ["route", tail[: -len(key) - 1], key]
    return None


def parse_instance(
    service: str,
    tags: Iterable[str],
    meta: Mapping[str, str],
    prefix: str = "kong",
    instance: str = "",
    extra: ExtraKeys | None = None,
) -> tuple[InstanceOptions, list[ConventionError]]:
    """Parse one instance's tags and meta. Meta wins over a tag giving the same key."""
    collector = _Collector(service, instance)
    tag_prefix = prefix + "."
    for tag in tags:
        if not tag.startswith(tag_prefix):
            continue
        key, sep, raw = tag.partition("=")
        if not sep:
            collector.error(key, "", "key=value")
            continue
        destination = _classify(key[len(tag_prefix) :].split("."), extra)
        if isinstance(destination, str):
            collector.error(key, raw, destination)
            continue
        collector.set_once(destination[0], key, destination[1], raw)
    meta_prefix = prefix + "_"
    for key, raw in sorted(meta.items()):
        if not key.startswith(meta_prefix):
            continue
        parts = _meta_parts(key[len(meta_prefix) :], extra)
        destination = _classify(parts, extra) if parts else _classify(["?"], extra)
        if isinstance(destination, str):
            collector.error(key, raw, destination)
            continue
        collector.set(destination[0], key, destination[1], raw)
    groups = extra.groups if extra is not None else frozenset()
    return _options(collector.values, groups), collector.errors


def _options(
    values: Mapping[tuple[str, ...], tuple[str, Any]], extra_groups: frozenset[str] = frozenset()
) -> InstanceOptions:
    top: dict[str, Any] = {}
    service: dict[str, Any] = {}
    upstream: dict[str, Any] = {}
    routes: dict[str, dict[str, Any]] = {}
    extras: list[tuple[tuple[str, ...], Any]] = []
    for path, (_key, value) in values.items():
        if path[0] in extra_groups:
            extras.append((path, value))
        elif path[0] == "service":
            service[path[1]] = value
        elif path[0] == "upstream":
            upstream[path[1]] = value
        elif path[0] == "route":
            routes.setdefault(path[1], {})[path[2]] = value
        else:
            top[path[0]] = value
    return InstanceOptions(
        enable=top.get("enable"),
        mode=top.get("mode"),
        weight=top.get("weight"),
        service=service,
        upstream=upstream,
        routes=routes,
        extras=tuple(sorted(extras, key=lambda item: item[0])),
    )
