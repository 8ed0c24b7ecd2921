"""kong-consul-bridge: put services registered in Consul behind Kong."""

from .selfreg import (
    AsyncKongGateway,
    AsyncKongGatewayRegistrator,
    KongGateway,
    KongGatewayRegistrator,
    RegistrationError,
    load_service_config,
)

__version__ = "0.1.0"
__all__ = [
    "AsyncKongGateway",
    "AsyncKongGatewayRegistrator",
    "KongGateway",
    "KongGatewayRegistrator",
    "RegistrationError",
    "load_service_config",
]
