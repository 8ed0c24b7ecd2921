"""Config schemas of the bundled plugins the emulator knows, with Kong 3.x defaults."""

from __future__ import annotations

from .fields import Field, boolean, integer, record, string, string_array

PLUGIN_VERSION = "3.9.1"

_REDIS = record(
    {
        "host": string(),
        "port": integer(default=6379, between=(0, 65535)),
        "timeout": integer(default=2000),
        "username": string(),
        "password": string(),
        "database": integer(default=0),
        "ssl": boolean(default=False),
        "ssl_verify": boolean(default=False),
        "server_name": string(),
    }
)

_LIMIT = Field("number")

CONFIGS: dict[str, Field] = {
    "key-auth": record(
        {
            "key_names": string_array(default=["apikey"], required=True),
            "hide_credentials": boolean(default=False),
            "anonymous": string(),
            "key_in_header": boolean(default=True),
            "key_in_query": boolean(default=True),
            "key_in_body": boolean(default=False),
            "run_on_preflight": boolean(default=True),
            "realm": string(),
        }
    ),
    "rate-limiting": record(
        {
            "second": _LIMIT,
            "minute": _LIMIT,
            "hour": _LIMIT,
            "day": _LIMIT,
            "month": _LIMIT,
            "year": _LIMIT,
            "limit_by": string(
                default="consumer",
                one_of=(
                    "consumer",
                    "credential",
                    "ip",
                    "service",
                    "header",
                    "path",
                    "consumer-group",
                ),
            ),
            "header_name": string(),
            "path": string(),
            "policy": string(default="local", one_of=("local", "cluster", "redis")),
            "fault_tolerant": boolean(default=True),
            "redis": _REDIS,
            "hide_client_headers": boolean(default=False),
            "error_code": Field("number", default=429),
            "error_message": string(default="API rate limit exceeded"),
            "sync_rate": Field("number", default=-1),
        }
    ),
    "cors": record(
        {
            "origins": string_array(),
            "headers": string_array(),
            "exposed_headers": string_array(),
            "methods": string_array(
                default=[
                    "GET",
                    "HEAD",
                    "PUT",
                    "PATCH",
                    "POST",
                    "DELETE",
                    "OPTIONS",
                    "TRACE",
                    "CONNECT",
                ]
            ),
            "max_age": Field("number"),
            "credentials": boolean(default=False),
            "private_network": boolean(default=False),
            "preflight_continue": boolean(default=False),
        }
    ),
    "prometheus": record(
        {
            "per_consumer": boolean(default=False),
            "status_code_metrics": boolean(default=False),
            "latency_metrics": boolean(default=False),
            "bandwidth_metrics": boolean(default=False),
            "upstream_health_metrics": boolean(default=False),
        }
    ),
    "request-transformer": record(
        {
            "http_method": string(),
            "remove": record(
                {k: string_array(default=[]) for k in ("body", "headers", "querystring")}
            ),
            "rename": record(
                {k: string_array(default=[]) for k in ("body", "headers", "querystring")}
            ),
            "replace": record(
                {k: string_array(default=[]) for k in ("body", "headers", "querystring")}
            ),
            "add": record(
                {k: string_array(default=[]) for k in ("body", "headers", "querystring")}
            ),
            "append": record(
                {k: string_array(default=[]) for k in ("body", "headers", "querystring")}
            ),
        }
    ),
    "correlation-id": record(
        {
            "header_name": string(default="Kong-Request-ID"),
            "generator": string(default="uuid#counter", one_of=("uuid", "uuid#counter", "tracker")),
            "echo_downstream": boolean(default=False),
        }
    ),
}

# Priorities as Kong 3.x reports them in GET / (available_on_server).
PRIORITIES: dict[str, int] = {
    "key-auth": 1250,
    "rate-limiting": 910,
    "cors": 2000,
    "prometheus": 13,
    "request-transformer": 801,
    "correlation-id": 100001,
}

RATE_LIMIT_KEYS = ("second", "minute", "hour", "day", "month", "year")


def config_entity_errors(name: str, config: dict[str, object]) -> list[str]:
    """Entity-level checks a plugin's schema adds (e.g. rate-limiting needs one limit)."""
    if name == "rate-limiting" and all(config.get(key) is None for key in RATE_LIMIT_KEYS):
        keys = ", ".join(f"'config.{key}'" for key in RATE_LIMIT_KEYS)
        return [f"at least one of these fields must be non-empty: {keys}"]
    return []
