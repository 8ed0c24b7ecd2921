"""``/v1/acl/*``: tokens, policies, roles, auth methods, binding rules, templated policies.

As ``agent/acl_endpoint.go`` answers them: the HTTP layer decodes the body (400 on
a bad one) and checks the URL against the payload, then the RPC checks
``acl:read`` or ``acl:write`` and validates (500 with its text). Only a management
token has ``acl:*`` (the built-in ``builtin/global-read-only`` policy gives
``acl:read``, with token secrets shown as ``<hidden>``); the anonymous token never
has it, not even under ``acl_default_policy="allow"``: ``acl.AllowAll()`` does not
manage.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from datetime import datetime
from functools import partial
from typing import Any
from urllib.parse import unquote

from starlette.requests import Request
from starlette.responses import Response

from .acl import ACL_KEY, ACLStore
from .acl_errors import ACLError, acl_not_found, go_quote, missing
from .acl_records import AuthMethod, BindingRule, Link, Policy, Role, Token
from .acl_templates import TEMPLATES, Template, synthetic_policy
from .context import Context
from .durations import DurationError, parse_duration
from .query import BadRequest, Query
from .web import GET, PUT, Computed, HTTPError, Row, allow, get_ci, json_body, json_response

Handler = Callable[[Request, Query], Awaitable[Response]]
Endpoint = tuple[tuple[str, ...], Handler]
CRUD = ("GET", "HEAD", "PUT", "DELETE")
POST = ("POST",)
NEVER = "0001-01-01T00:00:00Z"  # Go's zero time.Time


class ACLRoutes:
    """The ACL endpoints over the context's ``ACLStore``."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    @property
    def store(self) -> ACLStore:
        return self.ctx.acl

    async def route(self, request: Request, q: Query, seg: list[str]) -> Response | None:
        endpoint = self._endpoint(seg[2:], request.method)
        if endpoint is None:
            return None
        methods, handler = endpoint
        allow(request.method, methods)  # a 405 comes before "ACL support disabled"
        if not self.ctx.acls_enabled:
            raise HTTPError(401, "ACL support disabled")
        return await handler(request, q)

    def _endpoint(self, path: list[str], method: str) -> Endpoint | None:
        """Which handler serves the path (``agent/http_register.go``)."""
        match path:
            case ["bootstrap"]:
                return PUT, self._bootstrap
            case ["replication"]:
                return GET, self._replication
            case ["login"]:
                return POST, self._login
            case ["logout"]:
                return POST, self._logout
            case ["tokens"]:
                return GET, self._token_list
            case ["token"]:
                return PUT, partial(self._token_write, "", True)
            case ["token", "self"]:
                return GET, self._token_self
            case ["token", accessor, "clone"] if method == "PUT":
                return PUT, partial(self._token_clone, accessor)
            case ["token", *rest] if rest:
                return CRUD, partial(self._token, "/".join(rest))
            case ["templated-policies"]:
                return GET, self._templated_list
            case ["templated-policy", "name", name]:
                return GET, partial(self._templated_read, name)
            case ["templated-policy", "preview", name]:
                return POST, partial(self._templated_preview, name)
        return self._object_endpoint(path)

    def _object_endpoint(self, path: list[str]) -> Endpoint | None:
        """Policies, roles, auth methods and binding rules: list, create, by ID or name."""
        match path:
            case ["policies"]:
                return GET, self._policy_list
            case ["policy"]:
                return PUT, partial(self._policy_write, "", True)
            case ["policy", "name", name]:
                return GET, partial(self._policy_by_name, name)
            case ["policy", policy_id]:
                return CRUD, partial(self._policy, policy_id)
            case ["roles"]:
                return GET, self._role_list
            case ["role"]:
                return PUT, partial(self._role_write, "")
            case ["role", "name", name]:
                return GET, partial(self._role_by_name, name)
            case ["role", role_id]:
                return CRUD, partial(self._role, role_id)
            case ["auth-methods"]:
                return GET, self._method_list
            case ["auth-method"]:
                return PUT, partial(self._method_write, "")
            case ["auth-method", name]:
                return CRUD, partial(self._method, name)
            case ["binding-rules"]:
                return GET, self._rule_list
            case ["binding-rule"]:
                return PUT, partial(self._rule_write, "")
            case ["binding-rule", rule_id]:
                return CRUD, partial(self._rule, rule_id)
        return None

    # -- shared steps ----------------------------------------------------------------------

    async def _read(self, request: Request, q: Query, compute: Callable[[], Computed]) -> Response:
        """A read: a blocking query on the ACL tables."""
        return await self.ctx.read(request.method, q, compute, [ACL_KEY])

    def _may_write(self, q: Query) -> None:
        """ACL writes go through Raft (so a leader), then need ``acl:write``."""
        if not self.ctx.has_leader:
            raise HTTPError(500, "No cluster leader")
        self.ctx.require_acl(q, "write")

    def _written(self, body: Any) -> Response:
        self.ctx.raft.commit()
        return json_response(200, body)

    def _redact(self, q: Query) -> bool:
        """Without ``acl:write`` a reader sees no token secrets (``filterACLWithAuthorizer``)."""
        return self.ctx.acl_grant(q) != "write"

    # -- bootstrap, replication, login and logout -------------------------------------------

    async def _bootstrap(self, request: Request, q: Query) -> Response:
        """``ACL.BootstrapTokens``: the initial management token has already bootstrapped."""
        await _decode(request, "Request decoding failed")
        raise ACLError(
            "Permission denied: ACL bootstrap no longer allowed "
            f"(reset index: {self.store.bootstrap_index})",
            403,
        )

    async def _replication(self, request: Request, q: Query) -> Response:
        """A primary datacenter replicates nothing."""
        return json_response(
            200,
            {
                "Enabled": False,
                "Running": False,
                "SourceDatacenter": "",
                "ReplicationType": "",
                "ReplicatedIndex": 0,
                "ReplicatedRoleIndex": 0,
                "ReplicatedTokenIndex": 0,
                "LastSuccess": NEVER,
                "LastError": NEVER,
                "LastErrorMessage": "",
            },
        )

    async def _login(self, request: Request, q: Query) -> Response:
        """``ACL.Login``: an unknown method is "ACL not found"; bearer tokens are not verified
        (no JWT, OIDC, Kubernetes or AWS round trip), so a login to a known one fails."""
        body = Decoder(await _decode(request, "Failed to decode request body"), "", "")
        name = body.text("AuthMethod")
        method = self.store.methods.get(name)
        if method is None:
            raise ACLError(f"ACL not found: auth method {go_quote(name)} not found", 403)
        raise ACLError(
            f"Login with a {method.type} auth method is not emulated: "
            "the emulator cannot verify bearer tokens"
        )

    async def _logout(self, request: Request, q: Query) -> Response:
        if not q.token:
            raise acl_not_found()
        self.store.logout(q.token)
        return self._written(True)

    # -- tokens ----------------------------------------------------------------------------

    async def _token_list(self, request: Request, q: Query) -> Response:
        self.ctx.require_acl(q, "read")
        params = q.params
        redact = self._redact(q)

        def compute() -> Computed:
            tokens = self.store.token_list(
                params.get("policy", ""), params.get("role", ""), params.get("authmethod", "")
            )
            rows = [self.store.token_json(t, redact) for t in tokens]
            return self.store.table_index["tokens"], rows

        return await self._read(request, q, compute)

    async def _token(self, accessor: str, request: Request, q: Query) -> Response:
        if request.method == "PUT":
            return await self._token_write(accessor, False, request, q)
        if not accessor:
            raise BadRequest("Missing token AccessorID")
        if request.method == "DELETE":
            self._may_write(q)
            self.store.delete_token(accessor, q.token)
            return self._written(True)
        self.ctx.require_acl(q, "read")
        redact = self._redact(q)

        def compute() -> Computed:
            token = self.store.token(accessor)
            if token is None:
                raise acl_not_found()
            return self.store.table_index["tokens"], self.store.token_json(token, redact)

        return await self._read(request, q, compute)

    async def _token_write(
        self, accessor: str, create: bool, request: Request, q: Query
    ) -> Response:
        """``PUT /v1/acl/token`` (create) and ``PUT /v1/acl/token/:AccessorID`` (update)."""
        token = decode_token(await _decode(request, "Token decoding failed"))
        if not create:
            token.accessor_id = token.accessor_id or accessor
            if token.accessor_id != accessor:
                raise BadRequest("Token Accessor ID in URL and payload do not match")
        self._may_write(q)
        if create or not token.accessor_id:
            written = self.store.create_token(token)
        else:
            written = self.store.update_token(token)
        return self._written(self.store.token_json(written))

    async def _token_clone(self, accessor: str, request: Request, q: Query) -> Response:
        body = Decoder(await _decode(request, "Token decoding failed"), "ACLToken", "Token")
        self._may_write(q)
        clone = self.store.clone_token(accessor, body.text("Description"))
        return self._written(self.store.token_json(clone))

    async def _token_self(self, request: Request, q: Query) -> Response:
        """The caller's own token: the secret is the credential, no ``acl:read`` needed."""

        def compute() -> Computed:
            token = self.store.resolve(q.token) if q.token else None
            if token is None:
                raise acl_not_found()
            return self.store.table_index["tokens"], self.store.token_json(token)

        return await self._read(request, q, compute)

    # -- policies --------------------------------------------------------------------------

    async def _policy_list(self, request: Request, q: Query) -> Response:
        self.ctx.require_acl(q, "read")
        return await self._read(
            request,
            q,
            lambda: (
                self.store.table_index["policies"],
                [p.stub() for p in self.store.policy_list()],
            ),
        )

    async def _policy(self, policy_id: str, request: Request, q: Query) -> Response:
        if request.method == "PUT":
            return await self._policy_write(policy_id, False, request, q)
        if not policy_id:
            raise BadRequest("Missing policy ID")
        if request.method == "DELETE":
            self._may_write(q)
            self.store.delete_policy(policy_id)
            return self._written(True)
        return await self._policy_read(request, q, lambda: self.store.policy(policy_id))

    async def _policy_by_name(self, name: str, request: Request, q: Query) -> Response:
        if not name:
            raise BadRequest("Missing policy Name")
        return await self._policy_read(request, q, lambda: self.store.policy_named(unquote(name)))

    async def _policy_read(
        self, request: Request, q: Query, find: Callable[[], Policy | None]
    ) -> Response:
        self.ctx.require_acl(q, "read")

        def compute() -> Computed:
            policy = find()
            if policy is None:
                raise acl_not_found()
            return self.store.table_index["policies"], policy.to_json()

        return await self._read(request, q, compute)

    async def _policy_write(
        self, policy_id: str, create: bool, request: Request, q: Query
    ) -> Response:
        policy = decode_policy(await _decode(request, "Policy decoding failed"))
        if create and policy.id:
            raise BadRequest("Cannot specify the ID when creating a new policy")
        if not create:
            if policy.id and policy.id != policy_id:
                raise BadRequest("Policy ID in URL and payload do not match")
            policy.id = policy_id
        self._may_write(q)
        return self._written(self.store.set_policy(policy).to_json())

    # -- roles -----------------------------------------------------------------------------

    async def _role_list(self, request: Request, q: Query) -> Response:
        self.ctx.require_acl(q, "read")
        policy = q.params.get("policy", "")

        def compute() -> Computed:
            roles = self.store.role_list(policy)
            return self.store.table_index["roles"], [self.store.role_json(r) for r in roles]

        return await self._read(request, q, compute)

    async def _role(self, role_id: str, request: Request, q: Query) -> Response:
        if request.method == "PUT":
            return await self._role_write(role_id, request, q)
        if not role_id:
            raise BadRequest("Missing role ID")
        if request.method == "DELETE":
            self._may_write(q)
            self.store.delete_role(role_id)
            return self._written(True)
        return await self._role_read(request, q, lambda: self.store.role(role_id))

    async def _role_by_name(self, name: str, request: Request, q: Query) -> Response:
        if not name:
            raise BadRequest("Missing role Name")
        return await self._role_read(request, q, lambda: self.store.role_named(name))

    async def _role_read(
        self, request: Request, q: Query, find: Callable[[], Role | None]
    ) -> Response:
        self.ctx.require_acl(q, "read")

        def compute() -> Computed:
            role = find()
            if role is None:
                raise missing()
            return self.store.table_index["roles"], self.store.role_json(role)

        return await self._read(request, q, compute)

    async def _role_write(self, role_id: str, request: Request, q: Query) -> Response:
        """Create (no ID in the URL) or update: an ID in the body must match the URL's."""
        role = decode_role(await _decode(request, "Role decoding failed"))
        if role.id and role.id != role_id:
            raise BadRequest("Role ID in URL and payload do not match")
        role.id = role_id
        self._may_write(q)
        return self._written(self.store.role_json(self.store.set_role(role)))

    # -- auth methods ----------------------------------------------------------------------

    async def _method_list(self, request: Request, q: Query) -> Response:
        self.ctx.require_acl(q, "read")
        return await self._read(
            request,
            q,
            lambda: (
                self.store.table_index["auth-methods"],
                [m.stub() for m in self.store.method_list()],
            ),
        )

    async def _method(self, name: str, request: Request, q: Query) -> Response:
        if request.method == "PUT":
            return await self._method_write(name, request, q)
        if not name:
            raise BadRequest("Missing auth method name")
        if request.method == "DELETE":
            self._may_write(q)
            self.store.delete_method(name)
            return self._written(True)
        self.ctx.require_acl(q, "read")

        def compute() -> Computed:
            method = self.store.methods.get(name)
            if method is None:
                raise missing()
            return self.store.table_index["auth-methods"], method.to_json()

        return await self._read(request, q, compute)

    async def _method_write(self, name: str, request: Request, q: Query) -> Response:
        method = decode_auth_method(await _decode(request, "AuthMethod decoding failed"))
        if name:
            if method.name and method.name != name:
                raise BadRequest("AuthMethod Name in URL and payload do not match")
            method.name = name
        self._may_write(q)
        return self._written(self.store.set_method(method).to_json())

    # -- binding rules ---------------------------------------------------------------------

    async def _rule_list(self, request: Request, q: Query) -> Response:
        self.ctx.require_acl(q, "read")
        method = q.params.get("authmethod", "")

        def compute() -> Computed:
            rules = self.store.rule_list(method)
            return self.store.table_index["binding-rules"], [r.to_json() for r in rules]

        return await self._read(request, q, compute)

    async def _rule(self, rule_id: str, request: Request, q: Query) -> Response:
        if request.method == "PUT":
            return await self._rule_write(rule_id, request, q)
        if not rule_id:
            raise BadRequest("Missing binding rule ID")
        if request.method == "DELETE":
            self._may_write(q)
            self.store.delete_rule(rule_id)
            return self._written(True)
        self.ctx.require_acl(q, "read")

        def compute() -> Computed:
            rule = self.store.rule(rule_id)
            if rule is None:
                raise missing()
            return self.store.table_index["binding-rules"], rule.to_json()

        return await self._read(request, q, compute)

    async def _rule_write(self, rule_id: str, request: Request, q: Query) -> Response:
        rule = decode_binding_rule(await _decode(request, "BindingRule decoding failed"))
        if rule.id and rule.id != rule_id:
            raise BadRequest("BindingRule ID in URL and payload do not match")
        rule.id = rule_id
        self._may_write(q)
        return self._written(self.store.set_rule(rule).to_json())

    # -- templated policies ----------------------------------------------------------------

    async def _templated_list(self, request: Request, q: Query) -> Response:
        self.ctx.require_acl(q, "read")
        return json_response(200, {name: TEMPLATES[name].response() for name in sorted(TEMPLATES)})

    async def _templated_read(self, name: str, request: Request, q: Query) -> Response:
        return json_response(200, self._template(name, q).response())

    async def _templated_preview(self, name: str, request: Request, q: Query) -> Response:
        """The synthetic policy the template renders for the body's variables."""
        template = self._template(name, q)
        body = Decoder(await _decode(request, "Failed to decode request body"), "", "")
        variables = decode_variables(body)
        problem = template.validate(variables)
        if problem is not None:
            raise BadRequest(f"validation error for templated policy: {name}: {problem}")
        return json_response(200, synthetic_policy(template, variables))

    def _template(self, name: str, q: Query) -> Template:
        if not name:
            raise BadRequest("Missing templated policy Name")
        self.ctx.require_acl(q, "read")
        template = TEMPLATES.get(name)
        if template is None:
            raise BadRequest(f"Invalid templated policy Name: {name}")
        return template


# -- request bodies, decoded as Go's encoding/json does (field names case-insensitive) -----


async def _decode(request: Request, failure: str) -> Row:
    """The body as a JSON object (none: ``{}``), or a 400 with the handler's prefix."""
    try:
        body = await json_body(request)
    except BadRequest as exc:
        raise BadRequest(str(exc).replace("Request decode failed", failure, 1)) from None
    if body is None:
        return {}
    if not isinstance(body, dict):
        raise BadRequest(f"{failure}: json: cannot unmarshal array into Go value")
    return body


class Decoder:
    """One request body; a field of the wrong JSON type is a 400 like Go's decoder's."""

    def __init__(self, body: Row, struct: str, what: str) -> None:
        self.body = body
        self.struct = struct
        self.what = what  # "Token", "Policy"...: the "<what> decoding failed" prefix

    def fail(self, name: str, value: Any, gotype: str) -> BadRequest:
        kinds = {bool: "bool", str: "string", list: "array", dict: "object"}
        kind = kinds.get(type(value), "number")
        return BadRequest(
            f"{self.what} decoding failed: json: cannot unmarshal {kind} into Go struct "
            f"field {self.struct}.{name} of type {gotype}"
        )

    def text(self, name: str) -> str:
        value = get_ci(self.body, name)
        if value is None:
            return ""
        if not isinstance(value, str):
            raise self.fail(name, value, "string")
        return value

    def flag(self, name: str) -> bool:
        value = get_ci(self.body, name)
        if value is None:
            return False
        if not isinstance(value, bool):
            raise self.fail(name, value, "bool")
        return value

    def items(self, name: str, gotype: str) -> list[Any]:
        value = get_ci(self.body, name)
        if value is None:
            return []
        if not isinstance(value, list):
            raise self.fail(name, value, gotype)
        return value

    def objects(self, name: str, gotype: str) -> list[Decoder]:
        out = []
        for item in self.items(name, f"[]{gotype}"):
            if item is None:
                continue
            if not isinstance(item, dict):
                raise self.fail(name, item, gotype)
            out.append(Decoder(item, f"{self.struct}.{name}", self.what))
        return out

    def texts(self, name: str) -> list[str]:
        values = self.items(name, "[]string")
        for value in values:
            if not isinstance(value, str):
                raise self.fail(name, value, "string")
        return [str(v) for v in values]

    def mapping(self, name: str) -> Row | None:
        value = get_ci(self.body, name)
        if value is not None and not isinstance(value, dict):
            raise self.fail(name, value, "map[string]interface {}")
        return value

    def duration(self, name: str) -> float:
        """A ``time.Duration``: a Go duration string, or a number of nanoseconds."""
        value = get_ci(self.body, name)
        if value is None:
            return 0.0
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise self.fail(name, value, "time.Duration")
        if isinstance(value, str):
            try:
                return parse_duration(value)
            except DurationError:
                raise BadRequest(
                    f"{self.what} decoding failed: time: invalid duration {go_quote(value)}"
                ) from None
        return float(value) / 1e9

    def time(self, name: str) -> int | None:
        """A ``time.Time`` (RFC 3339) in nanoseconds since the epoch."""
        text = self.text(name)
        if not text:
            return None
        match = re.match(r"^(.+?T\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d:\d\d)$", text)
        try:
            if match is None:
                raise ValueError(text)
            zone = "+00:00" if match.group(3) == "Z" else match.group(3)
            moment = datetime.fromisoformat(match.group(1) + zone)
        except ValueError:
            raise BadRequest(
                f"{self.what} decoding failed: parsing time {go_quote(go_quote(text))} as "
                '"\\"2006-01-02T15:04:05Z07:00\\"": cannot parse'
            ) from None
        fraction = int((match.group(2) or "0").ljust(9, "0"))
        return int(moment.timestamp()) * 10**9 + fraction


def decode_links(body: Decoder, name: str) -> list[Link]:
    return [Link(d.text("ID"), d.text("Name")) for d in body.objects(name, "ACLLink")]


def decode_service_identities(body: Decoder) -> list[Row]:
    out = []
    for item in body.objects("ServiceIdentities", "*structs.ACLServiceIdentity"):
        row: Row = {"ServiceName": item.text("ServiceName")}
        datacenters = item.texts("Datacenters")
        if datacenters:
            row["Datacenters"] = datacenters
        out.append(row)
    return out


def decode_node_identities(body: Decoder) -> list[Row]:
    return [
        {"NodeName": item.text("NodeName"), "Datacenter": item.text("Datacenter")}
        for item in body.objects("NodeIdentities", "*structs.ACLNodeIdentity")
    ]


def decode_templated(body: Decoder) -> list[Row]:
    out = []
    for item in body.objects("TemplatedPolicies", "*structs.ACLTemplatedPolicy"):
        row: Row = {"TemplateName": item.text("TemplateName")}
        variables = item.mapping("TemplateVariables")
        if variables is not None:
            row["TemplateVariables"] = decode_variables(Decoder(variables, "", item.what))
        datacenters = item.texts("Datacenters")
        if datacenters:
            row["Datacenters"] = datacenters
        out.append(row)
    return out


def decode_variables(body: Decoder) -> Row:
    """``ACLTemplatedPolicyVariables``: ``{"name": ...}``, empty when no name (``omitempty``)."""
    name = body.text("Name")
    return {"name": name} if name else {}


def decode_token(body: Row) -> Token:
    d = Decoder(body, "ACLToken", "Token")
    return Token(
        accessor_id=d.text("AccessorID"),
        secret_id=d.text("SecretID"),
        description=d.text("Description"),
        policies=decode_links(d, "Policies"),
        roles=decode_links(d, "Roles"),
        service_identities=decode_service_identities(d),
        node_identities=decode_node_identities(d),
        templated_policies=decode_templated(d),
        local=d.flag("Local"),
        auth_method=d.text("AuthMethod"),
        expiration_time=d.time("ExpirationTime"),
        expiration_ttl=d.duration("ExpirationTTL"),
        rules=d.text("Rules"),
        type=d.text("Type"),
    )


def decode_policy(body: Row) -> Policy:
    d = Decoder(body, "ACLPolicy", "Policy")
    return Policy(
        id=d.text("ID"),
        name=d.text("Name"),
        description=d.text("Description"),
        rules=d.text("Rules"),
        datacenters=d.texts("Datacenters"),
    )


def decode_role(body: Row) -> Role:
    d = Decoder(body, "ACLRole", "Role")
    return Role(
        id=d.text("ID"),
        name=d.text("Name"),
        description=d.text("Description"),
        policies=decode_links(d, "Policies"),
        service_identities=decode_service_identities(d),
        node_identities=decode_node_identities(d),
        templated_policies=decode_templated(d),
    )


def decode_auth_method(body: Row) -> AuthMethod:
    d = Decoder(body, "ACLAuthMethod", "AuthMethod")
    return AuthMethod(
        name=d.text("Name"),
        type=d.text("Type"),
        display_name=d.text("DisplayName"),
        description=d.text("Description"),
        max_token_ttl=d.duration("MaxTokenTTL"),
        token_locality=d.text("TokenLocality"),
        config=d.mapping("Config"),
    )


def decode_binding_rule(body: Row) -> BindingRule:
    d = Decoder(body, "ACLBindingRule", "BindingRule")
    variables = d.mapping("BindVars")
    return BindingRule(
        id=d.text("ID"),
        description=d.text("Description"),
        auth_method=d.text("AuthMethod"),
        selector=d.text("Selector"),
        bind_type=d.text("BindType"),
        bind_name=d.text("BindName"),
        bind_vars=None if variables is None else decode_variables(Decoder(variables, "", "")),
    )
