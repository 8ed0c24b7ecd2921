"""Kong's entity checks (``entity_checks`` in a schema), with its messages.

Checks arrive in Kong's own shape (``{"at_least_one_of": ["config.second", ...]}``),
as the plugin schema sources and the emulator's entity schemas write them. Field
names may be dotted paths into nested records. ``custom_entity_check`` runs Lua
code and is skipped; the entity's Python checks cover the ones the emulator needs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

# (field table as Kong writes it, value) -> error text or None
ValueCheck = Callable[[dict[str, Any], Any], str | None]


def get_path(row: dict[str, Any], path: str) -> Any:
    value: Any = row
    for part in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def _set_path(errors: dict[str, Any], path: str, message: str) -> None:
    parts = path.split(".")
    node = errors
    for part in parts[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = node[part] = {}
        node = child
    node.setdefault(parts[-1], message)


def _present(value: Any) -> bool:
    return value is not None and value != [] and value != {}


def _quoted(names: list[str]) -> str:
    return ", ".join(f"'{name}'" for name in names)


def _conditional(args: dict[str, Any], row: dict[str, Any], check: ValueCheck) -> dict[str, Any]:
    if_value = get_path(row, args["if_field"])
    if if_value is None or check(args.get("if_match") or {}, if_value) is not None:
        return {}
    then_field = args["then_field"]
    then_match = args.get("then_match") or {}
    error = check(then_match, get_path(row, then_field))
    if error is None:
        return {}
    errors: dict[str, Any] = {}
    _set_path(errors, then_field, args.get("then_err") or error)
    errors["@entity"] = [f"failed conditional validation given value of field '{args['if_field']}'"]
    return errors


def _conditional_at_least_one_of(
    args: dict[str, Any], row: dict[str, Any], check: ValueCheck
) -> dict[str, Any]:
    if_value = get_path(row, args["if_field"])
    if if_value is None or check(args.get("if_match") or {}, if_value) is not None:
        names = args.get("else_then_at_least_one_of")
        if not names or any(_present(get_path(row, n)) for n in names):
            return {}
    else:
        names = args["then_at_least_one_of"]
        if any(_present(get_path(row, n)) for n in names):
            return {}
    message = args.get("then_err") or (
        f"at least one of these fields must be non-empty: {_quoted(names)}"
    )
    return {"@entity": [message]}


def _one_check(
    name: str, args: Any, row: dict[str, Any], check: ValueCheck
) -> dict[str, Any] | list[str]:
    if name == "at_least_one_of":
        if not any(_present(get_path(row, n)) for n in args):
            return [f"at least one of these fields must be non-empty: {_quoted(args)}"]
    elif name == "only_one_of":
        if sum(_present(get_path(row, n)) for n in args) != 1:
            return [f"exactly one of these fields must be non-empty: {_quoted(args)}"]
    elif name == "mutually_required":
        set_count = sum(_present(get_path(row, n)) for n in args)
        if 0 < set_count < len(args):
            return [f"all or none of these fields must be set: {_quoted(args)}"]
    elif name == "mutually_exclusive":
        if sum(_present(get_path(row, n)) for n in args) > 1:
            return [f"only one or none of these fields must be set: {_quoted(args)}"]
    elif name == "distinct":
        values = [get_path(row, n) for n in args]
        if all(value is not None for value in values) and len(set(map(str, values))) < len(values):
            return [f"values of these fields must be distinct: {_quoted(args)}"]
    elif name == "conditional":
        return _conditional(args, row, check)
    elif name == "conditional_at_least_one_of":
        return _conditional_at_least_one_of(args, row, check)
    return []


def run_entity_checks(
    checks: tuple[dict[str, Any], ...] | list[dict[str, Any]],
    row: dict[str, Any],
    check: ValueCheck,
) -> dict[str, Any]:
    """Errors of all checks, merged: field errors by path, messages under ``@entity``."""
    errors: dict[str, Any] = {}
    for item in checks:
        for name, args in item.items():
            result = _one_check(name, args, row, check)
            if isinstance(result, list):
                if result:
                    errors.setdefault("@entity", []).extend(result)
                continue
            for key, value in result.items():
                if key == "@entity":
                    errors.setdefault("@entity", []).extend(value)
                elif key not in errors:
                    errors[key] = value
    return errors
