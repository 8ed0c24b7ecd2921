"""Agent health checks that really run: TTL deadlines, HTTP requests and TCP connects.

HTTP: 2xx is passing, 429 warning, anything else (or no answer) critical
(``agent/checks/check.go``). TTL: critical with "TTL expired" when not
updated in time. Each check runs on the emulator's event loop.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from typing import Any

import httpx

from .alias import Alias, alias_of, alias_status
from .catalog import Catalog
from .durations import parse_duration
from .raft import Raft

Row = dict[str, Any]
MIN_INTERVAL = 1.0
SERF_HEALTH = "serfHealth"
DEFAULT_TIMEOUT = 10.0
OUTPUT_LIMIT = 4096


def check_type(definition: Row) -> str:
    for field, kind in (
        ("TTL", "ttl"),
        ("HTTP", "http"),
        ("TCP", "tcp"),
        ("UDP", "udp"),
        ("GRPC", "grpc"),
        ("H2PING", "h2ping"),
        ("AliasService", "alias"),
        ("AliasNode", "alias"),
        ("DockerContainerID", "docker"),
    ):
        if definition.get(field):
            return kind
    if definition.get("Args") or definition.get("ScriptArgs"):
        return "script"
    return ""


def seconds(definition: Row, field: str, default: float = 0.0) -> float:
    value = definition.get(field)
    if not value:
        return default
    if isinstance(value, int | float):
        return float(value) / 1e9  # a Go Duration in nanoseconds
    return parse_duration(str(value))


class CheckRunner:
    """Runs the checks of the agent's node and writes their status into the catalog."""

    def __init__(self, raft: Raft, catalog: Catalog, node: str) -> None:
        self.raft = raft
        self.catalog = catalog
        self.node = node
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._ttl_timers: dict[str, asyncio.TimerHandle] = {}
        self._ttl_seconds: dict[str, float] = {}
        self._aliases: dict[str, Alias] = {}

    def start(self, check_id: str, definition: Row) -> None:
        self.stop(check_id)
        kind = check_type(definition)
        if kind == "ttl":
            self._ttl_seconds[check_id] = seconds(definition, "TTL")
            self._arm_ttl(check_id, self._ttl_seconds[check_id])
        elif kind == "alias":
            self._aliases[check_id] = alias_of(definition)
            self.refresh_aliases()
        elif kind in ("http", "tcp"):
            interval = max(MIN_INTERVAL, seconds(definition, "Interval", 10.0))
            timeout = seconds(definition, "Timeout", DEFAULT_TIMEOUT)
            probe = self._http if kind == "http" else self._tcp
            self._tasks[check_id] = asyncio.get_running_loop().create_task(
                self._loop(check_id, definition, interval, timeout, probe)
            )

    def stop(self, check_id: str) -> None:
        task = self._tasks.pop(check_id, None)
        if task is not None:
            task.cancel()
        timer = self._ttl_timers.pop(check_id, None)
        if timer is not None:
            timer.cancel()
        self._ttl_seconds.pop(check_id, None)
        self._aliases.pop(check_id, None)

    def stop_all(self) -> None:
        for check_id in list(self._tasks) + list(self._ttl_timers):
            self.stop(check_id)

    # -- TTL -------------------------------------------------------------------------------

    def _arm_ttl(self, check_id: str, ttl: float) -> None:
        old = self._ttl_timers.pop(check_id, None)
        if old is not None:
            old.cancel()
        if ttl > 0:
            self._ttl_timers[check_id] = asyncio.get_running_loop().call_later(
                ttl, self._ttl_expired, check_id
            )

    def _ttl_expired(self, check_id: str) -> None:
        self._ttl_timers.pop(check_id, None)
        self._set(check_id, "critical", "TTL expired")

    def ttl_update(self, check_id: str, status: str, output: str) -> bool:
        if check_id not in self._ttl_seconds or (self.node, check_id) not in self.catalog.checks:
            return False
        self._arm_ttl(check_id, self._ttl_seconds[check_id])
        self._set(check_id, status, output)
        return True

    # -- probes ----------------------------------------------------------------------------

    def _set(self, check_id: str, status: str, output: str) -> None:
        self.catalog.set_check_status(self.node, check_id, status, output[:OUTPUT_LIMIT])
        self.refresh_aliases()
        self.raft.commit()

    # -- aliases ---------------------------------------------------------------------------

    def refresh_aliases(self) -> None:
        """Bring every alias check up to date (Consul re-reads on each local change). An
        alias may read another alias: a few rounds settle any chain."""
        for _round in range(len(self._aliases)):
            changed = False
            for check_id, alias in list(self._aliases.items()):
                status, output = alias_status(alias, self._alias_input(alias), self._exists(alias))
                current = self.catalog.checks.get((self.node, check_id))
                if current is not None and (current["Status"], current["Output"]) != (
                    status,
                    output,
                ):
                    self.catalog.set_check_status(self.node, check_id, status, output)
                    changed = True
            if not changed:
                return

    def _alias_input(self, alias: Alias) -> list[Row]:
        if alias.node:
            return self.catalog.checks_on_node(alias.node)
        # The agent's local state: its own registrations, not the servers' serfHealth.
        return [c for c in self.catalog.checks_on_node(self.node) if c["CheckID"] != SERF_HEALTH]

    def _exists(self, alias: Alias) -> Callable[[str], bool]:
        node = alias.node or self.node
        return lambda service_id: (node, service_id) in self.catalog.services

    async def _loop(
        self, check_id: str, definition: Row, interval: float, timeout: float, probe: Any
    ) -> None:
        await asyncio.sleep(random.uniform(0, min(interval, 1.0)))  # Consul staggers start
        while True:
            status, output = await probe(definition, timeout)
            self._set(check_id, status, output)
            await asyncio.sleep(interval)

    @staticmethod
    async def _http(definition: Row, timeout: float) -> tuple[str, str]:
        url = str(definition["HTTP"])
        method = str(definition.get("Method") or "GET").upper()
        headers = {
            k: ", ".join(v) if isinstance(v, list) else str(v)
            for k, v in (definition.get("Header") or {}).items()
        }
        headers.setdefault("User-Agent", "Consul Health Check")
        verify = not definition.get("TLSSkipVerify", False)
        try:
            # Go's http.Client follows up to 10 redirects, and so does the check.
            async with httpx.AsyncClient(
                timeout=timeout, verify=verify, follow_redirects=True, max_redirects=10
            ) as client:
                response = await client.request(
                    method, url, headers=headers, content=definition.get("Body") or None
                )
        except httpx.HTTPError as exc:
            return "critical", f'{method} "{url}": {exc or type(exc).__name__}'
        body = response.text[:OUTPUT_LIMIT]
        output = (
            f"HTTP {method} {url}: {response.status_code} {response.reason_phrase} Output: {body}"
        )
        if 200 <= response.status_code < 300:
            return "passing", output
        if response.status_code == 429:
            return "warning", output
        return "critical", output

    @staticmethod
    async def _tcp(definition: Row, timeout: float) -> tuple[str, str]:
        address = str(definition["TCP"])
        host, _, port = address.rpartition(":")
        try:
            _reader, writer = await asyncio.wait_for(
                asyncio.open_connection(host.strip("[]"), int(port)), timeout
            )
        except (OSError, ValueError, TimeoutError) as exc:
            return "critical", f"dial tcp {address}: {exc}"
        writer.close()
        return "passing", f"TCP connect {address}: Success"
