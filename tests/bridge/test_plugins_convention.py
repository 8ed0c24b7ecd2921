"""The plugin, health-check and TLS keys: parsers, typing by schema, diffs (no wire)."""

from __future__ import annotations

import contextlib
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bridge.actual import OwnedService
from bridge.convention import ValueProblem
from bridge.kong.schema.fields import Field
from bridge.mapping import MappingOptions, map_service
from bridge.plugin_schema import (
    changed_tree,
    deep_merge,
    defaults_tree,
    field_at,
    healthchecks_field,
    parse_typed,
    plugin_config_field,
    validate_plugin,
)
from bridge.plugins_convention import KvRef, classify, parse_meta_plugins
from bridge.plugins_mapping import certificate_pem, resolve, split_pem
from bridge.plugins_plan import plugin_operations
from bridge.snapshot import Instance, ServiceSnapshot

RATE = plugin_config_field("rate-limiting")
assert RATE is not None
JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner),
    max_leaves=8,
)


def leaf_fields(spec: Field, prefix: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Field]]:
    found = []
    for name, field in spec.fields:
        if field.type == "record" and field.fields:
            found += leaf_fields(field, (*prefix, name))
        else:
            found.append(((*prefix, name), field))
    return found


def mapped(*tags: str, meta: dict[str, str] | None = None, kv: Any = None) -> Any:
    instance = Instance("w1", "n", "10.0.0.1", 80, ("kong.enable=true", *tags), meta or {})
    return map_service(ServiceSnapshot("web", (instance,), 1), MappingOptions(), kv)


@given(st.integers())
def test_integers_are_typed_by_the_schema(number: int) -> None:
    spec = field_at(RATE, ("redis", "port"))  # integer between 0 and 65535
    try:
        value = parse_typed(spec, str(number))
    except ValueProblem as problem:
        assert not 0 <= number <= 65535 and "between 0 and 65535" in str(problem)
    else:
        assert value == number and isinstance(value, int)


@given(st.lists(st.from_regex(r"[A-Za-z][A-Za-z0-9-]{0,10}", fullmatch=True), min_size=1))
def test_arrays_are_comma_separated(names: list[str]) -> None:
    spec = field_at(plugin_config_field("key-auth") or RATE, ("key_names",))
    assert parse_typed(spec, ",".join(names)) == names


@given(st.sampled_from(leaf_fields(RATE) + leaf_fields(healthchecks_field())), st.text())
def test_any_text_parses_or_says_what_was_expected(item: Any, text: str) -> None:
    _path, spec = item
    try:
        parse_typed(spec, text)
    except ValueProblem as problem:
        assert str(problem)


def test_booleans_and_numbers_are_not_guessed_from_the_text() -> None:
    assert parse_typed(field_at(RATE, ("fault_tolerant",)), "false") is False
    assert parse_typed(field_at(RATE, ("minute",)), "100") == 100
    assert parse_typed(field_at(RATE, ("header_name",)), "100") == "100"  # a string stays one
    with pytest.raises(ValueProblem, match="greater than 0"):
        parse_typed(field_at(RATE, ("minute",)), "0")


def test_unknown_plugins_and_fields_are_named() -> None:
    assert "bundled with Kong" in str(classify(["plugin", "no-such-plugin", "x"]))
    problem = str(classify(["plugin", "rate-limiting", "redis", "nope"]))
    assert "at redis" in problem and "host" in problem
    with pytest.raises(ValueProblem, match="record"):
        parse_typed(field_at(RATE, ("redis",)), "x")


@given(
    st.lists(
        st.text(alphabet="abcdefghijklmnopqrstuvwxyz._-0123456789", max_size=12),
        min_size=1,
        max_size=6,
    ),
    st.text(max_size=30),
)
def test_any_key_is_classified_or_explained(parts: list[str], raw: str) -> None:
    found = classify(parts)
    if isinstance(found, tuple):
        with contextlib.suppress(ValueProblem):
            found[1](raw)
    else:
        assert found is None or found


def test_service_meta_plugins_cannot_come_from_a_tag() -> None:
    assert classify(["meta", "plugins"]) is None and classify(["meta.plugins"]) is not None


@given(JSONISH)
def test_meta_plugins_parse_or_say_what_was_expected(value: Any) -> None:
    try:
        canonical = parse_meta_plugins(json.dumps(value))
    except ValueProblem as problem:
        assert str(problem)
    else:
        assert json.loads(canonical) == value


@given(JSONISH, JSONISH)
def test_a_patch_of_the_changes_converges(want: Any, have: Any) -> None:
    want = want if isinstance(want, dict) else {"a": want}
    have = have if isinstance(have, dict) else {}
    patch = changed_tree(None, want, have)
    assert changed_tree(None, want, deep_merge(have, patch)) == {}


def test_unset_fields_go_back_to_their_default() -> None:
    have = {"minute": 5, "hour": 10, "policy": "local", "redis": {"port": 6380}}
    assert changed_tree(RATE, {"minute": 5}, have) == {"hour": None, "redis": {"port": 6379}}


def test_entity_checks_of_the_plugin_run_before_any_write() -> None:
    problems = validate_plugin("rate-limiting", {"policy": "redis", "minute": 1})
    assert any("redis.host" in problem for problem in problems)
    assert validate_plugin("rate-limiting", {"minute": 1}) == []


def test_kv_secrets_are_resolved_and_never_shown() -> None:
    spec = field_at(RATE, ("redis", "port"))
    with pytest.raises(ValueProblem) as caught:
        resolve(
            KvRef("secrets/redis"), {"secrets/redis": "hunter2"}, lambda t: parse_typed(spec, t)
        )
    assert "secrets/redis" in str(caught.value) and "hunter2" not in str(caught.value)
    result = mapped(
        "kong.plugin.rate-limiting.minute=1",
        "kong.plugin.rate-limiting.policy=redis",
        "kong.plugin.rate-limiting.redis.host=redis.local",
        "kong.plugin.rate-limiting.redis.password=kv:secrets/redis",
        kv={"secrets/redis": "hunter2"},
    )
    (plugin,) = result.state.plugins
    assert plugin.config["redis"]["password"] == "hunter2"
    assert "hunter2" not in repr(result)


def test_a_kv_value_not_read_yet_keeps_the_plugin_as_it_is() -> None:
    result = mapped("kong.plugin.rate-limiting.redis.password=kv:secrets/redis")
    assert result.state.plugins == () and ("", "rate-limiting") in result.state.kept_plugins
    assert not result.problems and result.kv_keys == {"secrets/redis"}
    missing = mapped(
        "kong.plugin.rate-limiting.redis.password=kv:secrets/redis", kv={"secrets/redis": None}
    )
    assert "secrets/redis is missing" in str(missing.problems[0])


def test_plugin_problems_are_partial_other_problems_skip_the_service() -> None:
    partial = mapped("kong.plugin.rate-limiting.minute=x", "kong.plugin.cors.max_age=1")
    assert not partial.skipped and [p.name for p in partial.state.plugins] == ["cors"]
    assert ("", "rate-limiting") in partial.state.kept_plugins
    assert mapped("kong.upstream.healthchecks.active.timeout=x").skipped


def test_route_plugins_need_a_route_of_the_service() -> None:
    result = mapped("kong.route.nope.plugin.cors.max_age=1")
    assert "nope is not one" in str(result.problems[0])


@given(st.text())
def test_pem_splitting_never_fails_unexpectedly(text: str) -> None:
    with contextlib.suppress(ValueProblem):
        split_pem(text)


def test_certificates_come_from_one_key_or_two() -> None:
    cert = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----"
    key = "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----"
    ref = KvRef("certs/a")
    assert certificate_pem(ref, {"certs/a": f"{cert}\n{key}\n"}) == (cert + "\n", key + "\n")
    split = {"certs/a": None, "certs/a/cert": cert, "certs/a/key": key}
    assert certificate_pem(ref, split) == (cert + "\n", key + "\n")
    with pytest.raises(ValueProblem, match="or certs/a/cert"):
        certificate_pem(ref, {"certs/a": None, "certs/a/cert": cert, "certs/a/key": None})


def test_the_plan_patches_only_changed_config_fields_and_never_unowned_plugins() -> None:
    state = mapped("kong.plugin.rate-limiting.minute=100", "kong.plugin.rate-limiting.hour=2000")
    kong_row = {
        "id": "p1",
        "name": "rate-limiting",
        "enabled": True,
        "tags": ["managed-by:kong-bridge", "consul-service:web"],
        "config": {**defaults_tree(RATE), "minute": 100, "hour": 1000},
    }
    owned = OwnedService(
        service={"id": "s1", "name": "web"},
        plugins={("", "rate-limiting"): kong_row, ("", "old"): {**kong_row, "id": "p2"}},
    )
    ops = plugin_operations("web", state.state, owned)
    assert [(op.action, op.name, op.changes) for op in ops] == [
        ("update", "rate-limiting", ("config.hour",)),
        ("delete", "old", ()),
    ]
    assert ops[0].call.body == {"config": {"hour": 2000}}
    kong_row["config"]["hour"] = 2000
    assert [op.action for op in plugin_operations("web", state.state, owned)] == ["delete"]


def test_a_kv_value_kong_would_reject_is_reported_without_it() -> None:
    result = mapped(
        "kong.plugin.rate-limiting.minute=1",
        "kong.plugin.rate-limiting.policy=kv:settings/policy",
        kv={"settings/policy": "hunter2-policy"},
    )
    assert result.problems and "settings/policy" in str(result.problems[0])
    assert "hunter2" not in str(result.problems) + repr(result)
    header = mapped(
        "kong.plugin.rate-limiting.minute=1",
        "kong.plugin.rate-limiting.limit_by=header",
        "kong.plugin.rate-limiting.header_name=kv:settings/header",
        kv={"settings/header": "bad header hunter2"},
    )
    assert header.problems and "hunter2" not in str(header.problems)


def test_kong_answers_about_our_plugin_are_reported_without_kv_values() -> None:
    result = mapped(
        "kong.plugin.rate-limiting.minute=1",
        "kong.plugin.rate-limiting.redis.password=kv:secrets/redis",
        kv={"secrets/redis": "hunter2"},
    )
    (op,) = plugin_operations("web", result.state, OwnedService(service={"id": "s1"}))
    assert op.call.body is not None and op.call.body["config"]["redis"]["password"] == "hunter2"
    said = op.redacted("schema violation (config.redis.password: invalid value: hunter2)")
    assert "hunter2" not in said and "config.redis.password" in said
    assert "hunter2" not in repr(op)


def test_certificate_snis_are_the_route_hosts_and_meta_names_the_key_too() -> None:
    pem = "-----BEGIN CERTIFICATE-----\nA\n-----END CERTIFICATE-----\n"
    pem += "-----BEGIN EC PRIVATE KEY-----\nB\n-----END EC PRIVATE KEY-----\n"
    result = mapped(
        "kong.hosts=api.example.com:8443",
        "kong.route.admin.hosts=*.admin.example.com,api.example.com",
        meta={"kong_tls_certificate": "kv:certs/api"},
        kv={"certs/api": pem},
    )
    certificate = result.state.certificate
    assert certificate.snis == ("*.admin.example.com", "api.example.com")
    assert "EC PRIVATE KEY" in certificate.key and "B" not in repr(certificate)
    no_hosts = mapped("kong.tls.certificate=kv:certs/api", kv={"certs/api": pem})
    assert "route hosts" in str(no_hosts.problems[0]) and no_hosts.state.keep_certificate


def test_plan_output_shows_plugin_fields_by_path_and_hides_kv_values() -> None:
    from bridge.actual import KongState
    from bridge.report import HIDDEN, field_changes

    result = mapped(
        "kong.plugin.rate-limiting.minute=100",
        "kong.plugin.rate-limiting.redis.password=kv:secrets/redis",
        kv={"secrets/redis": "hunter2"},
    )
    row = {
        "id": "p1",
        "name": "rate-limiting",
        "enabled": True,
        "tags": ["managed-by:kong-bridge", "consul-service:web"],
        "config": {**defaults_tree(RATE), "minute": 5, "redis": {"password": "old-secret"}},
    }
    state = KongState()
    state.of("web").service = {"id": "s1", "name": "web"}
    state.of("web").plugins[("", "rate-limiting")] = row
    (op,) = plugin_operations("web", result.state, state.of("web"))
    shown = {change.name: (change.old, change.new) for change in field_changes(op, state)}
    assert shown["config.minute"] == (5, 100)
    assert shown["config.redis.password"] == (HIDDEN, HIDDEN)
    (create,) = plugin_operations("web", result.state, OwnedService(service={"id": "s1"}))
    assert "hunter2" not in repr([c.new for c in field_changes(create, state)])
