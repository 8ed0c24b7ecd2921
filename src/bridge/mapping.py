"""From a Consul service to the Kong entities it should have (DESIGN.md, "Mapping").

Instances may disagree during a rolling deploy. The rule: the settings shared by
most instances win; a tie goes to the settings of the newest instance (highest
``CreateIndex``), so a deploy takes over once it has half the instances.
Disagreements are reported, never fatal.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .convention import ConventionError, InstanceOptions, parse_instance
from .desired import (
    RouteSpec,
    ServiceSpec,
    ServiceState,
    TargetSpec,
    UpstreamSpec,
    format_target,
    owner_tag,
)
from .plugins_convention import EXTRA_KEYS
from .plugins_mapping import Extras, KvValues, kv_keys, map_extras, partial_scope
from .snapshot import Instance, ServiceSnapshot

SERVICE_TAG_PREFIX = "consul-service:"
NOTHING_KEPT: frozenset[tuple[str, str]] = frozenset()  # shared: most services keep none


@dataclass(frozen=True)
class MappingOptions:
    """The bridge settings that shape the mapping."""

    owner: str = "kong-bridge"
    prefix: str = "kong"
    expose_by_default: bool = False
    mode: str = "upstream"
    domain: str = "consul"
    datacenter: str | None = None
    include_warning: bool = False


@dataclass(slots=True)
class ServiceMapping:
    """The outcome for one service: its desired state, or why it has none."""

    name: str
    state: ServiceState | None = None  # None: not exposed (or skipped on errors)
    errors: list[ConventionError] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    # Problems confined to one plugin or the certificate: that one is left as it is.
    partial: list[ConventionError] = field(default_factory=list)
    kv_keys: frozenset[str] = frozenset()  # the Consul KV keys its settings read

    @property
    def skipped(self) -> bool:
        """Errors mean: leave whatever Kong has for this service untouched."""
        return bool(self.errors)

    @property
    def problems(self) -> list[ConventionError]:
        """Everything to report: the errors that skip it, and the partial ones."""
        return [*self.errors, *self.partial]


def service_tag(name: str) -> str:
    return f"{SERVICE_TAG_PREFIX}{name}"


def virtual_host(name: str, options: MappingOptions) -> str:
    dc = f".{options.datacenter}" if options.datacenter else ""
    return f"{name}.service{dc}.{options.domain}"


def choose_options(
    parsed: list[tuple[Instance, InstanceOptions]],
) -> tuple[InstanceOptions, list[str]]:
    """The deterministic rule for disagreeing instances (see the module docstring)."""
    counts = Counter(options.shared() for _instance, options in parsed)
    newest: dict[tuple[Any, ...], int] = {}
    for instance, options in parsed:
        key = options.shared()
        newest[key] = max(newest.get(key, -1), instance.create_index)
    winner = max(counts, key=lambda key: (counts[key], newest[key]))
    chosen = next(options for _i, options in parsed if options.shared() == winner)
    notes = []
    if len(counts) > 1:
        losers = sum(n for key, n in counts.items() if key != winner)
        notes.append(
            f"instances disagree on their settings: the {counts[winner]} that "
            f"agree win, {losers} differ"
        )
    return chosen, notes


def _routes(name: str, chosen: InstanceOptions, tags: tuple[str, ...]) -> tuple[RouteSpec, ...]:
    routes = []
    route_values = dict(chosen.routes)
    if not route_values:
        route_values = {"": {"paths": (f"/{name}",)}}  # exposed, but no route keys given
    for route_name, values in sorted(route_values.items()):
        values = dict(values)
        kong_name = name if route_name == "" else f"{name}-{route_name}"
        if not any(values.get(k) for k in ("paths", "hosts", "methods")):
            values.setdefault(
                "paths", (f"/{name}",) if route_name == "" else (f"/{name}/{route_name}",)
            )
        known = ("paths", "hosts", "methods", "protocols", "strip_path", "preserve_host")
        routes.append(
            RouteSpec(
                name=kong_name,
                tags=tags,
                **{k: values.get(k) for k in known},
                extra={k: v for k, v in values.items() if k not in known},
            )
        )
    return tuple(routes)


def _targets(
    instances: list[tuple[Instance, InstanceOptions]],
    options: MappingOptions,
    tags: tuple[str, ...],
    notes: list[str],
) -> tuple[TargetSpec, ...]:
    targets: dict[str, TargetSpec] = {}
    for instance, parsed in instances:
        if instance.status == "critical" or (
            instance.status == "warning" and not options.include_warning
        ):
            continue
        if not instance.address or not instance.port:
            notes.append(f"instance {instance.id} has no address or port; not a target")
            continue
        target = format_target(instance.address, instance.port)
        weight = (
            parsed.weight
            if parsed.weight is not None
            else (
                instance.weight_passing if instance.status == "passing" else instance.weight_warning
            )
        )
        if target in targets:
            notes.append(f"instances share the target {target}; kept one")
            continue
        targets[target] = TargetSpec(target=target, weight=weight, tags=tags)
    return tuple(targets[t] for t in sorted(targets))


def map_service(
    snapshot: ServiceSnapshot, options: MappingOptions, kv: KvValues | None = None
) -> ServiceMapping:
    """Parse every instance, pick the winning settings, and build the Kong entities.

    ``kv`` holds the Consul KV values read so far (secrets, certificates).
    """
    result = ServiceMapping(snapshot.name)
    parsed: list[tuple[Instance, InstanceOptions]] = []
    kept: set[tuple[str, str]] = set()
    for instance in snapshot.instances:
        opts, errors = parse_instance(
            snapshot.name, instance.tags, instance.meta, options.prefix, instance.id, EXTRA_KEYS
        )
        for error in errors:
            scope = partial_scope(error.key, options.prefix)
            (result.errors if scope is None else result.partial).append(error)
            if scope is not None:
                kept.add(scope)
        parsed.append((instance, opts))
    if result.errors or not parsed:
        return result
    chosen, notes = choose_options(parsed)
    result.notes.extend(notes)
    keys = kv_keys(chosen.extras)
    if keys:  # else the shared empty default: one per service is 10,000 empty sets
        result.kv_keys = frozenset(keys)
    enabled = chosen.enable if chosen.enable is not None else options.expose_by_default
    if not enabled:
        return result
    tags = (owner_tag(options.owner), service_tag(snapshot.name))
    mode = chosen.mode or options.mode
    service_fields = dict(chosen.service)
    port = service_fields.pop("port", None)
    protocol = service_fields.pop("protocol", None)
    path = service_fields.pop("path", None)
    host = virtual_host(snapshot.name, options)
    routes = _routes(snapshot.name, chosen, tags)
    extras = _extras(snapshot.name, chosen, routes, tags, options, kv or {}, kept, result)
    if mode == "dns" and port is None:  # Kong uses it only when the SRV lookup fails
        ports = Counter(i.port for i, _o in parsed if i.port)
        port = ports.most_common(1)[0][0] if ports else None
    service = ServiceSpec(
        name=snapshot.name,
        host=host,
        port=port,
        protocol=protocol,
        path=path,
        tags=tags,
        extra=service_fields,
    )
    common: dict[str, Any] = {
        "plugins": tuple(extras.plugins),
        "kept_plugins": frozenset(extras.kept) if extras.kept else NOTHING_KEPT,
        "certificate": extras.certificate,
        "keep_certificate": extras.keep_certificate or ("tls", "certificate") in kept,
    }
    if mode == "dns":
        result.state = ServiceState(service=service, routes=routes, **common)
        return result
    upstream_fields = dict(chosen.upstream)
    if extras.healthchecks is not None:
        upstream_fields["healthchecks"] = extras.healthchecks
    upstream = UpstreamSpec(
        name=host,
        slots=upstream_fields.pop("slots", None),
        algorithm=upstream_fields.pop("algorithm", None),
        tags=tags,
        extra=upstream_fields,
    )
    targets = _targets(parsed, options, tags, result.notes)
    result.state = ServiceState(
        service=service, routes=routes, upstream=upstream, targets=targets, **common
    )
    return result


def _extras(
    name: str,
    chosen: InstanceOptions,
    routes: tuple[RouteSpec, ...],
    tags: tuple[str, ...],
    options: MappingOptions,
    kv: Mapping[str, str | None],
    broken: set[tuple[str, str]],
    result: ServiceMapping,
) -> Extras:
    """Plugins, health checks and the certificate; their problems are partial."""
    short_names = {"": name, **{short: f"{name}-{short}" for short in chosen.routes if short}}
    hosts = [host for route in routes for host in (route.hosts or ())]
    extras = map_extras(name, chosen.extras, short_names, hosts, tags, options.prefix, kv, broken)
    result.partial.extend(extras.problems)
    result.notes.extend(extras.notes)
    return extras
