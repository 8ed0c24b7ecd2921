"""Cluster state beyond the catalog: network coordinates and the autopilot configuration.

Both live in the Raft log (``agent/consul/state/coordinate.go``, ``autopilot.go``),
so their writes take Raft indexes like every other write.
"""

from __future__ import annotations

import math
from typing import Any

from .durations import DurationError, format_duration, parse_duration
from .query import BadRequest
from .raft import Raft, WatchKey

Row = dict[str, Any]
COORDINATES_KEY: WatchKey = ("table", "coordinates")
DIMENSIONALITY = 8  # Serf's coordinate.DefaultConfig


def origin_coordinate() -> Row:
    """A fresh Serf coordinate: the origin, with the default error and height."""
    return {"Vec": [0.0] * DIMENSIONALITY, "Error": 1.5, "Adjustment": 0.0, "Height": 1e-05}


def valid_coordinate(coord: Any) -> bool:
    """``Coordinate.IsValid`` and ``IsCompatibleWith`` against the default dimensionality."""
    if not isinstance(coord, dict):
        return False
    vec = coord.get("Vec")
    numbers = [
        *(vec if isinstance(vec, list) else []),
        *(coord.get(k, 0) for k in ("Error", "Adjustment", "Height")),
    ]
    return (
        isinstance(vec, list)
        and len(vec) == DIMENSIONALITY
        and all(
            isinstance(n, int | float) and not isinstance(n, bool) and math.isfinite(n)
            for n in numbers
        )
    )


class CoordinateStore:
    """LAN coordinates by node (one segment: the default, "")."""

    def __init__(self, raft: Raft) -> None:
        self.raft = raft
        self.coordinates: dict[str, Row] = {}
        self.table_index = 1

    def update(self, node: str, segment: str, coord: Row) -> None:
        index = self.raft.next_index()
        self.table_index = index
        self.coordinates[node] = {"Node": node, "Segment": segment, "Coord": coord}
        self.raft.touch(COORDINATES_KEY)

    def restore_index(self, index: int) -> None:
        self.table_index = min(self.table_index, index)

    def forget(self, node: str) -> None:
        self.coordinates.pop(node, None)

    def listing(self) -> list[Row]:
        return [self.coordinates[name] for name in sorted(self.coordinates)]


AUTOPILOT_DEFAULTS: Row = {
    "CleanupDeadServers": True,
    "LastContactThreshold": "200ms",
    "MaxTrailingLogs": 250,
    "MinQuorum": 0,
    "ServerStabilizationTime": "10s",
    "RedundancyZoneTag": "",
    "DisableUpgradeMigration": False,
    "UpgradeVersionTag": "",
}
_AUTOPILOT_DURATIONS = ("LastContactThreshold", "ServerStabilizationTime")


class AutopilotStore:
    """``operator/autopilot/configuration``: one document with Raft indexes and CAS."""

    def __init__(self, raft: Raft) -> None:
        self.raft = raft
        index = raft.next_index()
        self.config: Row = {**AUTOPILOT_DEFAULTS, "CreateIndex": index, "ModifyIndex": index}

    def set(self, body: Row, cas: int | None) -> bool:
        if cas is not None and cas != self.config["ModifyIndex"]:
            return False
        update = {**AUTOPILOT_DEFAULTS}
        for field, default in AUTOPILOT_DEFAULTS.items():
            if field not in body:
                continue
            value = body[field]
            if field in _AUTOPILOT_DURATIONS:
                update[field] = _duration(field, value)
            elif isinstance(default, bool):
                update[field] = bool(value)
            elif isinstance(default, int):
                update[field] = int(value)
            else:
                update[field] = str(value)
        index = self.raft.next_index()
        self.config = {**update, "CreateIndex": self.config["CreateIndex"], "ModifyIndex": index}
        return True

    def restore_index(self, index: int) -> None:
        for field in ("CreateIndex", "ModifyIndex"):
            self.config[field] = min(self.config[field], index)


def _duration(field: str, value: Any) -> str:
    try:
        seconds = (
            float(value) / 1e9 if isinstance(value, int | float) else parse_duration(str(value))
        )
    except DurationError:
        raise BadRequest(f"Request decode failed: {field}: invalid duration {value!r}") from None
    return format_duration(seconds)
