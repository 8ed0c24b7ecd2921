"""What one self-registering instance asks of Kong, in the shared desired-state types."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from ..desired import (
    RouteSpec,
    ServiceSpec,
    ServiceState,
    TargetSpec,
    UpstreamSpec,
    format_target,
    owner_tag,
)
from .address import detect_local_address
from .config import MicroserviceConfig

Mode = Literal["auto", "upstream", "dns"]
DEFAULT_OWNER = "kong-bridge-selfreg"


@dataclass(frozen=True)
class Registration:
    """The arguments of ``register()``, as the Microkubes doc names them, plus ours."""

    name: str
    port: int
    paths: tuple[str, ...] = ()
    host: str | None = None  # the service's DNS name, e.g. hello-service.service.consul
    hosts: tuple[str, ...] = ()
    virtual_host: str | None = None
    weight: int | None = None
    slots: int | None = None
    methods: tuple[str, ...] | None = None
    protocols: tuple[str, ...] | None = None
    strip_path: bool | None = None
    preserve_host: bool | None = None
    address: str | None = None
    mode: Mode = "auto"

    @classmethod
    def from_config(
        cls, service: MicroserviceConfig, mode: Mode = "auto", address: str | None = None
    ) -> Registration:
        return cls(
            name=service.name,
            port=service.port,
            paths=tuple(service.paths),
            host=service.virtual_host,
            hosts=tuple(service.hosts),
            virtual_host=service.virtual_host,
            weight=service.weight,
            slots=service.slots,
            methods=_opt_tuple(service.methods),
            protocols=_opt_tuple(service.protocols),
            strip_path=service.strip_path,
            preserve_host=service.preserve_host,
            address=address or service.address,
            mode=mode,
        )

    @property
    def dns_name(self) -> str:
        return self.virtual_host or self.host or f"{self.name}.service.consul"


def _opt_tuple(values: Sequence[str] | None) -> tuple[str, ...] | None:
    return None if values is None else tuple(values)


def resolve_address(registration: Registration, admin_url: str) -> str | None:
    """The instance address: given, else detected (unless DNS mode is asked for)."""
    if registration.mode == "dns":
        return None
    return registration.address or detect_local_address(admin_url)


def desired_state(
    registration: Registration, address: str | None, owner: str = DEFAULT_OWNER
) -> ServiceState:
    """The Kong entities for this instance: upstream + target, or DNS mode without an address.

    In upstream mode the service's port stays Kong's default, because Kong
    uses the target's port and instances may listen on different ports.
    """
    tags = (owner_tag(owner),)
    route = RouteSpec(
        name=registration.name,
        paths=registration.paths or None,
        hosts=registration.hosts or None,
        methods=registration.methods,
        protocols=registration.protocols,
        strip_path=registration.strip_path,
        preserve_host=registration.preserve_host,
        tags=tags,
    )
    if address is None:
        if registration.mode == "upstream":
            raise ValueError("upstream mode needs the instance address; none given or found")
        service = ServiceSpec(
            name=registration.name, host=registration.dns_name, port=registration.port, tags=tags
        )
        return ServiceState(service=service, routes=(route,))
    upstream = UpstreamSpec(name=registration.dns_name, slots=registration.slots, tags=tags)
    target = TargetSpec(
        target=format_target(address, registration.port), weight=registration.weight, tags=tags
    )
    service = ServiceSpec(name=registration.name, host=upstream.name, tags=tags)
    return ServiceState(service=service, routes=(route,), upstream=upstream, targets=(target,))
