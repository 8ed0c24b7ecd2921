"""A user's mistake (bad flag, setting, URL or busy port): one line, exit 1, no traceback."""

from __future__ import annotations


class UsageError(Exception):
    """Raised with a message that says what is wrong and what to do instead."""
