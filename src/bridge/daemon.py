"""Wiring for ``run``, ``sync --once``, ``plan`` and ``lint``: settings in, exit code out."""

from __future__ import annotations

import json
import logging
import queue
import signal
import sys
import threading
from collections.abc import Callable
from typing import Any, TextIO, cast

import consul

from .actual import read_clash
from .kong import KongClient, KongClientError
from .kv_watch import KvSeen, KvWatcher, read_kv
from .mapping import MappingOptions, map_service
from .metrics import Metrics
from .plan import Plan
from .reconcile import Bridge
from .settings import BridgeSettings
from .snapshot import ServiceSnapshot
from .status_server import StatusServer
from .watch import ConsulWatcher, Event, read_once

log = logging.getLogger("bridge")
CONSUL_CONNECT_TIMEOUT = 10.0


def consul_factory(settings: BridgeSettings) -> Callable[[], consul.Consul]:
    """A new py-consul client per thread (its requests session is not shared)."""
    options = settings.consul_options()
    # py-consul >= 1.8 adds wait + wait/16 to this for blocking calls.
    return lambda: consul.Consul(connections_timeout=CONSUL_CONNECT_TIMEOUT, **options)


def mapping_options(settings: BridgeSettings) -> MappingOptions:
    return MappingOptions(
        owner=settings.bridge_id,
        prefix=settings.tag_prefix,
        expose_by_default=settings.expose_by_default,
        mode=settings.mode,
        domain=settings.domain,
        datacenter=settings.consul_datacenter,
        include_warning=settings.include_warning,
    )


def build_bridge(settings: BridgeSettings) -> Bridge:
    metrics = Metrics()
    kong = KongClient(
        settings.kong_connection(),
        settings.kong_retry(),
        observer=lambda call, status: metrics.kong_request(call.method, status),
    )
    return Bridge(
        kong,
        mapping_options(settings),
        metrics,
        concurrency=settings.concurrency,
        max_delete_share=settings.max_delete_share,
    )


def _read_consul(settings: BridgeSettings, bridge: Bridge) -> None:
    catalog, services = read_once(
        consul_factory(settings)(),
        prefix=settings.tag_prefix,
        expose_by_default=settings.expose_by_default,
    )
    bridge.handle(catalog)
    for seen in services:
        bridge.handle(seen)
    bridge.kv.update(_read_kv_once(settings, list(bridge.snapshots.values())))


def _read_kv_once(
    settings: BridgeSettings, snapshots: list[ServiceSnapshot]
) -> dict[str, str | None]:
    """The KV keys the services' settings name (secrets, certificates), read once."""
    options = mapping_options(settings)
    keys = set().union(*(map_service(s, options).kv_keys for s in snapshots))
    return read_kv(consul_factory(settings)(), keys) if keys else {}


def run_daemon(settings: BridgeSettings, stop: threading.Event | None = None) -> int:
    """``kong-bridge run``: watch and sync until SIGTERM/SIGINT (which deletes nothing)."""
    stop = stop or threading.Event()
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: stop.set())
    bridge = build_bridge(settings)
    watcher = ConsulWatcher(
        consul_factory(settings),
        wait=settings.wait,
        prefix=settings.tag_prefix,
        expose_by_default=settings.expose_by_default,
        max_watches=settings.max_watches,
    )
    status = None
    if settings.listen:
        status = StatusServer(settings.listen, bridge.view, bridge.metrics)
        status.start()
        log.info(
            "status endpoint on http://%s:%d (/healthz /readyz /metrics)",
            status.server.server_address[0],
            status.port,
        )
    log.info(
        "bridge %s: Consul %s -> Kong %s",
        settings.bridge_id,
        settings.consul_http_addr,
        settings.kong_admin_url,
    )
    kv_watcher = KvWatcher(
        consul_factory(settings), watcher.events, watcher.stop_event, settings.wait
    )
    bridge.on_kv_keys = kv_watcher.assign
    watcher.start()
    try:
        bridge.run(
            cast("queue.Queue[Event | KvSeen]", watcher.events),  # the KV watcher's too
            stop,
            debounce=settings.debounce_seconds,
            resync=settings.resync_seconds,
            watch_count=lambda: watcher.catalog.watch_count + kv_watcher.count,
        )
    finally:
        watcher.stop()
        if status is not None:
            status.stop()
    log.info("stopped; nothing was deleted on the way out")
    return 0


def sync_once(settings: BridgeSettings, out: TextIO = sys.stdout) -> int:
    """``kong-bridge sync --once``: one read of Consul, one guarded apply."""
    bridge = build_bridge(settings)
    try:
        _read_consul(settings, bridge)
        bridge.refresh_kong()
        plan = bridge.sync(None)
    except (KongClientError, consul.ConsulException, OSError) as exc:
        print(f"kong-bridge: sync failed: {exc}", file=sys.stderr)
        return 1
    for operation in plan.operations:
        print(f"{operation.service}: {operation}", file=out)
    print(f"applied {len(plan.operations)} change(s)", file=out)
    _print_problems(bridge, out)
    return 1 if bridge.view.errors else 0


def plan_command(settings: BridgeSettings, as_json: bool = False, out: TextIO = sys.stdout) -> int:
    """``kong-bridge plan``: what sync would do. Exit 0: nothing; 2: changes pending."""
    bridge = build_bridge(settings)
    try:
        _read_consul(settings, bridge)
        bridge.refresh_kong()
        plan = bridge.plan(None)
        clashes = _clashes(bridge.kong, plan)
    except (KongClientError, consul.ConsulException, OSError) as exc:
        print(f"kong-bridge: plan failed: {exc}", file=sys.stderr)
        return 1
    if as_json:
        print(
            json.dumps(
                {
                    "changes": [
                        {
                            "service": op.service,
                            "kind": op.kind[:-1],
                            "action": op.action,
                            "name": op.name,
                            "fields": list(op.changes),
                            "method": op.call.method,
                            "path": op.call.path,
                            "clash": (op.kind, op.name) in clashes,
                        }
                        for op in plan.operations
                    ],
                    "errors": bridge.view.errors,
                    "held_back": bridge.view.held_back,
                },
                indent=2,
            ),
            file=out,
        )
    else:
        for service, ops in plan.by_service().items():
            print(f"{service}:", file=out)
            for op in ops:
                mark = {"create": "+", "update": "~", "delete": "-"}[op.action]
                clash = (
                    "  (CLASH: exists in Kong without our owner tag)"
                    if (op.kind, op.name) in clashes
                    else ""
                )
                print(f"  {mark} {op}{clash}", file=out)
        print(f"{len(plan.operations)} change(s) pending" if plan else "no changes", file=out)
        _print_problems(bridge, out)
    return 2 if plan else 0


def _clashes(kong: KongClient, plan: Plan) -> set[tuple[str, str]]:
    found = set()
    for op in plan.operations:
        creates_named = op.action == "create" and op.kind in ("services", "routes", "upstreams")
        if creates_named and kong.run(read_clash(op.kind, op.name)) is not None:
            found.add((op.kind, op.name))
    return found


def lint_command(settings: BridgeSettings, out: TextIO = sys.stdout) -> int:
    """``kong-bridge lint``: every problem in every opted-in service; exit 1 if any."""
    try:
        client = consul_factory(settings)()
        _catalog, services = read_once(
            client, prefix=settings.tag_prefix, expose_by_default=settings.expose_by_default
        )
        kv = _read_kv_once(settings, [seen.snapshot for seen in services])
    except (consul.ConsulException, OSError) as exc:
        print(f"kong-bridge: cannot read Consul: {exc}", file=sys.stderr)
        return 1
    options = mapping_options(settings)
    problems = 0
    for seen in services:
        mapping = map_service(seen.snapshot, options, kv)
        for error in mapping.problems:
            problems += 1
            print(f"error: {error}", file=out)
        for note in mapping.notes:
            print(f"warning: {seen.snapshot.name}: {note}", file=out)
    print(f"{len(services)} service(s) checked, {problems} problem(s)", file=out)
    return 1 if problems else 0


def _print_problems(bridge: Bridge, out: TextIO) -> None:
    for _service, problems in sorted(bridge.view.errors.items()):
        for problem in problems:
            print(f"skipped: {problem}", file=out)
    if bridge.view.held_back:
        print(bridge.view.held_back, file=out)


def settings_from(overrides: dict[str, Any]) -> BridgeSettings:
    return BridgeSettings(**{k: v for k, v in overrides.items() if v is not None})
