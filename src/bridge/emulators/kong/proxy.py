"""Kong 3.x's proxy: route a request, balance it over targets, forward it, stream back.

The proxy reads the Admin API emulator's entities as they are at each request
(``KongAdminAPI.store``, replaced whole by a DB-less ``POST /config``) and its
target health marks. Routing is ``router.py``, balancing ``balancer.py``; this
module does what ``kong/runloop/handler.lua`` and the balancer add around
them: the ``X-Forwarded-*``/``Via`` headers to the service, the latency
headers back, retries on connection failures, and Kong's own error answers.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from email.utils import formatdate
from typing import Any, TypeVar

import httpx
from starlette.types import Message, Receive, Scope, Send

from ...kong.schema.addresses import hostname_type
from .balancer import Balancers, Peer
from .router import RequestFacts, RouteMatch, Router, escape_path, header_key, normalize_path
from .router import split_host_port as split_host_header
from .router import upstream_uri as build_upstream_uri

Row = dict[str, Any]
SERVER = "kong/3.9.1"  # Kong's SERVER_HEADER: "kong/" .. version
IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"})
# Hop-by-hop headers, and those Kong/nginx set itself for the upstream request.
REQUEST_DROPPED = frozenset(
    {
        "host",
        "connection",
        "keep-alive",
        "proxy-connection",
        "proxy",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "content-length",
        "via",
        "x-forwarded-for",
        "x-forwarded-proto",
        "x-forwarded-host",
        "x-forwarded-port",
        "x-forwarded-path",
        "x-forwarded-prefix",
        "x-real-ip",
        "x-kong-request-id",
    }
)
RESPONSE_DROPPED = frozenset(
    {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "trailer", "upgrade"}
)
ERROR_MESSAGES = {
    500: "An unexpected error occurred",
    502: "An invalid response was received from the upstream server",
    503: "The upstream server is currently unavailable",
    504: "The upstream server is timing out",
}


class ProxyError(Exception):
    """Kong answers the client itself (no route, no peer, refused, timed out)."""

    def __init__(self, status: int, message: str, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = dict(headers or {})


@dataclass(frozen=True)
class Destination:
    """Where one try goes: the address to connect to and the Host header for it."""

    connect_host: str
    port: int
    host_header: str
    peer: Peer | None = None

    def url(self, scheme: str, target: str) -> str:
        host = self.connect_host
        return f"{scheme}://{f'[{host}]' if ':' in host else host}:{self.port}{target}"


# -- error bodies (kong/tools/http.lua's templates, negotiated on Accept) ----------------


def _error_type(accept: str | None) -> str:
    best, quality = "application/json", 0.0
    for item in (accept or "").split(","):
        media, *params = [part.strip() for part in item.split(";")]
        q = 1.0
        for param in params:
            if param.startswith("q="):
                try:
                    q = float(param[2:])
                except ValueError:
                    q = 0.0
        if q > quality and media:
            quality = q
            kind = media.split("/")[0]
            if media in ("text/html", "application/xml", "text/plain", "application/json"):
                best = media
            elif media == "text/*":
                best = "text/plain"
            elif media in ("*/*", "application/*") or kind == "application":
                best = "application/json"
    return best


def error_body(status: int, message: str, accept: str | None, request_id: str) -> tuple[str, str]:
    """Kong's error body and content type for a message, as ``kong.response.error`` builds."""
    kind = _error_type(accept)
    if kind == "text/html":
        body = (
            '<!doctype html>\n<html>\n  <head>\n    <meta charset="utf-8">\n'
            "    <title>Error</title>\n  </head>\n  <body>\n    <h1>Error</h1>\n"
            f"    <p>{message}.</p>\n    <p>request_id: {request_id}</p>\n  </body>\n</html>\n"
        )
    elif kind == "application/xml":
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>\n<error>\n'
            f"  <message>{message}</message>\n  <requestid>{request_id}</requestid>\n</error>\n"
        )
    elif kind == "text/plain":
        body = f"{message}\nrequest_id: {request_id}\n"
    else:
        encoded = json.dumps(message)[1:-1]
        body = f'{{\n  "message":"{encoded}",\n  "request_id":"{request_id}"\n}}'
    return body, f"{kind}; charset=utf-8"


# -- the request as the router and the handler see it ----------------------------------


@dataclass(frozen=True)
class Incoming:
    method: str
    raw_path: str  # as sent, without the query
    query: str
    headers: list[tuple[str, str]]  # names lower-cased, in order
    client_ip: str
    server_port: int
    request_id: str

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key == name:
                return value
        return None

    @classmethod
    def from_scope(cls, scope: Scope) -> Incoming:
        raw = scope.get("raw_path") or scope["path"].encode()
        client = scope.get("client") or ("127.0.0.1", 0)
        server = scope.get("server") or ("127.0.0.1", 80)
        return cls(
            method=scope["method"],
            raw_path=raw.decode("latin-1").split("?", 1)[0],
            query=scope.get("query_string", b"").decode("latin-1"),
            headers=[
                (k.decode("latin-1").lower(), v.decode("latin-1")) for k, v in scope["headers"]
            ],
            client_ip=client[0],
            server_port=int(server[1] or 80),
            request_id=uuid.uuid4().hex,
        )

    def facts(self) -> RequestFacts:
        host_header = self.header("host")
        host, port = split_host_header(host_header) if host_header else (None, None)
        grouped: dict[str, list[str]] = {}
        for key, value in self.headers:
            grouped.setdefault(header_key(key), []).append(value)
        return RequestFacts(
            method=self.method,
            path=normalize_path(self.raw_path),
            host=host,
            port=port if port is not None else self.server_port,
            headers=grouped,
            src_ip=self.client_ip,
        )


@dataclass(frozen=True)
class Outbound:
    """The request for the service, the same for every try."""

    incoming: Incoming
    service: Row
    scheme: str
    target: str  # the upstream path, escaped, with the query
    headers: list[tuple[str, str]]  # all but Host, which depends on the target
    content: bytes | AsyncIterator[bytes]
    preserve_host: str | None  # the client's Host header when the route preserves it

    @property
    def replayable(self) -> bool:
        return isinstance(self.content, bytes)


async def _outbound(
    incoming: Incoming, match: RouteMatch, service: Row, receive: Receive
) -> Outbound:
    route = match.route
    path = build_upstream_uri(
        bool(route.get("strip_path")),
        match.prefix,
        normalize_path(incoming.raw_path),
        service.get("path") or "/",
    )
    headers = [(k, v) for k, v in incoming.headers if k not in REQUEST_DROPPED]
    headers += forwarded_headers(incoming, match)
    content: bytes | AsyncIterator[bytes]
    if route.get("request_buffering", True):
        content = await _read_body(receive)
    else:
        content = _body_stream(receive)
        length = incoming.header("content-length")
        if length is not None:
            headers.append(("content-length", length))  # unbuffered: the client's framing
    return Outbound(
        incoming=incoming,
        service=service,
        scheme=service["protocol"] if service["protocol"] in ("http", "https") else "http",
        target=escape_path(path) + ("?" + incoming.query if incoming.query else ""),
        headers=headers,
        content=content,
        preserve_host=incoming.header("host") if route.get("preserve_host") else None,
    )


def forwarded_headers(incoming: Incoming, match: RouteMatch) -> list[tuple[str, str]]:
    """What handler.lua adds for the service (trusted_ips = NONE: client values ignored)."""
    host_header = incoming.header("host") or ""
    host = split_host_header(host_header)[0] or host_header
    previous_for = incoming.header("x-forwarded-for")
    via = incoming.header("via")
    headers = [
        (
            "x-forwarded-for",
            f"{previous_for}, {incoming.client_ip}" if previous_for else incoming.client_ip,
        ),
        ("x-forwarded-proto", "http"),
        ("x-forwarded-host", host),
        ("x-forwarded-port", str(incoming.server_port)),
        ("x-forwarded-path", incoming.raw_path),
        ("x-real-ip", incoming.client_ip),
        ("via", f"{via}, 1.1 {SERVER}" if via else f"1.1 {SERVER}"),
        ("x-kong-request-id", incoming.request_id),
    ]
    if match.prefix is not None and match.prefix != "/":
        headers.append(("x-forwarded-prefix", match.prefix))
    return headers


def host_header_for(hostname: str, port: int, scheme: str) -> str:
    """balancer.set_host_header: the port is added unless it is the scheme's default."""
    default = (port == 80 and scheme == "http") or (port == 443 and scheme == "https")
    if ":" in hostname and not hostname.startswith("["):
        hostname = f"[{hostname}]"
    return hostname if default else f"{hostname}:{port}"


async def resolve(host: str) -> str | None:
    """The system resolver (Kong resolves service and target names through DNS)."""
    loop = asyncio.get_running_loop()
    try:
        infos = await asyncio.wait_for(
            loop.getaddrinfo(host, None, type=socket.SOCK_STREAM), timeout=5
        )
    except (OSError, TimeoutError):
        return None
    return str(infos[0][4][0]) if infos else None


# -- the ASGI app -----------------------------------------------------------------------


class KongProxy:
    """An ASGI app answering as Kong's proxy listener, over an Admin API emulator's data."""

    def __init__(self, admin: Any) -> None:
        # ``admin`` is a KongAdminAPI; read at each request, so DB-less reloads show at once.
        self.admin = admin
        self.balancers = Balancers()
        self._router: Router | None = None
        self._router_rows: tuple[list[Row], list[Row]] = ([], [])
        self._client: httpx.AsyncClient | None = None
        self._client_loop: asyncio.AbstractEventLoop | None = None

    # -- configuration snapshots --------------------------------------------------------

    def router(self) -> Router:
        """The router for the current routes and services, rebuilt when any row changed."""
        store = self.admin.store
        routes = _read_consistently(lambda: store.all("routes"))
        services = _read_consistently(lambda: store.all("services"))
        old_routes, old_services = self._router_rows
        unchanged = (
            self._router is not None
            and len(routes) == len(old_routes)
            and len(services) == len(old_services)
            and all(a is b for a, b in zip(routes, old_routes, strict=True))
            and all(a is b for a, b in zip(services, old_services, strict=True))
        )
        if not unchanged:
            # Holding the rows keeps their ids from being reused, so identity means unchanged.
            self._router = Router.build(routes, {s["id"]: s for s in services})
            self._router_rows = (routes, services)
        assert self._router is not None
        return self._router

    def client(self) -> httpx.AsyncClient:
        loop = asyncio.get_running_loop()
        if self._client is None or self._client_loop is not loop:
            # No environment proxies, no redirects, no default headers: forward as given.
            # Kong does not verify upstream certificates unless tls_verify is set.
            self._client = httpx.AsyncClient(trust_env=False, verify=False, follow_redirects=False)
            for name in list(self._client.headers.keys()):
                del self._client.headers[name]
            self._client_loop = loop
        return self._client

    # -- ASGI ---------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        started = time.monotonic()
        incoming = Incoming.from_scope(scope)
        try:
            await self.proxy(incoming, receive, send, started)
        except ProxyError as error:
            await self._send_error(incoming, send, error, started)

    async def _send_error(
        self, incoming: Incoming, send: Send, error: ProxyError, started: float
    ) -> None:
        body, content_type = error_body(
            error.status, error.message, incoming.header("accept"), incoming.request_id
        )
        if not error.message:
            body = ""  # a redirect: kong.response.exit(status) without a body
        payload = b"" if incoming.method == "HEAD" else body.encode()
        headers = {
            "date": formatdate(usegmt=True),
            "content-type": content_type,
            "content-length": str(len(body.encode())),
            "x-kong-response-latency": str(_ms_since(started)),
            "server": SERVER,
            "x-kong-request-id": incoming.request_id,
            **error.headers,
        }
        await send(
            {
                "type": "http.response.start",
                "status": error.status,
                "headers": [(k.encode(), v.encode()) for k, v in headers.items()],
            }
        )
        await send({"type": "http.response.body", "body": payload})

    async def proxy(self, incoming: Incoming, receive: Receive, send: Send, started: float) -> None:
        match = self.router().match(incoming.facts())
        if match is None:
            raise ProxyError(404, "no Route matched with those values")
        _check_protocols(match.route, incoming)
        if match.service is None:
            raise ProxyError(500, ERROR_MESSAGES[500])
        outbound = await _outbound(incoming, match, match.service, receive)
        await self._forward(outbound, send, started)

    async def _forward(self, outbound: Outbound, send: Send, started: float) -> None:
        """Try targets as the balancer hands them out; relay the first answer."""
        service = outbound.service
        tries = int(service["retries"]) + 1
        tried: set[str] = set()
        last_error: httpx.TransportError | None = None
        for attempt in range(tries):
            destination = await self._destination(service, outbound.scheme, tried)
            if destination.peer is not None:
                tried.add(destination.peer.target_id)
            host = outbound.preserve_host or destination.host_header
            request = self.client().build_request(
                outbound.incoming.method,
                destination.url(outbound.scheme, outbound.target),
                headers=[("host", host), *outbound.headers],
                content=outbound.content,
                timeout=_timeouts(service),
            )
            sent_at = time.monotonic()
            proxy_latency = _ms_since(started)
            try:
                response = await self.client().send(request, stream=True)
            except httpx.TransportError as error:
                last_error = error
                if attempt + 1 < tries and _may_retry(error, outbound):
                    continue
                break
            try:
                await self._relay(response, send, sent_at, proxy_latency, outbound.incoming)
            finally:
                await response.aclose()
            return
        timed_out = isinstance(last_error, httpx.TimeoutException)
        raise ProxyError(504 if timed_out else 502, ERROR_MESSAGES[504 if timed_out else 502])

    async def _destination(self, service: Row, scheme: str, tried: set[str]) -> Destination:
        """The balancer's choice: an upstream's next target, or the service's own host."""
        host, port = service["host"], service["port"]
        if _is_address(host):
            return Destination(host.strip("[]"), port, host_header_for(host, port, scheme))
        store = self.admin.store
        upstream = store.get("upstreams", {"name": host})
        if upstream is None:
            address = await resolve(host)
            if address is None:
                raise ProxyError(503, "name resolution failed")
            return Destination(address, port, host_header_for(host, port, scheme))
        targets = _read_consistently(lambda: store.children("targets", "upstream", upstream["id"]))
        health: Mapping[str, str] = dict(self.admin.health)
        unavailable = {t["id"] for t in targets if health.get(t["id"]) == "UNHEALTHY"}
        wheel = self.balancers.wheel(upstream["id"], targets)
        # A retry prefers a target not tried yet, as the ring moves on after a failure.
        peer = wheel.next_peer(unavailable | tried) or wheel.next_peer(unavailable)
        if peer is None:
            raise ProxyError(503, "failure to get a peer from the ring-balancer")
        address = peer.host if _is_address(peer.host) else await resolve(peer.host)
        if address is None:
            raise ProxyError(503, "name resolution failed")
        name = upstream.get("host_header") or peer.host
        return Destination(address, peer.port, host_header_for(name, peer.port, scheme), peer)

    async def _relay(
        self,
        response: httpx.Response,
        send: Send,
        sent_at: float,
        proxy_latency: int,
        incoming: Incoming,
    ) -> None:
        """Stream the service's answer back with Kong's headers added."""
        headers = [
            (k.decode("latin-1").lower(), v.decode("latin-1"))
            for k, v in response.headers.raw
            if k.decode("latin-1").lower() not in RESPONSE_DROPPED
        ]
        names = {k for k, _ in headers}
        upstream_via = response.headers.get("via")
        headers = [(k, v) for k, v in headers if k != "via"]
        headers += [
            ("x-kong-upstream-latency", str(_ms_since(sent_at))),
            ("x-kong-proxy-latency", str(proxy_latency)),
            ("via", f"{upstream_via}, 1.1 {SERVER}" if upstream_via else f"1.1 {SERVER}"),
            ("x-kong-request-id", incoming.request_id),
        ]
        if "server" not in names:
            headers.append(("server", SERVER))
        if "date" not in names:
            headers.append(("date", formatdate(usegmt=True)))
        await send(
            {
                "type": "http.response.start",
                "status": response.status_code,
                "headers": [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers],
            }
        )
        try:
            async for chunk in response.aiter_raw():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
        except httpx.TransportError:
            pass  # the service broke off mid-body: end what we sent, as nginx does
        await send({"type": "http.response.body", "body": b""})

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()


# -- helpers ----------------------------------------------------------------------------

T = TypeVar("T")
READ_ATTEMPTS = 5


def _read_consistently(read: Callable[[], T]) -> T:
    """Read the store, which the Admin API changes from its own thread.

    A read that meets a write half-way (an id indexed before its row is stored, a set
    changing size) fails with one of these; the write is done a moment later.
    """
    for _ in range(READ_ATTEMPTS - 1):
        try:
            return read()
        except (KeyError, RuntimeError, IndexError):
            time.sleep(0.001)
    return read()


def _ms_since(start: float) -> int:
    return int((time.monotonic() - start) * 1000)


def _check_protocols(route: Row, incoming: Incoming) -> None:
    """handler.lua: an https-only route answers plain HTTP with 426 or a redirect."""
    protocols = set(route.get("protocols") or ["http", "https"])
    if "http" in protocols:
        return
    if "https" in protocols:
        status = route.get("https_redirect_status_code") or 426
        if status == 426:
            raise ProxyError(
                426,
                "Please use HTTPS protocol",
                {"connection": "Upgrade", "upgrade": "TLS/1.2, HTTP/1.1"},
            )
        host = incoming.header("host") or ""
        query = "?" + incoming.query if incoming.query else ""
        location = f"https://{split_host_header(host)[0]}{incoming.raw_path}{query}"
        raise ProxyError(status, "", {"location": location})
    if protocols & {"grpc", "grpcs"}:
        raise ProxyError(415, "Non-gRPC request matched gRPC route")


def _may_retry(error: httpx.TransportError, outbound: Outbound) -> bool:
    """nginx's proxy_next_upstream (error timeout): connection failures always; once the
    request was sent, only idempotent methods whose body can be sent again."""
    if isinstance(error, httpx.ConnectError | httpx.ConnectTimeout):
        return True
    return outbound.incoming.method in IDEMPOTENT and outbound.replayable


def _timeouts(service: Row) -> httpx.Timeout:
    return httpx.Timeout(
        connect=service["connect_timeout"] / 1000,
        read=service["read_timeout"] / 1000,
        write=service["write_timeout"] / 1000,
        pool=None,
    )


async def _read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    while True:
        message: Message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


async def _body_stream(receive: Receive) -> AsyncIterator[bytes]:
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return
        body = message.get("body", b"")
        if body:
            yield body
        if not message.get("more_body", False):
            return


def _is_address(host: str) -> bool:
    """The balancer resolves only what ``hostname_type`` calls a name (kong/tools/ip.lua)."""
    return hostname_type(host) != "name"
