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
    retry_at: float | None = None
    generation: int = 0

    def touch(self) -> None:
        self.generation += 1


class ServiceTable:
    """Every service the bridge has heard of, by name."""

    def __init__(self) -> None:
        self.records: dict[str, ServiceRecord] = {}

    def get(self, name: str) -> ServiceRecord:
        record = self.records.get(name)
        if record is None:
            record = self.records[name] = ServiceRecord(name)
        return record

    def listed(self) -> set[str]:
        return {name for name, record in self.records.items() if record.listed}

    def due_retries(self, now: float) -> set[str]:
        return {
            name
            for name, record in self.records.items()
            if record.retry_at is not None and record.retry_at <= now
        }

    def next_retry(self) -> float | None:
        times = [r.retry_at for r in self.records.values() if r.retry_at is not None]
        return min(times) if times else None

    def forget(self, name: str) -> None:
        """Drop a service that is neither listed in Consul nor owned in Kong."""
        self.records.pop(name, None)
