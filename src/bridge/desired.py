"""Desired state: the Kong entities one service should have, as plain data.

The bridge builds these from Consul; self-registration builds them from its
arguments or config file. Both hand them to code that compares them with what
Kong holds. Each spec renders only the fields we manage (``body()``), so Kong's
defaults for the rest never make us write.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

OWNER_TAG_PREFIX = "managed-by:"
# Kong set-typed fields: order carries no meaning, so compare them as sets.
SET_FIELDS = frozenset({"tags", "methods", "protocols", "snis"})


def owner_tag(owner: str) -> str:
    """The tag that marks an entity as ours (``managed-by:<owner>``)."""
    return f"{OWNER_TAG_PREFIX}{owner}"


def format_target(address: str, port: int) -> str:
    """A Kong target, ``host:port``, with IPv6 addresses bracketed."""
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


def _render(values: Mapping[str, Any]) -> dict[str, Any]:
    body: dict[str, Any] = {}
    for key, value in values.items():
        if value is None:
            continue
        body[key] = list(value) if isinstance(value, tuple) else value
    return body


@dataclass(frozen=True, slots=True)
class UpstreamSpec:
    """A Kong upstream; ``name`` is the virtual host (``<service>.service.consul``)."""

    name: str
    slots: int | None = None
    algorithm: str | None = None
    tags: tuple[str, ...] = ()
    extra: Mapping[str, Any] = field(default_factory=dict)

    def body(self) -> dict[str, Any]:
        return _render(
            {
                "name": self.name,
                "slots": self.slots,
                "algorithm": self.algorithm,
                **self.extra,
                "tags": self.tags,
            }
        )


@dataclass(frozen=True, slots=True)
class TargetSpec:
    """One instance: ``host:port`` and a weight."""

    target: str
    weight: int | None = None
    tags: tuple[str, ...] = ()

    def body(self) -> dict[str, Any]:
        return _render({"target": self.target, "weight": self.weight, "tags": self.tags})


@dataclass(frozen=True, slots=True)
class RouteSpec:
    """A route of a service; ``None`` fields are left to Kong's defaults."""

    name: str
    paths: tuple[str, ...] | None = None
    hosts: tuple[str, ...] | None = None
    methods: tuple[str, ...] | None = None
    protocols: tuple[str, ...] | None = None
    strip_path: bool | None = None
    preserve_host: bool | None = None
    tags: tuple[str, ...] = ()
    extra: Mapping[str, Any] = field(default_factory=dict)

    def body(self) -> dict[str, Any]:
        return _render(
            {
                "name": self.name,
                "paths": self.paths,
                "hosts": self.hosts,
                "methods": self.methods,
                "protocols": self.protocols,
                "strip_path": self.strip_path,
                "preserve_host": self.preserve_host,
                **self.extra,
                "tags": self.tags,
            }
        )


@dataclass(frozen=True, slots=True)
class ServiceSpec:
    """A Kong service; ``host`` is the upstream name (or a DNS name in DNS mode)."""

    name: str
    host: str
    port: int | None = None
    protocol: str | None = None
    path: str | None = None
    tags: tuple[str, ...] = ()
    extra: Mapping[str, Any] = field(default_factory=dict)

    def body(self) -> dict[str, Any]:
        return _render(
            {
                "name": self.name,
                "host": self.host,
                "port": self.port,
                "protocol": self.protocol,
                "path": self.path,
                **self.extra,
                "tags": self.tags,
            }
        )


@dataclass(frozen=True, slots=True)
class PluginSpec:
    """A plugin on the service (``route`` empty) or on one of its routes (Kong route name).

    ``config`` holds only the fields the convention sets; ``schema_known`` says
    whether the plugin's schema typed and checked them (a bundled plugin).
    """

    name: str
    route: str = ""
    config: Mapping[str, Any] = field(default_factory=dict)
    enabled: bool | None = None
    protocols: tuple[str, ...] | None = None
    tags: tuple[str, ...] = ()
    secrets: tuple[str, ...] = ()  # the config's values read from Consul KV (never reported)

    @property
    def key(self) -> tuple[str, str]:
        """What identifies it among a service's plugins: (route, plugin name)."""
        return (self.route, self.name)

    def body(self) -> dict[str, Any]:
        return _render(
            {
                "name": self.name,
                "config": dict(self.config),
                "enabled": self.enabled,
                "protocols": self.protocols,
                "tags": self.tags,
            }
        )

    def __repr__(self) -> str:  # configs may hold secrets read from Consul KV
        return f"PluginSpec(name={self.name!r}, route={self.route!r}, config=<{len(self.config)}>)"


@dataclass(frozen=True, slots=True)
class CertificateSpec:
    """A TLS certificate with the SNIs of the service's route hosts (PEM text)."""

    cert: str
    key: str
    snis: tuple[str, ...]
    tags: tuple[str, ...] = ()

    def body(self) -> dict[str, Any]:
        return _render({"cert": self.cert, "key": self.key, "snis": self.snis, "tags": self.tags})

    def __repr__(self) -> str:  # the private key never reaches a log line
        return f"CertificateSpec(snis={self.snis!r}, key=<redacted>)"


@dataclass(frozen=True, slots=True)
class ServiceState:
    """Everything Kong should hold for one service.

    ``kept_plugins`` are plugins whose settings were wrong or not yet readable:
    whatever Kong holds for them stays as it is (neither updated nor deleted);
    ``("*", "*")`` keeps them all.
    """

    service: ServiceSpec
    routes: tuple[RouteSpec, ...] = ()
    upstream: UpstreamSpec | None = None  # None in DNS mode
    targets: tuple[TargetSpec, ...] = ()
    plugins: tuple[PluginSpec, ...] = ()
    kept_plugins: frozenset[tuple[str, str]] = frozenset()
    certificate: CertificateSpec | None = None
    keep_certificate: bool = False  # named, but not readable: leave Kong's as it is


def same_value(key: str, want: Any, have: Any) -> bool:
    """Whether Kong's value ``have`` already satisfies ``want`` (defaults filled in)."""
    if isinstance(want, dict) and isinstance(have, dict):
        return not changed_fields(want, have)
    if key in SET_FIELDS and isinstance(want, list) and isinstance(have, list):
        return set(want) == set(have)
    if want == [] and have is None:
        return True  # Kong renders an empty set as null
    return bool(want == have)


def changed_fields(desired: Mapping[str, Any], actual: Mapping[str, Any]) -> dict[str, Any]:
    """The fields of ``desired`` that Kong's ``actual`` entity does not already have."""
    return {
        key: want for key, want in desired.items() if not same_value(key, want, actual.get(key))
    }
