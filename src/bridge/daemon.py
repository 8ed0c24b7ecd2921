"""Wiring for ``run``, ``sync --once``, ``plan`` and ``lint``: settings in, exit code out."""

from __future__ import annotations

import json
import logging
import signal
import sys
import threading
from collections.abc import Callable
from dataclasses import asdict
from typing import Any, TextIO

import consul

from .actual import read_clash
from .guard import DeletionGuard, GuardPolicy, HeldDeletion
from .kong import KongClient, KongClientError
from .mapping import MappingOptions, map_service
from .metrics import Metrics
from .plan import Plan
from .reconcile import Bridge
from .release import release_handler
from .secrets import protect_logs, redact_url
from .settings import BridgeSettings
from .status_server import StatusServer
from .watch import ConsulWatcher, read_once

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


def guard_policy(
    settings: BridgeSettings, *, daemon: bool = False, release: bool = False
) -> GuardPolicy:
    """One-shot runs read the whole catalog at once: removals need no time to settle."""
    return GuardPolicy(
        max_delete_share=settings.max_delete_share,
        window_seconds=settings.delete_window_seconds,
        settle_seconds=settings.delete_settle_seconds if daemon else 0.0,
        confirm_after_seconds=settings.confirm_deletes_after_seconds,
        operator_confirmed=release,
    )


def build_bridge(settings: BridgeSettings, policy: GuardPolicy | None = None) -> Bridge:
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
        guard=DeletionGuard(policy or guard_policy(settings)),
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


def run_daemon(settings: BridgeSettings, stop: threading.Event | None = None) -> int:
    """``kong-bridge run``: watch and sync until SIGTERM/SIGINT (which deletes nothing)."""
    protect_logs(settings.redactor())
    stop = stop or threading.Event()
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: stop.set())
    bridge = build_bridge(settings, guard_policy(settings, daemon=True))
    watcher = ConsulWatcher(
        consul_factory(settings),
        wait=settings.wait,
        prefix=settings.tag_prefix,
        expose_by_default=settings.expose_by_default,
        max_watches=settings.max_watches,
    )
    status = None
    if settings.listen:
        status = StatusServer(
            settings.listen, bridge.view, bridge.metrics, release_handler(bridge.guard)
        )
        status.start()
        log.info(
            "status endpoint on http://%s:%d (/healthz /readyz /metrics)",
            status.server.server_address[0],
            status.port,
        )
    log.info(
        "bridge %s: Consul %s -> Kong %s",
        settings.bridge_id,
        redact_url(settings.consul_http_addr),
        redact_url(settings.kong_admin_url),
    )
    watcher.start()
    try:
        bridge.run(
            watcher.events,
            stop,
            debounce=settings.debounce_seconds,
            resync=settings.resync_seconds,
            watch_count=lambda: watcher.catalog.watch_count,
        )
    finally:
        watcher.stop()
        if status is not None:
            status.stop()
    log.info("stopped; nothing was deleted on the way out")
    return 0


def sync_once(
    settings: BridgeSettings, out: TextIO = sys.stdout, release_deletes: bool = False
) -> int:
    """``kong-bridge sync --once``: one read of Consul, one guarded apply.

    ``release_deletes``: the operator confirms removals the guard would hold
    (deletions on a doubtful Consul read stay held).
    """
    protect_logs(settings.redactor())
    bridge = build_bridge(settings, guard_policy(settings, release=release_deletes))
    try:
        _read_consul(settings, bridge)
        bridge.refresh_kong()
        plan = bridge.sync(None)
    except (KongClientError, consul.ConsulException, OSError) as exc:
        print(f"kong-bridge: sync failed: {settings.redactor()(str(exc))}", file=sys.stderr)
        return 1
    for operation in plan.operations:
        print(f"{operation.service}: {operation}", file=out)
    print(f"applied {len(plan.operations)} change(s)", file=out)
    for held in bridge.view.held:
        print(f"held: {held}", file=out)
    _print_problems(bridge, out)
    if bridge.view.errors:
        return 1
    return 3 if bridge.view.held else 0


def plan_command(settings: BridgeSettings, as_json: bool = False, out: TextIO = sys.stdout) -> int:
    """``kong-bridge plan``: what sync would do. Exit 0: nothing; 2: changes pending."""
    protect_logs(settings.redactor())
    bridge = build_bridge(settings)
    try:
        _read_consul(settings, bridge)
        bridge.refresh_kong()
        plan = bridge.plan(None)
        clashes = _clashes(bridge.kong, plan)
    except (KongClientError, consul.ConsulException, OSError) as exc:
        print(f"kong-bridge: plan failed: {settings.redactor()(str(exc))}", file=sys.stderr)
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
                    "held": [asdict(held) for held in bridge.view.held],
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
        for held in bridge.view.held:
            print(f"  - {held}", file=out)
        print(_plan_summary(plan, bridge.view.held), file=out)
        _print_problems(bridge, out)
    return 2 if plan or bridge.view.held else 0


def _plan_summary(plan: Plan, held: tuple[HeldDeletion, ...]) -> str:
    if not plan and not held:
        return "no changes"
    summary = f"{len(plan.operations)} change(s) pending"
    if held:
        summary += (
            f", {len(held)} deletion(s) held (release: kong-bridge sync --once "
            "--release-deletes, or kong-bridge release-deletes for a running bridge)"
        )
    return summary


def _clashes(kong: KongClient, plan: Plan) -> set[tuple[str, str]]:
    found = set()
    for op in plan.operations:
        creates_named = op.action == "create" and op.kind != "targets"
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
    except (consul.ConsulException, OSError) as exc:
        print(f"kong-bridge: cannot read Consul: {settings.redactor()(str(exc))}", file=sys.stderr)
        return 1
    options = mapping_options(settings)
    problems = 0
    for seen in services:
        mapping = map_service(seen.snapshot, options)
        for error in mapping.errors:
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
