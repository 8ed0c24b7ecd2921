"""Optional parts of the package and the clear error when one is not installed."""

from __future__ import annotations

import importlib.util

DISTRIBUTION = "kong-consul-bridge"
# What `pip install kong-consul-bridge[emulators]` adds: the emulators' HTTP server stack.
EMULATOR_MODULES = ("starlette", "uvicorn", "httptools", "multipart")


class MissingExtra(ImportError):
    """An optional part was used without its extra installed; the message says which."""


def require_extra(extra: str, modules: tuple[str, ...], what: str) -> None:
    """Raise MissingExtra naming the extra when any of ``modules`` cannot be imported."""
    missing = [name for name in modules if importlib.util.find_spec(name) is None]
    if missing:
        raise MissingExtra(
            f"{what} need the '{extra}' extra (missing: {', '.join(missing)}); "
            f"install it with: pip install '{DISTRIBUTION}[{extra}]'"
        )
