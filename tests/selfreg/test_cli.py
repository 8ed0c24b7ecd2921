"""``kong-bridge register/unregister`` as a user runs them: separate processes, exit codes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import httpx
import pytest

CONFIG = {
    "service": {
        "name": "clisvc",
        "port": 7000,
        "paths": ["/cli"],
        "weight": 3,
        "address": "10.9.0.1",
    }
}


def _config(tmp_path: Path, data: dict | None = None) -> Path:
    path = tmp_path / "service.json"
    path.write_text(json.dumps(data or CONFIG))
    return path


def _env(url: str) -> dict[str, str]:
    return {**os.environ, "API_GATEWAY_URL": url}


def _cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bridge", *args],
        env=env,
        text=True,
        capture_output=True,
        timeout=60,
        check=False,
    )


def test_register_then_unregister(kong: httpx.Client, tmp_path: Path) -> None:
    env = _env(str(kong.base_url))
    registered = _cli("register", "--config", str(_config(tmp_path)), env=env)
    assert registered.returncode == 0, registered.stderr
    assert "registered clisvc: 4 write(s)" in registered.stdout
    target = kong.get("/upstreams/clisvc.service.consul/targets/10.9.0.1:7000").json()
    assert target["weight"] == 3
    unregistered = _cli("unregister", "--config", str(_config(tmp_path)), env=env)
    assert unregistered.returncode == 0, unregistered.stderr
    assert kong.get("/services/clisvc").status_code == 404


def test_register_failure_is_one_line_and_nonzero(tmp_path: Path) -> None:
    env = _env("http://127.0.0.1:9")
    result = _cli("register", "--config", str(_config(tmp_path)), "--retry-seconds", "0.3", env=env)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("kong-bridge: error: registering clisvc")


def test_bad_config_is_reported(tmp_path: Path, kong: httpx.Client) -> None:
    path = _config(tmp_path, {"service": {"name": "x", "port": "eighty", "paths": ["/x"]}})
    result = _cli("register", "--config", str(path), env=_env(str(kong.base_url)))
    assert result.returncode == 1
    assert "service.port" in result.stderr and str(path) in result.stderr


def test_wrapper_exits_with_child_status(kong: httpx.Client, tmp_path: Path) -> None:
    result = _cli(
        "register",
        "--config",
        str(_config(tmp_path)),
        "--",
        sys.executable,
        "-c",
        "import sys; sys.exit(5)",
        env=_env(str(kong.base_url)),
    )
    assert result.returncode == 5
    assert kong.get("/services/clisvc").status_code == 404  # unregistered after the child


def test_wrapper_forwards_sigterm_and_unregisters(kong: httpx.Client, tmp_path: Path) -> None:
    child = textwrap.dedent("""
        import signal, sys, time
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(7))
        print("ready", flush=True)
        time.sleep(60)
    """)
    wrapper = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bridge",
            "register",
            "--config",
            str(_config(tmp_path)),
            "--",
            sys.executable,
            "-c",
            child,
        ],
        env=_env(str(kong.base_url)),
        stdout=subprocess.PIPE,
        text=True,
    )
    assert wrapper.stdout is not None
    lines = []
    for line in wrapper.stdout:
        lines.append(line)
        if line.strip() == "ready":
            break
    assert kong.get("/services/clisvc").status_code == 200, lines
    wrapper.send_signal(signal.SIGTERM)
    assert wrapper.wait(30) == 7
    assert kong.get("/upstreams/clisvc.service.consul").status_code == 404
    assert kong.get("/services/clisvc").status_code == 404


@pytest.mark.parametrize("command", ["register", "unregister", "emulate", "demo"])
def test_every_command_has_help(command: str) -> None:
    result = _cli(command, "--help", env=dict(os.environ))
    assert result.returncode == 0 and "usage: kong-bridge" in result.stdout
