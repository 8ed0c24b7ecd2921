"""Query parameters as Consul's HTTP layer parses them (``agent/http.go``)."""

from __future__ import annotations

import random
from dataclasses import dataclass

from starlette.datastructures import QueryParams

from .durations import DurationError, parse_duration

DEFAULT_WAIT = 300.0  # default_query_time
MAX_WAIT = 600.0  # max_query_time
JITTER_FRACTION = 16  # structs.JitterFraction
_BOOL_TRUE = {"1", "t", "T", "TRUE", "true", "True"}
_BOOL_FALSE = {"0", "f", "F", "FALSE", "false", "False"}


class BadRequest(ValueError):
    """A 400 with this plain-text body."""


@dataclass(frozen=True)
class Query:
    params: QueryParams
    index: int
    wait: float  # seconds, before jitter
    consistency: str  # "leader" (default), "stale" or "consistent"
    token: str

    def flag(self, name: str) -> bool:
        """A presence flag (``?recurse``, ``?stale``): any value counts."""
        return name in self.params

    def bool_param(self, name: str) -> bool:
        """A flag that may carry a Go ``ParseBool`` value (``?passing=false``)."""
        if name not in self.params:
            return False
        value = self.params[name]
        if value == "" or value in _BOOL_TRUE:
            return True
        if value in _BOOL_FALSE:
            return False
        raise BadRequest(f"Invalid value for ?{name}")

    def timeout(self, default_wait: float = DEFAULT_WAIT, max_wait: float = MAX_WAIT) -> float:
        """The blocking timeout: clamped, then up to wait/16 of jitter (as the servers do)."""
        wait = self.wait
        if wait <= 0:
            wait = default_wait
        wait = min(wait, max_wait)
        return wait + random.uniform(0, wait / JITTER_FRACTION)


def _token(params: QueryParams, headers: dict[str, str]) -> str:
    if params.get("token"):
        return params["token"]
    if headers.get("x-consul-token"):
        return headers["x-consul-token"]
    auth = headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip()
    return ""


def parse_query(params: QueryParams, headers: dict[str, str]) -> Query:
    index = 0
    if "index" in params:
        raw = params["index"]
        if not raw.isdigit() or int(raw) >= 2**64:
            raise BadRequest("Invalid index")
        index = int(raw)
    wait = 0.0
    if "wait" in params:
        try:
            wait = parse_duration(params["wait"])
        except DurationError:
            raise BadRequest("Invalid wait time") from None
    stale, consistent = "stale" in params, "consistent" in params
    if stale and consistent:
        raise BadRequest("Cannot specify ?stale with ?consistent, conflicting semantics.")
    if consistent and "cached" in params:
        raise BadRequest("Cannot specify ?cached with ?consistent, conflicting semantics.")
    consistency = "stale" if stale else "consistent" if consistent else "leader"
    return Query(params, index, wait, consistency, _token(params, headers))
