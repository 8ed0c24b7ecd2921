"""The bridge's settings, from the environment (Consul's and Kong's usual names) and flags.

Each setting is declared once, here: its type, default, environment variable and
description. The command line's flags and their ``--help`` are generated from
these fields (``bridge.cli``), so the two cannot drift.
"""

from __future__ import annotations

import os
import socket
from typing import Annotated, Any, Literal, Self
from urllib.parse import urlsplit

from pydantic import AliasChoices, Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from .kong import KongConnection, RetryPolicy
from .secrets import Redactor, read_token_file, url_secrets
from .usage import UsageError

# Flags whose name is not simply ``--`` + the field name with dashes.
FLAG_NAMES = {
    "consul_http_addr": "--consul-addr",
    "consul_http_token": "--consul-token",
    "kong_timeout": "--kong-admin-timeout",
    "debounce_seconds": "--debounce",
    "resync_seconds": "--resync",
    "delete_window_seconds": "--delete-window",
    "delete_settle_seconds": "--delete-settle",
    "confirm_deletes_after_seconds": "--confirm-deletes-after",
    "ha_ttl_seconds": "--ha-ttl",
    "ha_lock_delay_seconds": "--ha-lock-delay",
    "ha_check_ttl_seconds": "--ha-check-ttl",
}
# Never echoed back in an error message.
SECRET_FIELDS = frozenset({"consul_http_token", "kong_admin_token", "kong_admin_headers"})


def _setting(default: Any, env: str, description: str, **constraints: Any) -> Any:
    """A field read from ``env`` (or passed by its own name, e.g. from a flag)."""
    return Field(
        default, validation_alias=AliasChoices(env), description=description, **constraints
    )


class ConsulAddress:
    """``CONSUL_HTTP_ADDR`` as Consul's own tools read it: ``[http(s)://]host[:port]``."""

    def __init__(self, value: str) -> None:
        raw = value if "//" in value else "//" + value
        parts = urlsplit(raw)
        if parts.scheme not in ("", "http", "https"):
            raise ValueError(f"expected http:// or https:// (or no scheme), got {value!r}")
        if not parts.hostname:
            raise ValueError(
                f"expected [http(s)://]host[:port], e.g. 127.0.0.1:8500, got {value!r}"
            )
        try:
            port = parts.port
        except ValueError:
            raise ValueError(f"expected a port number in {value!r}") from None
        self.scheme = parts.scheme or "http"
        self.host = parts.hostname
        self.port = port or (443 if self.scheme == "https" else 8500)


def check_http_url(value: str, example: str) -> str:
    """``value`` if it is an http(s) URL with a host, else a ValueError saying what to write."""
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"expected a URL with http:// or https://, e.g. {example}, got {value!r}")
    try:
        parts.port  # noqa: B018 (urlsplit checks the port only when asked)
    except ValueError:
        raise ValueError(f"expected a port number in {value!r}") from None
    return value


def without_credentials(url: str) -> str:
    """An address without ``user:password@``, fit for logs and the status page."""
    parts = urlsplit(url if "//" in url else "//" + url)
    host = f"[{parts.hostname}]" if parts.hostname and ":" in parts.hostname else parts.hostname
    port = f":{parts.port}" if parts.port else ""
    scheme = f"{parts.scheme}://" if parts.scheme else ""
    return f"{scheme}{host or ''}{port}{parts.path}"


def split_listen(value: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:9100``, ``:9100`` = every address) -> (host, port)."""
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise ValueError(f"expected HOST:PORT with a port from 0 to 65535, got {value!r}")
    return (host.strip("[]") or "0.0.0.0"), int(port)


class BridgeSettings(BaseSettings):
    """Everything ``kong-bridge run/sync/plan/lint`` can be told.

    Consul's variables are the ones its own tools read (``CONSUL_HTTP_ADDR``,
    ``CONSUL_HTTP_TOKEN``, ``CONSUL_CACERT``...); Kong's start with
    ``KONG_ADMIN_``; the bridge's own with ``KONG_BRIDGE_``.
    """

    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True)

    # -- Consul ----------------------------------------------------------------------------
    consul_http_addr: str = _setting(
        "http://127.0.0.1:8500",
        "CONSUL_HTTP_ADDR",
        "Consul's HTTP API, [http(s)://]host[:port] as Consul's tools take it",
    )
    consul_http_token: str | None = _setting(
        None, "CONSUL_HTTP_TOKEN", "Consul ACL token (never logged)", repr=False
    )
    consul_http_token_file: str | None = _setting(
        None, "CONSUL_HTTP_TOKEN_FILE", "file holding the Consul ACL token (as Consul's tools)"
    )
    consul_cacert: str | None = _setting(
        None, "CONSUL_CACERT", "CA bundle that signed Consul's certificate"
    )
    consul_client_cert: str | None = _setting(
        None, "CONSUL_CLIENT_CERT", "client certificate for Consul (mTLS)"
    )
    consul_client_key: str | None = _setting(
        None, "CONSUL_CLIENT_KEY", "key of the client certificate for Consul"
    )
    consul_http_ssl_verify: bool = _setting(
        True, "CONSUL_HTTP_SSL_VERIFY", "verify Consul's TLS certificate"
    )
    consul_datacenter: str | None = _setting(
        None,
        "KONG_BRIDGE_CONSUL_DATACENTER",
        "the Consul datacenter to read (?dc=); default: the agent's own",
    )

    # -- Kong ------------------------------------------------------------------------------
    kong_admin_url: str = _setting(
        "http://localhost:8001", "KONG_ADMIN_URL", "Kong's Admin API, http(s)://host:port"
    )
    kong_admin_token: str | None = _setting(
        None, "KONG_ADMIN_TOKEN", "sent as Kong-Admin-Token (never logged)", repr=False
    )
    kong_admin_token_file: str | None = _setting(
        None, "KONG_ADMIN_TOKEN_FILE", "file holding the Kong admin token"
    )
    kong_admin_headers: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        validation_alias=AliasChoices("KONG_ADMIN_HEADERS"),
        description="extra headers for the Admin API, 'apikey: k; X-Other: v' (never logged)",
        repr=False,
    )
    kong_admin_ca_cert: str | None = _setting(
        None, "KONG_ADMIN_CA_CERT", "CA bundle that signed the Admin API's certificate"
    )
    kong_admin_client_cert: str | None = _setting(
        None, "KONG_ADMIN_CLIENT_CERT", "client certificate for the Admin API (mTLS)"
    )
    kong_admin_client_key: str | None = _setting(
        None, "KONG_ADMIN_CLIENT_KEY", "key of the client certificate for the Admin API"
    )
    kong_admin_tls_verify: bool = _setting(
        True, "KONG_ADMIN_TLS_VERIFY", "verify the Admin API's TLS certificate"
    )
    kong_timeout: float = _setting(
        10.0, "KONG_ADMIN_TIMEOUT", "seconds each Admin API call may take", gt=0
    )

    # -- the bridge ------------------------------------------------------------------------
    bridge_id: str = _setting(
        "kong-bridge",
        "KONG_BRIDGE_ID",
        "owner id: our Kong entities carry the tag managed-by:<id>",
        pattern=r"^[A-Za-z0-9._~:-]+$",
    )
    tag_prefix: str = _setting(
        "kong",
        "KONG_BRIDGE_TAG_PREFIX",
        "prefix of the tag convention (kong.enable=true)",
        pattern=r"^[A-Za-z0-9_-]+$",
    )
    expose_by_default: bool = _setting(
        False, "KONG_BRIDGE_EXPOSE_BY_DEFAULT", "expose services that did not opt in"
    )
    mode: Literal["upstream", "dns"] = _setting(
        "upstream", "KONG_BRIDGE_MODE", "default mapping: Kong upstreams, or Consul DNS"
    )
    domain: str = _setting(
        "consul", "KONG_BRIDGE_DOMAIN", "Consul's DNS domain, in upstream and DNS names"
    )
    upstream_datacenter: str | None = _setting(
        None,
        "KONG_BRIDGE_UPSTREAM_DATACENTER",
        "datacenter written into upstream names (<svc>.service.<dc>.<domain>); "
        "does not change which datacenter is read",
    )
    include_warning: bool = _setting(
        False, "KONG_BRIDGE_INCLUDE_WARNING", "keep instances whose checks warn as targets"
    )
    wait: str = _setting(
        "5m", "KONG_BRIDGE_WAIT", "blocking query wait (e.g. 30s, 5m)", pattern=r"^\d+(ms|s|m)$"
    )
    debounce_seconds: float = _setting(
        0.2, "KONG_BRIDGE_DEBOUNCE", "seconds to coalesce a burst of changes", ge=0
    )
    resync_seconds: float = _setting(
        60.0, "KONG_BRIDGE_RESYNC", "seconds between full resyncs that repair drift", ge=1
    )
    max_delete_share: float = _setting(
        0.5,
        "KONG_BRIDGE_MAX_DELETE_SHARE",
        "hold removals beyond this share of our services within the delete window",
        ge=0,
        le=1,
    )
    # The deletion guard (guard.py): window, settling time, automatic confirmation.
    delete_window_seconds: float = _setting(
        600.0,
        "KONG_BRIDGE_DELETE_WINDOW",
        "seconds over which removals are counted against the share",
        gt=0,
    )
    delete_settle_seconds: float = _setting(
        5.0,
        "KONG_BRIDGE_DELETE_SETTLE",
        "run: seconds a removal waits so a burst is judged whole",
        ge=0,
    )
    confirm_deletes_after_seconds: float = _setting(
        0.0,
        "KONG_BRIDGE_CONFIRM_DELETES_AFTER",
        "release held removals after this long with a trusted, stable catalog (0: never)",
        ge=0,
    )
    concurrency: int = _setting(
        8, "KONG_BRIDGE_CONCURRENCY", "services written in parallel", ge=1, le=64
    )
    retry_seconds: float = _setting(
        10.0, "KONG_BRIDGE_RETRY", "retry budget per Admin API call, in seconds", ge=0
    )
    listen: str | None = _setting(
        None,
        "KONG_BRIDGE_LISTEN",
        "HOST:PORT for the status page (/), /healthz, /readyz and /metrics",
    )
    log_json: bool = _setting(False, "KONG_BRIDGE_LOG_JSON", "one JSON object per log line")
    log_level: Literal["debug", "info", "warning", "error"] | None = _setting(
        None,
        "KONG_BRIDGE_LOG_LEVEL",
        "debug, info, warning or error; default: info for run, warning for the others",
    )

    # -- high availability (run --ha) -------------------------------------------------------
    ha: bool = _setting(
        False, "KONG_BRIDGE_HA", "elect one leader through a Consul session lock; only it writes"
    )
    ha_lock_key: str | None = _setting(
        None,
        "KONG_BRIDGE_HA_LOCK_KEY",
        "KV key the replicas lock; default kong-bridge/<bridge-id>/leader",
        pattern=r"^[^/].*[^/]$",
    )
    ha_ttl_seconds: int = _setting(
        10, "KONG_BRIDGE_HA_TTL", "session TTL in seconds (Consul's minimum is 10)", ge=1, le=86400
    )
    ha_lock_delay_seconds: int = _setting(
        8,
        "KONG_BRIDGE_HA_LOCK_DELAY",
        "seconds Consul keeps the lock after a leader's session is lost",
        ge=0,
        le=60,
    )
    ha_check_ttl_seconds: int = _setting(
        5,
        "KONG_BRIDGE_HA_CHECK_TTL",
        "TTL of the health check the session is tied to (0: none, the session TTL alone)",
        ge=0,
        le=3600,
    )
    instance: str = Field(
        default_factory=lambda: f"{socket.gethostname()}-{os.getpid()}",
        min_length=1,
        validation_alias=AliasChoices("KONG_BRIDGE_INSTANCE"),
        description="this replica's name, shown on its Consul session; default <hostname>-<pid>",
    )

    @field_validator("kong_admin_headers", mode="before")
    @classmethod
    def _split_headers(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part for part in value.split(";") if part.strip()]
        return value

    @field_validator("consul_http_addr")
    @classmethod
    def _check_consul_addr(cls, value: str) -> str:
        ConsulAddress(value)
        return value

    @field_validator("kong_admin_url")
    @classmethod
    def _check_kong_url(cls, value: str) -> str:
        return check_http_url(value, "http://127.0.0.1:8001")

    @field_validator("listen")
    @classmethod
    def _check_listen(cls, value: str | None) -> str | None:
        if value is not None:
            split_listen(value)
        return value

    @field_validator("log_level", mode="before")
    @classmethod
    def _lower_level(cls, value: Any) -> Any:
        return value.lower() if isinstance(value, str) else value

    @field_validator("consul_http_token_file", "kong_admin_token_file")
    @classmethod
    def _readable_token_file(cls, value: str | None) -> str | None:
        if value is not None:
            read_token_file(value)  # an error here names the setting and the path, not the token
        return value

    @model_validator(mode="after")
    def _tokens_from_files(self) -> Self:
        """A token given directly wins over its file, as with Consul's own tools."""
        if not self.consul_http_token and self.consul_http_token_file:
            self.consul_http_token = read_token_file(self.consul_http_token_file)
        if not self.kong_admin_token and self.kong_admin_token_file:
            self.kong_admin_token = read_token_file(self.kong_admin_token_file)
        return self

    def redactor(self) -> Redactor:
        """Scrubs this configuration's secrets (tokens, header values, URL credentials)."""
        headers = [header.partition(":")[2].strip() for header in self.kong_admin_headers]
        return Redactor(
            [
                self.consul_http_token,
                self.kong_admin_token,
                *headers,
                *url_secrets(self.consul_http_addr),
                *url_secrets(self.kong_admin_url),
            ]
        )

    def kong_connection(self) -> KongConnection:
        headers: dict[str, str] = {}
        if self.kong_admin_token:
            headers["Kong-Admin-Token"] = self.kong_admin_token
        for header in self.kong_admin_headers:
            name, _, value = header.partition(":")
            headers[name.strip()] = value.strip()
        verify: bool | str = self.kong_admin_ca_cert or self.kong_admin_tls_verify
        cert: Any = self.kong_admin_client_cert
        if self.kong_admin_client_cert and self.kong_admin_client_key:
            cert = (self.kong_admin_client_cert, self.kong_admin_client_key)
        return KongConnection(
            admin_url=self.kong_admin_url,
            headers=headers,
            verify=verify,
            client_cert=cert,
            timeout_seconds=self.kong_timeout,
        )

    def kong_retry(self) -> RetryPolicy:
        return RetryPolicy(total_seconds=self.retry_seconds)

    def consul_options(self) -> dict[str, Any]:
        """Keyword arguments for ``consul.Consul`` (py-consul)."""
        address = ConsulAddress(self.consul_http_addr)
        verify: bool | str = self.consul_cacert or self.consul_http_ssl_verify
        cert: Any = None
        if self.consul_client_cert:
            cert = (
                (self.consul_client_cert, self.consul_client_key)
                if (self.consul_client_key)
                else self.consul_client_cert
            )
        return {
            "host": address.host,
            "port": address.port,
            "scheme": address.scheme,
            "token": self.consul_http_token,
            "verify": verify,
            "cert": cert,
            "dc": self.consul_datacenter,
        }

    @property
    def owner(self) -> str:
        return self.bridge_id

    @property
    def lock_key(self) -> str:
        """The KV key the replicas of this bridge lock (``kong-bridge/<bridge-id>/leader``)."""
        return self.ha_lock_key or f"kong-bridge/{self.bridge_id}/leader"


def env_name(field: str) -> str:
    """The environment variable a setting is read from."""
    alias = BridgeSettings.model_fields[field].validation_alias
    assert isinstance(alias, AliasChoices)
    return str(alias.choices[0])


def default_text(field: str) -> str:
    """A setting's default as ``--help`` and the README show it ("" when there is none)."""
    info = BridgeSettings.model_fields[field]
    if info.default_factory is not None:
        return ""  # computed at start-up (e.g. the instance name); the description says how
    default = info.default
    if default in (None, []):
        return ""
    return str(default).lower() if isinstance(default, bool) else str(default)


def flag_name(field: str) -> str:
    """The command-line flag of a setting."""
    return FLAG_NAMES.get(field, "--" + field.replace("_", "-"))


def _describe(error: Any) -> str:
    """One validation error as ``--flag (ENV): what was expected (got 'value')``."""
    loc = str(error["loc"][0]) if error["loc"] else ""
    field = next(
        (name for name in BridgeSettings.model_fields if loc in (name, env_name(name))), loc
    )
    where = (
        f"{flag_name(field)} ({env_name(field)})" if field in BridgeSettings.model_fields else loc
    )
    message = str(error["msg"]).removeprefix("Value error, ")
    got = error.get("input")
    shown = "" if got is None or "got " in message or field in SECRET_FIELDS else f" (got {got!r})"
    return f"{where}: {message}{shown}"


def load_settings(overrides: dict[str, Any]) -> BridgeSettings:
    """Settings from the environment and ``overrides`` (flags; ``None`` = not given).

    Raises :class:`UsageError` with one line per problem, before any network call.
    """
    try:
        return BridgeSettings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        problems = "; ".join(_describe(error) for error in exc.errors())
        raise UsageError(f"invalid settings: {problems}") from None
