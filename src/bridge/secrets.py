"""Secrets: read from files when asked, and kept out of every output.

Tokens may come from files (``CONSUL_HTTP_TOKEN_FILE`` as Consul's own tools
read it, ``KONG_ADMIN_TOKEN_FILE`` likewise), so they need not sit on a
command line or in the environment. Whatever the source, the values the
bridge holds (tokens, admin header values, the credentials of
``http://user:pass@host`` URLs) are scrubbed from log lines and from error
messages before anyone sees them.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import unquote, urlsplit

from .logs import event_fields

MASK = "***"
MIN_SECRET = 3  # shorter values would mask ordinary text


class SecretFileError(ValueError):
    """A token file that cannot be read; the message names the file, never its content."""


def read_token_file(path: str) -> str:
    """The token in ``path`` (surrounding whitespace dropped, as Consul's tools do)."""
    try:
        token = Path(path).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise SecretFileError(f"cannot read the token file {path}: {reason}") from None
    if not token:
        raise SecretFileError(f"the token file {path} is empty")
    return token


def url_secrets(url: str) -> list[str]:
    """The credentials in a URL's user info, as written and decoded."""
    parts = urlsplit(url if "//" in url else "//" + url)
    if "@" not in parts.netloc:
        return []
    userinfo = parts.netloc.rsplit("@", 1)[0]
    found = [userinfo]
    if parts.password:
        found += [parts.password, unquote(parts.password)]
    return found


class Redactor:
    """Replaces each known secret value in a text with ``***``."""

    def __init__(self, secrets: Iterable[str | None]) -> None:
        values = {s for s in secrets if s and len(s) >= MIN_SECRET}
        self.secrets = sorted(values, key=len, reverse=True)  # longest first: no partial leaks

    def __call__(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, MASK)
        return text


class SecretFilter(logging.Filter):
    """A handler filter that scrubs secrets from every record it lets through."""

    def __init__(self, redact: Redactor) -> None:
        super().__init__()
        self.redact = redact

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = self.redact(message)
        if clean != message:
            record.msg, record.args = clean, None
        for key, value in event_fields(record).items():  # the fields given with extra=
            text = value if isinstance(value, str) else json.dumps(value, default=str)
            if self.redact(text) != text:
                setattr(record, key, self.redact(text))
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = self.redact(logging.Formatter().formatException(record.exc_info))
        return True


def protect_logs(redact: Redactor) -> None:
    """Scrub secrets from everything the configured log handlers write from now on."""
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, SecretFilter) for f in handler.filters):
            handler.addFilter(SecretFilter(redact))
