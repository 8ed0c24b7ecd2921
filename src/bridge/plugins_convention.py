"""The convention's keys for plugins, upstream health checks and TLS certificates.

Tags (after the prefix):

- ``plugin.<plugin>.<config path>=<value>``: a plugin on the service; the path
  is dotted for nested records (``plugin.rate-limiting.redis.host=...``), the
  value typed by the plugin's schema; ``plugin.<plugin>.enabled=false``.
- ``route.<route>.plugin.<plugin>.<config path>=<value>``: the same on a route.
- ``upstream.healthchecks.<path>=<value>``: the upstream's ``healthchecks``.
- ``tls.certificate=kv:<key>``: a certificate kept in Consul KV.

Service Meta: ``<prefix>_plugins`` (a JSON list of Kong plugin objects) and
``<prefix>_tls_certificate``. Any plugin value may be ``kv:<key>``: it is read
from Consul KV when the desired state is built, and never logged.

:func:`classify` plugs into :mod:`bridge.convention`: it maps key parts to a
destination path and a parser, exactly like the core keys.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .convention import ExtraKeys, ValueProblem, parse_bool
from .plugin_schema import field_at, healthchecks_field, parse_typed, plugin_config_field

Parser = Callable[[str], Any]
Destination = tuple[tuple[str, ...], Parser]

KV_PREFIX = "kv:"
PLUGIN = "plugin"  # destination: ("plugin", route or "", plugin, *config path)
ENABLED = "@enabled"  # the plugin's own ``enabled`` flag, not a config field
HEALTHCHECKS = "healthchecks"  # destination: ("healthchecks", *path)
TLS = "tls"  # destination: ("tls", "certificate")
# destination: ("meta.plugins",); a dot, so that no tag (split on dots) can reach it
META_PLUGINS = "meta.plugins"
GROUPS = frozenset({PLUGIN, HEALTHCHECKS, TLS, META_PLUGINS})
META_KEYS = {"plugins": [META_PLUGINS], "tls_certificate": [TLS, "certificate"]}
META_PLUGIN_KEYS = frozenset({"name", "config", "enabled", "protocols", "route"})

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")
_KV_KEY = re.compile(r"^[A-Za-z0-9._/-]+$")


@dataclass(frozen=True)
class KvRef:
    """A value to read from Consul KV; its text is parsed like the tag it replaces."""

    key: str

    def __str__(self) -> str:  # what logs and errors may show: the key, never the value
        return f"{KV_PREFIX}{self.key}"


def parse_kv_ref(raw: str) -> KvRef:
    key = raw[len(KV_PREFIX) :].strip().strip("/")
    if not raw.startswith(KV_PREFIX) or not _KV_KEY.match(key) or "//" in key:
        raise ValueProblem("kv:<Consul KV key> (letters, digits, '.', '_', '-', '/')")
    return KvRef(key)


def freeze(value: Any) -> Any:
    """Lists as tuples, so that instances' settings can be compared and counted."""
    if isinstance(value, list | tuple):
        return tuple(freeze(item) for item in value)
    return value


def thaw(value: Any) -> Any:
    """Tuples back to lists, as Kong's JSON wants them."""
    if isinstance(value, tuple):
        return [thaw(item) for item in value]
    if isinstance(value, dict):
        return {key: thaw(item) for key, item in value.items()}
    return value


def typed_parser(field_parser: Parser) -> Parser:
    """A value parser that also accepts ``kv:<key>`` (resolved later, from Consul KV)."""

    def parse(raw: str) -> Any:
        if raw.startswith(KV_PREFIX):
            return parse_kv_ref(raw)
        return freeze(field_parser(raw))

    return parse


def config_parser(plugin: str, path: tuple[str, ...]) -> Parser | str:
    """The parser for one config path of a bundled plugin, or why there is none."""
    config = plugin_config_field(plugin)
    if config is None:
        return (
            "a plugin bundled with Kong (configure other plugins with Service Meta "
            "<prefix>_plugins)"
        )
    try:
        spec = field_at(config, path)
    except ValueProblem as problem:
        return f"{problem} in the config of {plugin}"
    return typed_parser(lambda raw: parse_typed(spec, raw))


def _plugin(scope: str, rest: list[str]) -> Destination | str:
    if len(rest) < 2 or not _NAME.match(rest[0]):
        return "plugin.<plugin>.<config path>=<value> or plugin.<plugin>.enabled=true|false"
    plugin, path = rest[0], tuple(rest[1:])
    if path == ("enabled",):
        return (PLUGIN, scope, plugin, ENABLED), parse_bool
    parser = config_parser(plugin, path)
    if isinstance(parser, str):
        return parser
    return (PLUGIN, scope, plugin, *path), parser


def _healthchecks(path: list[str]) -> Destination | str:
    try:
        spec = field_at(healthchecks_field(), tuple(path))
    except ValueProblem as problem:
        return f"{problem} in the upstream's healthchecks"
    return (HEALTHCHECKS, *path), typed_parser(lambda raw: parse_typed(spec, raw))


def classify(parts: list[str]) -> Destination | str | None:
    """Destination and parser for a plugin, health-check or TLS key; None: not one of ours."""
    head = parts[0]
    if head == PLUGIN:
        return _plugin("", parts[1:])
    if head == "route" and len(parts) >= 3 and parts[2] == PLUGIN:
        if not _NAME.match(parts[1]):
            return "a route name of letters, digits, '-' and '_'"
        return _plugin(parts[1], parts[3:])
    if head == "upstream" and len(parts) >= 3 and parts[1] == HEALTHCHECKS:
        return _healthchecks(parts[2:])
    if head == TLS:
        if parts[1:] != ["certificate"]:
            return "tls.certificate=kv:<key>"
        return (TLS, "certificate"), parse_kv_ref
    if parts == [META_PLUGINS]:
        return (META_PLUGINS,), parse_meta_plugins
    return None


def meta_parts(rest: str) -> list[str] | None:
    """Service Meta keys of this module (``plugins``, ``tls_certificate``), as key parts."""
    return META_KEYS.get(rest)


def parse_meta_plugins(raw: str) -> str:
    """Check ``<prefix>_plugins``; returns it as canonical JSON (comparable across instances)."""
    try:
        loaded = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ValueProblem(f"a JSON list of plugin objects ({exc.msg})") from None
    if not isinstance(loaded, list):
        raise ValueProblem('a JSON list of plugin objects, e.g. [{"name": "cors"}]')
    seen: set[tuple[str, str]] = set()
    for index, item in enumerate(loaded):
        where = f"item {index + 1}"
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise ValueProblem(f'plugin objects with a "name" ({where} has none)')
        unknown = sorted(set(item) - META_PLUGIN_KEYS)
        if unknown:
            raise ValueProblem(
                f"plugin objects with only {', '.join(sorted(META_PLUGIN_KEYS))} "
                f"({where} has {', '.join(unknown)})"
            )
        if not isinstance(item.get("config", {}), dict):
            raise ValueProblem(f'"config" as a JSON object ({where})')
        if not isinstance(item.get("enabled", True), bool):
            raise ValueProblem(f'"enabled" as true or false ({where})')
        route = item.get("route", "")
        if not isinstance(route, str) or (route and not _NAME.match(route)):
            raise ValueProblem(f'"route" as the name of one of the service\'s routes ({where})')
        if (route, item["name"]) in seen:
            raise ValueProblem(f"each plugin once per route ({item['name']} is repeated)")
        seen.add((route, item["name"]))
    return json.dumps(loaded, sort_keys=True)


EXTRA_KEYS = ExtraKeys(
    classify=classify,
    meta_parts=meta_parts,
    groups=GROUPS,
    described=(
        "plugin.<plugin>.<config path>, route.<name>.plugin.<plugin>.<config path>, "
        "upstream.healthchecks.<path>, tls.certificate"
    ),
)
