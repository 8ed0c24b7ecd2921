"""Alias checks (``agent/checks/alias.go``): the health of another service or node.

A local alias (``AliasService`` alone) reads the agent's own checks; with
``AliasNode`` it reads that node's checks in the catalog. Critical wins, then
warning, else passing; a service with no check that is not registered at all is
critical.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

Row = dict[str, Any]


@dataclass(frozen=True)
class Alias:
    node: str  # "": this agent's node, from its local checks
    service_id: str  # "": the node's checks only


def alias_of(definition: Row) -> Alias:
    return Alias(str(definition.get("AliasNode") or ""), str(definition.get("AliasService") or ""))


def alias_status(
    alias: Alias, checks: Iterable[Row], service_exists: Callable[[str], bool]
) -> tuple[str, str]:
    """``CheckAlias.processChecks``: (status, output) of the alias over ``checks``."""
    health, output, service_found = "passing", "No checks found.", False
    for check in checks:
        if alias.node and check["Node"].lower() != alias.node.lower():
            continue
        matches = check["ServiceID"] == alias.service_id
        if check["ServiceID"] and not matches:
            continue
        service_found = service_found or matches
        if check["Status"] in ("critical", "warning"):
            health = check["Status"]
            output = f'Aliased check "{check["Name"]}" failing: {check["Output"]}'
            if health == "critical":
                break
        elif health == "passing":
            output = "All checks passing."
    if not service_found and not service_exists(alias.service_id):
        health = "critical"
        output = f"Service {alias.service_id} could not be found on node {alias.node}"
    return health, output
