"""A tiny real HTTP service for demos, tests and the compose stack: it answers with who it
is and what it got. Standard library only, so the runtime image can run it too:
``python -m bridge.echo --instance orders-1 --port 8080``.

``GET /any/path`` answers 200 with JSON ``{"instance", "method", "path", "headers",
"body", "body_sha256"}``; ``/health`` answers 200 while the service is healthy and 503 after
``healthy = False``. Each instance runs on its own loopback port in a thread.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import signal
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"
    # Headers and body leave in two writes: without TCP_NODELAY the body waits for the
    # client's delayed ACK (~40 ms a request).
    disable_nagle_algorithm = True

    def _answer(self) -> None:
        service = self.server.owner
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length) if length else b""
        if self.path.split("?", 1)[0] == "/health":
            status = 200 if service.healthy else 503
            self._send(status, {"instance": service.instance, "healthy": service.healthy})
            return
        if service.delay:
            time.sleep(service.delay)
        service.hits += 1
        self._send(
            200,
            {
                "instance": service.instance,
                "method": self.command,
                "path": self.path,
                "headers": {k.lower(): v for k, v in self.headers.items()},
                "body": body.decode("utf-8", "replace"),
                "body_sha256": hashlib.sha256(body).hexdigest(),
            },
        )

    def _send(self, status: int, payload: dict[str, Any]) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("X-Instance", str(payload["instance"]))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _answer

    def log_message(self, format: str, *args: Any) -> None:
        return  # quiet: the demo narrates


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    owner: EchoService


class EchoService:
    """One instance of a sample service on ``host:port`` (port 0 = a free one)."""

    def __init__(
        self, instance: str, host: str = "127.0.0.1", port: int = 0, delay: float = 0.0
    ) -> None:
        self.instance = instance
        self.healthy = True
        self.delay = delay  # seconds before answering (to make a proxy time out)
        self.hits = 0
        self._server = _Server((host, port), _Handler)
        self._server.owner = self
        address = self._server.server_address
        self.host, self.port = str(address[0]), int(address[1])
        self._thread: threading.Thread | None = None

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.address}"

    def start(self) -> Self:
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},  # stop() returns quickly
            name=f"echo:{self.instance}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> None:
    """Serve one instance in the foreground until SIGTERM/SIGINT."""
    parser = argparse.ArgumentParser(prog="python -m bridge.echo", description=__doc__)
    parser.add_argument("--instance", required=True, help="the id it answers with")
    parser.add_argument("--host", default="0.0.0.0")
    parser.add_argument("--port", type=int, default=8080)
    args = parser.parse_args(argv)
    service = EchoService(args.instance, host=args.host, port=args.port).start()
    print(f"echo instance {args.instance} listening on {service.url}", flush=True)
    stopped = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stopped.set())
    stopped.wait()
    service.stop()


if __name__ == "__main__":
    main()
