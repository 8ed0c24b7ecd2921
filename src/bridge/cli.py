"""The ``kong-bridge`` command line: one subcommand per job, each with ``--help``."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from typing import Any

Handler = Callable[[argparse.Namespace], int]


def _wait_for_signal() -> None:
    """Block until SIGINT or SIGTERM, so emulators stop cleanly under a supervisor."""
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    stop.wait()


def _emulate_kong(args: argparse.Namespace) -> int:
    from .emulators.kong import KongEmulator

    emulator = KongEmulator(host=args.host, port=args.port, db_less=args.db_less)
    emulator.start()
    mode = "DB-less" if args.db_less else "database"
    print(f"Kong Admin API emulator ({mode} mode) listening on {emulator.url}", flush=True)
    _wait_for_signal()
    emulator.stop()
    return 0


def _emulate_consul(args: argparse.Namespace) -> int:
    from .emulators.consul import CONSUL_VERSION, ConsulEmulator

    emulator = ConsulEmulator(
        host=args.host,
        port=args.port,
        datacenter=args.datacenter,
        node=args.node,
        max_conns_per_client=args.max_conns_per_client,
        acl_master_token=args.acl_master_token,
    )
    emulator.start()
    print(
        f"Consul {CONSUL_VERSION} HTTP API emulator (datacenter {args.datacenter}) "
        f"listening on {emulator.url}",
        flush=True,
    )
    _wait_for_signal()
    emulator.stop()
    return 0


def _demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    return run_demo(host=args.host, port=args.port)


BRIDGE_FLAGS = (
    "consul_http_addr",
    "consul_http_token",
    "consul_datacenter",
    "kong_admin_url",
    "bridge_id",
    "tag_prefix",
    "expose_by_default",
    "mode",
    "domain",
    "include_warning",
    "wait",
    "max_watches",
    "debounce_seconds",
    "resync_seconds",
    "max_delete_share",
    "delete_window_seconds",
    "delete_settle_seconds",
    "confirm_deletes_after_seconds",
    "concurrency",
    "listen",
    "log_json",
    "retry_seconds",
)


def _settings(args: argparse.Namespace) -> Any:
    from pydantic import ValidationError

    from .daemon import settings_from

    overrides = {name: getattr(args, name, None) for name in BRIDGE_FLAGS}
    if getattr(args, "port", None) is not None:
        overrides["listen"] = f"{args.host}:{args.port}"
    try:
        return settings_from(overrides)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise SystemExit(f"kong-bridge: invalid settings: {problems}") from None


def _run(args: argparse.Namespace) -> int:
    from .daemon import run_daemon
    from .logs import setup_logging

    settings = _settings(args)
    setup_logging(settings.log_json)
    return run_daemon(settings)


def _sync(args: argparse.Namespace) -> int:
    from .daemon import sync_once
    from .logs import setup_logging

    if not args.once:
        raise SystemExit("kong-bridge: sync needs --once (use 'kong-bridge run' for the daemon)")
    settings = _settings(args)
    setup_logging(settings.log_json, logging.WARNING)
    return sync_once(settings, release_deletes=args.release_deletes)


def _plan(args: argparse.Namespace) -> int:
    from .daemon import plan_command
    from .logs import setup_logging

    settings = _settings(args)
    setup_logging(settings.log_json, logging.WARNING)
    return plan_command(settings, as_json=args.json)


def _lint(args: argparse.Namespace) -> int:
    from .daemon import lint_command

    return lint_command(_settings(args))


def _release_deletes(args: argparse.Namespace) -> int:
    from .release import release_command

    return release_command(args.status, args.service)


def _add_bridge_options(parser: argparse.ArgumentParser) -> None:
    consul = parser.add_argument_group("Consul (also CONSUL_HTTP_ADDR, CONSUL_HTTP_TOKEN, ...)")
    consul.add_argument("--consul-addr", dest="consul_http_addr", metavar="URL")
    consul.add_argument("--consul-token", dest="consul_http_token", metavar="TOKEN")
    consul.add_argument(
        "--datacenter",
        dest="consul_datacenter",
        help="put the datacenter in upstream names (<svc>.service.<dc>.consul)",
    )
    kong = parser.add_argument_group("Kong (also KONG_ADMIN_URL, KONG_ADMIN_TOKEN, ...)")
    kong.add_argument("--kong-admin-url", metavar="URL")
    bridge = parser.add_argument_group("bridge (also KONG_BRIDGE_*)")
    bridge.add_argument("--bridge-id", help="owner id: our entities carry managed-by:<id>")
    bridge.add_argument("--tag-prefix", help="tag prefix of the convention (default kong)")
    bridge.add_argument(
        "--expose-by-default",
        action="store_const",
        const=True,
        help="expose services that did not opt in (off by default)",
    )
    bridge.add_argument("--mode", choices=("upstream", "dns"), help="default mapping mode")
    bridge.add_argument("--domain", help="Consul's DNS domain (default consul)")
    bridge.add_argument(
        "--include-warning",
        action="store_const",
        const=True,
        help="keep instances whose checks warn as targets",
    )
    bridge.add_argument("--wait", help="blocking query wait, e.g. 5m (default)")
    bridge.add_argument(
        "--max-watches", type=int, help="per-service blocking queries at most (default 150)"
    )
    bridge.add_argument(
        "--debounce",
        dest="debounce_seconds",
        type=float,
        help="seconds to coalesce a burst of changes (default 0.2)",
    )
    bridge.add_argument(
        "--resync",
        dest="resync_seconds",
        type=float,
        help="seconds between full resyncs that repair drift (default 60)",
    )
    bridge.add_argument(
        "--max-delete-share",
        type=float,
        help="hold back plans deleting more than this share (default 0.5)",
    )
    bridge.add_argument(
        "--delete-window",
        dest="delete_window_seconds",
        type=float,
        help="seconds over which removals are counted against --max-delete-share (600)",
    )
    bridge.add_argument(
        "--delete-settle",
        dest="delete_settle_seconds",
        type=float,
        help="run: seconds a removal waits so a burst is judged whole (default 5)",
    )
    bridge.add_argument(
        "--confirm-deletes-after",
        dest="confirm_deletes_after_seconds",
        type=float,
        help="release held removals after this long with a trusted, stable catalog "
        "(default 0: only an operator releases them)",
    )
    bridge.add_argument("--concurrency", type=int, help="services written in parallel")
    bridge.add_argument(
        "--retry-seconds", type=float, help="retry budget per Kong call (default 10)"
    )
    bridge.add_argument("--log-json", action="store_const", const=True, help="JSON logs")


def _register(args: argparse.Namespace) -> int:
    from .selfreg.cli import register_command

    return register_command(args)


def _unregister(args: argparse.Namespace) -> int:
    from .selfreg.cli import unregister_command

    return unregister_command(args)


def _add_listen_options(parser: argparse.ArgumentParser, default_port: int) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument(
        "--port",
        type=int,
        default=default_port,
        help=f"port to listen on (default {default_port}; 0 = any free port)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kong-bridge",
        description="Put services registered in Consul behind the Kong API gateway.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    emulate = commands.add_parser("emulate", help="run an emulator of Kong or Consul")
    emulated = emulate.add_subparsers(dest="target", required=True, metavar="TARGET")
    kong = emulated.add_parser("kong", help="emulate Kong Gateway 3.x's Admin API")
    _add_listen_options(kong, 8001)
    kong.add_argument(
        "--db-less",
        action="store_true",
        help="answer as Kong with database=off (writes refused, POST /config)",
    )
    kong.set_defaults(handler=_emulate_kong)

    run = commands.add_parser("run", help="the daemon: watch Consul, keep Kong in step")
    _add_bridge_options(run)
    run.add_argument(
        "--listen", metavar="HOST:PORT", help="serve /healthz, /readyz and /metrics there"
    )
    run.add_argument("--host", default="0.0.0.0", help="status endpoint address (with --port)")
    run.add_argument("--port", type=int, default=None, help="status endpoint port")
    run.set_defaults(handler=_run)

    sync = commands.add_parser("sync", help="one reconciliation, then exit")
    sync.add_argument("--once", action="store_true", required=True)
    sync.add_argument(
        "--release-deletes",
        action="store_true",
        help="confirm the removals the deletion guard would hold (run 'plan' first)",
    )
    _add_bridge_options(sync)
    sync.set_defaults(handler=_sync)

    plan = commands.add_parser(
        "plan", help="dry run: print the changes sync would make (exit 2 when any)"
    )
    plan.add_argument("--json", action="store_true", help="machine-readable output")
    _add_bridge_options(plan)
    plan.set_defaults(handler=_plan)

    release = commands.add_parser(
        "release-deletes",
        help="release the deletions a running bridge holds (from its host: loopback only)",
    )
    release.add_argument(
        "--status",
        default="http://127.0.0.1:9100",
        metavar="URL",
        help="the bridge's status endpoint (default http://127.0.0.1:9100)",
    )
    release.add_argument(
        "--service", action="append", default=[], help="release only this service (repeatable)"
    )
    release.set_defaults(handler=_release_deletes)

    lint = commands.add_parser("lint", help="check the kong tags/meta of Consul services")
    _add_bridge_options(lint)
    lint.set_defaults(handler=_lint)

    from .selfreg.cli import add_arguments

    register = commands.add_parser(
        "register",
        help="register this service on Kong (optionally: -- CMD to run it)",
        description="Register a service on Kong from its config file. With -- CMD ARGS, run "
        "the service as a child, forward signals, and unregister when it exits.",
    )
    add_arguments(register)
    register.set_defaults(handler=_register)
    unregister = commands.add_parser("unregister", help="remove this instance from Kong")
    add_arguments(unregister, unregister=True)
    unregister.set_defaults(handler=_unregister)

    consul = emulated.add_parser("consul", help="emulate a one-node Consul agent's HTTP API")
    _add_listen_options(consul, 8500)
    consul.add_argument("--datacenter", default="dc1")
    consul.add_argument("--node", default="consul-emulator", help="the agent's node name")
    consul.add_argument(
        "--max-conns-per-client",
        type=int,
        default=200,
        help="concurrent requests per client IP before 429 (Consul's default)",
    )
    consul.add_argument(
        "--acl-master-token",
        default=None,
        help="enforce ACLs: this token may do anything, others are denied",
    )
    consul.set_defaults(handler=_emulate_consul)

    demo = commands.add_parser("demo", help="a walk-through on emulators, no Docker needed")
    _add_listen_options(demo, 0)
    demo.set_defaults(handler=_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handler: Handler = args.handler
    return handler(args)


if __name__ == "__main__":
    sys.exit(main())
