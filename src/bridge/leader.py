"""Leader election on a Consul session lock, the way ``consul lock`` and Vault's HA do it.

Every replica holds a session (``Behavior=release``, a TTL and a ``LockDelay``)
named after the instance, renews it every TTL/2, and tries to acquire one KV key
with it (``PUT /v1/kv/<key>?acquire=<session>``). The holder is the leader and
the only replica that writes to Kong. The others block on the key and try again
as soon as it is released (a SIGTERMed leader releases at once) or its holder's
session is invalidated (a SIGKILLed leader: after its TTL, then the lock-delay).

Safety: a leader that cannot renew stops writing ``margin`` seconds before its
session can expire, counted from when its last successful renewal was *sent*, so
two replicas never write at once (Consul never reaps a session before its TTL;
the lock-delay then covers a write that was already in flight).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

log = logging.getLogger("bridge.leader")
RETRY_SECONDS = 0.5  # between attempts while Consul fails or the lock-delay runs
RELEASE_TIMEOUT = 0.3  # a shutdown spends at most three times this on the release


class LeaderError(Exception):
    """Consul refused or failed a session or lock request."""


@dataclass(frozen=True)
class LockOptions:
    """Where the lock lives and how long a session lasts without renewal."""

    key: str
    instance: str  # the session's name and the key's value: who leads
    ttl_seconds: int = 10
    lock_delay_seconds: int = 2

    @property
    def margin_seconds(self) -> float:
        """A leader that could not renew stops writing this long before its TTL runs out."""
        return self.ttl_seconds / 5

    @property
    def renew_every(self) -> float:
        return self.ttl_seconds / 2


@dataclass(frozen=True)
class ConsulEndpoint:
    """How to reach Consul's HTTP API (the bridge's CONSUL_* settings)."""

    base_url: str
    token: str | None = None
    verify: bool | str = True
    cert: Any = None
    datacenter: str | None = None

    def client(self, timeout: float) -> httpx.Client:
        headers = {"X-Consul-Token": self.token} if self.token else {}
        return httpx.Client(
            base_url=self.base_url,
            headers=headers,
            verify=self.verify,
            cert=self.cert,
            timeout=timeout,
        )


class SessionLock:
    """The Consul calls a lock needs, with plain errors (no retries here)."""

    def __init__(self, endpoint: ConsulEndpoint, options: LockOptions, timeout: float) -> None:
        self.options = options
        self.http = endpoint.client(timeout)
        self.params: dict[str, str] = {"dc": endpoint.datacenter} if endpoint.datacenter else {}

    def _request(
        self, method: str, path: str, missing_ok: bool = False, **kwargs: Any
    ) -> httpx.Response:
        params = {**self.params, **kwargs.pop("params", {})}
        try:
            response = self.http.request(method, path, params=params, **kwargs)
        except httpx.HTTPError as exc:
            raise LeaderError(f"{method} {path}: {type(exc).__name__}: {exc}") from exc
        if response.status_code >= 400 and not (missing_ok and response.status_code == 404):
            raise LeaderError(
                f"{method} {path}: Consul answered {response.status_code}: "
                f"{response.text.strip()[:200]}"
            )
        return response

    def create(self) -> str:
        body = {
            "Name": f"kong-bridge {self.options.instance}",
            "TTL": f"{self.options.ttl_seconds}s",
            "LockDelay": f"{self.options.lock_delay_seconds}s",
            "Behavior": "release",
        }
        response = self._request("PUT", "/v1/session/create", json=body)
        return str(response.json()["ID"])

    def renew(self, session: str) -> bool:
        """False when Consul no longer knows the session (it expired or was destroyed)."""
        response = self._request("PUT", f"/v1/session/renew/{session}", missing_ok=True)
        return response.status_code == 200

    def acquire(self, session: str) -> bool:
        value = json.dumps({"instance": self.options.instance}).encode()
        response = self._request(
            "PUT", f"/v1/kv/{self.options.key}", params={"acquire": session}, content=value
        )
        return response.json() is True

    def release(self, session: str) -> None:
        self._request("PUT", f"/v1/kv/{self.options.key}", params={"release": session})

    def destroy(self, session: str) -> None:
        self._request("PUT", f"/v1/session/destroy/{session}")

    def holder(self, index: int, wait: float) -> tuple[int, str]:
        """Block until the key changes past ``index`` (or ``wait``); returns (index, session)."""
        params = {"index": str(index), "wait": f"{max(1, int(wait * 1000))}ms"} if index else {}
        # The client timeout outlasts the wait plus Consul's jitter (wait/16).
        timeout = self.http.timeout.read or 0.0
        response = self._request(
            "GET",
            f"/v1/kv/{self.options.key}",
            missing_ok=True,
            params=params,
            timeout=timeout + wait * 17 / 16,
        )
        new_index = int(response.headers.get("X-Consul-Index", "0") or 0)
        if response.status_code == 404:
            return new_index, ""
        rows = response.json() or [{}]
        return new_index, str(rows[0].get("Session") or "")

    def close(self) -> None:
        self.http.close()


class LeaderElection:
    """Runs the election in a thread; :meth:`may_write` is the fence the writers consult."""

    def __init__(
        self,
        endpoint: ConsulEndpoint,
        options: LockOptions,
        stop: threading.Event,
        *,
        on_change: Callable[[bool], None] = lambda leading: None,
        on_consul: Callable[[bool, str], None] = lambda ok, detail: None,
    ) -> None:
        self.endpoint = endpoint
        self.options = options
        self.stop_event = stop
        self.on_change = on_change
        self.on_consul = on_consul
        # Requests must end well before the fence: a hung Consul cannot hold us past it.
        self.api = SessionLock(endpoint, options, timeout=max(0.5, options.ttl_seconds / 4))
        self.lock = threading.Lock()  # guards the fields below
        self.io_lock = threading.Lock()  # serialises acquire and release calls
        self.session = ""
        self.renewed_at = 0.0  # when the last successful renewal (or creation) was sent
        self.leading = False
        self.write_until = 0.0
        self.holder = ""  # the session holding the key, as last read
        self.thread = threading.Thread(target=self._run, name="leader-election", daemon=True)

    # -- what the rest of the bridge reads -------------------------------------------------

    def may_write(self) -> bool:
        """True while this replica holds the lock and its session cannot have expired."""
        if self.stop_event.is_set():
            return False
        with self.lock:
            return self.leading and time.monotonic() < self.write_until

    @property
    def role(self) -> str:
        return "leader" if self.may_write() else "standby"

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        self.thread.start()

    def release(self) -> None:
        """At shutdown: release the key (no lock-delay for the next leader), then the session.

        Best effort within about a second: a Consul that does not answer cannot
        hold the shutdown, and the session then ends by its TTL.
        """
        serialised = self.io_lock.acquire(timeout=RELEASE_TIMEOUT)
        try:
            with self.lock:
                session, self.session = self.session, ""
                self.leading = False
            if session:
                self._give_up(session)
        finally:
            if serialised:
                self.io_lock.release()

    def _give_up(self, session: str) -> None:
        api = SessionLock(self.endpoint, self.options, timeout=RELEASE_TIMEOUT)
        try:
            api.release(session)
            api.destroy(session)
            log.info(
                "lock released",
                extra={"action": "release-lock", "outcome": "ok", "key": self.options.key},
            )
        except LeaderError as exc:
            log.warning(
                "could not release the lock",
                extra={"action": "release-lock", "outcome": "failed", "problem": str(exc)},
            )
        finally:
            api.close()

    # -- the election loop -----------------------------------------------------------------

    def _run(self) -> None:
        index = 0
        last_problem = ""
        while not self.stop_event.is_set():
            try:
                index = self._turn(index)
                self.on_consul(True, "")
                last_problem = ""
            except Exception as exc:  # any failure (also an odd answer): report, retry
                problem = str(exc)
                self.on_consul(False, problem)
                if problem != last_problem:  # once per problem, not twice a second
                    log.warning(
                        "leader election cannot reach Consul",
                        extra={
                            "action": "leader-election",
                            "outcome": "consul-failed",
                            "problem": problem,
                        },
                    )
                last_problem = problem
                index = 0
                self._fence_if_expired()
                self.stop_event.wait(RETRY_SECONDS)

    def _turn(self, index: int) -> int:
        """One step: keep a live session, try the lock if free, then wait for the key to change."""
        self._keep_session()
        self._fence_if_expired()
        if not self.session or self.stop_event.is_set():
            return 0
        if not self.leading:
            if not index:
                index, self.holder = self.api.holder(0, 0)
            # Like `consul lock`: only a free key is worth an acquire (each one is a Raft write).
            if not self.holder:
                if not self._acquire():  # free, yet refused: the lock-delay runs; poll
                    self.stop_event.wait(RETRY_SECONDS)
                    return 0
                self._become(True, "acquired the lock")
        wait = max(0.05, self.renewed_at + self.options.renew_every - time.monotonic())
        index, self.holder = self.api.holder(index, wait)
        if self.leading and self.holder != self.session:
            self._become(False, "the lock was taken from us")
        return index

    def _acquire(self) -> bool:
        # Serialised with release(): a shutdown never races a fresh acquisition.
        with self.io_lock:
            session = self.session
            return bool(session) and not self.stop_event.is_set() and self.api.acquire(session)

    def _keep_session(self) -> None:
        if self.stop_event.is_set():
            return
        if not self.session:
            sent = time.monotonic()
            session = self.api.create()
            with self.lock:
                self.session, self.renewed_at = session, sent
            return
        if time.monotonic() < self.renewed_at + self.options.renew_every:
            return
        sent = time.monotonic()
        if self.api.renew(self.session):
            with self.lock:
                self.renewed_at = sent
                if self.leading:
                    self.write_until = sent + self.options.ttl_seconds - self.options.margin_seconds
            return
        with self.lock:
            self.session = ""
        if self.leading:
            self._become(False, "our session expired")

    def _fence_if_expired(self) -> None:
        with self.lock:
            expired = self.leading and time.monotonic() >= self.write_until
        if expired:
            self._become(False, "could not renew the session in time")

    def _become(self, leading: bool, why: str) -> None:
        with self.lock:
            if leading == self.leading:
                return
            self.leading = leading
            if leading:
                self.write_until = (
                    self.renewed_at + self.options.ttl_seconds - self.options.margin_seconds
                )
        log.warning(
            "leadership changed",
            extra={
                "action": "leadership",
                "outcome": "leader" if leading else "standby",
                "instance": self.options.instance,
                "key": self.options.key,
                "reason": why,
            },
        )
        self.on_change(leading)
