"""The deletion guard: what a plan may delete, judged over time, not one plan at a time.

Deletions are the one thing the bridge cannot take back, so they pass here
between the diff and the apply (``plan in -> guarded plan out``). The rules:

- **Doubt.** A service whose Consul read is not trusted (an index reset, an
  empty answer after a full one) keeps everything: its deletions are held
  until a trusted read says the same.
- **Mass removal, over a sliding window.** A service *removal* (its Kong
  service goes) first waits ``settle_seconds``, so a burst of deregistrations
  is judged as one. Removals are then counted over the last
  ``window_seconds``, together with those pending and held, against the
  number of services we owned during the window (at least at its start). Beyond
  ``max_delete_share`` of them (and more than one), removals are held.
- **Held stays held** (later plans do not erase it) until an operator
  releases it (``kong-bridge release-deletes``, or ``sync --once
  --release-deletes``), or, when ``confirm_after_seconds`` is set, until the
  catalog has been trusted and stable (no new removal held, no doubtful read)
  for that long. A held service that comes back in Consul is simply no
  longer held.

Everything held is reported as plain :class:`HeldDeletion` records.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field

from .children import KeptParent, keep_parents, parent_deletions
from .plan import Operation, Plan

log = logging.getLogger("bridge")
REMINDER_SECONDS = 60.0


def _some(names: Iterable[str], shown: int = 10) -> str:
    """A list of names for a log line, cut short."""
    ordered = sorted(names)
    more = f",... ({len(ordered)} in all)" if len(ordered) > shown else ""
    return ",".join(ordered[:shown]) + more


@dataclass(frozen=True)
class HeldDeletion:
    """One deletion the guard did not let through, and why."""

    service: str
    kind: str  # services, routes, upstreams, targets
    name: str
    reason: str
    since: float  # Unix time it was first held

    def __str__(self) -> str:
        return f"{self.service}: delete {self.kind[:-1]} {self.name} ({self.reason})"


@dataclass(frozen=True)
class GuardPolicy:
    """How cautious the guard is (``KONG_BRIDGE_*`` settings)."""

    max_delete_share: float = 0.5
    window_seconds: float = 600.0
    settle_seconds: float = 0.0
    confirm_after_seconds: float = 0.0  # 0: only an operator releases held removals
    operator_confirmed: bool = False  # sync --once --release-deletes


@dataclass
class _Window:
    """Owned-service counts and removals let through, over the sliding window."""

    owned: deque[tuple[float, int]] = field(default_factory=deque)
    removed: deque[tuple[float, str]] = field(default_factory=deque)

    def observe(self, now: float, owned: int, window: float) -> None:
        if not self.owned or self.owned[-1][1] != owned:
            self.owned.append((now, owned))
        # Keep the last sample taken before the window's start: it is the baseline.
        while len(self.owned) > 1 and self.owned[1][0] <= now - window:
            self.owned.popleft()
        while self.removed and self.removed[0][0] <= now - window:
            self.removed.popleft()

    def baseline(self) -> int:
        """The most services we owned during the window, its start included.

        The maximum rather than the count at the start alone: a bridge that
        started on an empty Kong a minute ago owned nothing at the window's
        start, and must not then read every single removal as a mass one.
        """
        return max((count for _t, count in self.owned), default=0)


class DeletionGuard:
    """Holds deletions back; thread-safe (the status endpoint releases, the loop reviews)."""

    def __init__(
        self, policy: GuardPolicy | None = None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.policy = policy or GuardPolicy()
        self._clock = clock
        self._lock = threading.Lock()
        self._window = _Window()
        self._pending: dict[str, float] = {}  # service -> monotonic time its removal was seen
        self._held: dict[str, tuple[HeldDeletion, ...]] = {}
        self._mass_held: set[str] = set()  # held for the mass rule (releasable)
        self._released: set[str] = set()
        self._stable_since = clock()
        self._logged_at = 0.0
        self.new_holds = 0  # deletions newly held, ever (for the counter metric)
        self._fresh: dict[str, set[str]] = {}  # reason -> services newly held (to log)
        self._previous: dict[tuple[str, str, str], float] = {}  # held at the review's start

    # -- the one call the loop makes -------------------------------------------------------

    def review(
        self,
        plan: Plan,
        *,
        considered: Iterable[str],
        owned: Collection[str],
        trusted: Callable[[str], bool],
        allow_deletes: bool = True,
        children: Callable[[list[Operation]], list[KeptParent]] | None = None,
    ) -> Plan:
        """The plan without the deletions that must wait.

        ``considered``: the services this plan covers (held state of the others
        is kept); ``owned``: the services we own in Kong now (asked for its size and
        for a few names: a view will do, no copy is made); ``trusted(name)``:
        whether the Consul read behind a deletion for ``name`` is believed;
        ``children(parents)``: reads Kong for the parent deletions let through
        and returns those holding children we do not own (children.py).
        """
        now = self._clock()
        by_service = plan.by_service()
        considered = set(considered)
        with self._lock:
            self._previous = {
                (h.service, h.kind, h.name): h.since for held in self._held.values() for h in held
            }
            self._window.observe(now, len(owned), self.policy.window_seconds)
            for name in [n for n in self._held if n not in considered and n not in owned]:
                self._forget(name)  # gone from Kong by other hands: nothing left to hold
            withheld: set[str] = set()
            removals: dict[str, list[Operation]] = {}
            for name in sorted(considered):
                deletes = [op for op in by_service.get(name, []) if op.action == "delete"]
                if not deletes:
                    self._forget(name)
                elif not trusted(name):
                    self._stable_since = now
                    self._hold(name, deletes, "the Consul read they come from is not trusted")
                    withheld.add(name)
                elif not allow_deletes:
                    self._hold(name, deletes, "deletions are not allowed in this run")
                    withheld.add(name)
                elif any(op.kind == "services" for op in deletes):
                    removals[name] = deletes
                else:
                    self._forget(name)  # targets or routes of a service that stays
            withheld |= self._judge_removals(removals, now)
            self._report(now)
        guarded = Plan([op for op in plan.operations if op.service not in withheld])
        parents = parent_deletions(guarded)
        if children is None or not parents:
            return guarded
        kept = children(parents)  # reads Kong: outside the lock
        with self._lock:
            for parent in kept:
                self._keep(parent)
            self._report(now)
        return keep_parents(guarded, kept)

    def _keep(self, kept: KeptParent) -> None:
        """Report a parent kept for its unowned children (judged again at every review)."""
        op = kept.parent
        key = (op.service, op.kind, op.name)
        if key not in self._previous:
            self.new_holds += 1
            self._fresh.setdefault(kept.reason, set()).add(op.service)
        since = self._previous.get(key, time.time())
        record = HeldDeletion(op.service, op.kind, op.name, kept.reason, since)
        self._held[op.service] = (*self._held.get(op.service, ()), record)

    def _judge_removals(self, removals: dict[str, list[Operation]], now: float) -> set[str]:
        """Let removals through, or defer (settling) or hold them; returns the withheld."""
        for name in removals:
            self._pending.setdefault(name, now)
        confirmed = self._confirmed_by_stability(now)
        withheld: set[str] = set()
        ready: list[str] = []
        for name, deletes in removals.items():
            if (
                name in self._released
                or self.policy.operator_confirmed
                or (confirmed and name in self._mass_held)
            ):
                self._released.discard(name)
                self._forget(name)
                continue  # confirmed: not counted against the window
            if name in self._mass_held:
                self._hold(name, deletes, self._held[name][0].reason)
                withheld.add(name)
            elif now - self._pending[name] < self.policy.settle_seconds:
                withheld.add(name)
            else:
                ready.append(name)
        if ready:
            withheld |= self._apply_share_rule(ready, removals, now)
        return withheld

    def _apply_share_rule(
        self, ready: list[str], removals: dict[str, list[Operation]], now: float
    ) -> set[str]:
        baseline = self._window.baseline()
        counted = {name for _t, name in self._window.removed} | self._mass_held | set(self._pending)
        limit = max(1.0, self.policy.max_delete_share * baseline)
        if len(counted) <= limit:
            for name in ready:
                self._window.removed.append((now, name))
                self._pending.pop(name, None)
                self._held.pop(name, None)  # an earlier report (doubt, kept parent) is stale
            return set()
        reason = (
            f"deletes {len(counted)} of {baseline} owned services within "
            f"{self.policy.window_seconds:g}s, more than {self.policy.max_delete_share:.0%}"
        )
        for name in ready:
            self._hold(name, removals[name], reason)
            self._mass_held.add(name)
        self._stable_since = now
        return set(ready)

    def _confirmed_by_stability(self, now: float) -> bool:
        after = self.policy.confirm_after_seconds
        return bool(after and self._mass_held and now - self._stable_since >= after)

    # -- held state ------------------------------------------------------------------------

    def _hold(self, name: str, deletes: list[Operation], reason: str) -> None:
        earlier = {(k, n): since for (s, k, n), since in self._previous.items() if s == name}
        fresh = [op for op in deletes if (op.kind, op.name) not in earlier]
        if fresh:
            self.new_holds += len(fresh)
            self._fresh.setdefault(reason, set()).add(name)
        self._held[name] = tuple(
            HeldDeletion(
                name, op.kind, op.name, reason, earlier.get((op.kind, op.name), time.time())
            )
            for op in deletes
        )

    def _forget(self, name: str) -> None:
        self._held.pop(name, None)
        self._mass_held.discard(name)
        self._pending.pop(name, None)
        self._released.discard(name)

    def _report(self, now: float) -> None:
        """Log what was newly held; while anything is held, say so again now and then."""
        for reason, names in sorted(self._fresh.items()):
            log.warning(
                "deletions held",
                extra={
                    "action": "hold-deletes",
                    "outcome": "held",
                    "services": _some(names),
                    "reason": reason,
                },
            )
        self._fresh.clear()
        if self._held and now - self._logged_at >= REMINDER_SECONDS:
            self._logged_at = now
            log.warning(
                "deletions still held: 'kong-bridge release-deletes' releases them",
                extra={
                    "action": "hold-deletes",
                    "outcome": "still-held",
                    "count": sum(len(h) for h in self._held.values()),
                    "services": _some(self._held),
                },
            )
        elif not self._held:
            self._logged_at = 0.0

    # -- what others see and do ------------------------------------------------------------

    @property
    def held(self) -> tuple[HeldDeletion, ...]:
        """Every deletion held now, by service."""
        with self._lock:
            return tuple(h for name in sorted(self._held) for h in self._held[name])

    @property
    def withheld(self) -> frozenset[str]:
        """Services whose deletions the last reviews kept back (held or settling)."""
        with self._lock:
            return frozenset(self._held) | frozenset(self._pending)

    def summary(self) -> str:
        """One line for humans (``/readyz``'s ``held_back``); empty when nothing is held."""
        held = self.held
        if not held:
            return ""
        reasons = sorted({h.reason for h in held})
        return f"held back {len(held)} deletion(s): {'; '.join(reasons)}"

    def release(self, services: Iterable[str] | None = None) -> list[str]:
        """An operator confirms held removals (all, or those named); returns the released.

        Only removals held by the mass rule are released: a deletion held on a
        doubtful Consul read waits for a trusted one whatever anyone says.
        """
        with self._lock:
            wanted = set(self._mass_held) if services is None else set(services)
            released = sorted(wanted & self._mass_held)
            for name in released:
                self._held.pop(name, None)
                self._mass_held.discard(name)
                self._released.add(name)
        if released:
            log.warning(
                "held deletions released",
                extra={"action": "release-deletes", "outcome": "released", "services": released},
            )
        return released

    def due(self) -> set[str]:
        """Services to plan again: released by an operator, or done settling."""
        now = self._clock()
        with self._lock:
            settled = {
                name
                for name, at in self._pending.items()
                if name not in self._mass_held and now - at >= self.policy.settle_seconds
            }
            return settled | self._released
