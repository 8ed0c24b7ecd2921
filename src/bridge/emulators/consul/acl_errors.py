"""How the ACL RPCs refuse: ``ACLError``, its typed cases, and Go's quoting in their texts.

An RPC's refusal reaches the client as a 500 with the RPC's text unless typed:
``acl.ErrNotFound`` is a 403, a missing role, auth method or binding rule a bare 404.
(``permission_denied``, whose text names the anonymous token, is with the store in ``acl``.)
"""

from __future__ import annotations

from .web import HTTPError


class ACLError(HTTPError):
    """An ACL RPC's refusal as the HTTP layer answers it: 500 with the RPC's text unless typed."""

    def __init__(self, text: str, status: int = 500) -> None:
        super().__init__(status, text)


def acl_not_found() -> ACLError:
    """``acl.ErrNotFound``: a missing token or policy read, an unknown token (403)."""
    return ACLError("ACL not found", 403)


def missing() -> ACLError:
    """A missing role, auth method or binding rule: the handler writes a bare 404."""
    return ACLError("", 404)


def go_quote(text: str) -> str:
    """Go's ``%q`` for the plain strings the texts quote."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
