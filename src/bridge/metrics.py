"""The bridge's metrics, rendered in Prometheus' text format (no client library needed)."""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass, field

PROPAGATION_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


def _labels(**labels: str) -> str:
    if not labels:
        return ""
    inner = ",".join(f'{key}="{value}"' for key, value in sorted(labels.items()))
    return "{" + inner + "}"


@dataclass
class Metrics:
    """Counters and gauges shared by the reconciler, the watcher and the Kong client."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    kong_requests: Counter[tuple[str, str]] = field(default_factory=Counter)
    watch_errors: int = 0
    watch_resets: int = 0
    owned: dict[str, int] = field(default_factory=dict)
    services_in_error: int = 0
    held_back_deletes: int = 0
    held_deletes: int = 0  # held now (guard.py), until released or confirmed
    last_success: float = 0.0
    syncs: int = 0
    propagation: list[int] = field(default_factory=lambda: [0] * len(PROPAGATION_BUCKETS))
    propagation_sum: float = 0.0
    propagation_count: int = 0
    watches: int = 0

    def kong_request(self, method: str, status: str) -> None:
        with self.lock:
            self.kong_requests[(method, status)] += 1

    def observe_propagation(self, seconds: float) -> None:
        with self.lock:
            for index, bound in enumerate(PROPAGATION_BUCKETS):
                if seconds <= bound:
                    self.propagation[index] += 1
            self.propagation_sum += seconds
            self.propagation_count += 1

    def render(self) -> str:
        with self.lock:
            lines = [
                "# HELP kong_bridge_propagation_seconds Consul change seen to Kong applied.",
                "# TYPE kong_bridge_propagation_seconds histogram",
            ]
            for bound, count in zip(PROPAGATION_BUCKETS, self.propagation, strict=True):
                lines.append(f'kong_bridge_propagation_seconds_bucket{{le="{bound}"}} {count}')
            lines += [
                f'kong_bridge_propagation_seconds_bucket{{le="+Inf"}} {self.propagation_count}',
                f"kong_bridge_propagation_seconds_sum {self.propagation_sum:.6f}",
                f"kong_bridge_propagation_seconds_count {self.propagation_count}",
                "# HELP kong_bridge_kong_requests_total Kong Admin API requests by status.",
                "# TYPE kong_bridge_kong_requests_total counter",
            ]
            for (method, status), count in sorted(self.kong_requests.items()):
                lines.append(
                    "kong_bridge_kong_requests_total"
                    f"{_labels(method=method, status=status)} {count}"
                )
            lines += [
                "# HELP kong_bridge_consul_watch_errors_total Failed Consul reads.",
                "# TYPE kong_bridge_consul_watch_errors_total counter",
                f"kong_bridge_consul_watch_errors_total {self.watch_errors}",
                "# HELP kong_bridge_consul_watch_resets_total Index resets and reconnects.",
                "# TYPE kong_bridge_consul_watch_resets_total counter",
                f"kong_bridge_consul_watch_resets_total {self.watch_resets}",
                "# HELP kong_bridge_consul_watches Blocking queries held open.",
                "# TYPE kong_bridge_consul_watches gauge",
                f"kong_bridge_consul_watches {self.watches}",
                "# HELP kong_bridge_owned_entities Kong entities carrying our owner tag.",
                "# TYPE kong_bridge_owned_entities gauge",
            ]
            for kind, count in sorted(self.owned.items()):
                lines.append(f"kong_bridge_owned_entities{_labels(kind=kind)} {count}")
            lines += [
                "# HELP kong_bridge_services_in_error Services skipped or failing.",
                "# TYPE kong_bridge_services_in_error gauge",
                f"kong_bridge_services_in_error {self.services_in_error}",
                "# HELP kong_bridge_deletes_held_back_total Deletions held back by a guard.",
                "# TYPE kong_bridge_deletes_held_back_total counter",
                f"kong_bridge_deletes_held_back_total {self.held_back_deletes}",
                "# HELP kong_bridge_deletes_held Deletions held now, awaiting release.",
                "# TYPE kong_bridge_deletes_held gauge",
                f"kong_bridge_deletes_held {self.held_deletes}",
                "# HELP kong_bridge_syncs_total Reconciliations completed.",
                "# TYPE kong_bridge_syncs_total counter",
                f"kong_bridge_syncs_total {self.syncs}",
                "# HELP kong_bridge_last_successful_sync_timestamp_seconds Unix time.",
                "# TYPE kong_bridge_last_successful_sync_timestamp_seconds gauge",
                f"kong_bridge_last_successful_sync_timestamp_seconds {self.last_success:.3f}",
            ]
        return "\n".join(lines) + "\n"

    def mark_success(self) -> None:
        with self.lock:
            self.last_success = time.time()
            self.syncs += 1
