"""Releasing held deletions in a running bridge: ``POST /release-deletes`` and its command.

The status listener often faces a network (Prometheus scrapes it), and a
release makes the bridge delete things, so the endpoint is guarded: only a
peer on the loopback interface may call it (an operator runs ``kong-bridge
release-deletes`` inside the bridge's container or host: ``docker exec``,
``kubectl exec``), only with a JSON body (a browser's cross-site form cannot
send one without a preflight, which this server never grants), and only for
the services named in it, so a removal held after the operator looked is not
released blindly.
"""

from __future__ import annotations

import ipaddress
import json
import sys
from collections.abc import Callable
from typing import Any, TextIO

import httpx

from .guard import DeletionGuard

ReleaseHandler = Callable[[str, str, bytes], tuple[int, dict[str, Any]]]
PATH = "/release-deletes"


def _is_loopback(peer: str) -> bool:
    try:
        return ipaddress.ip_address(peer.split("%", 1)[0]).is_loopback
    except ValueError:
        return False


def _services(body: bytes) -> list[str] | None:
    try:
        data = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
    services = data.get("services") if isinstance(data, dict) else None
    if not isinstance(services, list) or not all(isinstance(s, str) for s in services):
        return None
    return services


def release_handler(guard: DeletionGuard) -> ReleaseHandler:
    """The status server's ``POST /release-deletes``: (peer, content type, body) -> answer."""

    def handle(peer: str, content_type: str, body: bytes) -> tuple[int, dict[str, Any]]:
        if not _is_loopback(peer):
            return 403, {"error": "release-deletes is only accepted from the loopback interface"}
        if content_type.split(";", 1)[0].strip().lower() != "application/json":
            return 415, {"error": 'send a JSON body: {"services": [...]}'}
        services = _services(body)
        if services is None:
            return 400, {"error": 'expected a JSON object {"services": [names of services]}'}
        released = guard.release(services)
        return 200, {"released": released, "not_held": sorted(set(services) - set(released))}

    return handle


def release_command(status_url: str, only: list[str], out: TextIO = sys.stdout) -> int:
    """``kong-bridge release-deletes``: show what the running bridge holds, release it.

    Exit 0: released (or nothing held); 1: the bridge could not be asked.
    """
    base = status_url.rstrip("/")
    try:
        ready = httpx.get(f"{base}/readyz", timeout=10).json()
        held = [h for h in ready.get("held") or [] if not only or h["service"] in only]
        services = sorted({h["service"] for h in held})
        if not services:
            print("nothing is held", file=out)
            return 0
        for entry in held:
            print(
                f"{entry['service']}: delete {entry['kind'][:-1]} {entry['name']} "
                f"(held: {entry['reason']})",
                file=out,
            )
        answer = httpx.post(f"{base}{PATH}", json={"services": services}, timeout=10)
    except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
        print(f"kong-bridge: cannot reach the bridge's status endpoint: {exc}", file=sys.stderr)
        return 1
    if answer.status_code != 200:
        print(
            f"kong-bridge: release refused ({answer.status_code}): {answer.text}", file=sys.stderr
        )
        return 1
    released = answer.json().get("released") or []
    print(f"released {len(released)} service removal(s): {', '.join(released)}", file=out)
    return 0
