"""Admin API responses: JSON bodies and empty answers, with Kong's ``Server`` header."""

from __future__ import annotations

import json
from typing import Any

from starlette.responses import Response

KONG_VERSION = "3.9.1"


def json_response(status: int, body: Any) -> Response:
    content = json.dumps(body, separators=(",", ":"), ensure_ascii=False)
    return Response(
        content,
        status_code=status,
        media_type="application/json; charset=utf-8",
        headers={"Server": f"kong/{KONG_VERSION}"},
    )


def empty(status: int = 204, headers: dict[str, str] | None = None) -> Response:
    return Response(
        status_code=status, headers={"Server": f"kong/{KONG_VERSION}", **(headers or {})}
    )
