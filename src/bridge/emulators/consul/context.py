"""What every endpoint group shares: the agent's configuration, its state and the read rules.

The state (index clock, catalog, KV, sessions, local agent) is rebuilt by
``build()`` on an emulator reset; the endpoint groups keep one ``Context``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

from starlette.responses import Response

from .acl import ACLStore, permission_denied
from .agent import Agent
from .answers import (
    AllChecks,
    AnswerCache,
    CheckFragments,
    FilteredNames,
    FilterMatches,
    RawJSON,
    answer_key,
)
from .catalog import Catalog
from .cluster import AutopilotStore, CoordinateStore, origin_coordinate
from .config_entries import ConfigEntryStore
from .filter import FilterError, Predicate, compile_filter
from .kv import KVStore, SessionStore
from .monitor import LogHub
from .query import DEFAULT_WAIT, MAX_WAIT, BadRequest, Query
from .raft import Raft, WatchKey
from .shapes import check_json
from .web import GET, Computed, HTTPError, allow, json_response, render_json

CONSUL_VERSION = "1.20.1"


@dataclass(frozen=True)
class AgentConfig:
    """The ``consul agent -dev`` settings the emulator honours."""

    datacenter: str = "dc1"
    node: str = "consul-emulator"
    address: str = "127.0.0.1"
    max_conns_per_client: int = 200
    acl_master_token: str | None = None  # ACLs on: the initial management token's secret
    acl_default_policy: str = "allow"  # acl.default_policy: for what no rule decides
    min_session_ttl: float = 10.0
    default_wait: float = DEFAULT_WAIT
    max_wait: float = MAX_WAIT


class Context:
    """The agent's state and the rules every read and write follows (leader, ACL, dc)."""

    def __init__(self, config: AgentConfig) -> None:
        self.config = config
        self.no_leader_until = 0.0
        self.generation = 0  # bumped on reset/restart: blocked queries answer at once
        self.logs = LogHub()
        self.on_leave: Callable[[], None] | None = None  # how the server stops after a leave
        # The "empty_lists" fault: asked once per answered list read (the server sets it).
        self.empty_list_fault: Callable[[], bool] = lambda: False
        self.build()

    def build(self) -> None:
        config = self.config
        self.raft = Raft()
        self.acl = ACLStore(self.raft)
        if config.acl_master_token:
            # The leader sets up ACLs (initializeACLs) before it registers itself.
            self.acl.initialize(config.acl_master_token)
        self.catalog = Catalog(self.raft, config.datacenter)
        self.answers = AnswerCache()
        self.check_fragments = CheckFragments(lambda row: render_json(check_json(row)))
        self.all_checks = AllChecks(lambda row: render_json(check_json(row)))
        self.filter_matches = FilterMatches()
        self.filtered_names = FilteredNames()
        self.kv = KVStore(self.raft)
        self.sessions = SessionStore(
            self.raft, self.catalog, self.kv, config.node, config.min_session_ttl
        )
        self.agent = Agent(self.raft, self.catalog, self.sessions, config.node, config.address)
        self.agent.bootstrap(CONSUL_VERSION)
        self.autopilot = AutopilotStore(self.raft)
        self.coordinates = CoordinateStore(self.raft)
        self.config_entries = ConfigEntryStore(self.raft)
        # The agent sends its own coordinate soon after it starts.
        self.coordinates.update(config.node, "", origin_coordinate())
        self.raft.commit()

    def reset(self) -> None:
        self.agent.runner.stop_all()
        self.abandon_blocking_queries()
        self.no_leader_until = 0.0
        self.build()

    def deregister_node(self, node: str) -> bool:
        """``deleteNodeTxn``: its sessions, coordinates, services and checks go with it."""
        self.sessions.invalidate_node(node)
        self.coordinates.forget(node)
        return self.catalog.deregister_node(node)

    def abandon_blocking_queries(self) -> None:
        """Like a snapshot restore: every blocked query returns now."""
        self.generation += 1
        self.raft.watchers.notify_all()

    # -- rules -----------------------------------------------------------------------------

    @property
    def has_leader(self) -> bool:
        return time.monotonic() >= self.no_leader_until

    def leader_address(self) -> str:
        return f"{self.config.address}:8300" if self.has_leader else ""

    def check_common(
        self, q: Query, datacenter_scoped: bool = True, resolve_token: bool = True
    ) -> None:
        """What ``agent/http.go`` checks: the dc (for RPC-backed endpoints), CE params, and
        the token (unless the endpoint does not resolve it: bootstrap, login, token/self)."""
        if datacenter_scoped:
            self.check_datacenter(q.params.get("dc"))
        if q.params.get("ns"):
            raise BadRequest(
                'Invalid query parameter: "ns" - Namespaces are a Consul Enterprise feature'
            )
        if q.params.get("partition"):
            raise BadRequest(
                'Invalid query parameter: "partition" - Partitions are a Consul Enterprise feature'
            )
        if resolve_token and self.acls_enabled and self.acl.resolve(q.token) is None:
            raise HTTPError(403, "ACL not found")

    def check_datacenter(self, dc: object) -> None:
        """A request for another datacenter: the RPC layer finds no route to it."""
        if dc and dc != self.config.datacenter:
            raise HTTPError(500, "No path to datacenter")

    def require_leader(self, q: Query) -> None:
        if not self.has_leader and q.consistency != "stale":
            raise HTTPError(500, "No cluster leader")

    # -- ACLs: a management token may do all, the default policy decides the rest ----------

    @property
    def acls_enabled(self) -> bool:
        return bool(self.config.acl_master_token)

    @property
    def default_deny(self) -> bool:
        return self.acls_enabled and self.config.acl_default_policy == "deny"

    def acl_grant(self, q: Query) -> str:
        """What the request's token may do by the built-in policies: ``write`` (management,
        or ACLs off), ``read`` (``builtin/global-read-only``) or ``""`` (rules are not
        parsed: such a token gets the default policy)."""
        if not self.acls_enabled:
            return "write"
        token = self.acl.resolve(q.token)
        return "" if token is None else self.acl.grant(token)

    def require_acl(self, q: Query, access: str) -> None:
        """``acl:read`` or ``acl:write``. The default policy never grants them: Consul's
        ``acl.AllowAll()`` does not manage, so even "allow" leaves ACLs to management."""
        grant = self.acl_grant(q)
        if grant == "write" or grant == access:
            return
        token = self.acl.resolve(q.token)
        if token is None:
            raise HTTPError(403, "ACL not found")
        raise permission_denied(token.accessor_id, f"acl:{access}")

    def require_write(self, q: Query) -> None:
        if not self.has_leader:
            raise HTTPError(500, "No cluster leader")
        grant = self.acl_grant(q)
        if grant != "write" and (grant == "read" or self.default_deny):
            raise HTTPError(403, "Permission denied")

    def anonymous(self, q: Query) -> bool:
        """Under default deny, a token no built-in policy grants anything sees nothing."""
        return self.default_deny and self.acl_grant(q) == ""

    @staticmethod
    def filter(q: Query) -> Predicate | None:
        text = q.params.get("filter")
        if not text:
            return None
        try:
            return compile_filter(text)
        except FilterError as exc:
            raise BadRequest(f"Failed to create boolean expression evaluator: {exc}") from None

    # -- blocking reads --------------------------------------------------------------------

    async def blocking(
        self,
        q: Query,
        compute: Callable[[], Computed],
        keys: list[WatchKey],
        prefixes: tuple[str, ...] = (),
    ) -> Computed:
        """Hold until the index passes ``?index`` or the (jittered) wait ends."""
        index, payload = compute()
        if q.index == 0 or index > q.index:
            return index, payload
        loop = asyncio.get_running_loop()
        deadline = loop.time() + q.timeout(self.config.default_wait, self.config.max_wait)
        generation = self.generation
        while index <= q.index and generation == self.generation:
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            future = self.raft.watchers.register(keys, prefixes)
            try:
                await asyncio.wait_for(future, remaining)
            except TimeoutError:
                pass
            finally:
                self.raft.watchers.unregister(future, keys, prefixes)
            index, payload = compute()
        return index, payload

    def meta(self, q: Query, index: int) -> dict[str, str]:
        """The headers of every blocking read (``agent/http.go`` setMeta)."""
        return {
            "X-Consul-Index": str(max(1, index)),  # setIndex never sends 0
            "X-Consul-KnownLeader": "true" if self.has_leader else "false",
            "X-Consul-LastContact": "0",
            "X-Consul-Effective-Consistency": q.consistency,
            # Without ACLs nothing is denied, whatever acl.default_policy says.
            "X-Consul-Default-ACL-Policy": "deny" if self.default_deny else "allow",
        }

    async def read(
        self,
        method: str,
        q: Query,
        compute: Callable[[], Computed],
        keys: list[WatchKey],
        prefixes: tuple[str, ...] = (),
    ) -> Response:
        """A blocking GET answered as JSON with the index headers."""
        allow(method, GET)
        self.require_leader(q)
        index, payload = await self.blocking(q, compute, keys, prefixes)
        return json_response(200, payload, self.meta(q, index), pretty=q.flag("pretty"))

    async def read_list(
        self,
        method: str,
        q: Query,
        path: str,
        compute: Callable[[], Computed],
        keys: list[WatchKey],
        empty: object = None,
    ) -> Response:
        """A blocking catalog/health read whose rendered body is shared until the catalog
        changes; ``empty`` (``[]`` or ``{}``) is what the "empty_lists" fault answers."""
        allow(method, GET)
        self.require_leader(q)
        pretty = q.flag("pretty")
        key = answer_key(path, q, self.anonymous(q))

        def build() -> tuple[int, bytes]:
            index, payload = compute()
            if isinstance(payload, RawJSON):
                return index, payload.body
            return index, render_json(payload, pretty)

        def cached() -> Computed:
            return self.answers.get_or_build(key, self.catalog.version, build)

        index, body = await self.blocking(q, cached, keys)
        if empty is not None and self.empty_list_fault():
            body = render_json(empty, pretty)
        return Response(body, media_type="application/json", headers=self.meta(q, index))
