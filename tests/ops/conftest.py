"""Operator-facing tests reuse the end-to-end stack: emulators and the bridge as processes."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable

import pytest

# The stack fixtures live with the bridge's end-to-end tests; pytest finds them here by name.
from tests.bridge.conftest import Stack, consul_url, kong_url, stack  # noqa: F401

CLI = Callable[..., subprocess.CompletedProcess[str]]


def run_cli(
    env: dict[str, str], *args: str, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """``kong-bridge ARGS`` as a separate process (``python -m bridge``), output captured."""
    return subprocess.run(
        [sys.executable, "-m", "bridge", *args],
        env={**env, "PATH": ""},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.fixture
def cli(stack: Stack) -> CLI:  # noqa: F811 (the fixture imported above)
    """Run ``kong-bridge`` against the stack's emulators."""
    return lambda *args, **kw: run_cli(stack.env, *args, **kw)
