"""The incremental reading of a JSON list answer equals a full parse and a comparison."""

from __future__ import annotations

import itertools
import json
from collections import Counter
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bridge.list_delta import _PER_BLOCK, ListDelta, NotAList

# Check-like elements whose texts share long runs, as Consul's do (the hard case for a
# comparison from both ends: the first difference may sit deep inside a neighbour).
text = st.sampled_from(["", "a", "ab", "passing", "critical", 'q"uo\\te', "é", "x,y", "}]"])
element = st.one_of(
    st.fixed_dictionaries(
        {
            "Node": st.sampled_from(["n1", "n2", "n10"]),
            "CheckID": text,
            "Status": st.sampled_from(["passing", "warning", "critical"]),
            "ModifyIndex": st.integers(0, 12),
            "ServiceTags": st.lists(text, max_size=2),
        }
    ),
    st.integers(0, 3),
    text,
    st.lists(st.integers(0, 2), max_size=2),
)
lists = st.lists(element, max_size=12)


def render(values: list[Any], style: int) -> str:
    if style == 0:
        return json.dumps(values, separators=(",", ":"))
    if style == 1:
        return json.dumps(values)
    return json.dumps(values, indent=2) + "\n"


def canonical(values: list[Any]) -> Counter[str]:
    return Counter(json.dumps(v, sort_keys=True) for v in values)


def follow(delta: ListDelta, before: list[Any], after: list[Any], style: int) -> None:
    """The delta turns ``before`` into ``after`` (as multisets) and names only real elements."""
    result = delta.update(render(after, style).encode())
    removed, added = canonical(result.removed), canonical(result.added)
    assert removed <= canonical(before)
    assert added <= canonical(after)
    assert canonical(before) - removed + added == canonical(after)
    assert len(delta) == len(after)


@settings(max_examples=400, deadline=None)
@given(st.lists(lists, min_size=1, max_size=6), st.integers(0, 2))
def test_a_sequence_of_answers_is_followed_exactly(answers: list[list[Any]], style: int) -> None:
    delta = ListDelta()
    first = delta.update(render(answers[0], style))
    assert first.full and canonical(first.added) == canonical(answers[0]) and not first.removed
    for before, after in itertools.pairwise(answers):
        follow(delta, before, after, style)


edit = st.tuples(st.sampled_from(["insert", "delete", "replace"]), st.integers(0, 40), element)


@settings(max_examples=400, deadline=None)
@given(lists, st.lists(edit, min_size=1, max_size=4), st.integers(0, 2))
def test_small_edits_parse_few_elements(before: list[Any], edits: Any, style: int) -> None:
    delta = ListDelta()
    delta.update(render(before, style))
    current = list(before)
    for kind, where, value in edits:
        after = list(current)
        if kind == "insert":
            after.insert(where % (len(after) + 1), value)
        elif after and kind == "delete":
            del after[where % len(after)]
        elif after:
            after[where % len(after)] = value
        parses = delta.full_parses
        result = delta.update(render(after, style))
        assert delta.full_parses == parses  # never needed to start over
        # One edit: the element itself, and at most its neighbours when their texts blur.
        assert len(result.removed) <= 3 and len(result.added) <= 3
        assert canonical(current) - canonical(result.removed) + canonical(
            result.added
        ) == canonical(after)
        current = after


def spans(delta: ListDelta) -> list[bytes]:
    """The text of each element, where ``delta`` believes the elements lie."""
    assert delta.text is not None
    return [bytes(delta.text[start:end]) for start, end in delta.offsets.spans()]


def check(n: int, status: str) -> dict[str, Any]:
    return {"Node": "n1", "CheckID": f"c{n}", "Status": status, "Output": "x" * (n % 7)}


# One step: where (at the first, up to the last or anywhere), how many elements go, which come.
position = st.one_of(st.sampled_from(["first", "last"]), st.integers(0, 10_000))
step = st.tuples(
    position,
    st.integers(0, 3),
    st.lists(
        st.builds(check, st.integers(0, 999), st.sampled_from(["passing", "critical"])), max_size=3
    ),
)


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 5 * _PER_BLOCK), st.lists(step, min_size=1, max_size=12), st.integers(0, 2))
def test_offsets_across_blocks_stay_those_of_a_full_parse(
    size: int, steps: list[tuple[str | int, int, list[dict[str, Any]]]], style: int
) -> None:
    """Many blocks of offsets: after each edit (elements removed, inserted, changed in
    length, at the first, the last or any position) the offsets are a full parse's, and
    no block is left with too few elements to keep the cost of a change low."""
    current: list[Any] = [check(n, "passing") for n in range(size)]
    delta = ListDelta()
    delta.update(render(current, style))
    for where, removed, inserted in steps:
        if isinstance(where, int):
            at = where % (len(current) + 1)
        else:
            at = 0 if where == "first" else max(0, len(current) - removed)  # up to the last
        after = current[:at] + inserted + current[at + removed :]
        follow(delta, current, after, style)
        assert delta.full_parses == 1
        fresh = ListDelta()
        fresh.update(render(after, style))
        assert spans(delta) == spans(fresh)
        sizes = [len(block.starts) for block in delta.offsets.blocks]
        assert max(sizes, default=0) <= _PER_BLOCK
        assert len(sizes) <= 1 or min(sizes) >= _PER_BLOCK // 2
        current = after


def test_a_bytearray_is_kept_as_it_is_and_a_memoryview_is_read() -> None:
    delta = ListDelta()
    body = bytearray(b'[1, "a", 2]')
    delta.update(body)
    assert delta.text is body
    result = delta.update(memoryview(b'[1, "b", 2]'))
    assert result.removed == ["a"] and result.added == ["b"] and not result.full


def test_an_unchanged_answer_costs_nothing() -> None:
    delta = ListDelta()
    body = render([{"CheckID": str(n)} for n in range(1000)], 0).encode()
    delta.update(body)
    again = delta.update(body)
    assert again.removed == [] and again.added == [] and not again.full


def test_one_change_among_many_is_one_element() -> None:
    checks = [{"Node": "n", "CheckID": f"c{n}", "ModifyIndex": n} for n in range(5000)]
    delta = ListDelta()
    delta.update(render(checks, 0))
    changed = [dict(c) for c in checks]
    changed[2500]["ModifyIndex"] = 99999
    result = delta.update(render(changed, 0))
    assert result.removed == [checks[2500]] and result.added == [changed[2500]]
    assert not result.full


@pytest.mark.parametrize("body", ["{}", '"x"', "", "  ", "[1, 2"])
def test_not_a_list_is_a_clear_error(body: str) -> None:
    with pytest.raises(ValueError, match="expected a JSON array"):
        ListDelta().update(body)


def test_a_bad_answer_after_a_good_one_is_an_error_and_keeps_the_good_one() -> None:
    delta = ListDelta()
    delta.update("[1,2,3]")
    with pytest.raises(NotAList):
        delta.update('{"not": "a list"}')
    result = delta.update("[1,2,4]")
    assert result.removed == [3] and result.added == [4]


def test_malformed_elements_are_an_error() -> None:
    delta = ListDelta()
    delta.update("[1,2,3]")
    with pytest.raises(ValueError):
        delta.update("[1,2,,3]")
    with pytest.raises(ValueError):
        ListDelta().update("[1,]")
