"""Defaults are validated once per field, and every row still gets its own copy."""

from __future__ import annotations

from bridge.emulators.kong.schemas import ENTITIES
from bridge.kong.schema.fields import Field, record, string, validate_record


def test_a_default_record_is_a_fresh_copy_for_each_row() -> None:
    fields = ENTITIES["upstreams"].fields
    first, errors = validate_record(fields, {"name": "a.consul"})
    assert not errors
    first["healthchecks"]["active"]["healthy"]["http_statuses"].append(999)
    first["healthchecks"]["threshold"] = 42
    second, _ = validate_record(fields, {"name": "b.consul"})
    assert 999 not in second["healthchecks"]["active"]["healthy"]["http_statuses"]
    assert second["healthchecks"]["threshold"] == 0


def test_generated_defaults_are_generated_for_each_row() -> None:
    schema = {"config": record({"secret": Field("string", auto="random")})}
    keys = {validate_record(schema, {})[0]["config"]["secret"] for _ in range(3)}
    assert len(keys) == 3 and all(len(key) == 32 for key in keys)


def test_an_invalid_default_still_reports_its_error_each_time() -> None:
    schema = {"name": string(required=True)}
    for _ in range(2):
        assert validate_record(schema, {})[1] == {"name": "required field missing"}
