"""The Kong Admin API client: httpx underneath, retries with backoff, typed errors.

It knows Kong's HTTP conventions and nothing of Consul. ``KongClient`` and
``AsyncKongClient`` share everything but the I/O: request building, the retry
decision and reply decoding live in :class:`_Core`.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Self, TypeVar, cast
from urllib.parse import quote, urlencode

import httpx
from tenacity import (
    AsyncRetrying,
    RetryError,
    Retrying,
    retry_if_exception_type,
    stop_after_delay,
    stop_when_event_set,
    wait_exponential_jitter,
)

from ..http_transport import USER_AGENT, LeanTransport, origin_of, preview
from .calls import Call, Flow, Reply
from .errors import KongBadAnswer, KongStopped, KongUnavailable, require
from .flows import paginate
from .shapes import check_written

T = TypeVar("T")
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
PATH_SAFE = "/%:@!$&'()*+,;=-._~"  # what a path keeps as it is (RFC 3986), as httpx does
JSON = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)  # as httpx
SECRET_HEADERS = frozenset({"kong-admin-token", "apikey", "authorization", "x-api-key"})


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter, bounded by a total time per flow."""

    total_seconds: float = 30.0
    initial_seconds: float = 0.1
    max_backoff_seconds: float = 5.0
    jitter_seconds: float = 0.25


@dataclass(frozen=True)
class KongConnection:
    """Where the Admin API is and how to talk to it (auth headers, TLS, timeouts)."""

    admin_url: str = "http://localhost:8001"
    headers: Mapping[str, str] = field(default_factory=dict)
    verify: bool | str = True  # False, True, or a CA bundle path
    client_cert: str | tuple[str, str] | None = None
    timeout_seconds: float = 10.0

    def __repr__(self) -> str:
        # Admin tokens and API keys never reach logs through a repr.
        shown = {k: ("***" if k.lower() in SECRET_HEADERS else v) for k, v in self.headers.items()}
        return (
            f"KongConnection(admin_url={self.admin_url!r}, headers={shown!r}, "
            f"verify={self.verify!r}, timeout_seconds={self.timeout_seconds})"
        )

    def client_options(self, max_connections: int = 100) -> dict[str, Any]:
        return {
            "base_url": self.admin_url.rstrip("/"),
            "headers": {"Accept": "application/json", **self.headers},
            "verify": self.verify,
            "cert": self.client_cert,
            "timeout": httpx.Timeout(self.timeout_seconds),
            "limits": httpx.Limits(
                max_connections=max_connections, max_keepalive_connections=max_connections
            ),
        }


class RequestEncoder:
    """Calls as HTTP/1.1 request bytes for one Admin API URL (its headers encoded once)."""

    def __init__(self, connection: KongConnection) -> None:
        url = httpx.URL(connection.admin_url.rstrip("/"))
        self.origin = origin_of(url)
        self.base_path = url.raw_path.decode("ascii").rstrip("/")
        headers = {"host": ("Host", url.netloc.decode("ascii"))}
        defaults = {"Accept": "application/json", "User-Agent": USER_AGENT}
        for name, value in {**defaults, **connection.headers}.items():
            headers[name.lower()] = (name, value)
        self.head = "".join(f"{name}: {value}\r\n" for name, value in headers.values()).encode(
            "latin-1"
        )

    def encode(self, call: Call) -> bytes:
        target = self.base_path + quote(call.path, safe=PATH_SAFE)
        if call.params:
            target += "?" + urlencode(call.params, doseq=True)  # a list repeats its key
        start = f"{call.method} {target} HTTP/1.1\r\n".encode("ascii")
        if call.body is None:
            return start + self.head + b"\r\n"
        data = JSON.encode(call.body).encode("utf-8")
        return b"%s%sContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (
            start,
            self.head,
            len(data),
            data,
        )


class _Transient(Exception):
    """A failure worth retrying: connection error, timeout, 5xx or 429."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


Observer = Callable[[Call, str], None]  # (call, status code or "error")


class _Core:
    def __init__(
        self,
        connection: KongConnection,
        retry: RetryPolicy,
        observer: Observer | None = None,
        stop: threading.Event | None = None,
    ) -> None:
        self.connection = connection
        self.retry = retry
        self.requests = 0
        self.observer = observer
        self.stop = stop  # once set: no new attempt, no more backoff sleeps

    def check_stop(self, call: Call) -> None:
        if self.stop is not None and self.stop.is_set():
            raise KongStopped(f"{call}: not sent, the bridge is stopping")

    def observe(self, call: Call, outcome: str) -> None:
        self.requests += 1
        if self.observer is not None:
            self.observer(call, outcome)

    @staticmethod
    def request_args(call: Call) -> dict[str, Any]:
        args: dict[str, Any] = {"params": call.params or None}
        if call.body is not None:
            args["json"] = call.body
        return args

    @staticmethod
    def decode(call: Call, status: int, content: bytes) -> Reply:
        if status in RETRY_STATUSES:
            raise _Transient(f"HTTP {status}: {preview(content)}")
        if not content:
            return Reply(status, None)
        try:
            body = json.loads(content)
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise KongBadAnswer(
                f"{call}: Kong answered {status} with a non-JSON body: {preview(content)!r}"
            ) from None
        reply = Reply(status, body)
        check_written(call, reply)
        return reply

    def retrying_kwargs(self, deadline: float) -> dict[str, Any]:
        remaining = max(0.0, deadline - time.monotonic())
        stopping: dict[str, Any] = {"stop": stop_after_delay(remaining)}
        if self.stop is not None:  # the bridge stops: no further attempt, no backoff sleep
            stopping = {
                "stop": stopping["stop"] | stop_when_event_set(self.stop),
                "sleep": self.stop.wait,
            }
        return {
            **stopping,
            "wait": wait_exponential_jitter(
                multiplier=self.retry.initial_seconds,
                max=self.retry.max_backoff_seconds,
                jitter=self.retry.jitter_seconds,
            ),
            "retry": retry_if_exception_type(_Transient),
            "reraise": False,
        }

    @staticmethod
    def as_transient(exc: httpx.HTTPError) -> _Transient:
        return _Transient(f"{type(exc).__name__}: {exc}")

    def deadline(self) -> float:
        return time.monotonic() + self.retry.total_seconds


def _unavailable(call: Call, error: RetryError) -> KongUnavailable:
    last = error.last_attempt
    cause = last.exception() if last.failed else None
    reason = cause.reason if isinstance(cause, _Transient) else str(cause)
    return KongUnavailable(call, reason, last.attempt_number)


class KongClient:
    """A blocking Admin API client. Every call has a timeout and bounded retries.

    ``observer`` is told of every attempt (for metrics); the client is safe to
    share between threads.
    """

    def __init__(
        self,
        connection: KongConnection | None = None,
        retry: RetryPolicy | None = None,
        observer: Observer | None = None,
        stop: threading.Event | None = None,
    ) -> None:
        self._core = _Core(connection or KongConnection(), retry or RetryPolicy(), observer, stop)
        self._http = httpx.Client(**self._core.connection.client_options())

    @property
    def requests_sent(self) -> int:
        return self._core.requests

    def call(self, call: Call, deadline: float | None = None) -> Reply:
        """Send one call, retrying transient failures until ``deadline``."""
        deadline = deadline if deadline is not None else self._core.deadline()
        self._core.check_stop(call)
        try:
            for attempt in Retrying(**self._core.retrying_kwargs(deadline)):
                with attempt:
                    return self._send(call)
        except RetryError as error:
            raise _unavailable(call, error) from None
        raise AssertionError("unreachable")  # pragma: no cover

    def _send(self, call: Call) -> Reply:
        try:
            response = self._http.request(call.method, call.path, **self._core.request_args(call))
        except httpx.HTTPError as exc:
            self._core.observe(call, "error")
            raise self._core.as_transient(exc) from exc
        self._core.observe(call, str(response.status_code))
        return self._core.decode(call, response.status_code, response.content)

    def expect(self, call: Call, *accept: int) -> Reply:
        """Send a call and raise :class:`KongRejected` unless its status is in ``accept``."""
        return require(call, self.call(call), *(accept or (200, 201, 204)))

    def run(self, flow: Flow[T]) -> T:
        """Drive a flow to its end; one retry budget covers the whole flow."""
        deadline = self._core.deadline()
        try:
            call = next(flow)
            while True:
                call = flow.send(self.call(call, deadline))
        except StopIteration as stop:
            result: T = stop.value
            return result

    def list_all(self, path: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """Every entity of a collection, following Kong's pagination."""
        return self.run(paginate(path, params))

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _never() -> bool:
    return False


@dataclass(frozen=True)
class Pace:
    """How a background read shares Kong and the event loop with the changes being served.

    After each call (and the flow's work on its reply) the reader rests
    ``ratio`` times as long as they took. Then, while ``busy()`` says a change
    is on its way to Kong, it waits on, looking every ``look`` seconds, for at
    most ``give_way`` seconds: the change's reads and writes then find Kong
    (and this process) without the read's calls ahead of them. A change lasts
    milliseconds, and what makes one busy (a Consul answer being followed up,
    a plan, a write) has several sources: looking is simpler than having each
    of them signal, and ``give_way`` keeps a stream of changes from starving
    the read.
    """

    ratio: float
    busy: Callable[[], bool] = _never
    look: float = 0.002
    give_way: float = 0.5


class AsyncKongClient:
    """The asyncio twin of :class:`KongClient`, same calls and errors.

    One pooled connection set of ``max_connections`` is shared by every task;
    cancelling a task cancels its request and its retries at once.
    """

    def __init__(
        self,
        connection: KongConnection | None = None,
        retry: RetryPolicy | None = None,
        observer: Observer | None = None,
        max_connections: int = 100,
    ) -> None:
        self._core = _Core(connection or KongConnection(), retry or RetryPolicy(), observer)
        connection = self._core.connection
        ssl_context = None  # loading the CA bundle takes ~0.1 s: only for an https Admin API
        if connection.admin_url.lower().startswith("https:"):
            ssl_context = httpx.create_ssl_context(
                verify=connection.verify, cert=connection.client_cert
            )
        # Straight to the lean transport: httpx's request and response objects cost about
        # as much CPU as the exchange itself, tens of thousands of times in an initial sync.
        self._transport = LeanTransport(max_connections, ssl_context)
        self._requests = RequestEncoder(connection)
        self.in_flight = 0  # requests sent and not yet answered (a stop abandons them)

    @property
    def requests_sent(self) -> int:
        return self._core.requests

    async def call(self, call: Call, deadline: float | None = None) -> Reply:
        try:
            return await self._send(call)  # the common case, without the retry machinery
        except _Transient:
            pass
        deadline = deadline if deadline is not None else self._core.deadline()
        try:
            async for attempt in AsyncRetrying(**self._core.retrying_kwargs(deadline)):
                with attempt:
                    return await self._send(call)
        except RetryError as error:
            raise _unavailable(call, error) from None
        raise AssertionError("unreachable")  # pragma: no cover

    async def _send(self, call: Call) -> Reply:
        self.in_flight += 1
        timeout = self._core.connection.timeout_seconds
        try:
            answer = await self._transport.exchange(
                self._requests.origin, call.method, self._requests.encode(call), timeout, timeout
            )
        except httpx.HTTPError as exc:
            self._core.observe(call, "error")
            raise self._core.as_transient(exc) from exc
        finally:
            self.in_flight -= 1
        self._core.observe(call, str(answer.status))
        return self._core.decode(call, answer.status, answer.body)

    def twin(self) -> KongClient:
        """A blocking client on the same connection (for code that must call Kong from sync)."""
        return KongClient(self._core.connection, self._core.retry, self._core.observer)

    async def expect(self, call: Call, *accept: int) -> Reply:
        return require(call, await self.call(call), *(accept or (200, 201, 204)))

    async def run(self, flow: Flow[T], per_call: bool = False, pace: Pace | None = None) -> T:
        """Drive a flow; one retry budget for the whole flow, or (``per_call``) one per call.

        Per-call budgets suit long reads (pagination): a page that fails is
        retried alone instead of the whole read starting over. ``pace`` makes it
        a background read (see :class:`Pace`).
        """
        deadline = self._core.deadline()
        try:
            call = next(flow)
        except StopIteration as stop:
            return cast(T, stop.value)
        while True:
            if per_call:
                deadline = self._core.deadline()
            started = time.monotonic()
            reply = await self.call(call, deadline)
            try:
                call = flow.send(reply)
            except StopIteration as stop:
                await self._rest(pace, started)  # the last call of a flow rests too
                return cast(T, stop.value)
            await self._rest(pace, started)

    @staticmethod
    async def _rest(pace: Pace | None, started: float) -> None:
        if pace is None:
            return
        await asyncio.sleep(pace.ratio * (time.monotonic() - started))
        give_up = time.monotonic() + pace.give_way
        while pace.busy() and time.monotonic() < give_up:
            await asyncio.sleep(pace.look)

    async def list_all(
        self, path: str, params: dict[str, Any] | None = None
    ) -> list[dict[str, Any]]:
        return await self.run(paginate(path, params))

    async def aclose(self) -> None:
        await self._transport.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
