"""The Consul emulator's own fault: list reads that answer empty (``empty_lists``)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from ..controls import Faults


@dataclass
class ConsulFaults(Faults):
    """The shared faults, plus empty answers from ``catalog/services``, ``health/service``
    and ``health/state`` (with their real index headers), for N seconds or N answers.

    That is what a Consul agent that lost its catalog (or a faulty proxy) looks like to a
    watcher: it lets chaos tests check that an empty answer is not trusted blindly.
    """

    empty_lists_s: float = 0.0  # as set; the period runs from the PUT
    empty_lists_next: int = 0  # answers still to empty
    empty_lists_until: float = 0.0  # time.monotonic() at which the period ends

    def update(self, data: dict[str, Any]) -> None:
        super().update(data)
        if "empty_lists_s" in data:
            self.empty_lists_s = float(data["empty_lists_s"])
            self.empty_lists_until = time.monotonic() + self.empty_lists_s
        if "empty_lists_next" in data:
            self.empty_lists_next = int(data["empty_lists_next"])

    def take_empty_list(self) -> bool:
        """Whether this list answer must be empty (an answer counts against ``_next``)."""
        if self.empty_lists_next > 0:
            self.empty_lists_next -= 1
            return True
        return time.monotonic() < self.empty_lists_until
