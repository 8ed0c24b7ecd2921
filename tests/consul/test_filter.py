"""The ``?filter=`` parser and evaluator, property-tested."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bridge.emulators.consul.filter import FilterError, compile_filter

words = st.text(alphabet="abcxyz019", min_size=1, max_size=6)


@given(words, st.lists(words, max_size=4))
def test_contains_and_in_agree(value: str, tags: list[str]) -> None:
    obj = {"Service": {"Tags": tags}}
    expected = value in tags
    assert compile_filter(f'Service.Tags contains "{value}"')(obj) is expected
    assert compile_filter(f'"{value}" in Service.Tags')(obj) is expected
    assert compile_filter(f'"{value}" not in Service.Tags')(obj) is (not expected)
    assert compile_filter(f'not Service.Tags contains "{value}"')(obj) is (not expected)


@given(words, words)
def test_equality_and_negation(left: str, right: str) -> None:
    obj = {"Meta": {"k": left}}
    assert compile_filter(f"Meta.k == `{right}`")(obj) is (left == right)
    assert compile_filter(f'Meta["k"] != "{right}"')(obj) is (left != right)


@given(st.booleans(), st.booleans(), st.booleans())
def test_boolean_precedence(a: bool, b: bool, c: bool) -> None:
    obj = {"A": str(a).lower(), "B": str(b).lower(), "C": str(c).lower()}
    expression = "A == true or B == true and C == true"
    assert compile_filter(expression)(obj) is (a or (b and c))
    assert compile_filter("(A == true or B == true) and C == true")(obj) is ((a or b) and c)


def test_empty_and_matches() -> None:
    assert compile_filter("Meta is empty")({"Meta": {}})
    assert compile_filter("Meta is not empty")({"Meta": {"a": "b"}})
    assert compile_filter("Missing is empty")({})
    assert compile_filter('Name matches "^we.+"')({"Name": "web"})
    assert compile_filter('Name not matches "^x"')({"Name": "web"})


@pytest.mark.parametrize(
    "text", ["", "Service ==", "(A == b", "A === b", "A == b and", '"x" in', "A contains"]
)
def test_invalid_expressions(text: str) -> None:
    with pytest.raises(FilterError):
        compile_filter(text)


@given(
    st.text(max_size=30)
    | st.builds(lambda a, b: f'{a} matches "{b}"', words, st.text(alphabet="([*+?\\", max_size=4))
)
def test_parser_never_crashes_unexpectedly(text: str) -> None:
    try:
        predicate = compile_filter(text)
    except FilterError:
        return
    predicate({"A": "b", "Tags": ["x"], "Meta": {"k": "v"}})
