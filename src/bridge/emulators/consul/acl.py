"""The ACL system's state: tokens, policies, roles, auth methods and binding rules.

Kept as Consul's state store and ACL RPCs keep them (``agent/structs/acl.go``,
``agent/structs/acl_templated_policy.go``, ``agent/consul/acl_endpoint.go``,
``agent/consul/auth/token_writer.go``): the built-ins made when ACLs come up, the
RPCs' validations and error texts (500s unless typed), BLAKE2b content hashes and
Raft indexes. Policy rules are stored as given, never parsed: what a token may do
is decided by its links to the two built-in policies (see ``grant``) and the
agent's default policy.

The records, their ids and hashes are in ``acl_records``, the templated policies in
``acl_templates``, the validations shared by writes in ``acl_validation`` and the
RPCs' errors in ``acl_errors``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from typing import Any

from .acl_errors import ACLError, acl_not_found, go_quote
from .acl_records import (
    NAME_RULE,
    RESERVED_PREFIX,
    VALID_METHOD_NAME,
    VALID_POLICY_NAME,
    VALID_ROLE_NAME,
    AuthMethod,
    BindingRule,
    Link,
    Policy,
    Role,
    Token,
    go_time,
    indexes,
    is_uuid,
    new_uuid,
    uuid_key,
)
from .acl_validation import (
    MAX_TOKEN_TTL,
    MIN_TOKEN_TTL,
    check_bind,
    check_max_ttl,
    node_identities,
    role_templated,
    service_identities,
    token_templated,
)
from .durations import format_duration
from .raft import Raft, WatchKey
from .web import Row

ACL_KEY: WatchKey = ("table", "acl")
ANONYMOUS_ACCESSOR = "00000000-0000-0000-0000-000000000002"
ANONYMOUS_SECRET = "anonymous"
GLOBAL_MANAGEMENT_ID = "00000000-0000-0000-0000-000000000001"
GLOBAL_READ_ONLY_ID = "00000000-0000-0000-0000-000000000002"
REDACTED = "<hidden>"  # aclfilter.RedactedToken
AUTH_METHOD_TYPES = ("aws-iam", "jwt", "kubernetes", "oidc")  # authmethod.Types(), CE

GLOBAL_MANAGEMENT_RULES = """
acl = "write"
agent_prefix "" {
\tpolicy = "write"
}
event_prefix "" {
\tpolicy = "write"
}
key_prefix "" {
\tpolicy = "write"
}
keyring = "write"
node_prefix "" {
\tpolicy = "write"
}
operator = "write"
mesh = "write"
peering = "write"
query_prefix "" {
\tpolicy = "write"
}
service_prefix "" {
\tpolicy = "write"
\tintentions = "write"
}
session_prefix "" {
\tpolicy = "write"
}"""
GLOBAL_READ_ONLY_RULES = GLOBAL_MANAGEMENT_RULES.replace('"write"', '"read"')


def permission_denied(accessor: str, permission: str) -> ACLError:
    """``acl.PermissionDeniedError`` for a token lacking ``acl:read`` or ``acl:write``."""
    if accessor == ANONYMOUS_ACCESSOR:
        return ACLError(
            f"Permission denied: anonymous token lacks permission '{permission}'. "
            "The anonymous token is used implicitly when a request does not specify a token.",
            403,
        )
    return ACLError(
        f"Permission denied: token with AccessorID '{accessor}' lacks permission '{permission}'",
        403,
    )


# -- the store -----------------------------------------------------------------------------


def _now() -> int:
    return time.time_ns()


class ACLStore:
    """Every ACL record, by the keys Consul's state store indexes them by."""

    def __init__(self, raft: Raft) -> None:
        self.raft = raft
        self.tokens: dict[str, Token] = {}  # by UUID key of the AccessorID
        self.secrets: dict[str, str] = {}  # SecretID -> accessor key
        self.policies: dict[str, Policy] = {}  # by UUID key
        self.roles: dict[str, Role] = {}
        self.methods: dict[str, AuthMethod] = {}  # by name
        self.rules: dict[str, BindingRule] = {}
        self.table_index = {
            "tokens": 0,
            "policies": 0,
            "roles": 0,
            "auth-methods": 0,
            "binding-rules": 0,
        }
        self.bootstrap_index = 0  # the reset index ACL.BootstrapTokens reports

    def _write(self, table: str) -> int:
        index = self.raft.next_index()
        self.table_index[table] = index
        self.raft.touch(ACL_KEY)
        return index

    def restore_index(self, index: int) -> None:
        """After a snapshot restore to ``index``: nothing is newer."""
        every: list[Iterable[Any]] = [
            self.tokens.values(),
            self.policies.values(),
            self.roles.values(),
            self.methods.values(),
            self.rules.values(),
        ]
        for records in every:
            for record in records:
                record.create_index = min(record.create_index, index)
                record.modify_index = min(record.modify_index, index)
        self.table_index = {k: min(v, index) for k, v in self.table_index.items()}

    # -- start (leader.go initializeACLs) ----------------------------------------------------

    def initialize(self, initial_management: str) -> None:
        """The built-in policies, the initial management token and the anonymous token."""
        builtins = (
            (
                GLOBAL_MANAGEMENT_ID,
                "global-management",
                "Builtin Policy that grants unlimited access",
                GLOBAL_MANAGEMENT_RULES,
            ),
            (
                GLOBAL_READ_ONLY_ID,
                "builtin/global-read-only",
                "Builtin Policy that grants unlimited read-only access to all components",
                GLOBAL_READ_ONLY_RULES,
            ),
        )
        for policy_id, name, description, rules in builtins:
            self._put_policy(Policy(policy_id, name, description, rules))
        management = Token(
            accessor_id=new_uuid(),
            secret_id=initial_management,
            description="Initial Management Token",
            policies=[Link(GLOBAL_MANAGEMENT_ID)],
        )
        self._put_token(management, None)
        self.bootstrap_index = management.create_index
        self._put_token(
            Token(
                accessor_id=ANONYMOUS_ACCESSOR,
                secret_id=ANONYMOUS_SECRET,
                description="Anonymous Token",
            ),
            None,
        )

    # -- who a request is --------------------------------------------------------------------

    def resolve(self, secret: str) -> Token | None:
        """The token a request's secret names (none: the anonymous token); None if unknown."""
        key = self.secrets.get(secret or ANONYMOUS_SECRET)
        token = None if key is None else self.tokens.get(key)
        if token is None or token.expired(_now()):
            return None
        return token

    def grant(self, token: Token) -> str:
        """What the built-in policies give a token on ACLs: ``write``, ``read`` or ``""``.
        (Other policies' rules are kept, not parsed: they give nothing.)"""
        links = list(token.policies)
        for role_link in token.roles:
            role = self.roles.get(_key(role_link.id))
            links += role.policies if role is not None else []
        keys = {_key(link.id) for link in links}
        if _key(GLOBAL_MANAGEMENT_ID) in keys:
            return "write"
        if _key(GLOBAL_READ_ONLY_ID) in keys:
            return "read"
        return ""

    # -- tokens ------------------------------------------------------------------------------

    def token(self, accessor: str) -> Token | None:
        token = self.tokens.get(uuid_key(accessor, "token"))
        return None if token is None or token.expired(_now()) else token

    def token_list(self, policy: str, role: str, method: str) -> list[Token]:
        """``ACLTokenList``: one filter at most; expired tokens left out; accessor order."""
        if sum(bool(f) for f in (policy, role, method)) > 1:
            raise ACLError(
                "can only filter by one of policy, role, serviceName, or authmethod at once"
            )
        keep = _token_filter(policy, role, method)
        now = _now()
        return [
            self.tokens[k]
            for k in sorted(self.tokens)
            if keep(self.tokens[k]) and not self.tokens[k].expired(now)
        ]

    def create_token(self, token: Token) -> Token:
        """``TokenWriter.Create`` (not from a login)."""
        if token.accessor_id:
            self._check_new_id(token.accessor_id, "AccessorID")
        else:
            token.accessor_id = new_uuid()
        if token.secret_id:
            self._check_new_id(token.secret_id, "SecretID")
        else:
            token.secret_id = new_uuid()
        token.create_time = _now()
        self._check_expiration(token)
        if token.auth_method:
            raise ACLError("AuthMethod field is disallowed outside of login")
        return self._write_token(token, None)

    def _check_new_id(self, value: str, name: str) -> None:
        if value.startswith(RESERVED_PREFIX):
            raise ACLError(
                f"Invalid Token: {name} - UUIDs with the prefix {go_quote(RESERVED_PREFIX)} "
                "are reserved"
            )
        if not is_uuid(value):
            raise ACLError(f"Invalid Token: {name} - not a valid UUID")
        if _key(value) in self.tokens or value in self.secrets:
            raise ACLError(f"Invalid Token: {name} is already in use")

    def _check_expiration(self, token: Token) -> None:
        ttl = token.expiration_ttl
        if ttl < 0:
            raise ACLError(f"Token Expiration TTL '{format_duration(ttl)}' should be > 0")
        if ttl > 0:
            if token.expiration_time is not None:
                raise ACLError("Token Expiration TTL and Expiration Time cannot both be set")
            token.expiration_time = token.create_time + int(ttl * 1e9)
            token.expiration_ttl = 0.0
        if token.expiration_time is None:
            return
        if token.expiration_time < token.create_time:
            raise ACLError("ExpirationTime cannot be before CreateTime")
        expires_in = (token.expiration_time - token.create_time) / 1e9
        if expires_in > MAX_TOKEN_TTL:
            raise ACLError(
                f"ExpirationTime cannot be more than {format_duration(MAX_TOKEN_TTL)} in the "
                f"future (was {format_duration(expires_in)})"
            )
        if expires_in < MIN_TOKEN_TTL:
            raise ACLError(
                f"ExpirationTime cannot be less than {format_duration(MIN_TOKEN_TTL)} in the "
                f"future (was {format_duration(expires_in)})"
            )

    def update_token(self, token: Token) -> Token:
        """``TokenWriter.Update``: the token is replaced; IDs, locality, expiry stay."""
        if not is_uuid(token.accessor_id):
            raise ACLError("AccessorID is not a valid UUID")
        if token.secret_id in ("allow", "deny", "manage"):
            raise ACLError("Permission denied: Cannot modify root ACL", 403)
        match = self.token(token.accessor_id)
        if match is None:
            raise ACLError(f"Cannot find token {go_quote(token.accessor_id)}")
        if not token.secret_id:
            token.secret_id = match.secret_id
        elif token.secret_id != match.secret_id:
            raise ACLError("Changing a token's SecretID is not permitted")
        if token.local != match.local:
            raise ACLError(f"Cannot toggle local mode of {token.accessor_id}")
        if not token.auth_method:
            token.auth_method = match.auth_method
        elif token.auth_method != match.auth_method:
            raise ACLError(f"Cannot change AuthMethod of {token.accessor_id}")
        if token.expiration_ttl:
            raise ACLError(f"Cannot change expiration time of {token.accessor_id}")
        if token.expiration_time is None:
            token.expiration_time = match.expiration_time
        elif token.expiration_time != match.expiration_time:
            raise ACLError(f"Cannot change expiration time of {token.accessor_id}")
        token.accessor_id = match.accessor_id  # the key is case-insensitive; the ID is kept
        token.create_time = match.create_time
        return self._write_token(token, match)

    def clone_token(self, accessor: str, description: str) -> Token:
        """``ACL.TokenClone``: a new token with the same links, identities and expiry."""
        original = self.token(accessor)
        if original is None:
            raise acl_not_found()
        if original.auth_method:
            raise ACLError("Cannot clone a token created from an auth method")
        clone = replace(
            original,
            accessor_id="",
            secret_id="",
            description=description or original.description,
            policies=[replace(link) for link in original.policies],
            roles=[replace(link) for link in original.roles],
        )
        return self.create_token(clone)

    def delete_token(self, accessor: str, request_secret: str) -> None:
        """``ACL.TokenDelete``: deleting what is not there is no error."""
        if not is_uuid(accessor):
            raise ACLError("Accessor ID is missing or an invalid UUID")
        if accessor == ANONYMOUS_ACCESSOR:
            raise ACLError("Delete operation not permitted on the anonymous token")
        token = self.tokens.get(_key(accessor))
        if token is None:
            return
        if token.secret_id == request_secret:
            raise ACLError("Deletion of the request's authorization token is not permitted")
        self._drop_token(token)

    def logout(self, secret: str) -> None:
        """``TokenWriter.Delete(secret, fromLogout)``: only a token a login made."""
        token = self.resolve(secret)
        if token is None:
            raise acl_not_found()
        if not token.auth_method:
            raise ACLError("Permission denied: token wasn't created via login", 403)
        self._drop_token(token)

    def _drop_token(self, token: Token) -> None:
        self.tokens.pop(_key(token.accessor_id), None)
        self.secrets.pop(token.secret_id, None)
        self._write("tokens")

    def _write_token(self, token: Token, existing: Token | None) -> Token:
        """``TokenWriter.write``: links resolved to IDs, identities checked and deduplicated."""
        token.roles = self._role_links(token.roles)
        token.policies = self._policy_links(token.policies, "ACL policy")
        token.service_identities = service_identities(
            token.service_identities, "token", token.local
        )
        token.node_identities = node_identities(token.node_identities, "token")
        token.templated_policies = token_templated(token.templated_policies)
        if token.rules:
            raise ACLError("Rules cannot be specified for this token")
        if token.type:
            raise ACLError("Type cannot be specified for this token")
        self._put_token(token, existing)
        return token

    def _put_token(self, token: Token, existing: Token | None) -> None:
        token.set_hash()
        if not token.create_time:
            token.create_time = _now()
        index = self._write("tokens")
        token.create_index = existing.create_index if existing else index
        token.modify_index = index
        if existing is not None:
            self.secrets.pop(existing.secret_id, None)
        self.tokens[_key(token.accessor_id)] = token
        self.secrets[token.secret_id] = _key(token.accessor_id)

    def _role_links(self, links: list[Link]) -> list[Link]:
        return self._links(links, self.role_named, self.roles, "ACL role")

    def _policy_links(self, links: list[Link], what: str) -> list[Link]:
        return self._links(links, self.policy_named, self.policies, what)

    @staticmethod
    def _links(
        links: list[Link],
        named: Callable[[str], Policy | Role | None],
        table: Mapping[str, Policy | Role],
        what: str,
    ) -> list[Link]:
        """Links by id, each once: a name is looked up, an unknown one refused."""
        out: list[Link] = []
        for link in links:
            if not link.id:
                found = named(link.name)
                if found is None:
                    raise ACLError(f"No such {what} with name {go_quote(link.name)}")
                link = Link(found.id)
            elif table.get(_key(link.id)) is None:
                raise ACLError(f"No such {what} with ID {go_quote(link.id)}")
            if all(_key(seen.id) != _key(link.id) for seen in out):
                out.append(Link(link.id))
        return out

    def token_json(self, token: Token, redact: bool = False) -> Row:
        """A token as the API shows it (a list stub has the same fields): link names are
        looked up now, and links to what was deleted since are left out."""
        row: Row = {
            "AccessorID": token.accessor_id,
            "SecretID": REDACTED if redact else token.secret_id,
            "Description": token.description,
        }
        policies = self._named(token.policies, self.policies)
        if policies:
            row["Policies"] = policies
        roles = self._named(token.roles, self.roles)
        if roles:
            row["Roles"] = roles
        for name, items in (
            ("ServiceIdentities", token.service_identities),
            ("NodeIdentities", token.node_identities),
            ("TemplatedPolicies", token.templated_policies),
        ):
            if items:
                row[name] = items
        row["Local"] = token.local
        if token.auth_method:
            row["AuthMethod"] = token.auth_method
        if token.expiration_time is not None:
            row["ExpirationTime"] = go_time(token.expiration_time)
        row["CreateTime"] = go_time(token.create_time)
        row["Hash"] = token.hash
        return {**row, **indexes(token)}

    @staticmethod
    def _named(links: list[Link], table: dict[str, Policy] | dict[str, Role]) -> list[Row]:
        out = []
        for link in links:
            record = table.get(_key(link.id))
            if record is not None:
                out.append({"ID": record.id, "Name": record.name})
        return out

    # -- policies ----------------------------------------------------------------------------

    def policy(self, policy_id: str) -> Policy | None:
        return self.policies.get(uuid_key(policy_id, "policy"))

    def policy_named(self, name: str) -> Policy | None:
        return next((p for p in self.policies.values() if p.name == name), None)

    def policy_list(self) -> list[Policy]:
        return [self.policies[k] for k in sorted(self.policies)]

    def set_policy(self, policy: Policy) -> Policy:
        """``ACL.PolicySet``: a new policy (no ID) or a change of an existing one."""
        if not policy.name:
            raise ACLError("Invalid Policy: no Name is set")
        if len(policy.name) > 128 or not VALID_POLICY_NAME.match(policy.name):
            raise ACLError(f"Invalid Policy: invalid Name. {NAME_RULE}")
        same_name = self.policy_named(policy.name)
        if not policy.id:
            if same_name is not None:
                raise ACLError(
                    f"Invalid Policy: A Policy with Name {go_quote(policy.name)} already exists"
                )
            policy.id = new_uuid()
            self._put_policy(policy)
            return policy
        if not is_uuid(policy.id):
            raise ACLError("Policy ID invalid UUID")
        existing = self.policies.get(_key(policy.id))
        if existing is None:
            raise ACLError(f"cannot find policy {policy.id}")
        if existing.name != policy.name and same_name is not None:
            raise ACLError(
                f"Invalid Policy: A policy with name {go_quote(policy.name)} already exists"
            )
        _check_builtin_change(existing, policy)
        policy.id = existing.id
        self._put_policy(policy, existing)
        return policy

    def _put_policy(self, policy: Policy, existing: Policy | None = None) -> None:
        policy.set_hash()
        index = self._write("policies")
        policy.create_index = existing.create_index if existing else index
        policy.modify_index = index
        self.policies[_key(policy.id)] = policy

    def delete_policy(self, policy_id: str) -> None:
        policy = self.policy(policy_id)
        if policy is None:
            return
        if policy.id in (GLOBAL_MANAGEMENT_ID, GLOBAL_READ_ONLY_ID):
            raise ACLError(
                f"Delete operation not permitted on the builtin {_builtin_name(policy.id)} policy"
            )
        del self.policies[_key(policy.id)]
        self._write("policies")

    # -- roles -------------------------------------------------------------------------------

    def role(self, role_id: str) -> Role | None:
        return self.roles.get(uuid_key(role_id, "role"))

    def role_named(self, name: str) -> Role | None:
        return next((r for r in self.roles.values() if r.name == name), None)

    def role_list(self, policy: str) -> list[Role]:
        """``ACLRoleList``, optionally only the roles linking one policy (by ID)."""
        wanted = uuid_key(policy, "role") if policy else ""
        return [
            self.roles[k]
            for k in sorted(self.roles)
            if not wanted or any(_key(link.id) == wanted for link in self.roles[k].policies)
        ]

    def set_role(self, role: Role) -> Role:
        """``ACL.RoleSet``."""
        if not role.name:
            raise ACLError("Invalid Role: no Name is set")
        if not VALID_ROLE_NAME.match(role.name):
            raise ACLError(f"Invalid Role: invalid Name. {NAME_RULE}")
        existing = None
        if not role.id:
            if self.role_named(role.name) is not None:
                raise ACLError(
                    f"Invalid Role: A Role with Name {go_quote(role.name)} already exists"
                )
            role.id = new_uuid()
        else:
            if not is_uuid(role.id):
                raise ACLError("Role ID invalid UUID")
            existing = self.roles.get(_key(role.id))
            if existing is None:
                raise ACLError(f"cannot find role {role.id}")
            if existing.name != role.name and self.role_named(role.name) is not None:
                raise ACLError(
                    f"Invalid Role: A role with name {go_quote(role.name)} already exists"
                )
            role.id = existing.id
        role.policies = self._policy_links(role.policies, "ACL policy")
        role.service_identities = service_identities(role.service_identities, "role", False)
        role.node_identities = node_identities(role.node_identities, "role")
        role.templated_policies = role_templated(role.templated_policies)
        role.set_hash()
        index = self._write("roles")
        role.create_index = existing.create_index if existing else index
        role.modify_index = index
        self.roles[_key(role.id)] = role
        return role

    def delete_role(self, role_id: str) -> None:
        role = self.role(role_id)
        if role is not None:
            del self.roles[_key(role.id)]
            self._write("roles")

    def role_json(self, role: Role) -> Row:
        row: Row = {"ID": role.id, "Name": role.name, "Description": role.description}
        policies = self._named(role.policies, self.policies)
        if policies:
            row["Policies"] = policies
        for name, items in (
            ("ServiceIdentities", role.service_identities),
            ("NodeIdentities", role.node_identities),
            ("TemplatedPolicies", role.templated_policies),
        ):
            if items:
                row[name] = items
        return {**row, "Hash": role.hash, **indexes(role)}

    # -- auth methods and binding rules ------------------------------------------------------

    def method_list(self) -> list[AuthMethod]:
        return [self.methods[k] for k in sorted(self.methods)]

    def set_method(self, method: AuthMethod) -> AuthMethod:
        """``ACL.AuthMethodSet``: the config is kept as given (no validator is built)."""
        if not method.name:
            raise ACLError("Invalid Auth Method: no Name is set")
        if not VALID_METHOD_NAME.match(method.name):
            raise ACLError(f"Invalid Auth Method: invalid Name. {NAME_RULE}")
        existing = self.methods.get(method.name)
        if existing is not None:
            if not method.type:
                method.type = existing.type
            elif method.type != existing.type:
                raise ACLError("the Type field of an Auth Method is immutable")
        if method.type not in AUTH_METHOD_TYPES:
            raise ACLError(
                f"Invalid Auth Method: Type should be one of: [{' '.join(AUTH_METHOD_TYPES)}]"
            )
        check_max_ttl(method.max_token_ttl)
        if method.token_locality not in ("", "local", "global"):
            raise ACLError(
                "Invalid Auth Method: TokenLocality should be one of 'local' or 'global'"
            )
        index = self._write("auth-methods")
        method.create_index = existing.create_index if existing else index
        method.modify_index = index
        self.methods[method.name] = method
        return method

    def delete_method(self, name: str) -> None:
        """Its binding rules and the tokens it made go with it (``ACLAuthMethodDeleteByName``)."""
        if self.methods.pop(name, None) is None:
            return
        self._write("auth-methods")
        for key in [k for k, r in self.rules.items() if r.auth_method == name]:
            del self.rules[key]
            self._write("binding-rules")
        for token in [t for t in self.tokens.values() if t.auth_method == name]:
            self._drop_token(token)

    def rule(self, rule_id: str) -> BindingRule | None:
        return self.rules.get(uuid_key(rule_id, "binding rule"))

    def rule_list(self, method: str) -> list[BindingRule]:
        return [
            self.rules[k]
            for k in sorted(self.rules)
            if not method or self.rules[k].auth_method == method
        ]

    def set_rule(self, rule: BindingRule) -> BindingRule:
        """``ACL.BindingRuleSet`` (the selector is kept, not compiled)."""
        existing = None
        if not rule.id:
            rule.id = new_uuid()
        else:
            if not is_uuid(rule.id):
                raise ACLError("Binding Rule ID invalid UUID")
            existing = self.rules.get(_key(rule.id))
            if existing is None:
                raise ACLError(f"cannot find binding rule {rule.id}")
            if not rule.auth_method:
                rule.auth_method = existing.auth_method
            elif rule.auth_method != existing.auth_method:
                raise ACLError("the AuthMethod field of an Binding Rule is immutable")
            rule.id = existing.id
        if not rule.auth_method:
            raise ACLError("Invalid Binding Rule: no AuthMethod is set")
        if rule.auth_method not in self.methods:
            raise ACLError(f"cannot find auth method with name {go_quote(rule.auth_method)}")
        check_bind(rule)
        index = self._write("binding-rules")
        rule.create_index = existing.create_index if existing else index
        rule.modify_index = index
        self.rules[_key(rule.id)] = rule
        return rule

    def delete_rule(self, rule_id: str) -> None:
        rule = self.rule(rule_id)
        if rule is not None:
            del self.rules[_key(rule.id)]
            self._write("binding-rules")


# -- the store's keys, list filters and built-in policies ----------------------------------


def _key(value: str) -> str:
    return value.replace("-", "").lower()


def _token_filter(policy: str, role: str, method: str) -> Callable[[Token], bool]:
    """Which tokens a list keeps: those linking the policy or role (by ID), or made by the
    auth method."""
    if policy:
        wanted = uuid_key(policy, "token")
        return lambda t: any(_key(link.id) == wanted for link in t.policies)
    if role:
        wanted = uuid_key(role, "token")
        return lambda t: any(_key(link.id) == wanted for link in t.roles)
    if method:
        return lambda t: t.auth_method == method
    return lambda t: True


def _builtin_name(policy_id: str) -> str:
    return "global-management" if policy_id == GLOBAL_MANAGEMENT_ID else "global-read-only"


def _check_builtin_change(existing: Policy, policy: Policy) -> None:
    """The built-in policies may be renamed or described, nothing else."""
    if existing.id not in (GLOBAL_MANAGEMENT_ID, GLOBAL_READ_ONLY_ID):
        return
    name = _builtin_name(existing.id)
    if policy.datacenters:
        raise ACLError(f"Changing the Datacenters of the builtin {name} policy is not permitted")
    if policy.rules != existing.rules:
        raise ACLError(f"Changing the Rules for the builtin {name} policy is not permitted")
