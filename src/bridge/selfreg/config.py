"""The Microkubes service config file (JSON), validated with pydantic.

The file's shape is the one in the Microkubes documentation::

    {"service": {"name": "...", "port": 8080, "paths": ["/x"],
                 "virtual_host": "x.service.consul", "hosts": [...],
                 "weight": 10, "slots": 100},
     "gatewayUrl": "http://kong:8000", "gatewayAdminUrl": "http://kong:8001", ...}

Other keys are tolerated; ``microservice`` is accepted for ``service`` (some
Microkubes services used that key).
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from ..convention import ValueProblem, host_name, http_method, route_path, route_protocol
from ..settings import without_credentials
from .errors import ServiceConfigError

DEFAULT_CONFIG_FILE = "/run/secrets/microservice_user_config.json"
DEFAULT_ADMIN_URL = "http://localhost:8001"
KONG_NAME_PATTERN = r"^[A-Za-z0-9.\-_~]+$"
_DNS_NAME = re.compile(
    r"^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*$"
)


def _each(check: Callable[[str], str], values: list[str] | None) -> list[str] | None:
    """Run a convention check on every item; its message becomes pydantic's."""
    if values is None:
        return None
    try:
        return [check(value) for value in values]
    except ValueProblem as problem:
        raise ValueError(f"expected {problem}") from None


def _dns_name(value: str | None) -> str | None:
    if value is not None and not (_DNS_NAME.match(value) and len(value) <= 253):
        raise ValueError("expected a DNS name such as my-service.service.consul")
    return value


class MicroserviceConfig(BaseModel):
    """The ``service`` section: what to register and how.

    Strict: JSON types are taken as they are (``"port": "8080"`` and
    ``"port": true`` are errors, not 8080 and 1), and every value Kong would
    refuse is refused here, before anything is written.
    """

    model_config = ConfigDict(extra="allow", frozen=True, strict=True)

    name: str = Field(pattern=KONG_NAME_PATTERN)
    port: int = Field(ge=1, le=65535)
    paths: list[str] = Field(default_factory=list)
    virtual_host: str | None = None
    hosts: list[str] = Field(default_factory=list)
    weight: int | None = Field(default=None, ge=0, le=65535)
    slots: int | None = Field(default=None, ge=10, le=65536)
    # Extensions of this project (not in the Microkubes files):
    methods: list[str] | None = None
    protocols: list[str] | None = None
    strip_path: bool | None = None
    preserve_host: bool | None = None
    address: str | None = None

    _paths = field_validator("paths")(lambda v: _each(route_path, v))
    _hosts = field_validator("hosts")(lambda v: _each(host_name, v))
    _methods = field_validator("methods")(lambda v: _each(http_method, v))
    _protocols = field_validator("protocols")(lambda v: _each(route_protocol, v))
    _virtual_host = field_validator("virtual_host")(_dns_name)

    @field_validator("address")
    @classmethod
    def _address(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            ipaddress.ip_address(value)
        except ValueError:
            if not _DNS_NAME.match(value):
                raise ValueError("expected an IP address or a DNS name") from None
        return value

    @model_validator(mode="after")
    def _needs_a_matcher(self) -> MicroserviceConfig:
        if not self.paths and not self.hosts:
            raise ValueError("expected at least one of 'paths' or 'hosts' so Kong can route")
        return self


class ServiceConfig(BaseModel):
    """The whole file."""

    model_config = ConfigDict(extra="allow", frozen=True, populate_by_name=True)

    service: MicroserviceConfig = Field(validation_alias=AliasChoices("service", "microservice"))
    gatewayUrl: str | None = Field(default=None, strict=True)
    gatewayAdminUrl: str | None = Field(default=None, strict=True, pattern=r"^https?://[^\s]+$")


def _describe(error: dict[str, Any]) -> str:
    where = ".".join(str(part) for part in error["loc"]) or "(top level)"
    message = str(error["msg"]).removeprefix("Value error, ")
    if error["type"] == "missing":
        return f"{where}: required field missing"
    if error["type"] == "string_pattern_mismatch" and where.endswith("AdminUrl"):
        message = "expected an http:// or https:// URL"
    elif error["type"] == "string_pattern_mismatch":
        message = "expected a Kong name (letters, digits, '.', '-', '_' or '~')"
    shown = error["input"]
    if isinstance(shown, str) and where.startswith("gateway"):
        shown = without_credentials(shown)  # a URL's user:password is not echoed
    return f"{where}: {message} (got {shown!r})"


def parse_service_config(data: Any, source: str = "<config>") -> ServiceConfig:
    """Validate already-decoded JSON; errors name ``source``, the field and what was expected."""
    try:
        return ServiceConfig.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(_describe(dict(error)) for error in exc.errors())
        raise ServiceConfigError(f"{source}: invalid service config: {problems}") from None


def load_service_config(path: str | os.PathLike[str] | None = None) -> ServiceConfig:
    """Read and validate a service config file (default: ``$SERVICE_CONFIG_FILE``)."""
    file = Path(path or os.environ.get("SERVICE_CONFIG_FILE") or DEFAULT_CONFIG_FILE)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise ServiceConfigError(f"{file}: cannot read service config: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise ServiceConfigError(
            f"{file}: not valid UTF-8 (byte {exc.start}: {exc.reason}); save it as UTF-8"
        ) from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ServiceConfigError(
            f"{file}: not valid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}"
        ) from None
    except RecursionError:
        raise ServiceConfigError(f"{file}: JSON nested too deeply to be a service config") from None
    return parse_service_config(data, str(file))


def admin_url_for(config: ServiceConfig | None = None, explicit: str | None = None) -> str:
    """The Admin API URL: explicit, else ``$API_GATEWAY_URL``, else the file, else the default."""
    return (
        explicit
        or os.environ.get("API_GATEWAY_URL")
        or (config.gatewayAdminUrl if config else None)
        or DEFAULT_ADMIN_URL
    )
