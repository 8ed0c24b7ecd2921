"""Structured logs: real JSON fields with --log-json, quoted key=value in text mode."""

from __future__ import annotations

import json
import logging

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bridge.logs import JsonFormatter, TextFormatter, quote, setup_logging
from tests.bridge.conftest import Stack
from tests.ops.conftest import CLI, run_cli


def _record(**fields: object) -> logging.LogRecord:
    logger = logging.getLogger("bridge.test")
    return logger.makeRecord(
        "bridge.test", logging.ERROR, "f", 1, "apply failed", (), None, extra=fields
    )


def test_json_lines_carry_the_fields_as_keys() -> None:
    line = JsonFormatter().format(
        _record(service="web", outcome="clash", problem="route 'web' exists")
    )
    entry = json.loads(line)
    assert entry["message"] == "apply failed" and entry["level"] == "error"
    assert (entry["service"], entry["outcome"], entry["problem"]) == (
        "web",
        "clash",
        "route 'web' exists",
    )


def test_text_lines_quote_values_with_spaces() -> None:
    line = TextFormatter().format(_record(service="web", problem="route 'web' exists"))
    assert line.endswith("apply failed service=web problem=\"route 'web' exists\"")


@given(st.text(max_size=30))
def test_quoted_values_read_back(value: str) -> None:
    shown = quote(value)
    assert (json.loads(shown) if shown.startswith('"') else shown) == value
    # Bare exactly when it is one plain word: no (Unicode) space, quote, equals or backslash.
    plain = value != "" and not any(c.isspace() or c in '"=\\' for c in value)
    assert shown == value if plain else shown == json.dumps(value)


def test_level_names_filter(capsys: pytest.CaptureFixture[str]) -> None:
    setup_logging(json_logs=True, level="warning")
    logging.getLogger("bridge").info("hidden", extra={"service": "a"})
    logging.getLogger("bridge").warning("shown", extra={"service": "b"})
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert [line["service"] for line in lines] == ["b"]
    logging.getLogger().handlers[:] = []


def test_sync_logs_a_bad_tag_as_fields(stack: Stack, cli: CLI) -> None:
    stack.register("bad", "bad-1", "10.0.0.2", tags=["kong.enable=true", "kong.paths=oops"])
    result = cli("sync", "--once", "--log-json")
    entries = [json.loads(line) for line in result.stderr.splitlines()]
    skipped = next(e for e in entries if e.get("service") == "bad")
    assert skipped["outcome"] == "invalid-tags" and "kong.paths='oops'" in skipped["problem"]
    assert "service=" not in skipped["message"]


def test_log_level_from_the_environment(stack: Stack) -> None:
    stack.register("a", "a-1", "10.0.0.1")
    quiet = run_cli(stack.env, "sync", "--once")  # sync defaults to warnings only
    assert quiet.returncode == 0, quiet.stderr
    assert "applied" not in quiet.stderr
    stack.register("b", "b-1", "10.0.0.2")
    chatty = run_cli({**stack.env, "KONG_BRIDGE_LOG_LEVEL": "INFO"}, "sync", "--once")
    assert chatty.returncode == 0, chatty.stderr
    applied = [line for line in chatty.stderr.splitlines() if " INFO bridge: applied " in line]
    assert applied and all("service=b " in line for line in applied)
    assert any('entity="service b"' in line for line in applied)
