"""``/v1/config``, ``/v1/connect/intentions`` and ``/v1/discovery-chain``: config entries
and what Consul builds on them (``agent/config_endpoint.go``, ``agent/intentions_endpoint.go``).

Intentions are kept as Consul 1.9+ keeps them: as the sources of a
``service-intentions`` entry named after the destination.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from .config_entries import CONFIG_KEY, ConfigEntryError, check_kind, decode_entry
from .context import Context
from .query import BadRequest, Query
from .web import GET, PUT, Computed, HTTPError, allow, json_body, json_object, json_response

Row = dict[str, Any]
INTENTIONS = "service-intentions"
WILDCARD = "*"
# The SPIFFE trust domain of the built-in CA: <cluster id>.consul.
TRUST_DOMAIN = "11111111-2222-3333-4444-555555555555.consul"


class ConfigRoutes:
    """Config entries, intentions and discovery chains over one store."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    async def route(self, request: Request, q: Query, seg: list[str]) -> Response | None:
        method = request.method
        try:
            match seg:
                case ["v1", "config"]:
                    allow(method, PUT)
                    return await self._apply(request, q)
                case ["v1", "config", kind]:
                    allow(method, GET)
                    check_kind(kind)
                    return await self.ctx.read(method, q, lambda: self._list(kind), [CONFIG_KEY])
                case ["v1", "config", kind, name]:
                    allow(method, ("GET", "HEAD", "DELETE"))
                    if method == "DELETE":
                        return self._delete(q, kind, name)
                    return await self._get(q, kind, name)
                case ["v1", "connect", "intentions"]:
                    allow(method, GET)
                    return await self.ctx.read(method, q, self._intentions, [CONFIG_KEY])
                case ["v1", "connect", "intentions", "exact"]:
                    allow(method, ("GET", "HEAD", "PUT", "DELETE"))
                    return await self._exact(request, q)
                case ["v1", "connect", "intentions", "check"]:
                    allow(method, GET)
                    return json_response(200, {"Allowed": self._check(q)})
                case ["v1", "connect", "intentions", "match"]:
                    allow(method, GET)
                    return json_response(200, self._match(q))
                case ["v1", "discovery-chain", service]:
                    allow(method, ("GET", "HEAD", "POST"))
                    return await self._chain(request, q, service)
        except ConfigEntryError as exc:
            raise HTTPError(exc.status, str(exc)) from None
        return None

    # -- config entries --------------------------------------------------------------------

    async def _apply(self, request: Request, q: Query) -> Response:
        self.ctx.require_write(q)
        entry = decode_entry(await json_body(request))
        cas = _cas(q)
        applied = self.ctx.config_entries.set(entry, cas)
        self.ctx.raft.commit()
        return json_response(200, applied)

    def _list(self, kind: str) -> Computed:
        store = self.ctx.config_entries
        return store.table_index, store.listing(kind)

    async def _get(self, q: Query, kind: str, name: str) -> Response:
        store = self.ctx.config_entries
        index, entry = await self.ctx.blocking(
            q, lambda: (store.table_index, store.get(kind, name)), [CONFIG_KEY]
        )
        if entry is None:
            check_kind(kind)
            raise HTTPError(404, f'Config entry not found for "{kind}" / "{name}"')
        return json_response(200, entry, self.ctx.meta(q, index))

    def _delete(self, q: Query, kind: str, name: str) -> Response:
        self.ctx.require_write(q)
        check_kind(kind)
        cas = _cas(q)
        deleted = self.ctx.config_entries.delete(kind, name, cas)
        self.ctx.raft.commit()
        # CAS deletes answer whether they applied; plain ones an empty object (struct{}{}).
        return json_response(200, deleted if cas is not None else {})

    # -- intentions ------------------------------------------------------------------------

    def _intentions(self) -> Computed:
        store = self.ctx.config_entries
        rows = [
            intention
            for entry in store.listing(INTENTIONS)
            for intention in _entry_intentions(entry)
        ]
        return store.table_index, sorted(rows, key=_precedence_order)

    async def _exact(self, request: Request, q: Query) -> Response:
        source, destination = _required(q, "source"), _required(q, "destination")
        store = self.ctx.config_entries
        existing = store.get(INTENTIONS, destination)
        if request.method == "PUT":
            self.ctx.require_write(q)
            body = await json_object(request)
            store.set(_with_source(existing, destination, source, body))
            self.ctx.raft.commit()
            return json_response(200, True)
        if request.method == "DELETE":
            self.ctx.require_write(q)
            if existing is not None:
                sources = [s for s in existing.get("Sources") or [] if s.get("Name") != source]
                if sources:
                    store.set({**_writable(existing), "Sources": sources})
                else:
                    store.delete(INTENTIONS, destination)
                self.ctx.raft.commit()
            return json_response(200, True)
        self.ctx.require_leader(q)
        for intention in _entry_intentions(existing) if existing else []:
            if intention["SourceName"] == source:
                return json_response(200, intention)
        raise HTTPError(404, "Intention not found")

    def _check(self, q: Query) -> bool:
        source, destination = _required(q, "source"), _required(q, "destination")
        for intention in self._matching("destination", destination):
            if intention["SourceName"] in (source, WILDCARD):
                return bool(intention["Action"] == "allow")
        return self._default_allow()

    def _default_allow(self) -> bool:
        """No intention matches: the ACL default policy decides (allow with ACLs off)."""
        return not self.ctx.default_deny

    def _match(self, q: Query) -> dict[str, list[Row]]:
        by = q.params.get("by")
        if by is None:
            raise HTTPError(500, "required query parameter 'by' not set")
        if by not in ("source", "destination"):
            raise HTTPError(500, "'by' parameter must be one of 'source' or 'destination'")
        names = q.params.getlist("name")
        if not names:
            raise HTTPError(500, "required query parameter 'name' not set")
        return {name: self._matching(by, name) for name in names}

    def _matching(self, by: str, name: str) -> list[Row]:
        """Intentions whose ``by`` side is ``name`` or ``*``, highest precedence first."""
        field = "SourceName" if by == "source" else "DestinationName"
        _, every = self._intentions()
        return [row for row in every if row[field] in (name, WILDCARD)]

    # -- discovery chain -------------------------------------------------------------------

    async def _chain(self, request: Request, q: Query, service: str) -> Response:
        self.ctx.require_leader(q)
        body = await json_object(request) if request.method == "POST" else {}
        protocol = body.get("OverrideProtocol") or self._protocol(service)
        return json_response(200, {"Chain": self._default_chain(service, protocol)})

    def _protocol(self, service: str) -> str:
        defaults = self.ctx.config_entries.get("service-defaults", service)
        proxy = self.ctx.config_entries.get("proxy-defaults", "global")
        for entry in (defaults, proxy):
            if entry and entry.get("Protocol"):
                return str(entry["Protocol"])
        return "tcp"

    def _default_chain(self, service: str, protocol: str) -> Row:
        """``discoverychain.Compile`` with no router, splitter or resolver for ``service``:
        one resolver node and its target."""
        dc = self.ctx.config.datacenter
        target = f"{service}.default.default.{dc}"
        sni = f"{service}.default.{dc}.internal.{TRUST_DOMAIN}"
        return {
            "ServiceName": service,
            "Namespace": "default",
            "Partition": "default",
            "Datacenter": dc,
            "Default": True,
            "Protocol": protocol,
            "StartNode": f"resolver:{target}",
            "Nodes": {
                f"resolver:{target}": {
                    "Type": "resolver",
                    "Name": target,
                    "Resolver": {"ConnectTimeout": "5s", "Default": True, "Target": target},
                }
            },
            "Targets": {
                target: {
                    "ID": target,
                    "Service": service,
                    "Namespace": "default",
                    "Partition": "default",
                    "Datacenter": dc,
                    "MeshGateway": {},
                    "Subset": {},
                    "ConnectTimeout": "5s",
                    "SNI": sni,
                    "Name": sni,
                }
            },
        }


def _cas(q: Query) -> int | None:
    raw = q.params.get("cas")
    if raw is None or raw == "":
        return None
    if not raw.isdigit():
        raise HTTPError(500, f'strconv.ParseUint: parsing "{raw}": invalid syntax')
    return int(raw)


def _required(q: Query, name: str) -> str:
    value = q.params.get(name)
    if not value:
        raise BadRequest(f"required query parameter '{name}' not set")
    return value


def _writable(entry: Row) -> Row:
    return {k: v for k, v in entry.items() if k not in ("CreateIndex", "ModifyIndex")}


def _with_source(existing: Row | None, destination: str, source: str, body: Row) -> Row:
    """The destination's entry with ``source``'s intention set from an exact upsert."""
    action = body.get("Action", "")
    if action not in ("allow", "deny"):
        raise ConfigEntryError('Sources[0].Action must be set to "allow" or "deny"')
    entry: Row = _writable(existing) if existing else {"Kind": INTENTIONS, "Name": destination}
    sources = [s for s in entry.get("Sources") or [] if s.get("Name") != source]
    new: Row = {"Name": source, "Action": action, "Type": body.get("SourceType") or "consul"}
    if body.get("Description"):
        new["Description"] = body["Description"]
    sources.append(new)
    entry["Sources"] = sources
    return entry


def _entry_intentions(entry: Row) -> list[Row]:
    """``ServiceIntentionsConfigEntry.ToIntentions``: one intention per source."""
    destination = entry["Name"]
    return [
        {
            "Description": source.get("Description", ""),
            "SourceNS": "default",
            "SourceName": source["Name"],
            "DestinationNS": "default",
            "DestinationName": destination,
            "SourceType": source.get("Type") or "consul",
            "Action": source.get("Action", ""),
            "Precedence": _precedence(source["Name"], destination),
            "CreateIndex": entry["CreateIndex"],
            "ModifyIndex": entry["ModifyIndex"],
        }
        for source in entry.get("Sources") or []
    ]


def _precedence(source: str, destination: str) -> int:
    """``Intention.UpdatePrecedence`` in CE: exact names rank above wildcards,
    the destination's first."""
    if destination == WILDCARD:
        return 5 if source == WILDCARD else 6
    return 8 if source == WILDCARD else 9


def _precedence_order(row: Row) -> tuple[int, str, str]:
    return (-row["Precedence"], row["SourceName"], row["DestinationName"])
