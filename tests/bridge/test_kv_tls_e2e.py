"""Secrets and certificates from Consul KV, end to end (separate processes)."""

from __future__ import annotations

from typing import Any

from tests.bridge.conftest import Stack
from tests.bridge.test_plugins_e2e import plugins
from tests.emulators.kong_pem import CERT_A, CERT_B, KEY_A, KEY_B
from tests.helpers import eventually

OWNER = "managed-by:kong-bridge"
SECRET = "s3cr3t-redis-password"
REDIS = [
    "kong.enable=true",
    "kong.plugin.rate-limiting.minute=10",
    "kong.plugin.rate-limiting.policy=redis",
    "kong.plugin.rate-limiting.redis.host=redis.internal",
    "kong.plugin.rate-limiting.redis.password=kv:secrets/redis",
]
TLS = [
    "kong.enable=true",
    "kong.hosts=api.example.com,www.example.com",
    "kong.protocols=https",
    "kong.tls.certificate=kv:certs/api.example.com",
]


# Held by the bridge at rest: the catalog's and the checks' watches, one per KV key
# (the certificate's key, and its "/cert" and "/key" pair).
WATCHES = 2 + 3


def held_queries(stack: Stack) -> int:
    return int(stack.consul.get("/_emulator/state").json()["blocked_queries"])


def put_kv(stack: Stack, key: str, value: str) -> None:
    stack.consul.put(f"/v1/kv/{key}", content=value.encode()).raise_for_status()


def redis_password(stack: Stack) -> Any:
    row = plugins(stack, "/services/web").get("rate-limiting")
    return row["config"]["redis"]["password"] if row else None


def owned_certificates(stack: Stack) -> list[dict[str, Any]]:
    return list(stack.kong.get("/certificates", params={"tags": OWNER}).json()["data"])


def test_a_secret_comes_from_kv_follows_it_and_is_never_logged(stack: Stack) -> None:
    stack.register("web", "web-1", "10.0.0.1", tags=REDIS)
    stack.start()
    eventually(lambda: "web" in stack.names("services"), what="the service syncs meanwhile")
    assert redis_password(stack) is None  # waiting for the key, nothing half-made
    put_kv(stack, "secrets/redis", SECRET)
    eventually(lambda: redis_password(stack) == SECRET, what="secret from KV")
    put_kv(stack, "secrets/redis", SECRET + "-rotated")
    eventually(lambda: redis_password(stack) == SECRET + "-rotated", what="KV change followed")
    stack.stop()
    logs = stack.logs()
    assert "rate-limiting" in logs and SECRET not in logs


def test_a_missing_kv_key_is_reported(stack: Stack) -> None:
    stack.register("web", "web-1", "10.0.0.1", tags=REDIS)
    stack.start()
    problems = eventually(lambda: stack.ready()["services_in_error"].get("web"))
    assert "secrets/redis is missing" in problems[0]
    assert "web" in stack.names("routes")


def test_an_https_service_gets_its_certificate_and_a_rotation_reaches_kong(stack: Stack) -> None:
    put_kv(stack, "certs/api.example.com", f"{CERT_A}\n{KEY_A}\n")
    stack.register("web", "web-1", "10.0.0.1", tags=TLS)
    stack.start()
    (certificate,) = eventually(lambda: owned_certificates(stack), what="certificate")
    assert certificate["cert"].strip() == CERT_A.strip()
    assert sorted(certificate["snis"]) == ["api.example.com", "www.example.com"]
    assert "consul-service:web" in certificate["tags"]
    sni = stack.kong.get("/snis/api.example.com").json()
    assert sni["certificate"]["id"] == certificate["id"]
    assert stack.kong.get("/routes/web").json()["protocols"] == ["https"]
    # The certificate can come from the start-up read before each KV watch has sent its
    # first blocking read: count from the moment every watch holds one.
    eventually(lambda: held_queries(stack) == WATCHES, what="every watch blocking")
    stack.consul.delete("/_emulator/counters")
    syncs = stack.metric("kong_bridge_syncs_total")
    eventually(lambda: stack.metric("kong_bridge_syncs_total") > syncs + 2, what="resyncs")
    kv_reads = stack.consul.get("/_emulator/counters").json()["by_method_and_kind"]
    assert kv_reads.get("GET kv", 0) == 0  # blocking queries held open, not polling
    assert held_queries(stack) == WATCHES  # still held
    assert stack.metric("kong_bridge_consul_watches") >= WATCHES
    put_kv(stack, "certs/api.example.com", f"{CERT_B}\n{KEY_B}\n")
    eventually(
        lambda: owned_certificates(stack)[0]["cert"].strip() == CERT_B.strip(), what="rotation"
    )
    assert owned_certificates(stack)[0]["id"] == certificate["id"]
    stack.stop()
    logs = stack.logs()
    assert "PRIVATE KEY" not in logs and KEY_B.splitlines()[1] not in logs


def test_a_certificate_from_two_keys_and_its_removal(stack: Stack) -> None:
    put_kv(stack, "certs/api.example.com/cert", CERT_A)
    put_kv(stack, "certs/api.example.com/key", KEY_A)
    stack.register("web", "web-1", "10.0.0.1", tags=TLS)
    hand = stack.kong.post("/certificates", json={"cert": CERT_B, "key": KEY_B}).json()
    stack.start()
    eventually(lambda: len(owned_certificates(stack)) == 1, what="certificate")
    stack.register("web", "web-1", "10.0.0.1", tags=TLS[:3])
    eventually(lambda: not owned_certificates(stack), what="removed with its tag")
    assert stack.kong.get(f"/certificates/{hand['id']}").status_code == 200
