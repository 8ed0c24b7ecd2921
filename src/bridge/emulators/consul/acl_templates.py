"""Templated policies: the built-in templates, their schemas and rules, and the
synthetic policies they render to.

As ``agent/structs/acl_templated_policy.go`` and ``agent/structs/acltemplatedpolicy/``
(Consul 1.20 CE) define them: a template's rules take the ``name`` variable, checked as
``ValidateTemplatedPolicy`` checks it; a synthetic policy's ID is ``fnv128a.Sum`` of
its rules.
"""

from __future__ import annotations

from dataclasses import dataclass

from .acl_errors import go_quote
from .acl_records import IDENTITY_RULE, VALID_IDENTITY_NAME, content_hash
from .web import Row

FNV128A_OFFSET = "6c62272e07bb014262b821756295c58d"


# -- templated policies (agent/structs/acltemplatedpolicy/, Consul 1.20 CE) ---------------

NAME_SCHEMA = (
    '{\n\t"type": "object",\n\t"properties": {\n\t\t"name": { "type": "string", '
    '"$ref": "#/definitions/min-length-one" }\n\t},\n\t"required": ["name"],\n\t'
    '"definitions": {\n\t\t"min-length-one": {\n\t\t\t\t"type": "string",\n\t\t\t\t'
    '"minLength": 1\n\t\t}\n\t}\n}'
)


@dataclass(frozen=True)
class Template:
    """One built-in templated policy (``ACLTemplatedPolicyBase``)."""

    template_id: str
    name: str
    schema: str  # "" when it takes no variables
    template: str
    description: str

    def response(self) -> Row:
        """``api.ACLTemplatedPolicyResponse``."""
        return {
            "TemplateName": self.name,
            "Schema": self.schema,
            "Template": self.template,
            "Description": self.description,
        }

    def rules(self, name: str) -> str:
        """The template rendered (Go's text/template with ``.Name``)."""
        return self.template.replace("{{.Name}}", name)

    def validate(self, variables: Row | None) -> str | None:
        """``ValidateTemplatedPolicy``: the identity name rules, then the JSON schema."""
        if not self.schema:
            return None
        name = str((variables or {}).get("name", ""))
        if variables is not None and self.name in ("builtin/service", "builtin/node"):
            kind = "service" if self.name == "builtin/service" else "node"
            gap = " " if kind == "service" else "  "  # Consul's node text has two spaces
            if not VALID_IDENTITY_NAME.match(name):
                return f"{kind} identity {go_quote(name)}{gap}has an invalid name. {IDENTITY_RULE}"
        if not name:
            return "1 error occurred:\n\t* name is required\n\n"
        return None


TEMPLATES: dict[str, Template] = {
    t.name: t
    for t in (
        Template(
            "00000000-0000-0000-0000-000000000003",
            "builtin/service",
            NAME_SCHEMA,
            '\nservice "{{.Name}}" {\n\tpolicy = "write"\n}\nservice "{{.Name}}-sidecar-proxy" '
            '{\n\tpolicy = "write"\n}\nservice_prefix "" {\n\tpolicy = "read"\n}\n'
            'node_prefix "" {\n\tpolicy = "read"\n}',
            "Gives the token or role permissions to register a service and discover services "
            "in the Consul catalog. It also gives the specified service's sidecar proxy the "
            "permission to discover and route traffic to other services.",
        ),
        Template(
            "00000000-0000-0000-0000-000000000004",
            "builtin/node",
            NAME_SCHEMA,
            '\nnode "{{.Name}}" {\n\tpolicy = "write"\n}\nservice_prefix "" {\n\t'
            'policy = "read"\n}',
            "Gives the token or role permissions for a register an agent/node into the "
            "catalog. A node is typically a consul agent but can also be a physical server, "
            "cloud instance or a container.",
        ),
        Template(
            "00000000-0000-0000-0000-000000000005",
            "builtin/dns",
            "",
            '\nnode_prefix "" {\n\tpolicy = "read"\n}\nservice_prefix "" {\n\tpolicy = "read"'
            '\n}\nquery_prefix "" {\n\tpolicy = "read"\n}',
            "Gives the token or role permissions for the Consul DNS to query services in the "
            "network.",
        ),
        Template(
            "00000000-0000-0000-0000-000000000006",
            "builtin/nomad-server",
            "",
            '\nacl = "write"\nagent_prefix "" {\n  policy = "read"\n}\nnode_prefix "" {\n  '
            'policy = "read"\n}\nservice_prefix "" {\n  policy = "write"\n}',
            "Gives the token or role permissions required for integration with a nomad server.",
        ),
        Template(
            "00000000-0000-0000-0000-000000000008",
            "builtin/api-gateway",
            NAME_SCHEMA,
            'mesh = "read"\nnode_prefix "" {\n\tpolicy = "read"\n}\nservice_prefix "" {\n\t'
            'policy = "read"\n}\nservice "{{.Name}}" {\n\tpolicy = "write"\n}',
            "Gives the token or role permissions for a Consul api gateway",
        ),
        Template(
            "00000000-0000-0000-0000-000000000009",
            "builtin/nomad-client",
            "",
            'agent_prefix "" {\n  policy = "read"\n}\nnode_prefix "" {\n  policy = "read"\n}\n'
            'service_prefix "" {\n  policy = "write"\n}\nkey_prefix "" {\n  policy = "read"\n}',
            "Gives the token or role permissions required for integration with a nomad client.",
        ),
    )
}


def synthetic_policy(template: Template, variables: Row | None) -> Row:
    """``ACLTemplatedPolicy.SyntheticPolicy``. Its ID is ``fnv128a.Sum(rules)``: Go's Sum
    *appends* the (empty) digest to the rules, so the ID is the rules in hex + the offset."""
    rules = template.rules(str((variables or {}).get("name", "")))
    policy_id = rules.encode().hex() + FNV128A_OFFSET
    name = f"synthetic-policy-{policy_id}"
    description = f"synthetic policy generated from templated policy: {template.name}"
    return {
        "ID": policy_id,
        "Name": name,
        "Description": description,
        "Rules": rules,
        "Hash": content_hash(name, description, rules),
        "CreateIndex": 0,
        "ModifyIndex": 0,
    }
