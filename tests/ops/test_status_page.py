"""The status page in a real headless browser (Debian's chromium), and the JSON behind it."""

from __future__ import annotations

import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from bridge.status_page import propagation
from tests.bridge.conftest import Stack
from tests.helpers import eventually

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_browser = pytest.mark.skipif(
    CHROMIUM is None, reason="no chromium installed (.ci/run installs Debian's)"
)


class Rows(HTMLParser):
    """The service rows of the rendered page: name -> (state, the row's text)."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: dict[str, tuple[str, str]] = {}
        self._current: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "tr" and found.get("data-service"):
            self._current = str(found["data-service"])
            self.rows[self._current] = (str(found.get("data-state")), "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "tr":
            self._current = None

    def handle_data(self, data: str) -> None:
        if self._current is not None:
            state, text = self.rows[self._current]
            self.rows[self._current] = (state, text + data)


def browse(url: str, *extra: str) -> str:
    """The page's DOM after its scripts ran (``--virtual-time-budget`` lets fetch finish)."""
    assert CHROMIUM is not None
    result = subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",  # tests run as root
            "--disable-gpu",
            "--virtual-time-budget=5000",
            *extra,
            url,
        ],
        capture_output=True,
        text=True,
        timeout=90,
        check=True,
    )
    return result.stdout


def _start_with_a_bad_tag(stack: Stack) -> None:
    stack.register("web", "web-1", "10.0.0.1", tags=["kong.enable=true", "kong.paths=/web"])
    stack.register("web", "web-2", "10.0.0.2", status="critical")
    stack.register("bad", "bad-1", "10.0.0.3", tags=["kong.enable=true", "kong.paths=oops"])
    stack.start()
    eventually(lambda: stack.targets("web.service.consul") == {"10.0.0.1:8080"})
    eventually(lambda: stack.ready()["services_in_error"].get("bad"), what="bad tag seen")


@needs_browser
def test_page_lists_services_and_shows_the_bad_tag(stack: Stack) -> None:
    _start_with_a_bad_tag(stack)
    parser = Rows()
    parser.feed(browse(f"{stack.status.base_url}/", "--dump-dom"))
    assert set(parser.rows) == {"web", "bad"}
    state, text = parser.rows["web"]
    assert state == "in sync"
    assert "1 healthy of 2" in text and "1 target" in text
    assert "route web" in text and "/web" in text and "target 10.0.0.1:8080" in text
    state, text = parser.rows["bad"]
    assert state == "error"
    assert "kong.paths='oops'" in text


@needs_browser
def test_screenshot_renders(stack: Stack, tmp_path: Path) -> None:
    _start_with_a_bad_tag(stack)
    shot = tmp_path / "status.png"
    browse(f"{stack.status.base_url}/", f"--screenshot={shot}", "--window-size=1400,900")
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _service(stack: Stack, name: str) -> dict[str, Any]:
    services = stack.status.get("/status.json").json()["services"]
    return next((s for s in services if s["name"] == name), {})


def test_json_behind_the_page(stack: Stack) -> None:
    stack.register("web", "web-1", "10.0.0.1")
    stack.register("dark", "dark-1", "10.0.0.5", status="critical")
    stack.start()
    web = eventually(lambda: _service(stack, "web").get("last_change"), what="web applied")
    assert web.startswith("create ")
    assert _service(stack, "web")["state"] == "in sync"
    assert _service(stack, "web")["applied_at"] > 0
    assert "no instance passes its health checks" in _service(stack, "dark")["warnings"][0]
    doc = stack.status.get("/status.json").json()
    assert (doc["role"], doc["consul"]["reachable"], doc["kong"]["reachable"]) == (
        "single",
        True,
        True,
    )
    assert doc["propagation"]["syncs"] >= 1 and doc["propagation"]["count"] >= 1


def test_page_is_self_contained(stack: Stack) -> None:
    stack.start()
    page = stack.status.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "status.json" in page.text
    assert not re.search(r'(src|href)="(https?:)?//', page.text)  # no CDN, nothing remote


def test_held_back_deletions_are_shown(stack: Stack) -> None:
    stack.lose_three_of_four()
    held = eventually(lambda: stack.status.get("/status.json").json()["held_back"]["reason"])
    assert "deletes 3 of 4 owned services" in held
    states = {s["name"]: s["state"] for s in stack.status.get("/status.json").json()["services"]}
    assert states == {"a": "held back", "b": "held back", "c": "held back", "d": "in sync"}


def test_propagation_figures_from_metrics_text() -> None:
    text = "\n".join(
        [
            'kong_bridge_propagation_seconds_bucket{le="0.05"} 1',
            'kong_bridge_propagation_seconds_bucket{le="0.1"} 3',
            'kong_bridge_propagation_seconds_bucket{le="0.25"} 4',
            'kong_bridge_propagation_seconds_bucket{le="+Inf"} 4',
            "kong_bridge_propagation_seconds_sum 0.4",
            "kong_bridge_propagation_seconds_count 4",
            "kong_bridge_syncs_total 7",
        ]
    )
    figures = propagation(text)
    assert figures["count"] == 4 and figures["mean_seconds"] == pytest.approx(0.1)
    assert (figures["p50_under_seconds"], figures["p90_under_seconds"]) == (0.1, 0.25)
    assert figures["syncs"] == 7
