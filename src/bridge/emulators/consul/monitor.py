"""The agent's log, as ``GET /v1/agent/monitor`` streams it (hclog lines, or JSON).

The emulator logs what a dev agent logs at INFO for the work it does here
(services and checks synced or deregistered), so a monitor has something to show.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime

LEVELS = ("trace", "debug", "info", "warn", "error")


@dataclass(frozen=True)
class LogLine:
    level: str
    module: str
    message: str
    fields: tuple[tuple[str, str], ...]
    time: datetime

    def text(self) -> str:
        """hclog's format: ``<time> [INFO]  agent: Synced service: service=web``."""
        stamp = self.time.strftime("%Y-%m-%dT%H:%M:%S.") + f"{self.time.microsecond // 1000:03d}Z"
        label = f"[{self.level.upper()}]".ljust(7)
        text = f"{stamp} {label} {self.module}: {self.message}"
        if self.fields:
            text += ":" + "".join(f" {k}={v}" for k, v in self.fields)
        return text

    def json(self) -> str:
        return json.dumps(
            {
                "@level": self.level,
                "@message": self.message,
                "@module": self.module,
                "@timestamp": self.time.isoformat(timespec="microseconds"),
                **dict(self.fields),
            }
        )


class LogHub:
    """Fans each log line out to the open monitors."""

    def __init__(self) -> None:
        self._queues: set[asyncio.Queue[LogLine]] = set()

    def log(self, level: str, module: str, message: str, **fields: str) -> None:
        line = LogLine(level, module, message, tuple(fields.items()), datetime.now(UTC))
        for queue in self._queues:
            queue.put_nowait(line)

    async def follow(self, level: str, as_json: bool) -> AsyncIterator[bytes]:
        """Lines at ``level`` or above, until the client goes away."""
        floor = LEVELS.index(level)
        queue: asyncio.Queue[LogLine] = asyncio.Queue()
        self._queues.add(queue)
        try:
            while True:
                line = await queue.get()
                if LEVELS.index(line.level) >= floor:
                    yield ((line.json() if as_json else line.text()) + "\n").encode()
        finally:
            self._queues.discard(queue)
