"""Lua's own rules that Kong's validation leans on, where Python's differ.

Lua strings are bytes (UTF-8, as the JSON arrived): ``#`` counts bytes, not
characters. ``tonumber`` is LuaJIT's scanner (``lj_strscan.c``): blanks around the
number, hexadecimal (with a fraction and a ``p`` exponent) and ``0b`` binary, ``inf``,
``infinity`` and ``nan`` in any case; but no ``_`` between digits, which Python's
``float`` takes, and no hexadecimal there.
"""

from __future__ import annotations

import math
import re
from typing import Any

_SPACE = " \t\n\v\f\r"  # lj_char_isspace
_DECIMAL = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_HEXADECIMAL = re.compile(
    r"[+-]?0[xX](?:[0-9A-Fa-f]+\.?[0-9A-Fa-f]*|\.[0-9A-Fa-f]+)(?:[pP][+-]?[0-9]+)?"
)
_BINARY = re.compile(r"[+-]?0[bB][01]+")
_SPECIAL = re.compile(r"([+-]?)(inf|infinity|nan)", re.IGNORECASE)


def tonumber(text: str) -> int | float | None:
    """LuaJIT's ``tonumber(text)`` on a string: the number, else ``None``.

    Integral values come back as ``int`` (cjson writes ``80.0`` as ``80``).
    """
    text = text.strip(_SPACE)
    if _DECIMAL.fullmatch(text):
        number = float(text)
    elif _HEXADECIMAL.fullmatch(text):
        number = float.fromhex(text)
    elif _BINARY.fullmatch(text):
        return int(text, 0)
    elif special := _SPECIAL.fullmatch(text):
        sign, word = special.groups()
        return math.nan if word.lower() == "nan" else float(f"{sign}inf")
    else:
        return None
    return int(number) if number.is_integer() else number


def length(value: Any) -> int:
    """Lua's ``#``, as Kong's length validators use it: a string's length in bytes, not in
    characters; a collection's count."""
    if isinstance(value, str):
        return len(value.encode("utf-8", "surrogatepass"))
    return len(value)
