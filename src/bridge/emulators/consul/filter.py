"""Consul's ``?filter=`` expressions (go-bexpr): a parser and an evaluator over JSON objects.

Grammar (``website/content/api-docs/features/filtering.mdx``)::

    expr     := or
    or       := and ("or" and)*
    and      := unary ("and" unary)*
    unary    := "not" unary | "(" expr ")" | match
    match    := selector ("==" | "!=") value
              | selector "is" ["not"] "empty"
              | value ["not"] "in" selector
              | selector ["not"] "contains" value
              | selector ["not"] "matches" value
    selector := name ("." name | "[" string "]")*
    value    := "double quoted" | `raw` | number | true | false | bare word
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Predicate = Callable[[Any], bool]

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<string>"(?:[^"\\]|\\.)*")
      | (?P<raw>`[^`]*`)
      | (?P<op>==|!=|\(|\)|\[|\]|\.)
      | (?P<word>[A-Za-z0-9_\-/:@+*]+)
    )""",
    re.VERBOSE,
)
_KEYWORDS = {"and", "or", "not", "is", "empty", "in", "contains", "matches"}


class FilterError(ValueError):
    """An expression that does not parse."""


@dataclass(frozen=True)
class _Tok:
    kind: str  # string, raw, op, word
    text: str


def _tokenize(text: str) -> list[_Tok]:
    tokens: list[_Tok] = []
    position = 0
    while position < len(text):
        if text[position:].strip() == "":
            break
        match = _TOKEN.match(text, position)
        if match is None or match.end() == position:
            raise FilterError(f"1:{position + 1}: unexpected character {text[position]!r}")
        kind = match.lastgroup or "word"
        tokens.append(_Tok(kind, match.group(kind)))
        position = match.end()
    return tokens


def _unquote(token: _Tok) -> str:
    if token.kind == "string":
        return _unescape(token.text[1:-1])
    if token.kind == "raw":
        return token.text[1:-1]
    return token.text


_ESCAPES = {
    "\\": "\\",
    '"': '"',
    "n": "\n",
    "t": "\t",
    "r": "\r",
    "/": "/",
    "a": "\a",
    "b": "\b",
    "f": "\f",
    "v": "\v",
}
_HEX = re.compile(r"[0-9a-fA-F]{4}")


def _unescape(body: str) -> str:
    """Go's ``strconv.Unquote`` for the escapes a filter may use; others are errors."""
    out: list[str] = []
    position = 0
    while position < len(body):
        char = body[position]
        if char != "\\":
            out.append(char)
            position += 1
            continue
        code = body[position + 1 : position + 2]
        if code in _ESCAPES:
            out.append(_ESCAPES[code])
            position += 2
        elif code == "u" and _HEX.fullmatch(body[position + 2 : position + 6]):
            out.append(chr(int(body[position + 2 : position + 6], 16)))
            position += 6
        else:
            raise FilterError(f"invalid escape sequence \\{code} in string")
    return "".join(out)


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = _tokenize(text)
        self.position = 0

    def peek(self, offset: int = 0) -> _Tok | None:
        index = self.position + offset
        return self.tokens[index] if index < len(self.tokens) else None

    def is_word(self, word: str, offset: int = 0) -> bool:
        token = self.peek(offset)
        return token is not None and token.kind == "word" and token.text == word

    def take(self) -> _Tok:
        token = self.peek()
        if token is None:
            raise FilterError("unexpected end of expression")
        self.position += 1
        return token

    def expect_word(self, word: str) -> None:
        token = self.take()
        if token.kind != "word" or token.text != word:
            raise FilterError(f"expected {word!r}, found {token.text!r}")

    def parse(self) -> Predicate:
        predicate = self.parse_or()
        if self.peek() is not None:
            raise FilterError(f"unexpected {self.peek().text!r}")  # type: ignore[union-attr]
        return predicate

    def parse_or(self) -> Predicate:
        parts = [self.parse_and()]
        while self.is_word("or"):
            self.take()
            parts.append(self.parse_and())
        return parts[0] if len(parts) == 1 else (lambda obj: any(p(obj) for p in parts))

    def parse_and(self) -> Predicate:
        parts = [self.parse_unary()]
        while self.is_word("and"):
            self.take()
            parts.append(self.parse_unary())
        return parts[0] if len(parts) == 1 else (lambda obj: all(p(obj) for p in parts))

    def parse_unary(self) -> Predicate:
        if self.is_word("not"):
            self.take()
            inner = self.parse_unary()
            return lambda obj: not inner(obj)
        token = self.peek()
        if token is not None and token.kind == "op" and token.text == "(":
            self.take()
            inner = self.parse_or()
            closing = self.take()
            if closing.text != ")":
                raise FilterError(f"expected ')', found {closing.text!r}")
            return inner
        return self.parse_match()

    def parse_value(self) -> Any:
        token = self.take()
        if token.kind in ("string", "raw"):
            return _unquote(token)
        if token.kind == "word" and token.text not in _KEYWORDS:
            return token.text
        raise FilterError(f"expected a value, found {token.text!r}")

    def parse_selector(self) -> list[str]:
        first = self.take()
        if first.kind != "word" or first.text in _KEYWORDS:
            raise FilterError(f"expected a selector, found {first.text!r}")
        path = [first.text]
        while True:
            token = self.peek()
            if token is not None and token.kind == "op" and token.text == ".":
                self.take()
                path.append(self.take().text)
            elif token is not None and token.kind == "op" and token.text == "[":
                self.take()
                path.append(_unquote(self.take()))
                if self.take().text != "]":
                    raise FilterError("expected ']'")
            else:
                return path

    def _value_then_in(self) -> bool:
        """``"v" in Sel`` / ``"v" not in Sel`` start with a value, not a selector."""
        token = self.peek()
        if token is None:
            return False
        if token.kind in ("string", "raw"):
            return True
        return self.is_word("in", 1) or (self.is_word("not", 1) and self.is_word("in", 2))

    def parse_match(self) -> Predicate:
        if self._value_then_in():
            value = self.parse_value()
            negate = self.is_word("not")
            if negate:
                self.take()
            self.expect_word("in")
            selector = self.parse_selector()
            return _negated(negate, lambda obj: _contains(_select(obj, selector), value))
        selector = self.parse_selector()
        token = self.take()
        if token.kind == "op" and token.text in ("==", "!="):
            value = self.parse_value()
            equal = token.text == "=="
            return lambda obj: _equals(_select(obj, selector), value) == equal
        negate = token.kind == "word" and token.text == "not"
        if negate:
            token = self.take()
        if token.kind == "word" and token.text == "is":
            negate = self.is_word("not")
            if negate:
                self.take()
            self.expect_word("empty")
            return _negated(negate, lambda obj: _is_empty(_select(obj, selector)))
        if token.kind == "word" and token.text == "contains":
            value = self.parse_value()
            return _negated(negate, lambda obj: _contains(_select(obj, selector), value))
        if token.kind == "word" and token.text == "matches":
            source = str(self.parse_value())
            try:
                with warnings.catch_warnings():  # Python's FutureWarnings about RE2 syntax
                    warnings.simplefilter("ignore")
                    pattern = re.compile(source)
            except re.error as exc:
                raise FilterError(f"invalid regular expression {source!r}: {exc}") from None
            return _negated(negate, lambda obj: _matches(_select(obj, selector), pattern))
        raise FilterError(f"unexpected {token.text!r} after selector {'.'.join(selector)}")


_MISSING = object()


def _select(obj: Any, path: list[str]) -> Any:
    """Follow a selector; through a list, collect from every element (any-match semantics)."""
    current = obj
    for index, key in enumerate(path):
        if isinstance(current, list):
            return [_select(item, path[index:]) for item in current]
        if not isinstance(current, dict) or key not in current:
            return _MISSING
        current = current[key]
    return current


def _flatten(value: Any) -> list[Any]:
    if isinstance(value, list):
        out: list[Any] = []
        for item in value:
            out.extend(_flatten(item) if isinstance(item, list) else [item])
        return out
    return [value]


def _as_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _equals(selected: Any, value: Any) -> bool:
    if selected is _MISSING:
        return False
    if isinstance(selected, list):
        return any(_as_text(item) == str(value) for item in _flatten(selected))
    return _as_text(selected) == str(value)


def _contains(selected: Any, value: Any) -> bool:
    if isinstance(selected, dict):
        return str(value) in selected
    if isinstance(selected, list):
        return any(_as_text(item) == str(value) for item in _flatten(selected))
    if isinstance(selected, str):
        return str(value) in selected
    return False


def _is_empty(selected: Any) -> bool:
    if selected is _MISSING or selected is None:
        return True
    if isinstance(selected, str | list | dict):
        return len(selected) == 0
    return False


def _matches(selected: Any, pattern: re.Pattern[str]) -> bool:
    if isinstance(selected, list):
        return any(pattern.search(_as_text(item)) for item in _flatten(selected))
    return selected is not _MISSING and bool(pattern.search(_as_text(selected)))


def _negated(negate: bool, predicate: Predicate) -> Predicate:
    return (lambda obj: not predicate(obj)) if negate else predicate


def compile_filter(text: str) -> Predicate:
    """A predicate for one ``?filter=`` expression; :class:`FilterError` when it is invalid."""
    if not text.strip():
        raise FilterError("empty expression")
    return _Parser(text).parse()
