"""The bridge's settings, from the environment (Consul's and Kong's usual names) and flags."""

from __future__ import annotations

from typing import Annotated, Any, Literal, Self
from urllib.parse import urlsplit

from pydantic import AliasChoices, Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from .kong import KongConnection, RetryPolicy
from .secrets import Redactor, read_token_file, url_secrets


class BridgeSettings(BaseSettings):
    """Everything ``kong-bridge run/sync/plan/lint`` can be told.

    Consul's variables are the ones its own tools read (``CONSUL_HTTP_ADDR``,
    ``CONSUL_HTTP_TOKEN``, ``CONSUL_CACERT``...); Kong's start with
    ``KONG_ADMIN_``; the bridge's own with ``KONG_BRIDGE_``.
    """

    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True)

    # -- Consul ----------------------------------------------------------------------------
    consul_http_addr: str = Field(
        "http://127.0.0.1:8500",
        validation_alias=AliasChoices("CONSUL_HTTP_ADDR", "consul_http_addr"),
    )
    consul_http_token: str | None = Field(
        None, validation_alias=AliasChoices("CONSUL_HTTP_TOKEN", "consul_http_token"), repr=False
    )
    consul_http_token_file: str | None = Field(
        None,
        validation_alias=AliasChoices("CONSUL_HTTP_TOKEN_FILE", "consul_http_token_file"),
    )
    consul_cacert: str | None = Field(
        None, validation_alias=AliasChoices("CONSUL_CACERT", "consul_cacert")
    )
    consul_client_cert: str | None = Field(
        None, validation_alias=AliasChoices("CONSUL_CLIENT_CERT", "consul_client_cert")
    )
    consul_client_key: str | None = Field(
        None, validation_alias=AliasChoices("CONSUL_CLIENT_KEY", "consul_client_key")
    )
    consul_http_ssl_verify: bool = Field(
        True, validation_alias=AliasChoices("CONSUL_HTTP_SSL_VERIFY", "consul_http_ssl_verify")
    )
    consul_datacenter: str | None = Field(
        None, validation_alias=AliasChoices("KONG_BRIDGE_CONSUL_DATACENTER", "consul_datacenter")
    )

    # -- Kong ------------------------------------------------------------------------------
    kong_admin_url: str = Field(
        "http://localhost:8001", validation_alias=AliasChoices("KONG_ADMIN_URL", "kong_admin_url")
    )
    kong_admin_token: str | None = Field(
        None, validation_alias=AliasChoices("KONG_ADMIN_TOKEN", "kong_admin_token"), repr=False
    )
    kong_admin_token_file: str | None = Field(
        None, validation_alias=AliasChoices("KONG_ADMIN_TOKEN_FILE", "kong_admin_token_file")
    )
    kong_admin_headers: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        validation_alias=AliasChoices("KONG_ADMIN_HEADERS", "kong_admin_headers"),
        repr=False,
    )
    kong_admin_ca_cert: str | None = Field(
        None, validation_alias=AliasChoices("KONG_ADMIN_CA_CERT", "kong_admin_ca_cert")
    )
    kong_admin_client_cert: str | None = Field(
        None, validation_alias=AliasChoices("KONG_ADMIN_CLIENT_CERT", "kong_admin_client_cert")
    )
    kong_admin_client_key: str | None = Field(
        None, validation_alias=AliasChoices("KONG_ADMIN_CLIENT_KEY", "kong_admin_client_key")
    )
    kong_admin_tls_verify: bool = Field(
        True, validation_alias=AliasChoices("KONG_ADMIN_TLS_VERIFY", "kong_admin_tls_verify")
    )
    kong_timeout: float = Field(
        10.0, validation_alias=AliasChoices("KONG_ADMIN_TIMEOUT", "kong_timeout")
    )

    # -- the bridge ------------------------------------------------------------------------
    bridge_id: str = Field(
        "kong-bridge",
        pattern=r"^[A-Za-z0-9._~:-]+$",
        validation_alias=AliasChoices("KONG_BRIDGE_ID", "bridge_id"),
    )
    tag_prefix: str = Field(
        "kong",
        pattern=r"^[A-Za-z0-9_-]+$",
        validation_alias=AliasChoices("KONG_BRIDGE_TAG_PREFIX", "tag_prefix"),
    )
    expose_by_default: bool = Field(
        False, validation_alias=AliasChoices("KONG_BRIDGE_EXPOSE_BY_DEFAULT", "expose_by_default")
    )
    mode: Literal["upstream", "dns"] = Field(
        "upstream", validation_alias=AliasChoices("KONG_BRIDGE_MODE", "mode")
    )
    domain: str = Field("consul", validation_alias=AliasChoices("KONG_BRIDGE_DOMAIN", "domain"))
    include_warning: bool = Field(
        False, validation_alias=AliasChoices("KONG_BRIDGE_INCLUDE_WARNING", "include_warning")
    )
    wait: str = Field(
        "5m", pattern=r"^\d+(ms|s|m)$", validation_alias=AliasChoices("KONG_BRIDGE_WAIT", "wait")
    )
    max_watches: int = Field(
        150, ge=0, le=10000, validation_alias=AliasChoices("KONG_BRIDGE_MAX_WATCHES", "max_watches")
    )
    debounce_seconds: float = Field(
        0.2, ge=0, validation_alias=AliasChoices("KONG_BRIDGE_DEBOUNCE", "debounce_seconds")
    )
    resync_seconds: float = Field(
        60.0, ge=1, validation_alias=AliasChoices("KONG_BRIDGE_RESYNC", "resync_seconds")
    )
    max_delete_share: float = Field(
        0.5,
        ge=0,
        le=1,
        validation_alias=AliasChoices("KONG_BRIDGE_MAX_DELETE_SHARE", "max_delete_share"),
    )
    # The deletion guard (guard.py): window, settling time, automatic confirmation.
    delete_window_seconds: float = Field(
        600.0,
        gt=0,
        validation_alias=AliasChoices("KONG_BRIDGE_DELETE_WINDOW", "delete_window_seconds"),
    )
    delete_settle_seconds: float = Field(
        5.0,
        ge=0,
        validation_alias=AliasChoices("KONG_BRIDGE_DELETE_SETTLE", "delete_settle_seconds"),
    )
    confirm_deletes_after_seconds: float = Field(
        0.0,
        ge=0,
        validation_alias=AliasChoices(
            "KONG_BRIDGE_CONFIRM_DELETES_AFTER", "confirm_deletes_after_seconds"
        ),
    )
    concurrency: int = Field(
        8, ge=1, le=64, validation_alias=AliasChoices("KONG_BRIDGE_CONCURRENCY", "concurrency")
    )
    retry_seconds: float = Field(
        10.0, ge=0, validation_alias=AliasChoices("KONG_BRIDGE_RETRY", "retry_seconds")
    )
    listen: str | None = Field(None, validation_alias=AliasChoices("KONG_BRIDGE_LISTEN", "listen"))
    log_json: bool = Field(False, validation_alias=AliasChoices("KONG_BRIDGE_LOG_JSON", "log_json"))

    @field_validator("kong_admin_headers", mode="before")
    @classmethod
    def _split_headers(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part for part in value.split(";") if part.strip()]
        return value

    @model_validator(mode="after")
    def _tokens_from_files(self) -> Self:
        """A token given directly wins over its file, as with Consul's own tools."""
        if not self.consul_http_token and self.consul_http_token_file:
            self.consul_http_token = read_token_file(
                self.consul_http_token_file, "CONSUL_HTTP_TOKEN_FILE"
            )
        if not self.kong_admin_token and self.kong_admin_token_file:
            self.kong_admin_token = read_token_file(
                self.kong_admin_token_file, "KONG_ADMIN_TOKEN_FILE"
            )
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
        address = self.consul_http_addr
        if "//" not in address:
            address = "//" + address
        parts = urlsplit(address)
        scheme = parts.scheme or "http"
        verify: bool | str = self.consul_cacert or self.consul_http_ssl_verify
        cert: Any = None
        if self.consul_client_cert:
            cert = (
                (self.consul_client_cert, self.consul_client_key)
                if (self.consul_client_key)
                else self.consul_client_cert
            )
        return {
            "host": parts.hostname or "127.0.0.1",
            "port": parts.port or (443 if scheme == "https" else 8500),
            "scheme": scheme,
            "token": self.consul_http_token,
            "verify": verify,
            "cert": cert,
            "dc": self.consul_datacenter,
        }

    @property
    def owner(self) -> str:
        return self.bridge_id
