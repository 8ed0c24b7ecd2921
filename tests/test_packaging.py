"""The package as users get it: a wheel in a fresh virtualenv, without the emulators extra."""

from __future__ import annotations

import re
import subprocess
import sys
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _run(*args: str | Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(a) for a in args], capture_output=True, text=True, timeout=600, check=check
    )


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with only ``pip install kong-consul-bridge`` (from a freshly built wheel)."""
    where = tmp_path_factory.mktemp("packaging")
    _run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--wheel-dir", where / "dist", ROOT)
    (wheel,) = (where / "dist").glob("kong_consul_bridge-*.whl")
    venv.create(where / "venv", with_pip=True)
    python = where / "venv" / "bin" / "python"
    _run(python, "-m", "pip", "install", "--quiet", wheel)
    return where / "venv" / "bin"


def test_the_cli_and_the_library_work_without_extras(installed: Path) -> None:
    version = _run(installed / "kong-bridge", "--version").stdout.strip()
    assert re.fullmatch(r"kong-bridge \d+\.\d+\.\d+", version)
    code = (
        "import bridge, importlib.resources as r; "
        "from bridge import KongGatewayRegistrator, KongGateway, load_service_config; "
        "print(r.files('bridge').joinpath('py.typed').is_file())"
    )
    assert _run(installed / "python", "-c", code).stdout.strip() == "True"
    helped = _run(installed / "kong-bridge", "run", "--help").stdout
    assert "--consul-addr" in helped


def test_no_emulator_dependencies_are_installed(installed: Path) -> None:
    listed = _run(installed / "python", "-m", "pip", "list", "--format=freeze").stdout.lower()
    for name in ("starlette", "uvicorn", "httptools", "python-multipart"):
        assert f"{name}==" not in listed


@pytest.mark.parametrize("command", [["emulate", "kong"], ["demo"]])
def test_emulator_commands_name_the_extra(installed: Path, command: list[str]) -> None:
    result = _run(installed / "kong-bridge", *command, check=False)
    assert result.returncode == 1
    assert "pip install 'kong-consul-bridge[emulators]'" in result.stderr
    assert "Traceback" not in result.stderr


def test_importing_an_emulator_names_the_extra(installed: Path) -> None:
    code = (
        "from bridge.extras import MissingExtra\n"
        "try:\n"
        "    import bridge.emulators.kong\n"
        "except MissingExtra as e:\n"
        "    print(e)\n"
    )
    out = _run(installed / "python", "-c", code).stdout
    assert "the emulators need the 'emulators' extra" in out


def test_the_license_ships_with_the_wheel(installed: Path) -> None:
    licenses = list(installed.parent.glob("lib/python*/site-packages/kong_consul_bridge-*"))
    assert any(
        (d / "licenses" / "LICENSE").is_file() or (d / "LICENSE").is_file() for d in licenses
    )
    text = (ROOT / "LICENSE").read_text()
    assert "Apache License" in text and "Version 2.0" in text


# -- the container image ------------------------------------------------------------------

DOCKERFILE = (ROOT / "Dockerfile").read_text()


def test_the_dockerfile_pins_its_base_and_runs_as_non_root() -> None:
    base = re.search(r"^ARG PYTHON_IMAGE=(\S+)$", DOCKERFILE, re.M)
    assert base is not None
    # An exact patch release and distribution (or a digest), never a floating tag.
    assert re.fullmatch(r"python:3\.\d+\.\d+-slim-\w+(@sha256:[0-9a-f]{64})?", base.group(1))
    assert re.search(r"^USER 10001$", DOCKERFILE, re.M)
    assert re.search(r"^HEALTHCHECK .*\n?.*/healthz", DOCKERFILE, re.M)
    assert "[emulators]" not in DOCKERFILE
    # The dependency layer comes from pyproject.toml alone, before the source is copied.
    assert DOCKERFILE.index("COPY pyproject.toml") < DOCKERFILE.index("COPY src")


@pytest.mark.docker
def test_the_image_builds_without_emulator_dependencies(tmp_path: Path) -> None:
    tag = "kong-consul-bridge:packaging-test"
    _run("docker", "build", "--tag", tag, ROOT)
    assert _run("docker", "run", "--rm", tag, "--version").stdout.startswith("kong-bridge ")
    probe = "import importlib.util as u; print(u.find_spec('starlette') is None)"
    out = _run("docker", "run", "--rm", "--entrypoint", "python", tag, "-c", probe).stdout
    assert out.strip() == "True"
    user = _run("docker", "run", "--rm", "--entrypoint", "id", tag, "-u").stdout.strip()
    assert user == "10001"
