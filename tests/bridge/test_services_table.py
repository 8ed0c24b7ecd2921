"""The service table keeps its listed and not-yet-read sets in step with its records."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from bridge.services import ServiceTable
from bridge.snapshot import ServiceSnapshot

NAMES = ["a", "b", "c"]
steps = st.lists(
    st.tuples(st.sampled_from(["list", "unlist", "read", "forget"]), st.sampled_from(NAMES))
)


@given(steps)
def test_listed_and_all_read_agree_with_the_records(history: list[tuple[str, str]]) -> None:
    table = ServiceTable()
    for step, name in history:
        if step == "list":
            table.list(name)
        elif step == "unlist":
            table.unlist(name)
        elif step == "forget":
            table.forget(name)
        elif name in table.records and table.records[name].listed:
            table.read(table.records[name], ServiceSnapshot(name, (), 1), trusted=True)
        listed = {n for n, record in table.records.items() if record.listed}
        assert table.listed() == listed
        assert table.all_read() == all(table.records[n].snapshot is not None for n in listed)
