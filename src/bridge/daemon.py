"""Wiring for ``run``, ``sync --once``, ``plan`` and ``lint``: settings in, exit code out."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import queue
import signal
import sys
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TextIO

from .actual import read_clash
from .consul_http import ConsulReader, ConsulReadError, wait_seconds
from .guard import DeletionGuard, GuardPolicy
from .kong import AsyncKongClient, KongClientError
from .kv_watch import KvWatcher, read_kv
from .leader import ConsulEndpoint, LeaderElection, LockOptions
from .mapping import MappingOptions, map_service
from .metrics import Metrics
from .plan import Plan
from .process_tuning import FreedMemory, freeze_long_lived, tune_own_process
from .reconcile import Bridge
from .release import release_handler
from .report import (
    EXIT_CANNOT_RUN,
    EXIT_OK,
    EXIT_PARTIAL,
    Findings,
    findings,
    lint_exit_code,
    plan_document,
    plan_exit_code,
    render_lint,
    render_plan,
    render_sync,
)
from .secrets import protect_logs
from .settings import BridgeSettings, without_credentials
from .snapshot import ServiceSnapshot
from .status_page import StatusPage
from .status_server import StatusServer
from .usage import UsageError
from .watch import FETCH_WORKERS, ConsulWatcher, read_all

if TYPE_CHECKING:
    import consul

log = logging.getLogger("bridge")
CONSUL_CONNECT_TIMEOUT = 10.0
STOP_POLL_SECONDS = 0.1
# SIGTERM: the loop gets this long to finish the write in flight, then the lock is
# released; the whole shutdown stays under 2 s (Docker's grace period is 10 s).
SHUTDOWN_GRACE = 0.8


def consul_factory(settings: BridgeSettings) -> Callable[[], consul.Consul]:
    """A new py-consul client per thread (its requests session is not shared).

    py-consul (and requests under it) is imported on first use: the daemon needs
    it only for KV reads, and held for nothing it costs 5 MB of memory.
    """
    options = settings.consul_options()

    def new_client() -> consul.Consul:
        import consul

        # py-consul >= 1.8 adds wait + wait/16 to this for blocking calls.
        return consul.Consul(connections_timeout=CONSUL_CONNECT_TIMEOUT, **options)

    return new_client


def read_failures() -> tuple[type[Exception], ...]:
    """What a one-shot read of Kong, Consul and Consul's KV may raise."""
    import consul

    return (KongClientError, ConsulReadError, consul.ConsulException, OSError)


def consul_reader(settings: BridgeSettings) -> ConsulReader:
    """The pooled Consul reader: two watches, the readers, and a little headroom."""
    return ConsulReader(**settings.consul_options(), max_connections=FETCH_WORKERS + 4)


def mapping_options(settings: BridgeSettings) -> MappingOptions:
    return MappingOptions(
        owner=settings.bridge_id,
        prefix=settings.tag_prefix,
        expose_by_default=settings.expose_by_default,
        mode=settings.mode,
        domain=settings.domain,
        datacenter=settings.upstream_datacenter,
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


def build_bridge(
    settings: BridgeSettings,
    may_write: Callable[[], bool] = lambda: True,
    policy: GuardPolicy | None = None,
) -> Bridge:
    """The loop and its Kong client; stopping cancels its tasks, which cuts Kong retries."""
    metrics = Metrics(may_write=may_write)
    kong = AsyncKongClient(
        settings.kong_connection(),
        settings.kong_retry(),
        observer=lambda call, status: metrics.kong_request(call.method, status, call.path),
        max_connections=settings.concurrency,
    )
    return Bridge(
        kong,
        mapping_options(settings),
        metrics,
        concurrency=settings.concurrency,
        guard=DeletionGuard(policy or guard_policy(settings)),
        may_write=may_write,
    )


def consul_endpoint(settings: BridgeSettings) -> ConsulEndpoint:
    options = settings.consul_options()
    return ConsulEndpoint(
        base_url=f"{options['scheme']}://{options['host']}:{options['port']}",
        token=options["token"],
        verify=options["verify"],
        cert=options["cert"],
        datacenter=options["dc"],
    )


def lock_options(settings: BridgeSettings) -> LockOptions:
    return LockOptions(
        key=settings.lock_key,
        instance=settings.instance,
        ttl_seconds=settings.ha_ttl_seconds,
        lock_delay_seconds=settings.ha_lock_delay_seconds,
        check_ttl_seconds=settings.ha_check_ttl_seconds,
        service_tags=(f"{settings.tag_prefix}.enable=false",),  # never exposed in Kong
    )


async def _read_consul(settings: BridgeSettings, bridge: Bridge) -> None:
    catalog, services = await _read_all(settings)
    bridge.handle(catalog)
    for seen in services:
        bridge.handle(seen)
    snapshots = list(bridge.snapshots.values())
    bridge.kv.update(await asyncio.to_thread(_read_kv_once, settings, snapshots))


async def _read_all(settings: BridgeSettings) -> Any:
    reader = consul_reader(settings)
    try:
        return await read_all(
            reader, prefix=settings.tag_prefix, expose_by_default=settings.expose_by_default
        )
    finally:
        await reader.aclose()


def _read_kv_once(
    settings: BridgeSettings, snapshots: list[ServiceSnapshot]
) -> dict[str, str | None]:
    """The KV keys the services' settings name (secrets, certificates), read once."""
    options = mapping_options(settings)
    keys = set().union(*(map_service(s, options).kv_keys for s in snapshots))
    return read_kv(consul_factory(settings)(), keys) if keys else {}


def run_daemon(settings: BridgeSettings, stop: threading.Event | None = None) -> int:
    """``kong-bridge run``: watch and sync until SIGTERM/SIGINT (which deletes nothing).

    The loop runs in its own thread so that a stop is honoured within
    :data:`SHUTDOWN_GRACE` whatever Kong and Consul are doing: retries are cut,
    no new write starts, a write in flight may finish or be abandoned, and a
    leader releases its lock so that a standby takes over at once.
    """
    protect_logs(settings.redactor())
    stop = stop or threading.Event()
    own_process = threading.current_thread() is threading.main_thread()
    if own_process:
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: stop.set())
        tune_own_process()

    def on_leadership(leading: bool) -> None:
        bridge.metrics.leadership_changed()
        if leading:
            bridge.leadership_gained()

    election = None
    if settings.ha:
        election = LeaderElection(
            consul_endpoint(settings),
            lock_options(settings),
            stop,
            on_change=on_leadership,
            on_consul=lambda ok, problem: bridge.metrics.consul_reached(ok, problem),
        )
    bridge = build_bridge(
        settings,
        election.may_write if election else lambda: True,
        guard_policy(settings, daemon=True),
    )
    status = None
    if settings.listen:
        role = (lambda: election.role) if election else (lambda: "single")
        try:
            page = StatusPage(
                bridge,
                bridge.metrics.render,
                settings.consul_http_addr,
                settings.kong_admin_url,
                role,
            )
            status = StatusServer(
                settings.listen,
                bridge.view,
                bridge.metrics,
                role,
                page,
                release=release_handler(bridge.guard),
            )
        except OSError as exc:
            raise UsageError(
                f"cannot listen on {settings.listen}: {exc.strerror or exc}; "
                "stop what uses that port or choose another --listen"
            ) from None
        status.start()
        host = str(status.server.server_address[0])
        log.info(
            "status page and endpoints listening",
            extra={"url": f"http://{host}:{status.port}/"},
        )
    log.info(
        "bridge started",
        extra={
            "bridge_id": settings.bridge_id,
            "consul": without_credentials(settings.consul_http_addr),
            "kong": without_credentials(settings.kong_admin_url),
            **({"instance": settings.instance, "lock": settings.lock_key} if election else {}),
        },
    )
    failed = threading.Event()
    kv_stop = threading.Event()
    kv_events = ForwardToLoop()
    kv_watcher = KvWatcher(consul_factory(settings), kv_events, kv_stop, settings.wait)
    bridge.on_kv_keys = kv_watcher.assign

    abandoned = threading.Event()

    def loop() -> None:
        try:
            done = serve(settings, bridge, stop, kv_watcher, kv_events, own_process=own_process)
            if asyncio.run(done):
                abandoned.set()
        except Exception:
            failed.set()
            log.exception(
                "the reconcile loop crashed", extra={"action": "run", "outcome": "crashed"}
            )
        finally:
            stop.set()

    worker = threading.Thread(target=loop, name="reconcile", daemon=True)
    if election is not None:
        election.start()
    worker.start()
    while not stop.wait(0.2):  # a short wait: signal handlers run in this thread
        pass
    began = time.monotonic()
    worker.join(SHUTDOWN_GRACE)
    if election is not None:
        election.release()
    kv_stop.set()
    if status is not None:
        status.stop()
    cut = worker.is_alive() or abandoned.is_set()
    abandoned_text = " (a Kong request in flight was abandoned)" if cut else ""
    log.info(
        f"stopped{abandoned_text}; nothing was deleted on the way out",
        extra={"outcome": "stopped", "seconds": round(time.monotonic() - began, 2)},
    )
    return 1 if failed.is_set() else 0


class ForwardToLoop(queue.Queue[Any]):
    """A queue the KV watcher's threads put into, delivering into the loop's asyncio queue."""

    def __init__(self) -> None:
        super().__init__()
        self.target: tuple[asyncio.AbstractEventLoop, asyncio.Queue[Any]] | None = None

    def put(self, item: Any, block: bool = True, timeout: float | None = None) -> None:
        if self.target is not None:
            loop, events = self.target
            with contextlib.suppress(RuntimeError):  # the loop has closed: we are stopping
                loop.call_soon_threadsafe(events.put_nowait, item)


async def serve(
    settings: BridgeSettings,
    bridge: Bridge,
    stop: threading.Event,
    kv_watcher: KvWatcher | None = None,
    kv_events: ForwardToLoop | None = None,
    own_process: bool = False,
) -> bool:
    """The watcher and the loop until ``stop``; stopping cancels every request in flight.

    ``own_process``: the process is ours, so the cycle collector may be tuned for
    it (:func:`freeze_long_lived` after the first sync), and freed memory handed
    back to the kernel (:class:`FreedMemory`). Returns whether a Kong
    request was in flight (and abandoned) when it stopped.
    """
    reader = consul_reader(settings)
    watcher = ConsulWatcher(
        reader,
        wait=wait_seconds(settings.wait),
        prefix=settings.tag_prefix,
        expose_by_default=settings.expose_by_default,
        after_answer=FreedMemory().after_answer if own_process else None,
    )
    if kv_events is not None:
        kv_events.target = (asyncio.get_running_loop(), watcher.events)
    bridge.changes_arriving = lambda: watcher.following_up  # a resync's reads give way
    stopped = asyncio.Event()
    tasks = [
        asyncio.create_task(watcher.run(), name="watch"),
        asyncio.create_task(
            bridge.run(
                watcher.events,  # the KV watcher's events arrive there too
                stopped,
                debounce=settings.debounce_seconds,
                resync=settings.resync_seconds,
                watch_count=lambda: watcher.open_queries + (kv_watcher.count if kv_watcher else 0),
            ),
            name="reconcile",
        ),
    ]
    try:
        frozen = not own_process
        while not stop.is_set() and not any(task.done() for task in tasks):
            await asyncio.sleep(STOP_POLL_SECONDS)
            if bridge.view.ready and not frozen:
                freeze_long_lived()
                frozen = True
        abandoned = bridge.kong.in_flight > 0
        stopped.set()
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        return abandoned
    finally:
        if kv_events is not None:
            kv_events.target = None
        await reader.aclose()
        await bridge.kong.aclose()


def _findings(bridge: Bridge) -> Findings:
    return findings(
        bridge.mappings,
        bridge.snapshots,
        bridge.view.held_back,
        errors=bridge.view.errors,
        held=bridge.view.held,
    )


def sync_once(
    settings: BridgeSettings, out: TextIO = sys.stdout, release_deletes: bool = False
) -> int:
    """``kong-bridge sync --once``: one read of Consul, one guarded apply (exit codes: report).

    ``release_deletes``: the operator confirms removals the guard would hold
    (deletions on a doubtful Consul read stay held).
    """
    protect_logs(settings.redactor())
    bridge = build_bridge(settings, policy=guard_policy(settings, release=release_deletes))

    async def once() -> Plan:
        try:
            await _read_consul(settings, bridge)
            await bridge.refresh_kong()
            return await bridge.sync(None)
        finally:
            await bridge.kong.aclose()

    try:
        plan = asyncio.run(once())
    except read_failures() as exc:
        print(f"kong-bridge: sync failed: {settings.redactor()(str(exc))}", file=sys.stderr)
        return EXIT_CANNOT_RUN
    found = _findings(bridge)
    out.write(render_sync(plan, found))
    return EXIT_PARTIAL if found.partial else EXIT_OK


def plan_command(settings: BridgeSettings, as_json: bool = False, out: TextIO = sys.stdout) -> int:
    """``kong-bridge plan``: what sync would do, field by field (exit codes: report)."""
    protect_logs(settings.redactor())
    bridge = build_bridge(settings)

    async def dry_run() -> Any:
        try:
            await _read_consul(settings, bridge)
            state = await bridge.refresh_kong()
            plan = bridge.plan(None)
            return state, plan, await _clashes(bridge.kong, plan)
        finally:
            await bridge.kong.aclose()

    try:
        state, plan, clashes = asyncio.run(dry_run())
    except read_failures() as exc:
        print(f"kong-bridge: plan failed: {settings.redactor()(str(exc))}", file=sys.stderr)
        return EXIT_CANNOT_RUN
    found = _findings(bridge)
    if as_json:
        print(json.dumps(plan_document(plan, state, found, clashes), indent=2), file=out)
    else:
        out.write(render_plan(plan, state, found, clashes))
    return plan_exit_code(plan, found)


async def _clashes(kong: AsyncKongClient, plan: Plan) -> set[tuple[str, str]]:
    found = set()
    for op in plan.operations:
        creates_named = op.action == "create" and op.kind in ("services", "routes", "upstreams")
        if creates_named and await kong.run(read_clash(op.kind, op.name)) is not None:
            found.add((op.kind, op.name))
    return found


def lint_command(settings: BridgeSettings, out: TextIO = sys.stdout) -> int:
    """``kong-bridge lint``: every problem in every opted-in service (exit 2 if any)."""
    try:
        _catalog, services = asyncio.run(_read_all(settings))
        kv = _read_kv_once(settings, [seen.snapshot for seen in services])
    except read_failures() as exc:
        print(f"kong-bridge: cannot read Consul: {settings.redactor()(str(exc))}", file=sys.stderr)
        return EXIT_CANNOT_RUN
    options = mapping_options(settings)
    snapshots = {seen.snapshot.name: seen.snapshot for seen in services}
    mappings = {name: map_service(snapshot, options, kv) for name, snapshot in snapshots.items()}
    found = findings(mappings, snapshots)
    out.write(render_lint(len(services), found))
    return lint_exit_code(found)
