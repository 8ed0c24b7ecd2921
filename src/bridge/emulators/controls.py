"""What the emulators offer beyond the real APIs, under ``/_emulator/`` only.

Request counters, a reset, and fault injection: added latency, a share of
500 answers, and a period of refused connections (carried out by the server).
"""

from __future__ import annotations

import asyncio
import json
import random
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

PREFIX = "/_emulator/"


@dataclass
class Faults:
    """Faults applied to every request outside ``/_emulator/``."""

    latency_ms: float = 0.0
    error_rate: float = 0.0  # share of requests answered with a 500, 0..1
    error_status: int = 500
    fail_next: int = 0  # answer the next N requests with error_status

    def update(self, data: dict[str, Any]) -> None:
        for key, value in data.items():
            if key in ("latency_ms", "error_rate"):
                setattr(self, key, float(value))
            elif key in ("error_status", "fail_next"):
                setattr(self, key, int(value))


@dataclass
class Counters:
    """Requests seen, by method, by kind and by both ("GET services")."""

    by_method: Counter[str] = field(default_factory=Counter)
    by_kind: Counter[str] = field(default_factory=Counter)
    by_method_and_kind: Counter[str] = field(default_factory=Counter)

    def count(self, method: str, kind: str) -> None:
        self.by_method[method] += 1
        self.by_kind[kind] += 1
        self.by_method_and_kind[f"{method} {kind}"] += 1

    def snapshot(self) -> dict[str, Any]:
        reads = sum(n for m, n in self.by_method.items() if m in ("GET", "HEAD", "OPTIONS"))
        total = sum(self.by_method.values())
        return {
            "total": total,
            "reads": reads,
            "writes": total - reads,
            "by_method": dict(self.by_method),
            "by_kind": dict(self.by_kind),
            "by_method_and_kind": dict(self.by_method_and_kind),
        }

    def clear(self) -> None:
        self.by_method.clear()
        self.by_kind.clear()
        self.by_method_and_kind.clear()


RefuseHook = Callable[[float], None]


@dataclass
class Controls:
    """The state behind ``/_emulator/`` shared by one emulator instance."""

    reset_data: Callable[[], None]
    faults: Faults = field(default_factory=Faults)
    counters: Counters = field(default_factory=Counters)
    refuse: RefuseHook | None = None
    extra: dict[str, Callable[[Request], Any]] = field(default_factory=dict)
    # How an injected error looks: Kong answers JSON, Consul plain text.
    error_body: Callable[[int], Response] | None = None
    # What a reset or a DELETE of the faults puts back (an emulator may add its own faults).
    new_faults: Callable[[], Faults] = Faults

    async def before_request(self) -> Response | None:
        """Apply latency and error faults; a Response means "answer with this"."""
        if self.faults.latency_ms > 0:
            await asyncio.sleep(self.faults.latency_ms / 1000)
        failing = self.faults.fail_next > 0
        if failing:
            self.faults.fail_next -= 1
        if failing or (self.faults.error_rate > 0 and random.random() < self.faults.error_rate):
            if self.error_body is not None:
                return self.error_body(self.faults.error_status)
            return JSONResponse(
                {"message": "An unexpected error occurred (injected by the emulator)"},
                status_code=self.faults.error_status,
            )
        return None

    async def handle(self, request: Request) -> Response:
        """Serve one ``/_emulator/...`` request."""
        name = request.url.path[len(PREFIX) :].strip("/")
        method = request.method
        if name == "counters" and method == "GET":
            return JSONResponse(self.counters.snapshot())
        if name == "counters" and method == "DELETE":
            self.counters.clear()
            return Response(status_code=204)
        if name == "reset" and method == "POST":
            self.reset_data()
            self.counters.clear()
            self.faults = self.new_faults()
            return Response(status_code=204)
        if name == "faults":
            if method == "GET":
                return JSONResponse(asdict(self.faults))
            if method == "DELETE":
                self.faults = self.new_faults()
                return Response(status_code=204)
            if method in ("PUT", "POST", "PATCH"):
                data = await _json_body(request)
                if data is None:
                    return JSONResponse({"message": "expected a JSON object"}, status_code=400)
                self.faults.update(data)
                if "refuse_connections_s" in data and self.refuse is not None:
                    self.refuse(float(data["refuse_connections_s"]))
                return JSONResponse(asdict(self.faults))
        if name in self.extra:
            result = self.extra[name](request)
            if asyncio.iscoroutine(result):
                result = await result
            assert isinstance(result, Response)
            return result
        return JSONResponse({"message": "Not found"}, status_code=404)


async def _json_body(request: Request) -> dict[str, Any] | None:
    raw = await request.body()
    try:
        data = json.loads(raw or b"{}")
    except ValueError:
        return None
    return data if isinstance(data, dict) else None
