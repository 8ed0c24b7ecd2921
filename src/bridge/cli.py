"""The ``kong-bridge`` command line: one subcommand per job, each with ``--help``."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Callable, Sequence

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
