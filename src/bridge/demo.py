"""``kong-bridge demo``: real services behind the emulated Kong, driven by Consul; no Docker.

Small HTTP services run on loopback (each answers with its instance id). They
are registered in the Consul emulator with ``kong.*`` tags and real HTTP health
checks; the bridge puts them into the Kong emulator, and every step is shown
by sending requests through Kong's proxy. One more service registers itself
with the Microkubes library, beside the Consul-driven ones. Each step waits
for its condition (with a deadline), never for a fixed time.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from contextlib import ExitStack
from typing import Any

import httpx

from .daemon import run_daemon
from .echo import EchoService
from .emulators.consul import ConsulEmulator
from .emulators.kong import KongEmulator
from .logs import setup_logging
from .selfreg import KongGatewayRegistrator
from .settings import BridgeSettings

STEP_TIMEOUT = 15.0
ORDERS_TAGS = ["kong.enable=true", "kong.paths=/orders"]
USERS_META = {"kong_enable": "true", "kong_hosts": "users.example.com"}
PAYMENTS_TAGS = ["kong.enable=true", "kong.paths=/payments"]


class DemoError(RuntimeError):
    """A step did not reach its condition in time (the message says which)."""


def _say(text: str) -> None:
    print(f"\n== {text}", flush=True)


def _until(what: str, condition: Callable[[], bool], timeout: float = STEP_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if condition():
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise DemoError(f"demo: {what} did not happen within {timeout:.0f}s")
        time.sleep(0.05)


class Demo:
    """The running pieces and the requests the demo sends through Kong's proxy."""

    def __init__(
        self, kong: KongEmulator, consul: ConsulEmulator, stack: ExitStack, host: str
    ) -> None:
        self.kong = kong
        self.consul = httpx.Client(base_url=consul.url, timeout=5)
        self.proxy = httpx.Client(base_url=kong.proxy_url, timeout=5)
        self.stack = stack
        self.host = host
        self.instances: dict[str, EchoService] = {}
        stack.callback(self.consul.close)
        stack.callback(self.proxy.close)

    # -- services --------------------------------------------------------------------------

    def start_instance(self, instance: str) -> EchoService:
        service = self.stack.enter_context(EchoService(instance, host=self.host))
        self.instances[instance] = service
        return service

    def register(
        self, name: str, instance: str, tags: list[str] | None = None, **extra: Any
    ) -> None:
        """Start an instance and register it in Consul with a real HTTP health check."""
        service = self.start_instance(instance)
        body = {
            "Name": name,
            "ID": instance,
            "Address": service.host,
            "Port": service.port,
            "Tags": tags or [],
            "Check": {
                "CheckID": f"alive:{instance}",
                "Name": "HTTP /health",
                "HTTP": f"{service.url}/health",
                "Interval": "1s",
                "Status": "passing",
            },
            **extra,
        }
        self.consul.put("/v1/agent/service/register", json=body).raise_for_status()

    # -- traffic ---------------------------------------------------------------------------

    def send(self, path: str, count: int, host: str | None = None) -> Counter[str]:
        """``count`` requests through Kong; which instance answered each (or the status)."""
        headers = {"host": host} if host else {}
        answers: Counter[str] = Counter()
        for _ in range(count):
            response = self.proxy.get(path, headers=headers)
            if response.status_code == 200:
                answers[response.json()["instance"]] += 1
            else:
                answers[str(response.status_code)] += 1
        return answers

    def show(self, path: str, count: int, host: str | None = None) -> Counter[str]:
        answers = self.send(path, count, host)
        listed = ", ".join(f"{who} x{n}" for who, n in sorted(answers.items()))
        where = f" (Host: {host})" if host else ""
        print(f"  GET {path}{where} x{count} -> {listed}", flush=True)
        return answers

    def routed(self, path: str, host: str | None = None) -> bool:
        headers = {"host": host} if host else {}
        return self.proxy.get(path, headers=headers).status_code == 200

    def targets(self, upstream: str) -> set[str]:
        response = httpx.get(f"{self.kong.url}/upstreams/{upstream}/targets", timeout=5)
        if response.status_code != 200:
            return set()
        return {t["target"] for t in response.json()["data"]}


def _register_samples(demo: Demo) -> None:
    _say("Sample services on loopback, registered in Consul with kong.* tags and HTTP checks")
    demo.register("orders", "orders-1", ORDERS_TAGS)
    demo.register("orders", "orders-2", ORDERS_TAGS)
    demo.register("users", "users-1", Meta=USERS_META)
    demo.register("payments", "payments-a", [*PAYMENTS_TAGS, "kong.weight=3"])
    demo.register("payments", "payments-b", [*PAYMENTS_TAGS, "kong.weight=1"])
    demo.register("internal", "internal-1", ["private"])  # never opted in
    for instance, service in demo.instances.items():
        print(f"  {instance:<11} {service.url}")


def _routing(demo: Demo) -> None:
    _say(f"The bridge syncs them into Kong; requests go through Kong's proxy {demo.proxy.base_url}")
    _until("routing /orders", lambda: demo.routed("/orders"))
    _until("both orders targets", lambda: len(demo.targets("orders.service.consul")) == 2)
    _until("routing users by host", lambda: demo.routed("/", host="users.example.com"))
    _until("both payments targets", lambda: len(demo.targets("payments.service.consul")) == 2)
    print("routing by path:")
    demo.show("/orders", 4)
    print("routing by host:")
    demo.show("/", 2, host="users.example.com")
    print("never opted in (internal):")
    demo.show("/internal", 1)


def _new_instance(demo: Demo) -> None:
    _say("A new instance, orders-3, registers: it starts getting traffic")
    demo.register("orders", "orders-3", ORDERS_TAGS)
    new = demo.instances["orders-3"].address
    _until("orders-3 as a target", lambda: new in demo.targets("orders.service.consul"))
    answers = demo.show("/orders", 6)
    print(f"orders-3 gets traffic: {answers['orders-3']} of 6")


def _failing_instance(demo: Demo) -> None:
    _say("orders-1 fails its health check (its /health answers 503): it gets none")
    demo.instances["orders-1"].healthy = False
    gone = demo.instances["orders-1"].address
    _until("orders-1 leaving", lambda: gone not in demo.targets("orders.service.consul"))
    answers = demo.show("/orders", 6)
    print(f"orders-1 gets traffic: {answers['orders-1']} of 6")


def _weights(demo: Demo) -> None:
    _say("Weights split traffic: payments-a has kong.weight=3, payments-b kong.weight=1")
    answers = demo.show("/payments", 8)
    print(f"weights split payments {answers['payments-a']}:{answers['payments-b']}")


def _self_registered(demo: Demo) -> KongGatewayRegistrator:
    _say("A service registers itself with the Microkubes library (bridge.KongGatewayRegistrator)")
    hello = demo.start_instance("hello-1")
    registrator = KongGatewayRegistrator(demo.kong.url)
    registrator.register(
        name="hello",
        paths=["/hello"],
        host="hello.service.consul",
        port=hello.port,
        address=hello.host,
    )
    answers = demo.show("/hello", 2)
    print(f"self-registered hello answers: {answers['hello-1']} of 2, beside the bridge's services")
    return registrator


def _deregistered(demo: Demo) -> None:
    _say("users is deregistered from Consul: Kong answers 404 for it")
    demo.consul.put("/v1/agent/service/deregister/users-1").raise_for_status()
    _until("users leaving", lambda: not demo.routed("/", host="users.example.com"))
    answers = demo.show("/", 1, host="users.example.com")
    print(f"deregistered users answers {next(iter(answers))}")


def _walk_through(demo: Demo, settings: BridgeSettings) -> None:
    _register_samples(demo)
    stop = threading.Event()
    bridge = threading.Thread(target=run_daemon, args=(settings, stop), daemon=True)
    bridge.start()
    try:
        _routing(demo)
        _new_instance(demo)
        _failing_instance(demo)
        _weights(demo)
        registrator = _self_registered(demo)
        _deregistered(demo)
        registrator.unregister()
    finally:
        stop.set()  # the bridge stops, deleting nothing
        bridge.join(10)


def _closing_notes(kong_url: str, proxy_url: str) -> None:
    _say("Demo finished. What to look at:")
    print(
        "  - each request above went through the Kong proxy emulator and reached a real\n"
        "    service instance; the instance ids show routing, balancing and health at work\n"
        "  - the bridge only wrote what changed; it deletes nothing when it stops\n"
        "  - try it yourself: kong-bridge emulate consul --port 8500 &\n"
        "      kong-bridge emulate kong --port 8001 --proxy-port 8000 &\n"
        "      kong-bridge run   # then register services in Consul and curl localhost:8000\n"
        f"  - (this run used Kong Admin API {kong_url} and proxy {proxy_url})"
    )


def run_demo(host: str = "127.0.0.1", port: int = 0) -> int:
    """Run the walk-through; 0 when every step reached its condition, 1 otherwise."""
    setup_logging(level=40)  # errors only: the demo narrates
    with ExitStack() as stack:
        kong = stack.enter_context(KongEmulator(host=host, proxy_port=0))
        consul = stack.enter_context(ConsulEmulator(host=host))
        _say(f"Kong emulator: Admin API {kong.url}, proxy {kong.proxy_url}; Consul {consul.url}")
        settings = BridgeSettings(
            consul_http_addr=consul.url,
            kong_admin_url=kong.url,
            debounce_seconds=0.05,
            wait="30s",
            listen=f"{host}:{port}" if port else None,
        )
        demo = Demo(kong, consul, stack, host)
        try:
            _walk_through(demo, settings)
        except DemoError as error:
            print(error, flush=True)
            return 1
        writes = httpx.get(f"{kong.url}/_emulator/counters", timeout=5).json()["writes"]
        print(f"\n  Kong saw {writes} Admin API writes in all.")
        _closing_notes(kong.url, kong.proxy_url)
    return 0
