"""HTTP helpers shared by the endpoint groups: Consul's plain-text errors, JSON bodies, methods."""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from .query import BadRequest, Query

Row = dict[str, Any]
Computed = tuple[int, Any]  # (index, payload) of a blocking read
GET = ("GET", "HEAD")
PUT = ("PUT",)


class HTTPError(Exception):
    """An answer with a plain-text body, as Consul's ``wrap`` writes errors."""

    def __init__(self, status: int, text: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(text)
        self.status = status
        self.text = text
        self.headers = headers or {}


def text_response(status: int, text: str, headers: dict[str, str] | None = None) -> Response:
    return Response(
        text, status_code=status, media_type="text/plain; charset=utf-8", headers=headers
    )


def json_response(
    status: int, body: Any, headers: dict[str, str] | None = None, pretty: bool = False
) -> Response:
    return Response(
        render_json(body, pretty),
        status_code=status,
        media_type="application/json",
        headers=headers,
    )


def render_json(body: Any, pretty: bool = False) -> bytes:
    """A JSON body as Consul's encoder writes it (compact, or indented for ``?pretty``)."""
    text = json.dumps(body, indent=4) if pretty else json.dumps(body, separators=(",", ":"))
    return text.encode()


def empty_response() -> Response:
    return Response(b"", status_code=200)


def allow(method: str, allowed: tuple[str, ...]) -> None:
    """405 with an ``Allow`` header unless ``method`` is one of ``allowed``."""
    if method not in allowed:
        raise HTTPError(
            405,
            f"method {method} not allowed",
            {"Allow": ", ".join(a for a in allowed if a != "HEAD")},
        )


def get_ci(body: Row, name: str) -> Any:
    """A body field matched as Consul's decoder does: case-insensitively, ``_`` ignored."""
    wanted = name.lower()
    for key, value in body.items():
        if key.lower().replace("_", "") == wanted:
            return value
    return None


async def json_object(request: Request) -> Row:
    """The request body as a JSON object; an empty body is ``{}``."""
    data = await json_body(request)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise BadRequest("Request decode failed: expected a JSON object")
    return data


async def json_body(request: Request) -> Any:
    """The request body as JSON (``None`` when empty); 400 when it does not parse."""
    raw = await request.body()
    if not raw.strip():
        return None
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise BadRequest(f"Request decode failed: {exc}") from None


def uint_param(q: Query, name: str) -> int | None:
    """An unsigned integer query parameter (``?cas=``, ``?flags=``), or None when absent."""
    if name not in q.params:
        return None
    raw = q.params[name]
    if not raw.isdigit():
        raise BadRequest(f"Invalid {name} index" if name == "cas" else f"Invalid {name}")
    return int(raw)


def enable_param(q: Query) -> bool:
    """``?enable=`` of the maintenance endpoints: required, a boolean."""
    if "enable" not in q.params:
        raise BadRequest("Missing value for enable")
    value = q.params["enable"]
    if value not in ("true", "false", "1", "0", "True", "False"):
        raise BadRequest(f'Invalid value for enable: "{value}"')
    return value in ("true", "1", "True")
