"""A Kong Admin API client (sync and async) that knows nothing of Consul."""

from .calls import Call, Flow, Reply
from .client import AsyncKongClient, KongClient, KongConnection, Pace, RetryPolicy
from .errors import KongBadAnswer, KongClientError, KongRejected, KongUnavailable

__all__ = [
    "AsyncKongClient",
    "Call",
    "Flow",
    "KongBadAnswer",
    "KongClient",
    "KongClientError",
    "KongConnection",
    "KongRejected",
    "KongUnavailable",
    "Pace",
    "Reply",
    "RetryPolicy",
]
