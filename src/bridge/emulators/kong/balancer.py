"""Kong's round-robin ring balancer over an upstream's targets, without I/O.

As ``kong/runloop/balancer/round_robin.lua`` does: each target gets
``weight / gcd(weights)`` slots on a wheel, the wheel is shuffled once per
change, and every request takes the next available slot. Weight-0 targets get
no slot; targets marked unhealthy (``PUT .../unhealthy``) are skipped. Over
one turn of the wheel each target is picked exactly in proportion to its
weight.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

Row = dict[str, Any]


@dataclass(frozen=True)
class Peer:
    """One target: where to connect, and the name Kong puts in the Host header."""

    host: str  # as written in the target (a name or an IP; IPv6 without brackets)
    port: int
    target_id: str


def parse_target(target: str) -> tuple[str, int]:
    """``host:port`` or ``[v6]:port`` (the emulator stores targets normalised)."""
    host, _, port = target.rpartition(":")
    return host.strip("[]"), int(port)


@dataclass
class Wheel:
    """The shuffled slots of one upstream and the position of the last pick."""

    slots: list[Peer]
    pointer: int = 0

    @classmethod
    def build(cls, targets: Iterable[Row], rng: random.Random) -> Wheel:
        weighted = [t for t in targets if t["weight"] > 0]
        divisor = 0
        for target in weighted:
            divisor = math.gcd(divisor, target["weight"])
        slots: list[Peer] = []
        for target in weighted:
            host, port = parse_target(target["target"])
            slots.extend([Peer(host, port, target["id"])] * (target["weight"] // divisor))
        rng.shuffle(slots)
        return cls(slots)

    def next_peer(self, unavailable: Iterable[str] = ()) -> Peer | None:
        """The next slot whose target is available; None after a full turn without one."""
        skip = set(unavailable)
        for _ in range(len(self.slots)):
            self.pointer = (self.pointer + 1) % len(self.slots)
            peer = self.slots[self.pointer]
            if peer.target_id not in skip:
                return peer
        return None


@dataclass
class Balancers:
    """One wheel per upstream, rebuilt when its targets change (the others keep turning)."""

    rng: random.Random = field(default_factory=random.Random)
    wheels: dict[str, tuple[tuple[tuple[str, str, int], ...], Wheel]] = field(default_factory=dict)

    def wheel(self, upstream_id: str, targets: list[Row]) -> Wheel:
        signature = tuple(sorted((t["id"], t["target"], t["weight"]) for t in targets))
        known = self.wheels.get(upstream_id)
        if known is not None and known[0] == signature:
            return known[1]
        wheel = Wheel.build(sorted(targets, key=lambda t: t["id"]), self.rng)
        self.wheels[upstream_id] = (signature, wheel)
        return wheel
