"""``--listen``: the status page (``/``), ``/healthz``, ``/readyz`` and ``/metrics``."""

from __future__ import annotations

import json
import threading
from dataclasses import asdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from .metrics import Metrics
from .reconcile import BridgeView
from .release import PATH as RELEASE_PATH
from .release import ReleaseHandler
from .settings import split_listen
from .status_page import StatusPage


class StatusServer:
    """Serves the bridge's health, readiness (with problems) and Prometheus metrics."""

    def __init__(
        self,
        listen: str,
        view: BridgeView,
        metrics: Metrics,
        page: StatusPage | None = None,
        release: ReleaseHandler | None = None,
    ) -> None:
        host, port = split_listen(listen)
        status = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                status.serve(self)

            def do_POST(self) -> None:
                status.serve_release(self)

            def log_message(self, *args: Any) -> None:
                pass

        self.view = view
        self.metrics = metrics
        self.page = page
        self.release = release
        self.server = ThreadingHTTPServer((host, port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def serve(self, handler: BaseHTTPRequestHandler) -> None:
        path = handler.path.split("?", 1)[0]
        if path == "/healthz":
            self._send(handler, 200, "text/plain", "ok\n")
        elif path == "/readyz":
            view = self.view
            body = {
                "ready": view.ready,
                "consul": view.consul_ok,
                "kong": view.kong_ok,
                "services_in_error": view.errors,
                "notes": view.notes,
                "held_back": view.held_back,
                "held": [asdict(held) for held in view.held],
            }
            self._send(
                handler,
                200 if view.ready else 503,
                "application/json",
                json.dumps(body, indent=2) + "\n",
            )
        elif path == "/metrics":
            self._send(handler, 200, "text/plain; version=0.0.4", self.metrics.render())
        elif self.page is not None and path in self.page.paths:
            self._send(handler, 200, *self.page.render(path))
        else:
            self._send(handler, 404, "text/plain", "not found\n")

    def serve_release(self, handler: BaseHTTPRequestHandler) -> None:
        """``POST /release-deletes`` (release.py decides who may, and what)."""
        if handler.path.split("?", 1)[0] != RELEASE_PATH or self.release is None:
            self._send(handler, 404, "text/plain", "not found\n")
            return
        declared = handler.headers.get("Content-Length") or "0"
        length = min(int(declared), 1 << 20) if declared.isdigit() else 0
        code, answer = self.release(
            handler.client_address[0],
            handler.headers.get("Content-Type") or "",
            handler.rfile.read(length),
        )
        self._send(handler, code, "application/json", json.dumps(answer) + "\n")

    @staticmethod
    def _send(handler: BaseHTTPRequestHandler, status: int, content_type: str, text: str) -> None:
        data = text.encode()
        handler.send_response(status)
        handler.send_header("Content-Type", content_type)
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)
