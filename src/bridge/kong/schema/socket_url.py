"""LuaSocket's ``socket.url.parse``, as Kong 3.9 runs it.

Kong reads URLs with LuaSocket (3.0-rc1, its rockspec's pin): the ``url`` typedef
(``validate_url``), the services' ``url`` shorthand and OAuth2 redirect URIs.
Python's ``urlsplit`` draws other lines: it lowercases the scheme and the host,
keeps ``;params`` in the path, drops an empty or non-numeric port and raises on
one over 65535, and wants a host in ``http://:80``. These are LuaSocket's
patterns instead, in their order (the fragment first, then the scheme).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Lua's %w is ASCII alphanumerics; "." in a Lua pattern matches any byte (DOTALL).
_SCHEME = re.compile(r"([A-Za-z0-9][A-Za-z0-9+\-.]*):", re.DOTALL)
_AUTHORITY = re.compile(r"//([^/]*)", re.DOTALL)
_PORT = re.compile(r":([^:\]]*)\Z", re.DOTALL)
_BRACKETED = re.compile(r"\[(.+)\]", re.DOTALL)
_PASSWORD = re.compile(r":([^:]*)\Z", re.DOTALL)


@dataclass(frozen=True)
class ParsedUrl:
    """The parts LuaSocket found; ``None`` where the URL has no such part."""

    scheme: str | None = None
    authority: str | None = None
    path: str | None = None
    params: str | None = None
    query: str | None = None
    fragment: str | None = None
    userinfo: str | None = None
    host: str | None = None
    port: str | None = None  # as written: LuaSocket does not check it is a number
    user: str | None = None
    password: str | None = None


def parse_url(url: str) -> ParsedUrl | None:
    """``socket.url.parse(url)``: ``None`` for the empty string (its "invalid url")."""
    if url == "":
        return None
    rest, hash_sign, fragment = url.partition("#")
    scheme = _SCHEME.match(rest)
    if scheme is not None:
        rest = rest[scheme.end() :]
    authority = _AUTHORITY.match(rest)
    if authority is not None:
        rest = rest[authority.end() :]
    rest, question_mark, query = rest.partition("?")
    rest, semicolon, params = rest.partition(";")
    parts = {
        "scheme": scheme.group(1) if scheme is not None else None,
        "fragment": fragment if hash_sign else None,
        "query": query if question_mark else None,
        "params": params if semicolon else None,
        "path": rest or None,
    }
    if authority is None:
        return ParsedUrl(**parts)
    return ParsedUrl(**parts, **_authority_parts(authority.group(1)))


def _authority_parts(authority: str) -> dict[str, str | None]:
    parts: dict[str, str | None] = {"authority": authority}
    userinfo, at_sign, host_port = authority.partition("@")
    if at_sign:
        parts["userinfo"], authority = userinfo, host_port
    port = _PORT.search(authority)
    if port is not None:
        parts["port"], authority = port.group(1), authority[: port.start()]
    if authority:
        bracketed = _BRACKETED.fullmatch(authority)
        parts["host"] = bracketed.group(1) if bracketed is not None else authority
    if at_sign:
        password = _PASSWORD.search(userinfo)
        if password is not None:
            parts["password"], userinfo = password.group(1), userinfo[: password.start()]
        parts["user"] = userinfo
    return parts
