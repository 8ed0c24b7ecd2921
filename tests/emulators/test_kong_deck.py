"""Conformance with decK, a Kong client no one here wrote: sync, dump, diff."""

from __future__ import annotations

import subprocess
from pathlib import Path

import httpx
import pytest
import yaml

from bridge.emulators.kong import KongEmulator
from tests.emulators.kong_pem import CERT_A, KEY_A

pytestmark = pytest.mark.deck

STATE = """
_format_version: "1.1"
services:
- name: orders
  host: orders.service.consul
  port: 80
  path: /api
  retries: 3
  tags: [bridge]
  routes:
  - name: orders-default
    paths: [/orders, /o]
    methods: [GET, POST]
    strip_path: false
    tags: [bridge]
  plugins:
  - name: rate-limiting
    config: {minute: 20, policy: local}
- name: users
  host: users.service.consul
  routes:
  - name: users-default
    hosts: [users.example.com]
upstreams:
- name: orders.service.consul
  slots: 100
  tags: [bridge]
  targets:
  - target: 10.0.0.1:8080
    weight: 50
  - target: 10.0.0.2:8080
consumers:
- username: alice
"""


def deck(server: KongEmulator, *args: str, cwd: Path) -> str:
    result = subprocess.run(
        ["deck", *args, "--kong-addr", server.url, "--no-color"],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


@pytest.fixture
def server() -> KongEmulator:
    with KongEmulator() as emulator:
        yield emulator  # type: ignore[misc]


def test_sync_dump_diff_round_trip(server: KongEmulator, tmp_path: Path) -> None:
    (tmp_path / "state.yaml").write_text(STATE)
    synced = deck(server, "sync", "-s", "state.yaml", cwd=tmp_path)
    assert "Created: 9" in synced, synced

    kong = httpx.Client(base_url=server.url)
    targets = kong.get("/upstreams/orders.service.consul/targets").json()["data"]
    assert sorted((t["target"], t["weight"]) for t in targets) == [
        ("10.0.0.1:8080", 50),
        ("10.0.0.2:8080", 100),
    ]
    route = kong.get("/routes/orders-default").json()
    assert route["methods"] == ["GET", "POST"] and route["strip_path"] is False

    deck(server, "dump", "-o", "dump.yaml", cwd=tmp_path)
    dumped = yaml.safe_load((tmp_path / "dump.yaml").read_text())
    assert {s["name"] for s in dumped["services"]} == {"orders", "users"}
    assert dumped["upstreams"][0]["slots"] == 100

    writes_before = kong.get("/_emulator/counters").json()["writes"]
    diff = deck(server, "diff", "-s", "dump.yaml", cwd=tmp_path)
    assert "Created: 0\n  Updated: 0\n  Deleted: 0" in diff, diff
    resync = deck(server, "sync", "-s", "dump.yaml", cwd=tmp_path)
    assert "Created: 0\n  Updated: 0\n  Deleted: 0" in resync, resync
    assert kong.get("/_emulator/counters").json()["writes"] == writes_before


def test_sync_removes_what_the_file_no_longer_has(server: KongEmulator, tmp_path: Path) -> None:
    (tmp_path / "state.yaml").write_text(STATE)
    deck(server, "sync", "-s", "state.yaml", cwd=tmp_path)
    smaller = yaml.safe_load(STATE)
    smaller["upstreams"][0]["targets"].pop()
    smaller["services"].pop()
    (tmp_path / "smaller.yaml").write_text(yaml.safe_dump(smaller))
    out = deck(server, "sync", "-s", "smaller.yaml", cwd=tmp_path)
    assert "Deleted: 3" in out, out  # a target, a service and its route
    kong = httpx.Client(base_url=server.url)
    assert kong.get("/services/users").status_code == 404
    assert [
        t["target"] for t in kong.get("/upstreams/orders.service.consul/targets").json()["data"]
    ] == ["10.0.0.1:8080"]


def test_credentials_and_certificates_round_trip(server: KongEmulator, tmp_path: Path) -> None:
    """decK reads key-auths, acls, jwts, hmac-auths, certificates and snis back as it wrote them."""
    state = {
        "_format_version": "1.1",
        "certificates": [
            {
                "id": "4e3ad2e4-0bc4-4638-8e34-c84a417ba39b",
                "cert": CERT_A,
                "key": KEY_A,
                "snis": [{"name": "a.example"}, {"name": "*.a.example"}],
            }
        ],
        "consumers": [
            {
                "username": "alice",
                "keyauth_credentials": [{"key": "k1"}],
                "acls": [{"group": "admins"}],
                "jwt_secrets": [{"key": "iss", "secret": "s", "algorithm": "HS256"}],
                "hmacauth_credentials": [{"username": "hm", "secret": "hs"}],
            }
        ],
        "plugins": [{"name": "acl", "config": {"allow": ["admins"]}}],
    }
    (tmp_path / "state.yaml").write_text(yaml.safe_dump(state))
    synced = deck(server, "sync", "-s", "state.yaml", cwd=tmp_path)
    assert "Created: 9" in synced, synced
    kong = httpx.Client(base_url=server.url)
    assert kong.get("/certificates/a.example").json()["snis"] == ["*.a.example", "a.example"]
    assert kong.get("/consumers/alice/acls/admins").status_code == 200

    deck(server, "dump", "-o", "dump.yaml", cwd=tmp_path)
    dumped = yaml.safe_load((tmp_path / "dump.yaml").read_text())
    assert dumped["consumers"][0]["keyauth_credentials"] == [{"key": "k1"}]
    writes_before = kong.get("/_emulator/counters").json()["writes"]
    diff = deck(server, "diff", "-s", "dump.yaml", cwd=tmp_path)
    assert "Created: 0\n  Updated: 0\n  Deleted: 0" in diff, diff
    assert kong.get("/_emulator/counters").json()["writes"] == writes_before
