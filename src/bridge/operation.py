"""One planned write to Kong, as plain data (what ``plan`` prints and ``apply`` carries out)."""

from __future__ import annotations

from dataclasses import dataclass, field

from .kong.calls import Call


@dataclass(frozen=True, slots=True)
class Operation:
    """One write: which Consul service it serves, what it does, and the call to make."""

    service: str
    kind: str  # services, routes, upstreams, targets
    action: str  # create, update, delete
    name: str
    call: Call
    changes: tuple[str, ...] = ()
    # Values in the call that came from Consul KV (secrets, private keys): never reported.
    secrets: tuple[str, ...] = field(default=(), repr=False)

    def __str__(self) -> str:
        detail = f" ({', '.join(self.changes)})" if self.changes else ""
        return f"{self.action} {self.kind[:-1]} {self.name}{detail}"

    def __repr__(self) -> str:  # the call's body may hold secrets: show only its line
        return (
            f"Operation({self.service!r}, {self.kind!r}, {self.action!r}, {self.name!r}, "
            f"{str(self.call)!r}, {self.changes!r})"
        )

    def redacted(self, message: str) -> str:
        """``message`` (Kong's answer, which may echo a value it rejects) without our secrets."""
        return redact(message, self.secrets)


def redact(message: str, secrets: tuple[str, ...] | list[str]) -> str:
    """``message`` without the given values (longest first, so none is left half-shown)."""
    for secret in sorted(secrets, key=len, reverse=True):
        if secret.strip():
            message = message.replace(secret, "<from Consul KV>")
    return message
