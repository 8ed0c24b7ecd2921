"""The README's shell examples run as written, and its settings table matches the settings.

A fenced ``sh`` block preceded by ``<!-- runnable -->`` (or ``<!-- runnable: exit N -->``)
is run with ``bash -e``, in file order, against emulators started here; every other
``sh`` block must say why it is not run (``<!-- not run by tests: ... -->``), so a new
example cannot escape the test by accident.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from bridge.emulators.consul import ConsulEmulator
from bridge.emulators.kong import KongEmulator
from bridge.settings import BridgeSettings, default_text, env_name, flag_name

ROOT = Path(__file__).resolve().parents[2]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BLOCK = re.compile(r"(?:<!--(?P<marker>[^>]*)-->\n)?```sh\n(?P<body>.*?)```", re.S)


@dataclass(frozen=True)
class Example:
    document: str
    line: int
    body: str
    exit_code: int


def examples(path: Path) -> Iterator[Example]:
    """The runnable ``sh`` blocks of one document; fails on a block with no marker."""
    text = path.read_text()
    for match in BLOCK.finditer(text):
        marker = (match["marker"] or "").strip()
        line = text.count("\n", 0, match.start("body"))
        where = f"{path.name}:{line}"
        assert marker.startswith(("runnable", "not run by tests:")), (
            f"{where}: mark the block '<!-- runnable -->' or '<!-- not run by tests: why -->'"
        )
        if marker.startswith("runnable"):
            code = re.fullmatch(r"runnable(?::\s*exit (\d+))?", marker)
            assert code is not None, f"{where}: bad marker {marker!r}"
            yield Example(path.name, line, match["body"], int(code[1] or 0))


def settings_table() -> str:
    """The README's settings table, rendered from the settings model."""
    rows = ["| variable | flag | default | meaning |", "|---|---|---|---|"]
    for field, info in BridgeSettings.model_fields.items():
        shown = f"`{default_text(field)}`" if default_text(field) else "—"
        meaning = (info.description or "").replace("<", "&lt;").replace(">", "&gt;")
        rows.append(f"| `{env_name(field)}` | `{flag_name(field)}` | {shown} | {meaning} |")
    return "\n".join(rows)


def test_settings_table_matches_the_settings() -> None:
    readme = (ROOT / "README.md").read_text()
    assert settings_table() in readme, "regenerate the table:\n" + settings_table()


def test_readme_is_self_contained() -> None:
    for path in DOCUMENTS:
        text = path.read_text()
        assert "DESIGN.md" not in text and "shared/reference" not in text, path.name
        for link in re.findall(r"\]\((?!https?:|#)([^)]+)\)", text):
            assert (path.parent / link).exists(), f"{path.name}: broken link {link}"


def test_every_shell_block_is_marked() -> None:
    assert sum(1 for path in DOCUMENTS for _ in examples(path)) >= 8


def test_shell_examples_run_as_written(tmp_path: Path) -> None:
    bin_dir = str(Path(sys.executable).parent)  # where kong-bridge is installed
    with KongEmulator() as kong, ConsulEmulator() as consul:
        env = {
            **os.environ,
            "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
            "CONSUL_HTTP_ADDR": consul.url,
            "KONG_ADMIN_URL": kong.url,
        }
        env.pop("CONSUL_HTTP_TOKEN", None)
        for path in DOCUMENTS:
            for example in examples(path):
                result = subprocess.run(
                    ["bash", "-e", "-o", "pipefail", "-c", example.body],
                    cwd=tmp_path,
                    env=env,
                    capture_output=True,
                    text=True,
                    timeout=120,
                    check=False,
                )
                assert result.returncode == example.exit_code, (
                    f"{example.document}:{example.line} exited {result.returncode}, "
                    f"expected {example.exit_code}\n{result.stdout}\n{result.stderr}"
                )
                assert "Traceback" not in result.stderr, result.stderr


@pytest.mark.parametrize("path", DOCUMENTS, ids=lambda p: p.name)
def test_documents_exist(path: Path) -> None:
    assert path.read_text().startswith("# ")
