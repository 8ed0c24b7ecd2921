"""Page offsets as Kong's postgres strategy writes and reads them.

An offset is ``ngx.encode_base64(cjson.encode(key), true)``: the JSON of the last
row's key (``[id]``, or ``[entity_id, ordinality]`` for ``/tags``), base64 without
padding. Reading takes padded ones too, and refuses with Kong's two messages.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from . import errors as e


def encode_offset(key: list[Any]) -> str:
    raw = json.dumps(key, separators=(",", ":")).encode()
    return base64.b64encode(raw).decode().rstrip("=")


def decode_offset(offset: str) -> list[Any]:
    """The key an offset holds: a list whose first item is a string (an id)."""
    try:
        raw = base64.b64decode(offset + "=" * (-len(offset) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise e.api_error(7, f"'{offset}' is not a valid offset: bad base64 encoding") from None
    try:
        key = json.loads(raw)
    except ValueError:
        key = None
    if not isinstance(key, list) or not key or not isinstance(key[0], str):
        raise e.api_error(7, f"'{offset}' is not a valid offset: bad json encoding")
    return key
