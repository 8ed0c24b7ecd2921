"""From the parsed plugin, health-check and TLS settings to desired Kong entities.

How tags and Service Meta combine for plugins: ``<prefix>_plugins`` gives whole
plugin objects; tags give single fields. For one plugin (same name, same
route) both are merged field by field, and Service Meta wins where both set
the same field, as everywhere in the convention.

Problems confined to one plugin (a bad value, a config Kong would reject, a
missing KV key) or to the certificate are *partial*: that plugin (or the
certificate) is left as Kong holds it and reported; the service's other
entities still sync.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache, partial
from typing import Any

from .convention import ConventionError, ValueProblem
from .desired import CertificateSpec, PluginSpec
from .operation import redact
from .plugin_schema import (
    deep_merge,
    defaults_tree,
    field_at,
    healthchecks_field,
    nest,
    parse_typed,
    plugin_config_field,
    validate_plugin,
)
from .plugins_convention import (
    ENABLED,
    HEALTHCHECKS,
    META_PLUGINS,
    PLUGIN,
    TLS,
    KvRef,
    thaw,
)

KvValues = Mapping[str, str | None]  # key -> value; None: no such key; absent: not read yet
EVERY_PLUGIN = ("*", "*")  # in ``kept``: Service Meta ``plugins`` is unreadable, keep them all
_PEM_BLOCK = re.compile(r"-----BEGIN ([A-Z ]+)-----.+?-----END \1-----", re.DOTALL)


class Pending(Exception):
    """A KV value that has not been read yet (the plugin waits, without an error)."""


@dataclass
class Extras:
    """What the extra keys of one service give, and what went wrong with them."""

    plugins: list[PluginSpec] = field(default_factory=list)
    kept: set[tuple[str, str]] = field(default_factory=set)
    problems: list[ConventionError] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    healthchecks: dict[str, Any] | None = None
    certificate: CertificateSpec | None = None
    keep_certificate: bool = False


def partial_scope(key: str, prefix: str) -> tuple[str, str] | None:
    """For a key whose problem concerns one plugin or the certificate: (route, plugin)."""
    if key == f"{prefix}_plugins":
        return EVERY_PLUGIN
    if key in (f"{prefix}.tls.certificate", f"{prefix}_tls_certificate"):
        return (TLS, "certificate")
    parts = key.split(".")[1:] if key.startswith(prefix + ".") else []
    if len(parts) >= 2 and parts[0] == PLUGIN:
        return ("", parts[1])
    if len(parts) >= 4 and parts[0] == "route" and parts[2] == PLUGIN:
        return (parts[1], parts[3])
    return None


def kv_keys(extras: tuple[tuple[tuple[str, ...], Any], ...]) -> set[str]:
    """The Consul KV keys these settings read (a certificate may be split into two keys)."""
    keys: set[str] = set()
    for path, value in extras:
        if isinstance(value, KvRef):
            keys.add(value.key)
            if path[0] == TLS:
                keys |= {f"{value.key}/cert", f"{value.key}/key"}
    return keys


def resolve(value: Any, kv: KvValues, parse: Callable[[str], Any]) -> Any:
    """A KV reference replaced by the value it names, parsed like a tag; others unchanged."""
    if not isinstance(value, KvRef):
        return thaw(value)
    if value.key not in kv:
        raise Pending(value.key)
    text = kv[value.key]
    if text is None:
        raise ValueProblem(f"an existing Consul KV key ({value.key} is missing)")
    try:
        return parse(text)
    except ValueProblem as problem:
        # The message names the key, never the value: it may be a secret.
        raise ValueProblem(f"{redact(str(problem), [text])} in Consul KV key {value.key}") from None


def map_extras(
    service: str,
    extras: tuple[tuple[tuple[str, ...], Any], ...],
    routes: Mapping[str, str],
    route_hosts: list[str],
    tags: tuple[str, ...],
    prefix: str,
    kv: KvValues,
    broken: set[tuple[str, str]],
) -> Extras:
    """Plugins (``routes``: short route name -> Kong route name), health checks, certificate.

    ``broken`` are the (route, plugin) pairs whose keys did not parse: left as they are.
    """
    out = Extras()
    for route, name in broken - {EVERY_PLUGIN}:
        out.kept.add((routes.get(route, route) if route else "", name))
    if EVERY_PLUGIN in broken:
        out.kept.add(EVERY_PLUGIN)
    plugin_values: dict[tuple[str, str], dict[tuple[str, ...], Any]] = {}
    enabled: dict[tuple[str, str], bool] = {}
    meta_text = None
    tls_ref: KvRef | None = None
    health: dict[tuple[str, ...], Any] = {}
    for path, value in extras:
        if path[0] == PLUGIN:
            scope = (path[1], path[2])
            plugin_values.setdefault(scope, {})
            if path[3] == ENABLED:
                enabled[scope] = bool(value)
            else:
                plugin_values[scope][path[3:]] = value
        elif path[0] == META_PLUGINS:
            meta_text = str(value)
        elif path[0] == TLS:
            tls_ref = value
        elif path[0] == HEALTHCHECKS:
            health[path[1:]] = value
    if health:
        out.healthchecks = _healthchecks(service, prefix, health, kv, out)
    meta = _meta_plugins(meta_text)
    for scope in sorted((set(plugin_values) | set(meta)) - broken):
        given = PluginGiven(plugin_values.get(scope, {}), enabled.get(scope), meta.get(scope))
        _plugin(service, prefix, scope, given, routes, tags, kv, out)
    if tls_ref is not None and (TLS, "certificate") not in broken:
        _certificate(service, prefix, tls_ref, route_hosts, tags, kv, out)
    return out


def _meta_plugins(text: str | None) -> dict[tuple[str, str], dict[str, Any]]:
    """``<prefix>_plugins`` by (route, name); parse_meta_plugins already checked its shape."""
    if text is None:
        return {}
    return {(str(item.get("route", "")), item["name"]): item for item in json.loads(text)}


def _healthchecks(
    service: str, prefix: str, values: dict[tuple[str, ...], Any], kv: KvValues, out: Extras
) -> dict[str, Any] | None:
    resolved: dict[tuple[str, ...], Any] = {}
    for path, value in values.items():
        spec = field_at(healthchecks_field(), path)
        key = f"{prefix}.upstream.healthchecks.{'.'.join(path)}"
        try:
            resolved[path] = resolve(value, kv, partial(parse_typed, spec))
        except Pending:
            out.notes.append(f"{key}: waiting for Consul KV")
            return None
        except ValueProblem as problem:
            out.problems.append(ConventionError(service, key, str(value), str(problem)))
            return None
    # The whole tree, Kong's defaults under ours: a removed key goes back to its default.
    return deep_merge(json.loads(_healthchecks_defaults()), nest(resolved))


@lru_cache(maxsize=1)
def _healthchecks_defaults() -> str:
    """Kong's default ``healthchecks`` tree, as JSON (each caller gets its own copy)."""
    return json.dumps(defaults_tree(healthchecks_field()))


def _kv_text(value: Any, kv: KvValues) -> str | None:
    return kv.get(value.key) if isinstance(value, KvRef) else None


@dataclass(frozen=True)
class PluginGiven:
    """What tags (config paths, ``enabled``) and Service Meta say about one plugin."""

    values: dict[tuple[str, ...], Any]
    enabled: bool | None
    meta: dict[str, Any] | None


def _plugin(
    service: str,
    prefix: str,
    scope: tuple[str, str],
    given: PluginGiven,
    routes: Mapping[str, str],
    tags: tuple[str, ...],
    kv: KvValues,
    out: Extras,
) -> None:
    route, name = scope
    key = f"{prefix}.plugin.{name}" if not route else f"{prefix}.route.{route}.plugin.{name}"
    if route not in routes:
        out.problems.append(
            ConventionError(service, key, "", f"a route of this service ({route} is not one)")
        )
        return
    kong_route = routes[route] if route else ""
    scope = (kong_route, name)
    config_field = plugin_config_field(name)
    resolved: dict[tuple[str, ...], Any] = {}
    for path, value in given.values.items():
        # Tags name only plugins whose schema is known (classify saw to it).
        assert config_field is not None
        try:
            resolved[path] = resolve(value, kv, partial(parse_typed, field_at(config_field, path)))
        except Pending:
            out.notes.append(f"{key}: waiting for Consul KV")
            out.kept.add(scope)
            return
        except ValueProblem as problem:
            full = f"{key}.{'.'.join(path)}"
            out.problems.append(ConventionError(service, full, str(value), str(problem)))
            out.kept.add(scope)
            return
    config = nest(resolved)
    enabled, meta = given.enabled, given.meta
    if meta is not None:
        config = deep_merge(config, meta.get("config") or {})
        enabled = meta.get("enabled", enabled)
    protocols = meta.get("protocols") if meta is not None else None
    secrets = [text for ref in given.values.values() if (text := _kv_text(ref, kv))]
    problems = validate_plugin(name, config, protocols)
    if problems:
        expected = redact("a config Kong accepts: " + "; ".join(problems), secrets)
        out.problems.append(ConventionError(service, key, "", expected))
        out.kept.add(scope)
        return
    out.plugins.append(
        PluginSpec(
            name=name,
            route=kong_route,
            config=config,
            enabled=enabled,
            protocols=tuple(protocols) if isinstance(protocols, list) else None,
            tags=tags,
            secrets=tuple(secrets),
        )
    )


def split_pem(text: str) -> tuple[str, str]:
    """(certificate chain, private key) from one PEM bundle; ValueProblem when either lacks."""
    certs, keys = [], []
    for match in _PEM_BLOCK.finditer(text):
        label = match.group(1)
        if label == "CERTIFICATE":
            certs.append(match.group(0))
        elif label.endswith("PRIVATE KEY"):
            keys.append(match.group(0))
    if not certs or len(keys) != 1:
        raise ValueProblem("PEM with a CERTIFICATE block and one PRIVATE KEY block")
    return "\n".join(certs) + "\n", keys[0] + "\n"


def certificate_pem(ref: KvRef, kv: KvValues) -> tuple[str, str]:
    """The pair from ``<key>`` (both PEM blocks) or from ``<key>/cert`` and ``<key>/key``."""
    whole = kv.get(ref.key)
    if whole is not None:
        return split_pem(whole)
    cert_key, key_key = f"{ref.key}/cert", f"{ref.key}/key"
    if any(k not in kv for k in (ref.key, cert_key, key_key)):
        raise Pending(ref.key)
    cert, key = kv.get(cert_key), kv.get(key_key)
    if cert is None or key is None:
        raise ValueProblem(
            f"Consul KV key {ref.key} holding cert and key, or {cert_key} and {key_key}"
        )
    return split_pem(cert + "\n" + key)


def _certificate(
    service: str,
    prefix: str,
    ref: KvRef,
    hosts: list[str],
    tags: tuple[str, ...],
    kv: KvValues,
    out: Extras,
) -> None:
    key = f"{prefix}.tls.certificate"
    snis = sorted({host.rsplit(":", 1)[0] for host in hosts})
    if not snis:
        out.problems.append(
            ConventionError(service, key, str(ref), f"route hosts for its SNIs ({prefix}.hosts)")
        )
        out.keep_certificate = True
        return
    try:
        cert, private = certificate_pem(ref, kv)
    except Pending:
        out.notes.append(f"{key}: waiting for Consul KV")
        out.keep_certificate = True
        return
    except ValueProblem as problem:
        out.problems.append(ConventionError(service, key, str(ref), str(problem)))
        out.keep_certificate = True
        return
    out.certificate = CertificateSpec(cert=cert, key=private, snis=tuple(snis), tags=tags)
