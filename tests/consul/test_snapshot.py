"""``/v1/snapshot``: save and restore, into the emulator that took the snapshot."""

from __future__ import annotations

import gzip
import io
import tarfile

import consul
import httpx
import pytest

from bridge.emulators.consul import ConsulEmulator


def test_a_restore_brings_back_the_state_saved(consul_client: consul.Consul) -> None:
    consul_client.kv.put("key", "before")
    consul_client.catalog.register("n1", "10.0.0.1", service={"service": "web"})
    consul_client.config.set("service-defaults", "web", {"Protocol": "http"})
    saved = consul_client.snapshot.save()
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(saved))) as tar:
        assert sorted(tar.getnames()) == ["SHA256SUMS", "meta.json", "state.bin"]
    consul_client.kv.put("key", "after")
    consul_client.kv.put("new", "x")
    consul_client.catalog.deregister("n1")
    consul_client.config.delete("service-defaults", "web")
    assert consul_client.snapshot.restore(saved) is True
    assert consul_client.kv.get("key")[1]["Value"] == b"before"
    assert consul_client.kv.get("new")[1] is None
    assert "web" in consul_client.catalog.services()[1]
    assert consul_client.config.get("service-defaults", "web")["Protocol"] == "http"
    consul_client.kv.put("key", "again")
    assert consul_client.snapshot.restore(saved) is True  # the saved state took no writes
    assert consul_client.kv.get("key")[1]["Value"] == b"before"


def test_a_body_that_is_no_snapshot_of_this_emulator_is_refused(
    consul_http: httpx.Client,
) -> None:
    response = consul_http.put("/v1/snapshot", content=gzip.compress(b"not a tar"))
    assert response.status_code == 500
    assert "failed to restore snapshot" in response.text


def test_a_snapshot_needs_a_management_token_whatever_the_default_policy() -> None:
    with ConsulEmulator(acl_master_token="root") as server:  # default policy: allow
        anonymous = consul.Consul(host="127.0.0.1", port=server.port)
        with pytest.raises(consul.ACLPermissionDenied):
            anonymous.snapshot.save()
        anonymous.kv.put("key", "value")  # what "allow" does allow
        root = consul.Consul(host="127.0.0.1", port=server.port, token="root")
        assert root.snapshot.save()[:2] == b"\x1f\x8b"
