"""Self-registration on Kong (Microkubes parity, Kong 3.x): library, async twins and CLI."""

from .config import MicroserviceConfig, ServiceConfig, load_service_config, parse_service_config
from .errors import (
    GatewayUnavailable,
    OwnershipConflict,
    RegistrationError,
    RegistrationException,
    ServiceConfigError,
)
from .flows import Action, Result
from .gateway import (
    AsyncKongGateway,
    AsyncKongGatewayRegistrator,
    KongGateway,
    KongGatewayRegistrator,
)
from .plan import Registration

__all__ = [
    "Action",
    "AsyncKongGateway",
    "AsyncKongGatewayRegistrator",
    "GatewayUnavailable",
    "KongGateway",
    "KongGatewayRegistrator",
    "MicroserviceConfig",
    "OwnershipConflict",
    "Registration",
    "RegistrationError",
    "RegistrationException",
    "Result",
    "ServiceConfig",
    "ServiceConfigError",
    "load_service_config",
    "parse_service_config",
]
