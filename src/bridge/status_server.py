"""``--listen``: the status page (``/``), ``/healthz``, ``/readyz`` and ``/metrics``."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import asdict, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client.exposition import CONTENT_TYPE_LATEST

from .metrics import Metrics
from .reconcile import BridgeView
from .release import PATH as RELEASE_PATH
from .release import ReleaseHandler
from .settings import split_listen
from .status_page import StatusPage


def readiness(view: BridgeView, metrics: Metrics, role: str) -> dict[str, Any]:
    """The ``/readyz`` body: ready unless a reason below applies (``not_ready`` lists them)."""
    with metrics.lock:
        kong, consul = replace(metrics.kong), replace(metrics.consul)
    reasons = []
    if not view.ready:
        reasons.append("no full reconciliation has completed yet")
    if not kong.up:
        reasons.append(f"Kong cannot be reached: {kong.problem}")
    if not consul.up:
        reasons.append(f"Consul cannot be reached: {consul.problem}")
    if view.failing_all:
        reasons.append("the last reconciliation failed for every service it changed")
    return {
        "ready": not reasons,
        "role": role,
        "not_ready": reasons,
        "consul": consul.up,
        "kong": kong.up,
        "services_in_error": view.errors,
        "notes": view.notes,
        "held_back": view.held_back,
        "held": [asdict(held) for held in view.held],
    }


class StatusServer:
    """Serves the bridge's health, readiness (with problems) and Prometheus metrics."""

    def __init__(
        self,
        listen: str,
        view: BridgeView,
        metrics: Metrics,
        role: Callable[[], str] = lambda: "single",
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
        self.role = role
        self.registry = metrics.registry()
        self.server = ThreadingHTTPServer((host, port), Handler)
        # A short poll keeps stop() (part of the 2 s shutdown budget) quick.
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True
        )

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
            body = readiness(self.view, self.metrics, self.role())
            self._send(
                handler,
                200 if body["ready"] else 503,
                "application/json",
                json.dumps(body, indent=2) + "\n",
            )
        elif path == "/metrics":
            text = self.metrics.render(self.registry)
            self._send(handler, 200, CONTENT_TYPE_LATEST, text)
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
