"""``GET /v1/agent/metrics``: go-metrics' in-memory summary, or Prometheus text.

The gauges are the agent's own (``consul.runtime.*``) and the catalog's
(``consul.state.*``), computed from the emulator's state at each request.
"""

from __future__ import annotations

import os
import resource
from datetime import UTC, datetime

from starlette.responses import Response

from .context import Context
from .query import Query
from .web import json_response

PROMETHEUS_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def gauges(ctx: Context) -> dict[str, float]:
    catalog = ctx.catalog
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {
        "consul.runtime.alloc_bytes": float(rss),
        "consul.runtime.sys_bytes": float(rss),
        "consul.runtime.heap_objects": float(len(catalog.services) + len(catalog.checks)),
        "consul.runtime.num_goroutines": float(100 + ctx.raft.watchers.waiting),
        "consul.runtime.total_gc_pause_ns": 0.0,
        "consul.runtime.total_gc_runs": 0.0,
        "consul.raft.applied_index": float(ctx.raft.index),
        "consul.raft.last_index": float(ctx.raft.index),
        "consul.session_ttl.active": float(len(ctx.sessions.sessions)),
        "consul.state.nodes": float(len(catalog.nodes)),
        "consul.state.services": float(len(catalog.services_by_name)),
        "consul.state.service_instances": float(len(catalog.services)),
        "consul.state.kv_entries": float(len(ctx.kv.entries)),
        "consul.serf.member.count": 1.0,
        "consul.runtime.cpu_count": float(os.cpu_count() or 1),
    }


def metrics_response(ctx: Context, q: Query) -> Response:
    values = gauges(ctx)
    if q.params.get("format") == "prometheus":
        lines = []
        for name, value in sorted(values.items()):
            metric = name.replace(".", "_")
            lines += [f"# HELP {metric} {metric}", f"# TYPE {metric} gauge", f"{metric} {value:g}"]
        return Response("\n".join(lines) + "\n", media_type=PROMETHEUS_TYPE)
    now = datetime.now(UTC).replace(microsecond=0)
    return json_response(
        200,
        {
            "Timestamp": now.strftime("%Y-%m-%d %H:%M:%S +0000 UTC"),
            "Gauges": [
                {"Name": name, "Value": value, "Labels": {}}
                for name, value in sorted(values.items())
            ],
            "Points": [],
            "Counters": [],
            "Samples": [],
        },
    )
