"""kong-consul-bridge: put services registered in Consul behind Kong."""

__version__ = "0.1.0"
