"""The ``kong-bridge`` command line: one subcommand per job, each with ``--help``.

The flags of ``run``, ``sync``, ``plan`` and ``lint`` are generated from the
fields of :class:`~bridge.settings.BridgeSettings` (name, default, environment
variable, description), so the command line and the settings cannot drift.
A user's mistake (bad flag or setting, busy port) ends in one line on stderr
and exit 1, never in a traceback.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import socket
import sys
import threading
from collections.abc import Callable, Sequence
from typing import Any, Literal, NoReturn, get_args, get_origin

from . import __version__
from .extras import MissingExtra
from .process_tuning import tune_own_process
from .report import EXIT_CANNOT_RUN, EXIT_CODES_HELP
from .settings import (
    BridgeSettings,
    default_text,
    env_name,
    flag_name,
    load_settings,
)
from .usage import UsageError

Handler = Callable[[argparse.Namespace], int]
SETTING_GROUPS = (
    ("consul_", "Consul"),
    ("kong_", "Kong Admin API"),
    ("ha", "high availability (run --ha)"),
    ("instance", "high availability (run --ha)"),
    ("", "the bridge"),
)
RUN_ONLY = frozenset(
    {
        "listen",
        "ha",
        "ha_lock_key",
        "ha_ttl_seconds",
        "ha_lock_delay_seconds",
        "ha_check_ttl_seconds",
        "instance",
    }
)
# Placeholders in --help where the field name's last word would not say what to write.
METAVARS = {
    "listen": "HOST:PORT",
    "concurrency": "N",
    "max_delete_share": "SHARE",
    "wait": "DURATION",
    "kong_admin_headers": "'NAME: VALUE; ...'",
    "ha_ttl_seconds": "SECONDS",
    "ha_lock_delay_seconds": "SECONDS",
    "ha_check_ttl_seconds": "SECONDS",
    "ha_lock_key": "KEY",
    "instance": "NAME",
}


class Parser(argparse.ArgumentParser):
    """argparse, but a bad flag is one line and exit 1 (2 means "changes pending" for plan)."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_CANNOT_RUN, f"{self.prog}: {message} (see {self.prog} --help)\n")


def _wait_for_signal() -> None:
    """Block until SIGINT or SIGTERM, so emulators stop cleanly under a supervisor."""
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    stop.wait()


def _cannot_listen(host: str, port: int, exc: OSError) -> UsageError:
    return UsageError(
        f"cannot listen on {host}:{port}: {exc.strerror or exc}; "
        "stop what uses that port or choose another --port"
    )


def _emulate_kong(args: argparse.Namespace) -> int:
    from .emulators.kong import KongEmulator

    emulator = KongEmulator(
        host=args.host, port=args.port, db_less=args.db_less, proxy_port=args.proxy_port
    )
    try:
        emulator.start()
    except OSError as exc:
        raise _cannot_listen(args.host, args.port, exc) from None
    tune_own_process()  # the emulator's process is ours: 10,000 services are a large state
    mode = "DB-less" if args.db_less else "database"
    print(f"Kong Admin API emulator ({mode} mode) listening on {emulator.url}", flush=True)
    if args.proxy_port is not None:
        print(f"Kong proxy emulator listening on {emulator.proxy_url}", flush=True)
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
        acl_default_policy=args.acl_default_policy,
    )
    try:
        emulator.start()
    except OSError as exc:
        raise _cannot_listen(args.host, args.port, exc) from None
    tune_own_process()  # the emulator's process is ours: 10,000 services are a large state
    print(
        f"Consul {CONSUL_VERSION} HTTP API emulator (datacenter {args.datacenter}) "
        f"listening on {emulator.url}",
        flush=True,
    )
    _wait_for_signal()
    emulator.stop()
    return 0


def _check_free(host: str, port: int) -> None:
    """Fail early when the port is taken (the demo's bridge would find out in a thread)."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the status server
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise _cannot_listen(host, port, exc) from None


def _demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    if args.port:
        _check_free(args.host, args.port)
    try:
        return run_demo(host=args.host, port=args.port)
    except OSError as exc:
        raise _cannot_listen(args.host, args.port, exc) from None


# -- settings flags ------------------------------------------------------------------------


def setting_help(field: str) -> str:
    """``description (default X; env VAR)`` for one setting."""
    description = BridgeSettings.model_fields[field].description or ""
    default = default_text(field)
    where = f"default {default}; env {env_name(field)}" if default else f"env {env_name(field)}"
    return f"{description} ({where})".replace("%", "%%")


def _add_setting_flag(group: argparse._ArgumentGroup, field: str) -> None:
    annotation = BridgeSettings.model_fields[field].annotation
    options: dict[str, Any] = {"dest": field, "default": None, "help": setting_help(field)}
    literal = next(
        (a for a in (annotation, *get_args(annotation)) if get_origin(a) is Literal), None
    )
    if annotation is bool:
        options["action"] = argparse.BooleanOptionalAction
    elif literal is not None:
        options["choices"] = get_args(literal)
    else:
        options["metavar"] = METAVARS.get(field, field.rsplit("_", 1)[-1].upper())
    group.add_argument(flag_name(field), **options)


def _add_bridge_options(parser: argparse.ArgumentParser, run: bool = False) -> None:
    """One flag per field of :class:`BridgeSettings`, grouped by what it talks to."""
    groups = {title: parser.add_argument_group(title) for _prefix, title in SETTING_GROUPS}
    for field in BridgeSettings.model_fields:
        if field in RUN_ONLY and not run:
            continue
        title = next(title for prefix, title in SETTING_GROUPS if field.startswith(prefix))
        _add_setting_flag(groups[title], field)


def _settings(args: argparse.Namespace) -> BridgeSettings:
    overrides = {name: getattr(args, name, None) for name in BridgeSettings.model_fields}
    if getattr(args, "port", None) is not None:
        overrides["listen"] = f"{args.host}:{args.port}"
    return load_settings(overrides)


def _configured(args: argparse.Namespace, default_level: str) -> BridgeSettings:
    """Settings validated (before any network call), then logging set up from them."""
    from .logs import setup_logging

    settings = _settings(args)
    setup_logging(settings.log_json, settings.log_level or default_level)
    return settings


def _run(args: argparse.Namespace) -> int:
    from .daemon import run_daemon

    code = run_daemon(_configured(args, "info"))
    _exit_now(code)
    return code


def _exit_now(code: int) -> None:
    """End the process now, even while a thread still waits on a Kong write.

    A normal interpreter exit joins the write pool's threads (daemon or not), so
    a slow Kong would hold the shutdown for a full request timeout.
    """
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _sync(args: argparse.Namespace) -> int:
    from .daemon import sync_once

    return sync_once(_configured(args, "warning"), release_deletes=args.release_deletes)


def _plan(args: argparse.Namespace) -> int:
    from .daemon import plan_command

    return plan_command(_configured(args, "warning"), as_json=args.json)


def _lint(args: argparse.Namespace) -> int:
    from .daemon import lint_command

    return lint_command(_configured(args, "warning"))


def _release_deletes(args: argparse.Namespace) -> int:
    from .release import release_command

    return release_command(args.status, args.service)


def _register(args: argparse.Namespace) -> int:
    from .selfreg.cli import register_command

    return register_command(args)


def _unregister(args: argparse.Namespace) -> int:
    from .selfreg.cli import unregister_command

    return unregister_command(args)


# -- the parser ----------------------------------------------------------------------------


def _add_listen_options(parser: argparse.ArgumentParser, default_port: int) -> None:
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)"
    )
    parser.add_argument(
        "--port",
        type=int,
        default=default_port,
        help=f"port to listen on (default {default_port}; 0 = any free port)",
    )


def _command(
    commands: Any, name: str, handler: Handler, help_text: str, **kwargs: Any
) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = commands.add_parser(
        name, help=help_text, description=kwargs.pop("description", help_text), **kwargs
    )
    parser.add_argument("--version", action="version", version=f"kong-bridge {__version__}")
    parser.set_defaults(handler=handler)
    return parser


def _add_bridge_commands(commands: Any) -> None:
    epilog = {"epilog": EXIT_CODES_HELP, "formatter_class": argparse.RawDescriptionHelpFormatter}
    run = _command(commands, "run", _run, "the daemon: watch Consul, keep Kong in step", **epilog)
    _add_bridge_options(run, run=True)
    run.add_argument("--host", default="0.0.0.0", help="status address, with --port")
    run.add_argument("--port", type=int, default=None, help="status port (same as --listen)")

    sync = _command(commands, "sync", _sync, "one reconciliation, then exit", **epilog)
    sync.add_argument("--once", action="store_true", required=True, help="required")
    sync.add_argument(
        "--release-deletes",
        action="store_true",
        help="confirm the removals the deletion guard would hold (run 'plan' first)",
    )
    _add_bridge_options(sync)

    plan = _command(
        commands, "plan", _plan, "dry run: each change sync would make, field by field", **epilog
    )
    plan.add_argument("--json", action="store_true", help="machine-readable output")
    _add_bridge_options(plan)

    lint = _command(
        commands, "lint", _lint, "check the kong tags/meta of Consul services", **epilog
    )
    _add_bridge_options(lint)

    release = _command(
        commands,
        "release-deletes",
        _release_deletes,
        "release the deletions a running bridge holds (from its host: loopback only)",
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


def _add_emulators(commands: Any) -> None:
    emulate = commands.add_parser("emulate", help="run an emulator of Kong or Consul")
    emulated = emulate.add_subparsers(dest="target", required=True, metavar="TARGET")
    kong = _command(emulated, "kong", _emulate_kong, "emulate Kong Gateway 3.x's Admin API")
    _add_listen_options(kong, 8001)
    kong.add_argument(
        "--db-less",
        action="store_true",
        help="answer as Kong with database=off (writes refused, POST /config)",
    )
    kong.add_argument(
        "--proxy-port",
        type=int,
        default=None,
        metavar="P",
        help="also serve Kong's proxy there (Kong uses 8000; 0 = any free port)",
    )
    consul = _command(
        emulated, "consul", _emulate_consul, "emulate a one-node Consul agent's HTTP API"
    )
    _add_listen_options(consul, 8500)
    consul.add_argument("--datacenter", default="dc1", help="its datacenter (default dc1)")
    consul.add_argument("--node", default="consul-emulator", help="the agent's node name")
    consul.add_argument(
        "--max-conns-per-client",
        type=int,
        default=200,
        help="concurrent requests per client IP before 429 (default 200, Consul's)",
    )
    consul.add_argument(
        "--acl-master-token",
        default=None,
        help="enable ACLs: the initial management token (may do anything); "
        "other tokens are made through /v1/acl",
    )
    consul.add_argument(
        "--acl-default-policy",
        choices=("allow", "deny"),
        default="allow",
        help="with ACLs on, what a token without management may do outside /v1/acl "
        "(default allow, Consul's acl.default_policy)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="kong-bridge",
        description="Put services registered in Consul behind the Kong API gateway.",
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"kong-bridge {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_bridge_commands(commands)

    from .selfreg.cli import add_arguments

    register = _command(
        commands,
        "register",
        _register,
        "register this service on Kong (optionally: -- CMD to run it)",
        description="Register a service on Kong from its config file. With -- CMD ARGS, run "
        "the service as a child, forward signals, and unregister when it exits.",
    )
    add_arguments(register)
    unregister = _command(commands, "unregister", _unregister, "remove this instance from Kong")
    add_arguments(unregister, unregister=True)

    _add_emulators(commands)
    demo = _command(commands, "demo", _demo, "a walk-through on emulators, no Docker needed")
    _add_listen_options(demo, 0)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handler: Handler = args.handler
    try:
        return handler(args)
    except UsageError as exc:
        print(f"kong-bridge: {exc}", file=sys.stderr)
        return EXIT_CANNOT_RUN
    except MissingExtra as missing:  # `pip install kong-consul-bridge` without the extra
        print(f"kong-bridge {args.command}: {missing}", file=sys.stderr)
        return EXIT_CANNOT_RUN


if __name__ == "__main__":
    sys.exit(main())
