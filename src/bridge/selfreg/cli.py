"""``kong-bridge register`` / ``unregister``: self-registration for services in any language."""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
from typing import Any

from pydantic import ValidationError

from ..secrets import SecretFileError, read_token_file
from .config import DEFAULT_CONFIG_FILE, MicroserviceConfig, admin_url_for, load_service_config
from .errors import RegistrationError, ServiceConfigError
from .gateway import KongGateway

FORWARDED_SIGNALS = (
    signal.SIGTERM,
    signal.SIGINT,
    signal.SIGHUP,
    signal.SIGQUIT,
    signal.SIGUSR1,
    signal.SIGUSR2,
)


def add_arguments(parser: argparse.ArgumentParser, unregister: bool = False) -> None:
    parser.add_argument(
        "--config",
        default=os.environ.get("SERVICE_CONFIG_FILE", DEFAULT_CONFIG_FILE),
        help=f"the service config JSON (default $SERVICE_CONFIG_FILE or {DEFAULT_CONFIG_FILE})",
    )
    parser.add_argument(
        "--admin-url",
        help="Kong Admin API URL (default $API_GATEWAY_URL, "
        "else the file's gatewayAdminUrl, else http://localhost:8001)",
    )
    parser.add_argument(
        "--header",
        action="append",
        default=[],
        metavar="'NAME: VALUE'",
        help="extra header on every Admin API call (e.g. Kong-Admin-Token)",
    )
    parser.add_argument("--ca-cert", help="CA bundle to verify the Admin API's certificate")
    parser.add_argument("--client-cert", help="client certificate (PEM) for mutual TLS")
    parser.add_argument("--client-key", help="client certificate key (PEM)")
    parser.add_argument(
        "--tls-skip-verify", action="store_true", help="do not verify the Admin API's certificate"
    )
    parser.add_argument("--address", help="this instance's address (default: detected)")
    parser.add_argument(
        "--dns-mode",
        action="store_true",
        help="no upstream/target: Kong resolves the virtual host by DNS",
    )
    parser.add_argument(
        "--owner", default="kong-bridge-selfreg", help="owner id in the managed-by:<owner> tag"
    )
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds per HTTP call")
    parser.add_argument(
        "--retry-seconds",
        type=float,
        default=30.0,
        help="total time to keep retrying while Kong is unreachable or 5xx",
    )
    if unregister:
        parser.add_argument(
            "--remove-service",
            action="store_true",
            help="also remove the route, service and upstream",
        )
    else:
        parser.add_argument(
            "--adopt",
            action="store_true",
            help="take over same-name entities without our owner tag",
        )
        parser.add_argument(
            "command",
            nargs=argparse.REMAINDER,
            metavar="-- CMD ...",
            help="run CMD after registering; unregister when it exits",
        )


def _headers(values: list[str]) -> dict[str, str]:
    """``--header`` values, plus ``$KONG_ADMIN_TOKEN`` (or the file ``$KONG_ADMIN_TOKEN_FILE``)."""
    headers: dict[str, str] = {}
    token = os.environ.get("KONG_ADMIN_TOKEN")
    token_file = os.environ.get("KONG_ADMIN_TOKEN_FILE")
    if not token and token_file:
        try:
            token = read_token_file(token_file)
        except SecretFileError as exc:
            raise ServiceConfigError(f"KONG_ADMIN_TOKEN_FILE: {exc}") from None
    if token:
        headers["Kong-Admin-Token"] = token
    for number, value in enumerate(values, 1):
        name, sep, content = value.partition(":")
        if not sep or not name.strip():
            # Never echo it: a token pasted without its header name is still a token.
            raise ServiceConfigError(
                f"--header (#{number}): expected 'NAME: VALUE', as in 'Kong-Admin-Token: ...' "
                "(the value given is not shown: it may be a secret)"
            )
        headers[name.strip()] = content.strip()
    return headers


def _gateway(args: argparse.Namespace) -> KongGateway:
    config = load_service_config(args.config)
    cert: Any = (args.client_cert, args.client_key) if args.client_key else args.client_cert
    verify: bool | str = False if args.tls_skip_verify else (args.ca_cert or True)
    service = config.service
    if args.address:
        try:  # validated as the file's own 'address' would be
            service = MicroserviceConfig.model_validate(
                {**service.model_dump(), "address": args.address}
            )
        except ValidationError:
            raise ServiceConfigError(
                f"--address {args.address!r}: expected an IP address or a DNS name"
            ) from None
    return KongGateway(
        admin_url_for(config, args.admin_url),
        service,
        mode="dns" if args.dns_mode else "auto",
        remove_service_on_unregister=getattr(args, "remove_service", False),
        headers=_headers(args.header),
        verify=verify,
        client_cert=cert,
        timeout=args.timeout,
        retry_seconds=args.retry_seconds,
        owner=args.owner,
        adopt=getattr(args, "adopt", False),
    )


def _report(prefix: str, message: str) -> None:
    print(f"kong-bridge: {prefix}: {message}", file=sys.stderr, flush=True)


def register_command(args: argparse.Namespace) -> int:
    command = [part for part in args.command if part != "--"] if args.command else []
    try:
        gateway = _gateway(args)
        result = gateway.self_register()
    except RegistrationError as exc:
        _report("error", str(exc))
        return 1
    print(f"registered {gateway.service.name}: {result.writes} write(s)", flush=True)
    if not command:
        return 0
    code = run_child(command)
    try:
        gateway.unregister()
    except RegistrationError as exc:
        _report("error", str(exc))
    return code


def unregister_command(args: argparse.Namespace) -> int:
    try:
        gateway = _gateway(args)
        result = gateway.unregister()
    except RegistrationError as exc:
        _report("error", str(exc))
        return 1
    print(f"unregistered {gateway.service.name}: {result.writes} write(s)", flush=True)
    return 0


def run_child(command: list[str]) -> int:
    """Run the service as a child, forwarding signals; return its exit status (128+N if killed)."""
    try:
        child = subprocess.Popen(command)
    except OSError as exc:
        _report("cannot start", f"{command[0]}: {exc.strerror}")
        return 127
    previous = {
        sig: signal.signal(sig, lambda num, _frame: child.send_signal(num))
        for sig in FORWARDED_SIGNALS
    }
    try:
        code = child.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 128 - code if code < 0 else code
