"""The validations of ACL writes: identities, templated policies, TTLs and binding rules.

As ``TokenWriter`` (``agent/consul/auth/token_writer.go``) and ``ACL.RoleSet`` check and
deduplicate a token's or role's service and node identities and templated policies,
``ACL.AuthMethodSet`` checks its ``MaxTokenTTL`` and ``ACL.BindingRuleSet`` its bind type
and name (``agent/consul/acl_endpoint.go``), with their error texts.
"""

from __future__ import annotations

from collections.abc import Callable

from .acl_errors import ACLError, go_quote
from .acl_records import (
    IDENTITY_RULE,
    VALID_IDENTITY_NAME,
    VALID_POLICY_NAME,
    VALID_ROLE_NAME,
    BindingRule,
)
from .acl_templates import TEMPLATES, Template
from .durations import format_duration
from .web import Row

BIND_TYPES = ("service", "node", "role", "policy", "templated-policy")
MIN_TOKEN_TTL = 60.0  # acl.token_min_expiration_ttl
MAX_TOKEN_TTL = 24 * 3600.0  # acl.token_max_expiration_ttl


# -- validations shared by tokens and roles ------------------------------------------------


def service_identities(items: list[Row], owner: str, local: bool) -> list[Row]:
    """Checked, then merged by name (datacenters sorted and joined), as ``Deduplicate``."""
    merged: dict[str, Row] = {}
    for item in items:
        name = item["ServiceName"]
        if not name:
            raise ACLError(f"Service identity is missing the service name field on this {owner}")
        if local and item.get("Datacenters"):
            raise ACLError(
                f"Service identity {go_quote(name)} cannot specify a list of datacenters "
                "on a local token"
            )
        if not VALID_IDENTITY_NAME.match(name):
            raise ACLError(
                f"Service identity {go_quote(name)} has an invalid name. {IDENTITY_RULE}"
            )
        datacenters = sorted(
            {*merged.get(name, {}).get("Datacenters", []), *item.get("Datacenters", [])}
        )
        merged[name] = {
            "ServiceName": name,
            **({"Datacenters": datacenters} if datacenters else {}),
        }
    return list(merged.values())


def node_identities(items: list[Row], owner: str) -> list[Row]:
    out: list[Row] = []
    for item in items:
        if not item["NodeName"]:
            raise ACLError(f"Node identity is missing the node name field on this {owner}")
        if not item["Datacenter"]:
            raise ACLError(f"Node identity is missing the datacenter field on this {owner}")
        if not VALID_IDENTITY_NAME.match(item["NodeName"]):
            raise ACLError(f"Node identity has an invalid name. {IDENTITY_RULE}")
        if item not in out:
            out.append(item)
    return out


def token_templated(items: list[Row]) -> list[Row]:
    """``TokenWriter.normalizeTemplatedPolicies``."""

    def invalid(name: str, problem: str) -> str:
        return f"validation error for templated policy: {name}: {problem}"

    return _checked_templated(items, "token", invalid, absent_as_empty=True)


def role_templated(items: list[Row]) -> list[Row]:
    """``ACL.RoleSet``'s templated policy checks."""

    def invalid(_name: str, problem: str) -> str:
        return f"encountered templated policy validation error: {problem}"

    return _checked_templated(items, "role", invalid, absent_as_empty=False)


def _checked_templated(
    items: list[Row], owner: str, invalid: Callable[[str, str], str], absent_as_empty: bool
) -> list[Row]:
    """The templated policies of a token or role, checked and deduplicated. The two
    paths differ as Consul's do: they word a bad variable differently
    (``invalid(name, problem)``), and only the token's validates absent variables as
    ``{}`` (so a missing name fails the identity rule, not "name is required")."""
    out: list[Row] = []
    for item in items:
        name = item["TemplateName"]
        if not name:
            raise ACLError(f"templated policy is missing the template name field on this {owner}")
        template = TEMPLATES.get(name)
        if template is None:
            raise ACLError(
                f"templated policy with an invalid templated name: {name} for this {owner}"
            )
        variables = item.get("TemplateVariables")
        problem = template.validate(variables or {} if absent_as_empty else variables)
        if problem is not None:
            raise ACLError(invalid(name, problem))
        out.append(_templated_row(template, variables or {}, item.get("Datacenters", [])))
    return _dedup_templated(out)


def _templated_row(template: Template, variables: Row, datacenters: list[str]) -> Row:
    row: Row = {
        "TemplateID": template.template_id,
        "TemplateName": template.name,
        "TemplateVariables": variables,
    }
    if datacenters:
        row["Datacenters"] = datacenters
    return row


def _dedup_templated(items: list[Row]) -> list[Row]:
    """``ACLTemplatedPolicies.Deduplicate``: by template and variables (once if no schema)."""
    out: list[Row] = []
    for item in items:
        template = TEMPLATES[item["TemplateName"]]
        same = [o for o in out if o["TemplateName"] == template.name]
        # Without a schema a template takes no variables: one of it is enough.
        duplicate = (
            bool(same)
            if not template.schema
            else item["TemplateVariables"] in (o["TemplateVariables"] for o in same)
        )
        if not duplicate:
            out.append(item)
    return out


def check_max_ttl(seconds: float) -> None:
    if not seconds:
        return
    if seconds > MAX_TOKEN_TTL:
        raise ACLError(
            f"MaxTokenTTL {format_duration(seconds)} cannot be more than "
            f"{format_duration(MAX_TOKEN_TTL)}"
        )
    if seconds < MIN_TOKEN_TTL:
        raise ACLError(
            f"MaxTokenTTL {format_duration(seconds)} cannot be less than "
            f"{format_duration(MIN_TOKEN_TTL)}"
        )


def check_bind(rule: BindingRule) -> None:
    """BindType and BindName; a name with ``${...}`` is only checked once rendered (login)."""
    if not rule.bind_type:
        raise ACLError("Invalid Binding Rule: no BindType is set")
    if not rule.bind_name:
        raise ACLError("Invalid Binding Rule: no BindName is set")
    if rule.bind_type not in BIND_TYPES:
        raise ACLError(f"Invalid Binding Rule: unknown BindType {go_quote(rule.bind_type)}")
    if "${" in rule.bind_name:
        return
    valid = {
        "service": VALID_IDENTITY_NAME,
        "node": VALID_IDENTITY_NAME,
        "role": VALID_ROLE_NAME,
        "policy": VALID_POLICY_NAME,
    }.get(rule.bind_type)
    if valid is not None and not valid.match(rule.bind_name):
        raise ACLError("Invalid Binding Rule: invalid BindName")
    if rule.bind_type == "templated-policy" and rule.bind_name not in TEMPLATES:
        raise ACLError("Invalid Binding Rule: invalid BindName")
