"""Logging set-up: one event per line, as text (logfmt-style fields) or as JSON.

Log calls pass their facts as fields, not inside the message::

    log.error("service skipped", extra={"service": "billing", "problem": "..."})

so ``--log-json`` writes them as real JSON keys (``service``, ``action``,
``outcome``, ``problem``, ``entity``, ...) and text mode appends them as
``key=value``, quoting values that contain spaces.
"""

from __future__ import annotations

import functools
import json
import logging
import re
import sys
import time
from typing import Any

# What every LogRecord carries; anything else on a record came from ``extra=``.
_STANDARD = frozenset(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {
    "message",
    "asctime",
    "taskName",
}
LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}


def event_fields(record: logging.LogRecord) -> dict[str, Any]:
    """The structured fields a log call passed with ``extra=``, in the order given."""
    return {k: v for k, v in record.__dict__.items() if k not in _STANDARD and v is not None}


def _timestamp(record: logging.LogRecord) -> str:
    return f"{_second(int(record.created))}.{int(record.msecs):03d}Z"


@functools.lru_cache(maxsize=4)
def _second(seconds: int) -> str:
    # An initial sync logs thousands of lines a second: format each second once.
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))


_PLAIN_WORD = re.compile(r'[^\s"=\\]+')  # no space (Unicode's too), quote, equals or backslash


def quote(value: Any) -> str:
    """A field value for text logs: bare when it is one plain word, else double-quoted."""
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if _PLAIN_WORD.fullmatch(text) else json.dumps(text)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, then the event's fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": _timestamp(record),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            **event_fields(record),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


class TextFormatter(logging.Formatter):
    """``time LEVEL logger: message key=value key="two words"``."""

    def format(self, record: logging.LogRecord) -> str:
        fields = " ".join(f"{key}={quote(value)}" for key, value in event_fields(record).items())
        line = f"{_timestamp(record)} {record.levelname} {record.name}: {record.getMessage()}"
        if fields:
            line += " " + fields
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def setup_logging(json_logs: bool = False, level: int | str = logging.INFO) -> None:
    """Send every log line to stderr, as JSON or text, at ``level`` (a name or a number)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if json_logs else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(LEVELS[level] if isinstance(level, str) else level)
    for noisy in ("httpx", "httpcore", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
