"""Kong's upstream ``healthchecks`` record (``kong/db/schema/entities/upstreams.lua``).

Shared by the Kong emulator (upstream validation) and the bridge (typing the
``kong.upstream.healthchecks.*`` keys), so both follow the one definition.
"""

from __future__ import annotations

from .fields import Field, boolean, integer, record, string, string_array

HTTP_STATUS = integer(between=(100, 999))
HEALTHCHECKS = record(
    {
        "active": record(
            {
                "type": string(default="http", one_of=("tcp", "http", "https", "grpc", "grpcs")),
                "timeout": Field("number", default=1),
                "concurrency": integer(default=10, between=(1, 2**31 - 1)),
                "http_path": string(default="/"),
                "https_sni": string(),
                "https_verify_certificate": boolean(default=True),
                "headers": Field("map", values=string_array()),
                "healthy": record(
                    {
                        "interval": Field("number", default=0),
                        "http_statuses": string_array(HTTP_STATUS, default=[200, 302]),
                        "successes": integer(default=0, between=(0, 255)),
                    }
                ),
                "unhealthy": record(
                    {
                        "interval": Field("number", default=0),
                        "http_statuses": string_array(
                            HTTP_STATUS, default=[429, 404, 500, 501, 502, 503, 504, 505]
                        ),
                        "tcp_failures": integer(default=0, between=(0, 255)),
                        "timeouts": integer(default=0, between=(0, 255)),
                        "http_failures": integer(default=0, between=(0, 255)),
                    }
                ),
            }
        ),
        "passive": record(
            {
                "type": string(default="http", one_of=("tcp", "http", "https", "grpc", "grpcs")),
                "healthy": record(
                    {
                        "http_statuses": string_array(
                            HTTP_STATUS,
                            default=[
                                *range(200, 209),
                                226,
                                *range(300, 309),
                            ],
                        ),
                        "successes": integer(default=0, between=(0, 255)),
                    }
                ),
                "unhealthy": record(
                    {
                        "http_statuses": string_array(HTTP_STATUS, default=[429, 500, 503]),
                        "tcp_failures": integer(default=0, between=(0, 255)),
                        "timeouts": integer(default=0, between=(0, 255)),
                        "http_failures": integer(default=0, between=(0, 255)),
                    }
                ),
            }
        ),
        "threshold": Field("number", default=0, between=(0, 100)),
    }
)
