"""One record per Consul service: everything the loop knows about it, in one place."""

from __future__ import annotations

from dataclasses import dataclass

from .actual import OwnedService
from .mapping import ServiceMapping
from .snapshot import ServiceSnapshot


@dataclass(slots=True)
class ServiceRecord:
    """What the bridge knows of one service, from Consul and from its own writes.

    ``generation`` moves whenever the service's desired state or Kong state
    may have changed, so a plan made earlier can tell it has gone stale. Kong's
    rows for it are compared by identity: a read that finds them unchanged
    keeps the objects already held (see ``Bridge._adopt``).
    """

    name: str
    listed: bool = False  # in the last trusted catalog answer
    snapshot: ServiceSnapshot | None = None  # None: its first read has not arrived
    trusted: bool = False  # the snapshot may justify deletions
    mapping: ServiceMapping | None = None  # cached mapping of ``snapshot``
    seen_at: float | None = None  # when the change being propagated was seen
    failures: int = 0
    generation: int = 0
    # (generation, Kong's entities) at which a full pass last found nothing to write:
    # while neither moves, the next full pass has nothing to learn from diffing it again.
    in_step: tuple[int, OwnedService | None] | None = None

    def found_in_step(self, owned: OwnedService | None) -> None:
        """A full pass diffed it against ``owned`` and planned nothing."""
        self.in_step = (self.generation, owned)

    def still_in_step(self, owned: OwnedService | None) -> bool:
        """Nothing moved since it was found in step: not its desired state, not Kong's rows
        (the same rows, or a re-read of them: equal, their values shared by the row pool)."""
        if self.in_step is None or self.in_step[0] != self.generation:
            return False
        if self.in_step[1] is owned:
            return True
        if self.in_step[1] != owned:
            return False
        self.in_step = (self.generation, owned)  # hold the re-read: the older copy can go
        return True

    def touch(self) -> None:
        self.generation += 1


class ServiceTable:
    """Every service the bridge has heard of, by name."""

    def __init__(self) -> None:
        self.records: dict[str, ServiceRecord] = {}
        self.retries: dict[str, float] = {}  # service -> when to try its writes again
        self.failing: set[str] = set()  # services whose last writes failed
        # Kept in step by list/unlist/read, so the loop's every-turn questions are O(1).
        self._listed: set[str] = set()
        self._unread: set[str] = set()  # listed, first read not arrived yet

    def get(self, name: str) -> ServiceRecord:
        record = self.records.get(name)
        if record is None:
            record = self.records[name] = ServiceRecord(name)
        return record

    def listed(self) -> set[str]:
        """The listed services (a copy)."""
        return set(self._listed)

    def list(self, name: str) -> ServiceRecord:
        """``name`` is in the catalog now."""
        record = self.get(name)
        record.listed = True
        self._listed.add(name)
        if record.snapshot is None:
            self._unread.add(name)
        return record

    def unlist(self, name: str) -> ServiceRecord:
        """``name`` left the catalog: what Consul said of it is forgotten."""
        record = self.get(name)
        record.listed, record.snapshot, record.mapping = False, None, None
        self._listed.discard(name)
        self._unread.discard(name)
        return record

    def read(self, record: ServiceRecord, snapshot: ServiceSnapshot, trusted: bool) -> None:
        """A read of a listed service arrived."""
        record.snapshot, record.trusted = snapshot, trusted
        self._unread.discard(record.name)

    def all_read(self) -> bool:
        """Every listed service has had its first read (so none is missing from a plan)."""
        return not self._unread

    def failed(self, name: str, at: float) -> None:
        """Count a failure of ``name``'s writes; they are tried again at ``at``."""
        self.get(name).failures += 1
        self.retries[name] = at
        self.failing.add(name)

    def succeeded(self, name: str) -> None:
        self.get(name).failures = 0
        self.retries.pop(name, None)
        self.failing.discard(name)

    def take_due_retries(self, now: float) -> set[str]:
        """The services whose retry time has come (no longer scheduled once taken)."""
        due = {name for name, at in self.retries.items() if at <= now}
        for name in due:
            del self.retries[name]
        return due

    def next_retry(self) -> float | None:
        return min(self.retries.values()) if self.retries else None

    def forget(self, name: str) -> None:
        """Drop a service that is neither listed in Consul nor owned in Kong."""
        self.records.pop(name, None)
        self.retries.pop(name, None)
        self.failing.discard(name)
        self._listed.discard(name)
        self._unread.discard(name)
