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

import json
import os
from pathlib import Path
from typing import Any

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, ValidationError, model_validator

from .errors import ServiceConfigError

DEFAULT_CONFIG_FILE = "/run/secrets/microservice_user_config.json"
DEFAULT_ADMIN_URL = "http://localhost:8001"
KONG_NAME_PATTERN = r"^[A-Za-z0-9.\-_~]+$"


class MicroserviceConfig(BaseModel):
    """The ``service`` section: what to register and how."""

    model_config = ConfigDict(extra="allow", frozen=True)

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

    @model_validator(mode="after")
    def _needs_a_matcher(self) -> MicroserviceConfig:
        if not self.paths and not self.hosts:
            raise ValueError("expected at least one of 'paths' or 'hosts' so Kong can route")
        return self


class ServiceConfig(BaseModel):
    """The whole file."""

    model_config = ConfigDict(extra="allow", frozen=True, populate_by_name=True)

    service: MicroserviceConfig = Field(validation_alias=AliasChoices("service", "microservice"))
    gatewayUrl: str | None = None
    gatewayAdminUrl: str | None = None


def _describe(error: dict[str, Any]) -> str:
    where = ".".join(str(part) for part in error["loc"]) or "(top level)"
    message = str(error["msg"]).removeprefix("Value error, ")
    if error["type"] == "missing":
        return f"{where}: required field missing"
    if error["type"] == "string_pattern_mismatch":
        message = "expected a Kong name (letters, digits, '.', '-', '_' or '~')"
    return f"{where}: {message} (got {error['input']!r})"


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
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ServiceConfigError(
            f"{file}: not valid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}"
        ) from None
    return parse_service_config(data, str(file))


def admin_url_for(config: ServiceConfig | None = None, explicit: str | None = None) -> str:
    """The Admin API URL: explicit, else ``$API_GATEWAY_URL``, else the file, else the default."""
    return (
        explicit
        or os.environ.get("API_GATEWAY_URL")
        or (config.gatewayAdminUrl if config else None)
        or DEFAULT_ADMIN_URL
    )
