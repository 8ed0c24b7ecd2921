"""ACLs: the default policy, and the /v1/acl API (tokens, policies, roles, auth methods,
binding rules, templated policies) as Consul 1.20 answers them, over real sockets."""

from __future__ import annotations

import base64
import hashlib
import threading
from collections.abc import Iterator

import consul
import httpx
import pytest

from bridge.cli import build_parser
from bridge.emulators.consul import ConsulEmulator

ROOT = "root"
MANAGEMENT_ID = "00000000-0000-0000-0000-000000000001"
READ_ONLY_ID = "00000000-0000-0000-0000-000000000002"
ANONYMOUS_ID = "00000000-0000-0000-0000-000000000002"
ANONYMOUS_DENIED = (
    "Permission denied: anonymous token lacks permission 'acl:read'. "
    "The anonymous token is used implicitly when a request does not specify a token."
)


@pytest.fixture(scope="module")
def acl_server() -> Iterator[ConsulEmulator]:
    """ACLs on with Consul's default policy (allow)."""
    with ConsulEmulator(acl_master_token=ROOT) as server:
        yield server


@pytest.fixture
def http(acl_server: ConsulEmulator) -> Iterator[httpx.Client]:
    """A management client of the freshly reset emulator (a reset makes new built-ins)."""
    with httpx.Client(base_url=acl_server.url, headers={"X-Consul-Token": ROOT}) as client:
        client.post("/_emulator/reset").raise_for_status()
        yield client


@pytest.fixture
def c(acl_server: ConsulEmulator, http: httpx.Client) -> consul.Consul:
    return consul.Consul(host="127.0.0.1", port=acl_server.port, token=ROOT)


def anonymous(http: httpx.Client) -> httpx.Client:
    return httpx.Client(base_url=str(http.base_url))


# -- the default policy ------------------------------------------------------------------


def test_default_allow_lets_the_anonymous_token_do_all_but_acls(http: httpx.Client) -> None:
    with anonymous(http) as anon:
        agent_self = anon.get("/v1/agent/self")
        assert agent_self.status_code == 200
        settings = agent_self.json()["DebugConfig"]["ACLResolverSettings"]
        assert (settings["ACLsEnabled"], settings["ACLDefaultPolicy"]) == (True, "allow")
        assert anon.put("/v1/kv/k", content=b"v").json() is True
        read = anon.get("/v1/kv/k")
        assert read.status_code == 200
        assert read.headers["X-Consul-Default-ACL-Policy"] == "allow"
        anon.put("/v1/agent/service/register", json={"Name": "web"}).raise_for_status()
        assert "web" in anon.get("/v1/catalog/services").json()
        for token in ({}, {"X-Consul-Token": "anonymous"}):
            denied = anon.get("/v1/acl/tokens", headers=token)
            assert (denied.status_code, denied.text) == (403, ANONYMOUS_DENIED)
        # AllowAll() does not manage: a snapshot, like ACLs, takes management.
        snapshot = anon.get("/v1/snapshot")
        assert (snapshot.status_code, snapshot.text) == (
            403,
            ANONYMOUS_DENIED.replace("acl:read", "acl:write"),
        )
    assert http.get("/v1/snapshot").status_code == 200


def test_default_deny_keeps_todays_enforcement() -> None:
    with (
        ConsulEmulator(acl_master_token=ROOT, acl_default_policy="deny") as server,
        httpx.Client(base_url=server.url) as anon,
    ):
        assert anon.put("/v1/kv/k", content=b"v").status_code == 403
        assert anon.get("/v1/catalog/services").json() == {}
        assert anon.get("/v1/catalog/services").headers["X-Consul-Default-ACL-Policy"] == "deny"
        settings = anon.get("/v1/agent/self", headers={"X-Consul-Token": ROOT}).json()
        assert settings["DebugConfig"]["ACLResolverSettings"]["ACLDefaultPolicy"] == "deny"


def test_an_unknown_default_policy_is_refused() -> None:
    with pytest.raises(ValueError, match="allow"):
        ConsulEmulator(acl_master_token=ROOT, acl_default_policy="block")


def test_the_cli_takes_the_default_policy() -> None:
    args = build_parser().parse_args(["emulate", "consul", "--acl-default-policy", "deny"])
    assert args.acl_default_policy == "deny"
    assert build_parser().parse_args(["emulate", "consul"]).acl_default_policy == "allow"


def test_without_acls_the_acl_api_is_disabled(consul_http: httpx.Client) -> None:
    response = consul_http.get("/v1/acl/tokens")
    assert (response.status_code, response.text) == (401, "ACL support disabled")
    assert consul_http.post("/v1/acl/tokens").status_code == 405  # the method is checked first


# -- the built-ins -----------------------------------------------------------------------


def test_the_built_in_tokens_and_policies(c: consul.Consul, http: httpx.Client) -> None:
    tokens = {t["Description"]: t for t in c.acl.token.list()}
    assert set(tokens) == {"Initial Management Token", "Anonymous Token"}
    management = tokens["Initial Management Token"]
    assert management["SecretID"] == ROOT
    assert management["Policies"] == [{"ID": MANAGEMENT_ID, "Name": "global-management"}]
    assert tokens["Anonymous Token"]["AccessorID"] == ANONYMOUS_ID
    assert tokens["Anonymous Token"]["SecretID"] == "anonymous"
    assert "Policies" not in tokens["Anonymous Token"]
    # Token.SetHash: BLAKE2b-256 of the description, locality and policy links.
    digest = hashlib.blake2b(
        b"Initial Management Token" + b"global" + MANAGEMENT_ID.encode(), digest_size=32
    )
    assert management["Hash"] == base64.b64encode(digest.digest()).decode()
    policies = {p["Name"]: p for p in c.acl.policy.list()}
    assert policies["global-management"]["ID"] == MANAGEMENT_ID
    assert policies["builtin/global-read-only"]["ID"] == READ_ONLY_ID
    assert policies["global-management"]["Datacenters"] is None  # stubs: no rules, null dcs
    assert "Rules" not in policies["global-management"]
    by_name = http.get("/v1/acl/policy/name/builtin/global-read-only").json()
    assert by_name["ID"] == READ_ONLY_ID
    assert 'acl = "read"' in by_name["Rules"]


def test_bootstrap_is_done_by_the_initial_management_token(
    c: consul.Consul, http: httpx.Client
) -> None:
    management = next(t for t in c.acl.token.list() if t["SecretID"] == ROOT)
    response = http.put("/v1/acl/bootstrap")
    assert response.status_code == 403
    assert response.text == (
        "Permission denied: ACL bootstrap no longer allowed "
        f"(reset index: {management['CreateIndex']})"
    )


# -- tokens ------------------------------------------------------------------------------


def test_a_token_lifecycle(c: consul.Consul, http: httpx.Client) -> None:
    accessor = "6d1f2c3a-0000-4000-8000-00000000abcd"
    made = c.acl.token.create(accessor_id=accessor, description="first", node_identities=["n1:dc1"])
    assert made["AccessorID"] == accessor
    assert made["NodeIdentities"] == [{"NodeName": "n1", "Datacenter": "dc1"}]
    assert made["CreateIndex"] == made["ModifyIndex"]
    updated = c.acl.token.update(accessor_id=accessor, description="second")
    assert (updated["Description"], updated["SecretID"]) == ("second", made["SecretID"])
    assert "NodeIdentities" not in updated  # an update replaces the token
    assert updated["CreateIndex"] == made["CreateIndex"] < updated["ModifyIndex"]
    assert updated["CreateTime"] == made["CreateTime"]
    clone = c.acl.token.clone(accessor_id=accessor, description="clone")
    assert clone["AccessorID"] != accessor and clone["Description"] == "clone"
    assert c.acl.token.read(accessor_id=accessor.upper())["AccessorID"] == accessor
    assert c.acl.token.delete(accessor_id=accessor) is True
    gone = http.get(f"/v1/acl/token/{accessor}")
    assert (gone.status_code, gone.text) == (403, "ACL not found")
    assert http.delete(f"/v1/acl/token/{accessor}").json() is True  # nothing left: no error


def test_token_writes_are_validated_as_consul_does(http: httpx.Client) -> None:
    cases = [
        ({"AccessorID": "nope"}, 500, "Invalid Token: AccessorID - not a valid UUID"),
        (
            {"AccessorID": "00000000-0000-0000-0000-000000000099"},
            500,
            'Invalid Token: AccessorID - UUIDs with the prefix "00000000-0000-0000-0000-0000000000"'
            " are reserved",
        ),
        ({"AccessorID": ANONYMOUS_ID.replace("0002", "0d02")}, 200, None),
        ({"AccessorID": ANONYMOUS_ID.replace("0002", "0d02")}, 500, None),
        ({"SecretID": ROOT}, 500, "Invalid Token: SecretID - not a valid UUID"),
        ({"Description": 5}, 400, None),
        ({"Policies": [{"Name": "nope"}]}, 500, 'No such ACL policy with name "nope"'),
        ({"ServiceIdentities": [{"ServiceName": "Web"}]}, 500, None),
        ({"NodeIdentities": [{"NodeName": "n1"}]}, 500, None),
        ({"Rules": 'key "" { policy = "read" }'}, 500, "Rules cannot be specified for this token"),
        ({"ExpirationTTL": "10s"}, 500, None),
    ]
    texts = []
    for body, status, text in cases:
        response = http.put("/v1/acl/token", json=body)
        assert response.status_code == status, (body, response.text)
        if text is not None:
            assert response.text == text
        texts.append(response.text)
    assert texts[3] == "Invalid Token: AccessorID is already in use"
    assert texts[5].startswith("Token decoding failed: json: cannot unmarshal number")
    assert texts[7] == (
        'Service identity "Web" has an invalid name. Only lowercase alphanumeric characters, '
        "'-' and '_' are allowed"
    )
    assert texts[8] == "Node identity is missing the datacenter field on this token"
    assert texts[10] == "ExpirationTime cannot be less than 1m0s in the future (was 10s)"


def test_token_urls_are_checked_before_the_rpc(http: httpx.Client) -> None:
    accessor = "6d1f2c3a-0000-4000-8000-00000000abcd"
    mismatch = http.put(f"/v1/acl/token/{accessor}", json={"AccessorID": ANONYMOUS_ID})
    assert (mismatch.status_code, mismatch.text) == (
        400,
        "Token Accessor ID in URL and payload do not match",
    )
    unknown = http.get("/v1/acl/token/unknown")
    assert (unknown.status_code, unknown.text) == (
        500,
        "failed acl token lookup: index error: UUID must be 36 characters",
    )
    missing = http.put(f"/v1/acl/token/{accessor}", json={})
    assert (missing.status_code, missing.text) == (500, f'Cannot find token "{accessor}"')
    assert http.delete("/v1/acl/token/nope").text == "Accessor ID is missing or an invalid UUID"
    anon = http.delete(f"/v1/acl/token/{ANONYMOUS_ID}")
    assert anon.text == "Delete operation not permitted on the anonymous token"
    own = next(t for t in http.get("/v1/acl/tokens").json() if t["SecretID"] == ROOT)
    refused = http.delete(f"/v1/acl/token/{own['AccessorID']}")
    assert refused.text == "Deletion of the request's authorization token is not permitted"


def test_a_token_made_through_the_api_is_a_credential(
    acl_server: ConsulEmulator, c: consul.Consul, http: httpx.Client
) -> None:
    plain = c.acl.token.create(description="plain")["SecretID"]
    admin = c.acl.token.create(description="admin", policies_name=["global-management"])
    as_plain = {"X-Consul-Token": plain}
    # No built-in policy: the default policy (allow) decides, and never for ACLs.
    assert http.put("/v1/kv/k", content=b"v", headers=as_plain).json() is True
    denied = http.get("/v1/acl/tokens", headers=as_plain)
    plain_accessor = http.get("/v1/acl/token/self", headers=as_plain).json()["AccessorID"]
    assert (denied.status_code, denied.text) == (
        403,
        f"Permission denied: token with AccessorID '{plain_accessor}' lacks permission 'acl:read'",
    )
    as_admin = consul.Consul(host="127.0.0.1", port=acl_server.port, token=admin["SecretID"])
    assert len(as_admin.acl.token.list()) == 4
    assert as_admin.acl.token.read_self()["Description"] == "admin"
    bogus = http.get("/v1/kv/k", headers={"X-Consul-Token": "4b0ab2c1-no-such-token"})
    assert (bogus.status_code, bogus.text) == (403, "ACL not found")


def test_a_read_only_token_reads_acls_without_secrets(
    acl_server: ConsulEmulator, c: consul.Consul, http: httpx.Client
) -> None:
    reader = c.acl.token.create(policies_name=["builtin/global-read-only"])["SecretID"]
    headers = {"X-Consul-Token": reader}
    listed = http.get("/v1/acl/tokens", headers=headers).json()
    assert {t["SecretID"] for t in listed} == {"<hidden>"}
    assert http.put("/v1/acl/policy", json={"Name": "p"}, headers=headers).status_code == 403
    assert http.put("/v1/kv/k", content=b"v", headers=headers).status_code == 403  # read only
    assert http.get("/v1/kv/k", headers=headers).status_code == 404


def test_the_token_list_filters_and_blocks(c: consul.Consul, http: httpx.Client) -> None:
    admin = c.acl.token.create(policies_id=[MANAGEMENT_ID])
    by_policy = http.get("/v1/acl/tokens", params={"policy": MANAGEMENT_ID}).json()
    assert {t["Description"] for t in by_policy} == {"Initial Management Token", ""}
    assert admin["AccessorID"] in {t["AccessorID"] for t in by_policy}
    both = http.get("/v1/acl/tokens", params={"policy": MANAGEMENT_ID, "authmethod": "m"})
    assert both.text == "can only filter by one of policy, role, serviceName, or authmethod at once"
    index = http.get("/v1/acl/tokens").headers["X-Consul-Index"]
    result: list[httpx.Response] = []
    waiter = threading.Thread(
        target=lambda: result.append(
            http.get("/v1/acl/tokens", params={"index": index, "wait": "10s"}, timeout=20)
        )
    )
    waiter.start()
    c.acl.token.create(description="wakes the list")
    waiter.join(20)
    assert "wakes the list" in {t["Description"] for t in result[0].json()}
    assert int(result[0].headers["X-Consul-Index"]) > int(index)


# -- policies and roles ------------------------------------------------------------------


def test_policies(c: consul.Consul, http: httpx.Client) -> None:
    policy = c.acl.policy.create(name="kv-read", rules='key_prefix "" { policy = "read" }')
    assert policy["Rules"] == '"key_prefix \\"\\" { policy = \\"read\\" }"'  # py-consul dumps it
    assert c.acl.policy.read(uuid=policy["ID"])["Name"] == "kv-read"
    duplicate = http.put("/v1/acl/policy", json={"Name": "kv-read"})
    assert duplicate.text == 'Invalid Policy: A Policy with Name "kv-read" already exists'
    with_id = http.put("/v1/acl/policy", json={"Name": "x", "ID": policy["ID"]})
    assert (with_id.status_code, with_id.text) == (
        400,
        "Cannot specify the ID when creating a new policy",
    )
    bad_name = http.put("/v1/acl/policy", json={"Name": "a b"})
    assert bad_name.text == (
        "Invalid Policy: invalid Name. Only alphanumeric characters, '-' and '_' are allowed"
    )
    renamed = http.put(f"/v1/acl/policy/{policy['ID']}", json={"Name": "kv-reader"}).json()
    assert renamed["ModifyIndex"] > renamed["CreateIndex"] == policy["CreateIndex"]
    assert http.get(f"/v1/acl/policy/{policy['ID']}").json()["Name"] == "kv-reader"
    assert http.delete(f"/v1/acl/policy/{policy['ID']}").json() is True
    assert http.get(f"/v1/acl/policy/{policy['ID']}").text == "ACL not found"
    unknown = http.get("/v1/acl/policy/unknown")
    assert (unknown.status_code, unknown.text) == (
        500,
        "failed acl policy lookup: index error: UUID must be 36 characters",
    )
    refused = http.delete(f"/v1/acl/policy/{MANAGEMENT_ID}")
    assert refused.text == "Delete operation not permitted on the builtin global-management policy"
    rules = http.put(
        f"/v1/acl/policy/{MANAGEMENT_ID}", json={"Name": "global-management", "Rules": ""}
    )
    assert rules.text == (
        "Changing the Rules for the builtin global-management policy is not permitted"
    )


def test_roles(acl_server: ConsulEmulator, c: consul.Consul, http: httpx.Client) -> None:
    role = c.acl.role.create(
        name="admins",
        policies_name=["global-management"],
        service_identities=[{"ServiceName": "web"}, {"ServiceName": "web"}],
    )
    assert role["Policies"] == [{"ID": MANAGEMENT_ID, "Name": "global-management"}]
    assert role["ServiceIdentities"] == [{"ServiceName": "web"}]  # deduplicated
    assert c.acl.role.read_by_name(name="admins")["ID"] == role["ID"]
    # A token holding the role manages ACLs.
    secret = c.acl.token.create(roles_name=["admins"])["SecretID"]
    assert http.get("/v1/acl/roles", headers={"X-Consul-Token": secret}).status_code == 200
    assert http.put("/v1/acl/role", json={"Name": "admins"}).text == (
        'Invalid Role: A Role with Name "admins" already exists'
    )
    assert http.put("/v1/acl/role", json={"Name": "r", "ID": role["ID"]}).text == (
        "Role ID in URL and payload do not match"
    )
    assert c.acl.role.delete(role_id=role["ID"]) is True
    missing = http.get(f"/v1/acl/role/{role['ID']}")
    assert (missing.status_code, missing.text) == (404, "")
    # The token's link to the deleted role is left out.
    assert "Roles" not in http.get("/v1/acl/token/self", headers={"X-Consul-Token": secret}).json()


# -- auth methods, binding rules, login --------------------------------------------------


def test_auth_methods_and_binding_rules(c: consul.Consul, http: httpx.Client) -> None:
    config = {"JWTValidationPubKeys": ["k"], "BoundIssuer": "me"}
    method = c.acl.auth_method.create(
        name="jwt", method_type="jwt", config=config, max_token_ttl="1h"
    )
    assert (method["Config"], method["MaxTokenTTL"]) == (config, "1h0m0s")
    assert http.get("/v1/acl/auth-methods").json()[0]["Name"] == "jwt"
    assert "Config" not in http.get("/v1/acl/auth-methods").json()[0]
    bad_type = http.put("/v1/acl/auth-method", json={"Name": "x", "Type": "ldap"})
    assert bad_type.text == (
        "Invalid Auth Method: Type should be one of: [aws-iam jwt kubernetes oidc]"
    )
    immutable = http.put("/v1/acl/auth-method/jwt", json={"Type": "oidc"})
    assert immutable.text == "the Type field of an Auth Method is immutable"
    rule = c.acl.binding_rule.create(auth_method="jwt", bind_type="service", bind_name="web")
    assert c.acl.binding_rule.list(auth_method="jwt")[0]["ID"] == rule["ID"]
    assert c.acl.binding_rule.list(auth_method="other") == []
    orphan = http.put(
        "/v1/acl/binding-rule", json={"AuthMethod": "nope", "BindType": "service", "BindName": "w"}
    )
    assert orphan.text == 'cannot find auth method with name "nope"'
    kind = http.put(
        "/v1/acl/binding-rule", json={"AuthMethod": "jwt", "BindType": "x", "BindName": "w"}
    )
    assert kind.text == 'Invalid Binding Rule: unknown BindType "x"'
    assert c.acl.auth_method.delete(name="jwt") is True
    assert c.acl.binding_rule.read(binding_rule_id=rule["ID"]) is None  # went with its method
    assert c.acl.auth_method.read(name="jwt") is None


def test_login_and_logout(c: consul.Consul, http: httpx.Client) -> None:
    login = http.post("/v1/acl/login", json={"AuthMethod": "nope", "BearerToken": "t"})
    assert (login.status_code, login.text) == (
        403,
        'ACL not found: auth method "nope" not found',
    )
    secret = c.acl.token.create()["SecretID"]
    logout = http.post("/v1/acl/logout", headers={"X-Consul-Token": secret})
    assert (logout.status_code, logout.text) == (
        403,
        "Permission denied: token wasn't created via login",
    )
    with pytest.raises(consul.ACLPermissionDenied):
        c.acl.logout(token="0a0b7f35-7d0d-4a53-b7f4-7b0f6a0a6c3e")


# -- templated policies ------------------------------------------------------------------


def test_templated_policies(http: httpx.Client) -> None:
    listing = http.get("/v1/acl/templated-policies").json()
    assert sorted(listing) == [
        "builtin/api-gateway",
        "builtin/dns",
        "builtin/node",
        "builtin/nomad-client",
        "builtin/nomad-server",
        "builtin/service",
    ]
    service = http.get("/v1/acl/templated-policy/name/builtin/service").json()
    assert service == listing["builtin/service"]
    assert '"required": ["name"]' in service["Schema"]
    assert listing["builtin/dns"]["Schema"] == ""
    unknown = http.get("/v1/acl/templated-policy/name/builtin/nope")
    assert (unknown.status_code, unknown.text) == (
        400,
        "Invalid templated policy Name: builtin/nope",
    )


def test_a_templated_policy_preview_is_consuls_synthetic_policy(http: httpx.Client) -> None:
    preview = http.post("/v1/acl/templated-policy/preview/builtin/node", json={"Name": "n1"})
    rules = '\nnode "n1" {\n\tpolicy = "write"\n}\nservice_prefix "" {\n\tpolicy = "read"\n}'
    policy = preview.json()
    assert policy["Rules"] == rules
    # fnv.New128a().Sum(rules) appends the empty digest (the offset basis) to the rules.
    assert policy["ID"] == rules.encode().hex() + "6c62272e07bb014262b821756295c58d"
    assert policy["Name"] == f"synthetic-policy-{policy['ID']}"
    assert policy["Description"] == "synthetic policy generated from templated policy: builtin/node"
    invalid = http.post("/v1/acl/templated-policy/preview/builtin/api-gateway", json={})
    assert (invalid.status_code, invalid.text) == (
        400,
        "validation error for templated policy: builtin/api-gateway: "
        "1 error occurred:\n\t* name is required\n\n",
    )
    with anonymous(http) as anon:
        denied = anon.post("/v1/acl/templated-policy/preview/builtin/dns", json={})
    assert denied.status_code == 403


def test_a_token_with_templated_policies(c: consul.Consul, http: httpx.Client) -> None:
    token = c.acl.token.create(
        templated_policies=[{"builtin/service": {"Name": "api"}}, {"builtin/dns": {}}]
    )
    assert token["TemplatedPolicies"] == [
        {
            "TemplateID": "00000000-0000-0000-0000-000000000003",
            "TemplateName": "builtin/service",
            "TemplateVariables": {"name": "api"},
        },
        {
            "TemplateID": "00000000-0000-0000-0000-000000000005",
            "TemplateName": "builtin/dns",
            "TemplateVariables": {},
        },
    ]
    bad = http.put(
        "/v1/acl/token",
        json={"TemplatedPolicies": [{"TemplateName": "builtin/service"}]},
    )
    assert bad.text == (
        'validation error for templated policy: builtin/service: service identity "" has '
        "an invalid name. Only lowercase alphanumeric characters, '-' and '_' are allowed"
    )
    unknown = http.put("/v1/acl/token", json={"TemplatedPolicies": [{"TemplateName": "x"}]})
    assert unknown.text == "templated policy with an invalid templated name: x for this token"
