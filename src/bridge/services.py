"""One record per Consul service: everything the loop knows about it, in one place."""

from __future__ import annotations

from dataclasses import dataclass

from .mapping import ServiceMapping
from .snapshot import ServiceSnapshot


@dataclass
class ServiceRecord:
    """What the bridge knows of one service, from Consul and from its own writes.

    ``generation`` moves whenever the service's desired state or Kong state
    may have changed, so a plan made earlier can tell it has gone stale.
    """

    name: str
    listed: bool = False  # in the last trusted catalog answer
    snapshot: ServiceSnapshot | None = None  # None: its first read has not arrived
    trusted: bool = False  # the snapshot may justify deletions
    mapping: ServiceMapping | None = None  # cached mapping of ``snapshot``
    seen_at: float | None = None  # when the change being propagated was seen
    failures: int = 0
    generation: int = 0

    def touch(self) -> None:
        self.generation += 1


class ServiceTable:
    """Every service the bridge has heard of, by name."""

    def __init__(self) -> None:
        self.records: dict[str, ServiceRecord] = {}
        self.retries: dict[str, float] = {}  # service -> when to try its writes again
        self.failing: set[str] = set()  # services whose last writes failed

    def get(self, name: str) -> ServiceRecord:
        record = self.records.get(name)
        if record is None:
            record = self.records[name] = ServiceRecord(name)
        return record

    def listed(self) -> set[str]:
        return {name for name, record in self.records.items() if record.listed}

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
