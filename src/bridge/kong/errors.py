"""Typed errors of the Kong client."""

from __future__ import annotations

from .calls import Call, Reply


class KongClientError(Exception):
    """Base class of every error the Kong client raises."""


class KongUnavailable(KongClientError):
    """Kong could not be reached, or kept answering 5xx/429, until the retry budget ran out."""

    def __init__(self, call: Call, reason: str, attempts: int) -> None:
        super().__init__(f"{call}: Kong unavailable after {attempts} attempt(s): {reason}")
        self.call = call
        self.reason = reason
        self.attempts = attempts


class KongStopped(KongClientError):
    """The bridge is stopping: the call was not sent (or its retries were cut)."""


class KongRejected(KongClientError):
    """Kong answered a 4xx that retrying cannot fix (validation, conflict, auth)."""

    def __init__(self, call: Call, reply: Reply) -> None:
        super().__init__(f"{call}: Kong answered {reply.status}: {reply.message}")
        self.call = call
        self.reply = reply

    @property
    def status(self) -> int:
        return self.reply.status


class KongBadAnswer(KongClientError):
    """Kong answered something that is not the Admin API's JSON."""


def require(call: Call, reply: Reply, *accept: int) -> Reply:
    """The reply, or :class:`KongRejected` when its status is not one of ``accept``."""
    if reply.status not in accept:
        raise KongRejected(call, reply)
    return reply
