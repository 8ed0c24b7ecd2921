"""Leader election on a Consul session lock, the way ``consul lock`` and Vault's HA do it.

Every replica holds a session (``Behavior=release``, a TTL and a ``LockDelay``)
named after the instance, renews it every TTL/2, and tries to acquire one KV key
with it (``PUT /v1/kv/<key>?acquire=<session>``). The holder is the leader and
the only replica that writes to Kong. The others block on the key and try again
as soon as it is released (a SIGTERMed leader releases at once) or its holder's
session is invalidated, then the lock-delay runs.

A SIGKILLed leader's session would only be reaped 2 x TTL after its last renewal
(Consul arms the timer at TTL x ``SessionTTLMultiplier``), and 10 s is Consul's
smallest TTL. So the session is also tied to a health check: each replica
registers a service ``kong-bridge`` on the agent it talks to, with a short TTL
check that it passes every check-TTL/5, and creates its session with
``ServiceChecks`` on it. When the replica dies the check lapses, goes critical,
and Consul invalidates the session at once. A service check, not a node check:
a critical node check would mark every service on that node unhealthy.

Safety: a leader stops writing when it has not *sent* a successful renewal for
4/5 of the session TTL, nor a successful check pass for 3/5 of the check TTL,
so it stops before Consul can invalidate its session; the rest of the TTL plus
the lock-delay covers a write that was already in flight.
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
RELEASE_TIMEOUT = 0.3  # a shutdown spends about four times this on the release at most
SERVICE_NAME = "kong-bridge"  # the service each replica registers for its check


class LeaderError(Exception):
    """Consul refused or failed a session or lock request."""


@dataclass(frozen=True)
class LockOptions:
    """Where the lock lives and how long a session lasts without renewal."""

    key: str
    instance: str  # the session's name and the key's value: who leads
    ttl_seconds: int = 10
    lock_delay_seconds: int = 8
    check_ttl_seconds: int = 5  # 0: no check, the session TTL alone (failover 2 x TTL + delay)
    service_tags: tuple[str, ...] = ()  # e.g. the opt-out tag, so no bridge exposes it

    @property
    def renew_every(self) -> float:
        return self.ttl_seconds / 2

    @property
    def renewal_lease(self) -> float:
        """How long after a renewal was sent the leader may write: Consul reaps at TTL at the
        earliest, and the last fifth of it is the margin."""
        return self.ttl_seconds * 4 / 5

    @property
    def pass_every(self) -> float:
        return self.check_ttl_seconds / 5

    @property
    def pass_lease(self) -> float:
        """How long after a check pass was sent the leader may write: the check lapses at its
        TTL at the earliest; the last two fifths, plus the lock-delay, cover a write in flight."""
        return self.check_ttl_seconds * 3 / 5

    @property
    def request_timeout(self) -> float:
        """Every call ends well before the fence: a hung Consul cannot hold us past it."""
        shortest = min(self.renew_every, self.pass_every or self.renew_every)
        return max(0.5, shortest / 2)

    @property
    def service_id(self) -> str:
        return f"{SERVICE_NAME}-{self.instance}"

    @property
    def check_id(self) -> str:
        return f"{self.service_id}:session"


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
        body: dict[str, Any] = {
            "Name": f"kong-bridge {self.options.instance}",
            "TTL": f"{self.options.ttl_seconds}s",
            "LockDelay": f"{self.options.lock_delay_seconds}s",
            "Behavior": "release",
        }
        if self.options.check_ttl_seconds:
            body["NodeChecks"] = ["serfHealth"]
            body["ServiceChecks"] = [{"ID": self.options.check_id}]
        response = self._request("PUT", "/v1/session/create", json=body)
        return str(response.json()["ID"])

    def renew(self, session: str) -> bool:
        """False when Consul no longer knows the session (it expired or was destroyed)."""
        response = self._request("PUT", f"/v1/session/renew/{session}", missing_ok=True)
        return response.status_code == 200

    def register_service_check(self) -> None:
        """(Re)register our service and its TTL check, passing, on the agent we talk to."""
        options = self.options
        body = {
            "ID": options.service_id,
            "Name": SERVICE_NAME,
            "Tags": list(options.service_tags),
            "Meta": {"lock_key": options.key, "instance": options.instance},
            "Check": {
                "CheckID": options.check_id,
                "Name": f"kong-bridge {options.instance} is alive",
                "TTL": f"{options.check_ttl_seconds}s",
                "Status": "passing",
                # Real Consul then removes the registration of a replica that died.
                "DeregisterCriticalServiceAfter": "1m",
            },
        }
        self._request("PUT", "/v1/agent/service/register", json=body)

    def pass_check(self) -> bool:
        """False when the agent no longer knows the check (the agent restarted, or someone
        removed it): the session tied to it is gone too."""
        path = f"/v1/agent/check/pass/{self.options.check_id}"
        return self._request("PUT", path, missing_ok=True).status_code == 200

    def deregister_service_check(self, service_id: str | None = None) -> None:
        service_id = service_id or self.options.service_id
        self._request("PUT", f"/v1/agent/service/deregister/{service_id}", missing_ok=True)

    def stale_registrations(self) -> list[str]:
        """Services of other replicas of this lock on this agent whose checks are all critical:
        replicas that died (a SIGKILL leaves its registration behind)."""
        services = self._request("GET", "/v1/agent/services").json() or {}
        checks = self._request("GET", "/v1/agent/checks").json() or {}
        stale = []
        for service_id, service in services.items():
            ours = (
                service.get("Service") == SERVICE_NAME
                and (service.get("Meta") or {}).get("lock_key") == self.options.key
            )
            if not ours or service_id == self.options.service_id:
                continue
            statuses = [
                c.get("Status") for c in checks.values() if c.get("ServiceID") == service_id
            ]
            if statuses and all(status == "critical" for status in statuses):
                stale.append(str(service_id))
        return stale

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
        self.api = SessionLock(endpoint, options, timeout=options.request_timeout)
        self.lock = threading.Lock()  # guards the fields below
        self.io_lock = threading.Lock()  # serialises acquire and release calls
        self.session = ""
        self.renewed_at = 0.0  # when the last successful renewal (or creation) was sent
        self.passed_at = 0.0  # when the last successful check pass (or registration) was sent
        self.swept = False  # stale registrations of dead replicas removed once, at start
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
        """At shutdown: release the key (no lock-delay for the next leader), then the session,
        then our check.

        Best effort within about a second: a Consul that does not answer cannot
        hold the shutdown, and the session then ends when its check lapses.
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
            if self.options.check_ttl_seconds:
                api.deregister_service_check()
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
        wait = max(0.05, self._next_beat() - time.monotonic())
        index, self.holder = self.api.holder(index, wait)
        if self.leading and self.holder != self.session:
            self._become(False, "the lock was taken from us")
        return index

    def _acquire(self) -> bool:
        # Serialised with release(): a shutdown never races a fresh acquisition.
        with self.io_lock:
            session = self.session
            return bool(session) and not self.stop_event.is_set() and self.api.acquire(session)

    def _next_beat(self) -> float:
        """When the session is next renewed or the check next passed, whichever comes first."""
        due = self.renewed_at + self.options.renew_every
        if self.options.check_ttl_seconds:
            due = min(due, self._next_pass())
        return due

    def _next_pass(self) -> float:
        return self.passed_at + self.options.pass_every

    def _lease_end(self) -> float:
        """Until when the leader may write: before Consul can invalidate its session."""
        end = self.renewed_at + self.options.renewal_lease
        if self.options.check_ttl_seconds:
            end = min(end, self.passed_at + self.options.pass_lease)
        return end

    def _keep_session(self) -> None:
        if self.stop_event.is_set():
            return
        if not self.session:
            self._create_session()
            return
        now = time.monotonic()
        alive = True
        pass_due = bool(self.options.check_ttl_seconds) and now >= self._next_pass()
        # Passed too late (e.g. the process was paused): the check may have lapsed and taken
        # the session with it, which a pass does not tell. The renewal right after does.
        lapsed = pass_due and now >= self.passed_at + self.options.check_ttl_seconds
        if pass_due:
            alive = self.api.pass_check()
            if alive:
                with self.lock:
                    self.passed_at = now
        if alive and (lapsed or now >= self.renewed_at + self.options.renew_every):
            alive = self.api.renew(self.session)
            if alive:
                with self.lock:
                    self.renewed_at = now
        if alive:
            with self.lock:
                if self.leading:
                    self.write_until = self._lease_end()
            return
        with self.lock:
            self.session = ""
        if self.leading:
            self._become(False, "our session or its check is gone")

    def _create_session(self) -> None:
        """Register (or re-register) our check, passing, then a session tied to it."""
        if self.options.check_ttl_seconds:
            self._sweep_stale_registrations()
        sent = time.monotonic()
        if self.options.check_ttl_seconds:
            self.api.register_service_check()
        session = self.api.create()
        with self.lock:
            self.session, self.renewed_at, self.passed_at = session, sent, sent

    def _sweep_stale_registrations(self) -> None:
        """Once: remove the critical registrations that SIGKILLed replicas left on this agent."""
        if self.swept:
            return
        for service_id in self.api.stale_registrations():
            self.api.deregister_service_check(service_id)
            log.info(
                "removed the registration of a dead replica",
                extra={"action": "leader-election", "outcome": "ok", "service": service_id},
            )
        self.swept = True

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
                self.write_until = self._lease_end()
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
