"""Secrets never leak: every output of runs configured with secrets is searched for them.

Credentials come in URLs (``http://user:pass@...``), token files
(``CONSUL_HTTP_TOKEN_FILE``, ``KONG_ADMIN_TOKEN_FILE``) and admin headers.
The Consul emulator enforces ACLs with the token from the file, so the
bridge only works if it really read it.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.bridge.conftest import _spawn, free_port
from tests.chaos import _safety_helpers as helpers
from tests.chaos._safety_helpers import cli
from tests.helpers import eventually

kong_url = helpers.kong_url
CONSUL_TOKEN = "ctoken-S3CRET"
KONG_TOKEN = "ktoken-S3CRET"
SECRETS = ("kpass-S3CRET", "cpass-S3CRET", CONSUL_TOKEN, KONG_TOKEN, "hdr-S3CRET")


def _with_credentials(url: str, userinfo: str) -> str:
    return url.replace("http://", f"http://{userinfo}@", 1)


@pytest.fixture(scope="module")
def acl_consul_url() -> Iterator[str]:
    # Default deny: without the token from the file the bridge reads nothing.
    acls = ["--acl-master-token", CONSUL_TOKEN, "--acl-default-policy", "deny"]
    process = _spawn(["emulate", "consul", "--port", "0", *acls])
    assert process.stdout is not None
    url = process.stdout.readline().strip().rsplit(" ", 1)[-1]
    yield url
    process.terminate()
    process.wait(10)


@pytest.fixture
def secret_env(kong_url: str, acl_consul_url: str, tmp_path: Path) -> dict[str, str]:
    httpx.post(f"{kong_url}/_emulator/reset").raise_for_status()
    consul = httpx.Client(base_url=acl_consul_url, headers={"X-Consul-Token": CONSUL_TOKEN})
    consul.post("/_emulator/reset").raise_for_status()
    for sid, tags in (
        ("web-1", ["kong.enable=true"]),
        ("bad-1", ["kong.enable=true", "kong.paths=x"]),
    ):
        consul.put(
            "/v1/agent/service/register",
            json={"Name": sid[:-2], "ID": sid, "Address": "10.0.0.1", "Port": 80, "Tags": tags},
        ).raise_for_status()
    (tmp_path / "consul-token").write_text(CONSUL_TOKEN + "\n")
    (tmp_path / "kong-token").write_text(KONG_TOKEN)
    return {
        "CONSUL_HTTP_ADDR": _with_credentials(acl_consul_url, "cuser:cpass-S3CRET"),
        "CONSUL_HTTP_TOKEN_FILE": str(tmp_path / "consul-token"),
        "KONG_ADMIN_URL": _with_credentials(kong_url, "kuser:kpass-S3CRET"),
        "KONG_ADMIN_TOKEN_FILE": str(tmp_path / "kong-token"),
        "KONG_ADMIN_HEADERS": "apikey: hdr-S3CRET",
        "KONG_BRIDGE_RETRY": "1",
    }


def _assert_clean(where: str, text: str) -> None:
    for secret in SECRETS:
        assert secret not in text, f"{secret!r} leaked in {where}:\n{text}"


def _run_outputs(env: dict[str, str], tmp_path: Path, *extra: str) -> dict[str, str]:
    """``kong-bridge run``'s log, /readyz and /metrics once it is ready."""
    port = free_port()
    log = tmp_path / "run.log"
    with log.open("w") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "bridge", "run", "--listen", f"127.0.0.1:{port}", *extra],
            env={**env, "PATH": ""},
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    status = f"http://127.0.0.1:{port}"
    try:
        eventually(lambda: httpx.get(f"{status}/readyz").json()["ready"], 30, "ready")
        outputs = {
            "/readyz": httpx.get(f"{status}/readyz").text,
            "/metrics": httpx.get(f"{status}/metrics").text,
        }
    finally:
        process.terminate()
        process.wait(15)
    outputs["run log"] = log.read_text()
    return outputs


def test_chaos_secrets_never_appear_in_any_output(
    secret_env: dict[str, str], kong_url: str, tmp_path: Path
) -> None:
    outputs: dict[str, str] = {}
    for args in (
        ("plan",),
        ("plan", "--json"),
        ("lint",),
        ("sync", "--once"),
        ("plan", "--log-json"),
    ):
        done = cli(secret_env, *args)
        outputs[" ".join(args)] = done.stdout + done.stderr
    assert "+ create service web" in outputs["plan"]  # the token file opened Consul's ACLs
    outputs |= _run_outputs(secret_env, tmp_path)
    outputs |= {
        f"run --log-json {k}": v
        for k, v in _run_outputs(secret_env, tmp_path, "--log-json").items()
    }
    assert "kong.paths='x'" in outputs["/readyz"]  # a service in error is shown, not the secrets
    assert "kong=http://127.0.0.1:" in outputs["run log"]  # logged, without its credentials
    # errors: Kong and Consul unreachable with credentials in their URLs
    dead = f"http://kuser:kpass-S3CRET@127.0.0.1:{free_port()}"
    done = cli({**secret_env, "KONG_ADMIN_URL": dead}, "sync", "--once")
    assert done.returncode == 1
    outputs["sync, Kong down"] = done.stdout + done.stderr
    done = cli(
        {**secret_env, "CONSUL_HTTP_ADDR": dead.replace("kuser:kpass", "cuser:cpass")}, "plan"
    )
    assert done.returncode == 1
    outputs["plan, Consul down"] = done.stdout + done.stderr
    for where, text in outputs.items():
        _assert_clean(where, text)


def test_a_header_without_colon_is_not_echoed(tmp_path: Path, kong_url: str) -> None:
    config = tmp_path / "svc.json"
    config.write_text('{"service": {"name": "svc", "port": 80, "paths": ["/svc"]}}')
    env = {"API_GATEWAY_URL": kong_url}
    done = cli(env, "register", "--config", str(config), "--header", KONG_TOKEN)
    assert done.returncode == 1
    assert "expected 'NAME: VALUE'" in done.stderr
    _assert_clean("register --header", done.stdout + done.stderr)


def test_register_reads_the_kong_token_file_and_hides_url_credentials(
    tmp_path: Path, kong_url: str
) -> None:
    config = tmp_path / "svc.json"
    config.write_text('{"service": {"name": "svc", "port": 80, "paths": ["/svc"]}}')
    (tmp_path / "token").write_text(KONG_TOKEN)
    env = {
        "API_GATEWAY_URL": _with_credentials(kong_url, "kuser:kpass-S3CRET"),
        "KONG_ADMIN_TOKEN_FILE": str(tmp_path / "token"),
    }
    done = cli(env, "register", "--config", str(config), "--address", "10.0.0.1")
    assert done.returncode == 0, done.stderr
    dead = {**env, "API_GATEWAY_URL": f"http://kuser:kpass-S3CRET@127.0.0.1:{free_port()}"}
    failed = cli(dead, "register", "--config", str(config), "--retry-seconds", "0.3")
    assert failed.returncode == 1
    missing = cli(
        {**env, "KONG_ADMIN_TOKEN_FILE": str(tmp_path / "nope")},
        "register",
        "--config",
        str(config),
    )
    assert missing.returncode == 1 and "KONG_ADMIN_TOKEN_FILE: cannot read" in missing.stderr
    for where, text in (("ok", done), ("failed", failed), ("missing", missing)):
        _assert_clean(f"register {where}", text.stdout + text.stderr)


def test_a_missing_token_file_is_named_in_a_clear_error(tmp_path: Path) -> None:
    env = {"CONSUL_HTTP_TOKEN_FILE": str(tmp_path / "absent")}
    done = cli(env, "plan")
    assert done.returncode == 1
    assert "(CONSUL_HTTP_TOKEN_FILE): cannot read the token file" in done.stderr
    assert str(tmp_path / "absent") in done.stderr
    assert "Traceback" not in done.stderr
