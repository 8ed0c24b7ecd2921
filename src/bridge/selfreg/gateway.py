"""The self-registration API: Microkubes' names, Kong 3.x underneath.

``KongGatewayRegistrator`` is the Python library's class (``register(name=,
paths=, host=, port=)``); ``KongGateway`` is the Go package's (config-driven
``self_register()`` / ``unregister()``). ``Async...`` twins drive the same
flows with the asyncio client.
"""

from __future__ import annotations

import atexit
import logging
import os
import signal
import threading
from collections.abc import Callable, Iterable, Mapping
from types import FrameType
from typing import Any, Self

from ..desired import ServiceState
from ..kong import (
    AsyncKongClient,
    KongClient,
    KongClientError,
    KongConnection,
    KongUnavailable,
    RetryPolicy,
)
from ..settings import without_credentials
from .config import MicroserviceConfig, ServiceConfig, admin_url_for, parse_service_config
from .errors import GatewayUnavailable, RegistrationError
from .flows import Result, register_flow, unregister_flow
from .plan import DEFAULT_OWNER, Mode, Registration, desired_state, resolve_address

log = logging.getLogger("bridge.selfreg")


class _Options:
    """Connection and policy options shared by every class here."""

    def __init__(
        self,
        admin_url: str | None,
        *,
        headers: Mapping[str, str] | None = None,
        verify: bool | str = True,
        client_cert: str | tuple[str, str] | None = None,
        timeout: float = 10.0,
        retry_seconds: float = 30.0,
        owner: str = DEFAULT_OWNER,
        adopt: bool = False,
    ) -> None:
        self.connection = KongConnection(
            admin_url=admin_url_for(explicit=admin_url),
            headers=dict(headers or {}),
            verify=verify,
            client_cert=client_cert,
            timeout_seconds=timeout,
        )
        self.retry = RetryPolicy(total_seconds=retry_seconds)
        self.owner = owner
        self.adopt = adopt

    def plan(self, registration: Registration) -> ServiceState:
        address = resolve_address(registration, self.connection.admin_url)
        try:
            return desired_state(registration, address, self.owner)
        except ValueError as exc:
            raise RegistrationError(f"registering {registration.name}: {exc}") from None


def _registration(
    name: str | None, paths: Iterable[str] | None, host: str | None, port: int | None, **extra: Any
) -> Registration:
    """Validate ``register()``'s arguments as the Microkubes library did, with clearer errors."""
    if not name:
        raise RegistrationError("register(): 'name' is required")
    if port is None:
        port = 8080  # the Microkubes library's default
    try:
        port = int(port)
    except (TypeError, ValueError):
        raise RegistrationError(
            f"register({name}): 'port' must be an integer, got {port!r}"
        ) from None
    paths_t = tuple(paths or ())
    hosts_t = tuple(extra.pop("hosts", None) or ())
    if not paths_t and not hosts_t:
        raise RegistrationError(f"register({name}): give 'paths' (or 'hosts') to route on")
    for key in ("methods", "protocols"):
        if extra.get(key) is not None:
            extra[key] = tuple(extra[key])
    # The config file's rules (what Kong would refuse), checked before the first write.
    checked = {"name": name, "port": port, "paths": list(paths_t), "hosts": list(hosts_t)}
    checked |= {k: list(v) if isinstance(v, tuple) else v for k, v in extra.items()}
    parse_service_config({"service": checked}, f"register({name})")
    return Registration(name=name, port=port, paths=paths_t, host=host, hosts=hosts_t, **extra)


def _fail(action: str, name: str, exc: Exception) -> RegistrationError:
    """The error to raise, keeping its kind (ownership, unavailable, rejected)."""
    kind: type[RegistrationError] = RegistrationError
    if isinstance(exc, RegistrationError):
        kind = type(exc)
    elif isinstance(exc, KongUnavailable):
        kind = GatewayUnavailable
    return kind(f"{action} {name} on Kong failed: {exc}")


class KongGatewayRegistrator:
    """Register this service on Kong at start-up; ``unregister()`` at shutdown.

    >>> registrator = KongGatewayRegistrator(os.environ.get("API_GATEWAY_URL",
    ...                                                     "http://localhost:8001"))
    >>> registrator.register(name="hello-service", paths=["/hello"],
    ...                      host="hello-service.service.consul", port=5000)
    """

    def __init__(self, gw_admin_url: str | None = None, **options: Any) -> None:
        self._options = _Options(gw_admin_url, **options)
        self._state: ServiceState | None = None

    @property
    def admin_url(self) -> str:
        return self._options.connection.admin_url

    def register(
        self,
        name: str | None = None,
        paths: Iterable[str] | None = None,
        host: str | None = None,
        port: int | None = None,
        *,
        mode: Mode = "auto",
        **extra: Any,
    ) -> Result:
        """Create or update this instance's upstream, target, service and route.

        Extra keywords: ``hosts``, ``virtual_host``, ``weight``, ``slots``,
        ``strip_path``, ``preserve_host``, ``methods``, ``protocols``,
        ``address`` (this instance's address; detected when omitted).
        """
        registration = _registration(name, paths, host, port, mode=mode, **extra)
        return self.register_registration(registration)

    def register_registration(self, registration: Registration) -> Result:
        state = self._options.plan(registration)
        with KongClient(self._options.connection, self._options.retry) as kong:
            try:
                result = kong.run(register_flow(state, self._options.owner, self._options.adopt))
            except (KongClientError, RegistrationError) as exc:
                raise _fail("registering", registration.name, exc) from exc
        self._state = state
        log.info(
            "registered",
            extra={
                "service": registration.name,
                "action": "register",
                "outcome": "ok",
                "kong": without_credentials(self.admin_url),
                "changes": [str(action) for action in result.actions],
            },
        )
        return result

    def unregister(self, remove_service: bool = False) -> Result:
        """Remove this instance's target (and the service when it was the last one)."""
        if self._state is None:
            return Result()
        return self._unregister_state(self._state, remove_service)

    def unregister_registration(
        self, registration: Registration, remove_service: bool = False
    ) -> Result:
        """Unregister an instance registered elsewhere (e.g. by another process)."""
        return self._unregister_state(self._options.plan(registration), remove_service)

    def _unregister_state(self, state: ServiceState, remove_service: bool) -> Result:
        with KongClient(self._options.connection, self._options.retry) as kong:
            try:
                result = kong.run(unregister_flow(state, self._options.owner, remove_service))
            except (KongClientError, RegistrationError) as exc:
                raise _fail("unregistering", state.service.name, exc) from exc
        self._state = None
        log.info(
            "unregistered",
            extra={
                "service": state.service.name,
                "action": "unregister",
                "outcome": "ok",
                "changes": [str(action) for action in result.actions],
            },
        )
        return result


class AsyncKongGatewayRegistrator:
    """The asyncio twin of :class:`KongGatewayRegistrator`."""

    def __init__(self, gw_admin_url: str | None = None, **options: Any) -> None:
        self._options = _Options(gw_admin_url, **options)
        self._state: ServiceState | None = None

    async def register(
        self,
        name: str | None = None,
        paths: Iterable[str] | None = None,
        host: str | None = None,
        port: int | None = None,
        *,
        mode: Mode = "auto",
        **extra: Any,
    ) -> Result:
        registration = _registration(name, paths, host, port, mode=mode, **extra)
        return await self.register_registration(registration)

    async def register_registration(self, registration: Registration) -> Result:
        state = self._options.plan(registration)
        async with AsyncKongClient(self._options.connection, self._options.retry) as kong:
            try:
                result = await kong.run(
                    register_flow(state, self._options.owner, self._options.adopt)
                )
            except (KongClientError, RegistrationError) as exc:
                raise _fail("registering", registration.name, exc) from exc
        self._state = state
        return result

    async def unregister(self, remove_service: bool = False) -> Result:
        if self._state is None:
            return Result()
        return await self._unregister_state(self._state, remove_service)

    async def unregister_registration(
        self, registration: Registration, remove_service: bool = False
    ) -> Result:
        return await self._unregister_state(self._options.plan(registration), remove_service)

    async def _unregister_state(self, state: ServiceState, remove_service: bool) -> Result:
        async with AsyncKongClient(self._options.connection, self._options.retry) as kong:
            try:
                result = await kong.run(unregister_flow(state, self._options.owner, remove_service))
            except (KongClientError, RegistrationError) as exc:
                raise _fail("unregistering", state.service.name, exc) from exc
        self._state = None
        return result


def _service_section(config: ServiceConfig | MicroserviceConfig) -> MicroserviceConfig:
    return config.service if isinstance(config, ServiceConfig) else config


class KongGateway:
    """Config-driven self-registration, as Microkubes' Go ``gateway.NewKongGateway``.

    Use ``self_register()`` at start-up and ``unregister()`` at shutdown, or
    ``with KongGateway(url, config): ...``. ``unregister_on_signals=True``
    unregisters on SIGTERM/SIGINT before the previous handler runs;
    ``unregister_at_exit=True`` unregisters when the interpreter exits.
    """

    def __init__(
        self,
        admin_url: str | None,
        service_config: ServiceConfig | MicroserviceConfig,
        *,
        mode: Mode = "auto",
        remove_service_on_unregister: bool = False,
        unregister_on_signals: bool = False,
        unregister_at_exit: bool = False,
        **options: Any,
    ) -> None:
        if admin_url is None and isinstance(service_config, ServiceConfig):
            admin_url = admin_url_for(service_config)
        self.service = _service_section(service_config)
        self._registrator = KongGatewayRegistrator(admin_url, **options)
        self._registration = Registration.from_config(self.service, mode=mode)
        self._remove_service = remove_service_on_unregister
        self._hooks_wanted = (unregister_on_signals, unregister_at_exit)
        self._lock = threading.Lock()

    def self_register(self) -> Result:
        """Register on Kong; raises :class:`RegistrationError` when it cannot."""
        result = self._registrator.register_registration(self._registration)
        on_signals, at_exit = self._hooks_wanted
        if on_signals:
            install_signal_handlers(self._unregister_quietly)
        if at_exit:
            atexit.register(self._unregister_quietly)
        return result

    def unregister(self) -> Result:
        """Remove this instance from Kong (idempotent)."""
        with self._lock:
            return self._registrator.unregister_registration(
                self._registration, remove_service=self._remove_service
            )

    def _unregister_quietly(self) -> None:
        try:
            self.unregister()
        except RegistrationError as exc:
            log.error(
                "unregistering failed",
                extra={"action": "unregister", "outcome": "failed", "problem": str(exc)},
            )

    def __enter__(self) -> Self:
        self.self_register()
        return self

    def __exit__(self, *exc: object) -> None:
        self.unregister()


class AsyncKongGateway:
    """The asyncio twin of :class:`KongGateway` (``async with``)."""

    def __init__(
        self,
        admin_url: str | None,
        service_config: ServiceConfig | MicroserviceConfig,
        *,
        mode: Mode = "auto",
        remove_service_on_unregister: bool = False,
        **options: Any,
    ) -> None:
        if admin_url is None and isinstance(service_config, ServiceConfig):
            admin_url = admin_url_for(service_config)
        self.service = _service_section(service_config)
        self._registrator = AsyncKongGatewayRegistrator(admin_url, **options)
        self._registration = Registration.from_config(self.service, mode=mode)
        self._remove_service = remove_service_on_unregister

    async def self_register(self) -> Result:
        return await self._registrator.register_registration(self._registration)

    async def unregister(self) -> Result:
        return await self._registrator.unregister_registration(
            self._registration, remove_service=self._remove_service
        )

    async def __aenter__(self) -> Self:
        await self.self_register()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.unregister()


SignalHandler = Callable[[int, FrameType | None], Any] | int | None


def install_signal_handlers(
    callback: Callable[[], None],
    signals: Iterable[signal.Signals] = (signal.SIGTERM, signal.SIGINT),
) -> None:
    """Run ``callback`` on each signal, then behave as the previous handler would."""
    if threading.current_thread() is not threading.main_thread():
        raise RegistrationError("signal handlers can only be installed from the main thread")
    for signum in signals:
        previous: SignalHandler = signal.getsignal(signum)

        def handler(num: int, frame: FrameType | None, previous: SignalHandler = previous) -> None:
            callback()
            if callable(previous):
                previous(num, frame)
            elif previous == signal.SIG_IGN:
                return
            else:
                signal.signal(num, signal.SIG_DFL)
                os.kill(os.getpid(), num)

        signal.signal(signum, handler)
