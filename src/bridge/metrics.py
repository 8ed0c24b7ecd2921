"""The bridge's metrics: plain counters the stages update, exposed with prometheus-client.

The reconciler, the watcher, the Kong client and the leader election update
plain fields (cheap, no client-library objects on the hot path); a collector
turns them into Prometheus families at scrape time. prometheus-client adds the
process metrics (``process_*``) and ``python_info``. Every family is documented
in the README's "Observability" section.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, PlatformCollector, ProcessCollector
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    InfoMetricFamily,
    Metric,
)
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import Collector

from . import __version__

PROPAGATION_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
UNREACHABLE_STATUSES = frozenset({"error", "502", "503", "504"})  # no answer, or a proxy's


@dataclass
class Reachability:
    """Whether the last request to one side got an answer, and what went wrong if not."""

    up: bool = True
    problem: str = ""

    def record(self, ok: bool, problem: str = "") -> None:
        self.up, self.problem = ok, ("" if ok else problem)


@dataclass
class Metrics:
    """Counters and gauges shared by the reconciler, the watcher and the Kong client."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    kong_requests: Counter[tuple[str, str]] = field(default_factory=Counter)
    watch_errors: int = 0
    watch_resets: int = 0
    owned: dict[str, int] = field(default_factory=dict)
    services_in_error: int = 0
    error_reasons: dict[str, str] = field(default_factory=dict)  # service -> reason
    held_back_deletes: int = 0
    held_deletes: int = 0  # held now (guard.py), until released or confirmed
    last_success: float = 0.0
    syncs: int = 0
    propagation: list[int] = field(default_factory=lambda: [0] * len(PROPAGATION_BUCKETS))
    propagation_sum: float = 0.0
    propagation_count: int = 0
    watches: int = 0
    kong: Reachability = field(default_factory=Reachability)
    consul: Reachability = field(default_factory=Reachability)
    leadership_changes: int = 0
    plans_withheld: int = 0
    full_passes: int = 0
    full_pass_compared: int = 0  # services the last full pass diffed (the others were in step)
    may_write: Callable[[], bool] = lambda: True

    def kong_request(self, method: str, status: str, path: str = "") -> None:
        with self.lock:
            self.kong_requests[(method, status)] += 1
            problem = f"{method} {path}: " + ("no answer" if status == "error" else status)
            self.kong.record(status not in UNREACHABLE_STATUSES, problem)

    def consul_reached(self, ok: bool, problem: str = "") -> None:
        with self.lock:
            self.consul.record(ok, problem)

    def observe_propagation(self, seconds: float) -> None:
        with self.lock:
            for index, bound in enumerate(PROPAGATION_BUCKETS):
                if seconds <= bound:
                    self.propagation[index] += 1
            self.propagation_sum += seconds
            self.propagation_count += 1

    def mark_success(self, complete: bool = True) -> None:
        """A reconciliation ended; ``complete`` when every service that should be in Kong is."""
        with self.lock:
            self.syncs += 1
            if complete:
                self.last_success = time.time()

    def leadership_changed(self) -> None:
        with self.lock:
            self.leadership_changes += 1

    def registry(self) -> CollectorRegistry:
        """A registry with our families and the process metrics, for :meth:`render`."""
        registry = CollectorRegistry(auto_describe=True)
        registry.register(_BridgeCollector(self))
        ProcessCollector(registry=registry)
        PlatformCollector(registry=registry)
        return registry

    def render(self, registry: CollectorRegistry | None = None) -> str:
        return generate_latest(registry or self.registry()).decode()


class _BridgeCollector(Collector):
    """Reads :class:`Metrics` under its lock and yields Prometheus families."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[Metric]:
        m = self.metrics
        with m.lock:
            yield _info()
            yield _propagation(m)
            requests = CounterMetricFamily(
                "kong_bridge_kong_requests",
                "Kong Admin API requests (every attempt) by method and status.",
                labels=["method", "status"],
            )
            for (method, status), count in sorted(m.kong_requests.items()):
                requests.add_metric([method, status], count)
            yield requests
            yield _counter(
                "kong_bridge_consul_watch_errors", "Failed Consul reads.", m.watch_errors
            )
            yield _counter(
                "kong_bridge_consul_watch_resets",
                "Consul reads not trusted for deletions (index reset, empty catalog).",
                m.watch_resets,
            )
            yield _gauge("kong_bridge_consul_watches", "Blocking queries held open.", m.watches)
            owned = GaugeMetricFamily(
                "kong_bridge_owned_entities",
                "Kong entities carrying our owner tag, by kind.",
                labels=["kind"],
            )
            for kind, count in sorted(m.owned.items()):
                owned.add_metric([kind], count)
            yield owned
            yield _gauge(
                "kong_bridge_services_in_error",
                "Services skipped (bad tags) or whose last write failed.",
                m.services_in_error,
            )
            by_reason = GaugeMetricFamily(
                "kong_bridge_services_in_error_by_reason",
                "Services in error, by reason (invalid-tags, clash, kong-failed).",
                labels=["reason"],
            )
            for reason in sorted(set(m.error_reasons.values())):
                count = sum(1 for r in m.error_reasons.values() if r == reason)
                by_reason.add_metric([reason], count)
            yield by_reason
            yield _counter(
                "kong_bridge_deletes_held_back",
                "Deletions held back by a guard.",
                m.held_back_deletes,
            )
            yield _gauge(
                "kong_bridge_deletes_held",
                "Deletions held now, until an operator releases them (guard.py).",
                m.held_deletes,
            )
            yield _counter("kong_bridge_syncs", "Reconciliations completed.", m.syncs)
            yield _gauge(
                "kong_bridge_last_successful_sync_timestamp_seconds",
                "Unix time of the last reconciliation after which every service that should "
                "be in Kong was (0: never).",
                m.last_success,
            )
            yield _gauge(
                "kong_bridge_kong_up",
                "1 when the last request to Kong got an answer (not a 502/503/504).",
                int(m.kong.up),
            )
            yield _gauge(
                "kong_bridge_consul_up", "1 when the last request to Consul succeeded.", m.consul.up
            )
            yield _counter(
                "kong_bridge_leadership_changes",
                "Times this process became leader or stopped being leader (--ha).",
                m.leadership_changes,
            )
            yield _counter(
                "kong_bridge_full_passes",
                "Full reconciliations (after each read of Kong).",
                m.full_passes,
            )
            yield _gauge(
                "kong_bridge_full_pass_services_compared",
                "Services the last full reconciliation compared with Kong; the others had "
                "not changed on either side since they were last found in step.",
                m.full_pass_compared,
            )
            yield _counter(
                "kong_bridge_plans_withheld",
                "Plans not applied because this process may not write (a standby).",
                m.plans_withheld,
            )
        yield _gauge(
            "kong_bridge_leader",
            "1 when this process may write to Kong (the leader, or without --ha), else 0.",
            int(m.may_write()),
        )


def _counter(name: str, documentation: str, value: float) -> CounterMetricFamily:
    return CounterMetricFamily(name, documentation, value=value)


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=value)


def _info() -> InfoMetricFamily:
    return InfoMetricFamily(
        "kong_bridge_build", "The bridge's version.", value={"version": __version__}
    )


def _propagation(m: Metrics) -> HistogramMetricFamily:
    buckets = [
        (str(bound), count) for bound, count in zip(PROPAGATION_BUCKETS, m.propagation, strict=True)
    ]
    buckets.append(("+Inf", m.propagation_count))
    return HistogramMetricFamily(
        "kong_bridge_propagation_seconds",
        "From a Consul change seen to Kong applied.",
        buckets=buckets,
        sum_value=m.propagation_sum,
    )
