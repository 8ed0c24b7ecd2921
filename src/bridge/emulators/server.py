"""Serve an emulator's ASGI app on a real socket, in a background thread or the foreground.

Tests start an emulator on a free port and stop it afterwards; the CLI runs the
same server in the foreground. "Refusing connections for a while" closes the
listening socket and binds it again later, so clients see real
``ECONNREFUSED`` rather than an HTTP error.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from typing import Any, Self

import uvicorn

from .controls import Controls

ASGIApp = Any


def _bound(host: str, port: int) -> socket.socket:
    """A TCP socket bound to ``port`` (not listening yet); OSError when it is taken."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


def _hold(host: str, port: int) -> socket.socket | None:
    """``port`` bound and not listening (connections to it are refused), or None if taken."""
    try:
        return _bound(host, port)
    except OSError:
        return None


def _bind(host: str, port: int) -> socket.socket:
    sock = _bound(host, port)
    # Accepted sockets inherit this: without it a response's header and body segments
    # meet the client's delayed ACK and every request takes ~40 ms.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


class EmulatorServer:
    """A uvicorn server for one emulator app; ``start()``/``stop()`` or a context manager."""

    def __init__(
        self,
        app: ASGIApp,
        controls: Controls,
        host: str = "127.0.0.1",
        port: int = 0,
        http_protocol: Any = "httptools",
    ) -> None:
        self.app = app
        self.http_protocol = http_protocol  # a uvicorn protocol name or class
        self.host = host
        self.port = port
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._stopping = False
        self.restarts = 0  # refusal periods completed: listening again
        controls.refuse = self.refuse_connections

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def _make_server(self) -> uvicorn.Server:
        config = uvicorn.Config(
            self.app,
            log_level="warning",
            access_log=False,
            lifespan="off",
            http=self.http_protocol,
            timeout_keep_alive=30,
            timeout_graceful_shutdown=1,
            server_header=False,
        )
        return uvicorn.Server(config)

    def _serve_in_thread(self) -> None:
        sock = _bind(self.host, self.port)
        self.port = sock.getsockname()[1]
        server = self._make_server()
        thread = threading.Thread(
            target=server.run,
            kwargs={"sockets": [sock]},
            name=f"emulator:{self.port}",
            daemon=True,
        )
        self._server, self._thread = server, thread
        thread.start()
        deadline = time.monotonic() + 10
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"emulator server on {self.url} did not start")
            time.sleep(0.005)

    def _shutdown(self, hold_port: bool = False) -> socket.socket | None:
        """Stop serving; with ``hold_port``, the port bound again (not listening) the
        moment the listener lets go of it, which is returned (see refuse_connections)."""
        server, thread = self._server, self._thread
        if server is None or thread is None:
            return None
        server.should_exit = True
        held = None
        while hold_port and held is None and thread.is_alive():
            held = _hold(self.host, self.port)  # fails while the listener is open
            time.sleep(0 if held else 0.001)
        thread.join(5)
        if thread.is_alive():
            server.force_exit = True
            thread.join(5)
        self._server = self._thread = None
        if hold_port and held is None:
            held = _hold(self.host, self.port)
        return held

    def start(self) -> Self:
        with self._lock:
            self._stopping = False
            self._serve_in_thread()
        return self

    def stop(self) -> None:
        with self._lock:
            self._stopping = True
            self._shutdown()

    def refuse_connections(self, seconds: float) -> None:
        """Stop listening for ``seconds`` (open connections are dropped), then listen again.

        The port stays bound meanwhile, without listening: a connection is refused as
        before, but the kernel cannot hand the port to a client's outgoing connection,
        which would keep us from binding it again for as long as that connection and
        its TIME_WAIT last (in a busy test run the emulator stayed down that way).
        """

        def cycle() -> None:
            time.sleep(0.05)  # let the /_emulator/ answer leave first
            with self._lock:
                if self._stopping:
                    return
                held = self._shutdown(hold_port=True)
            time.sleep(seconds)
            with self._lock:
                if held is not None:
                    held.close()
                if not self._stopping:
                    self._serve_in_thread()
                    self.restarts += 1

        threading.Thread(target=cycle, daemon=True).start()

    def serve_forever(self) -> None:
        """Run in the foreground until interrupted (the CLI's ``emulate`` commands)."""
        self.start()
        with contextlib.suppress(KeyboardInterrupt):
            while True:
                time.sleep(3600)
        self.stop()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
