"""One planned write to Kong, as plain data (what ``plan`` prints and ``apply`` carries out)."""

from __future__ import annotations

from dataclasses import dataclass

from .kong.calls import Call


@dataclass(frozen=True)
class Operation:
    """One write: which Consul service it serves, what it does, and the call to make."""

    service: str
    kind: str  # services, routes, upstreams, targets
    action: str  # create, update, delete
    name: str
    call: Call
    changes: tuple[str, ...] = ()

    def __str__(self) -> str:
        detail = f" ({', '.join(self.changes)})" if self.changes else ""
        return f"{self.action} {self.kind[:-1]} {self.name}{detail}"
