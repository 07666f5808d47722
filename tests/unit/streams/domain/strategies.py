"""Hypothesis strategies: one employee's record events over several files, drawn from small vocabularies so
that changes, re-sends, versions, ends and deletes all collide often."""

from __future__ import annotations

import datetime as dt
from typing import Any

from hypothesis import strategies as st

from esr.format.layouts import EntityType
from tests.unit.streams.domain.builders import PERSON_ID, RUN_1, D, File, address, assignment, event, person, phone

FILES = [File(f"{n + 1:064x}", RUN_1 + dt.timedelta(days=n), n + 1, "F" if n == 0 else "C") for n in range(8)]
E = EntityType

_DAY_1, _DAY_3 = D(2024, 3, 1), D(2024, 3, 3)


def _person() -> st.SearchStrategy[dict[str, Any]]:
    return st.builds(
        person,
        effective_start=st.sampled_from([D(2020, 1, 1), _DAY_3, D(2024, 6, 1)]),
        effective_end=st.sampled_from([None, _DAY_1, D(4712, 12, 31)]),
        last_name=st.sampled_from(["Jones", "Smith"]),
        first_name=st.sampled_from(["Ann", "Anne"]),
        termination_date=st.sampled_from([None, D(2024, 3, 10)]),
        email=st.sampled_from(["a@x", "b@x"]),
        last_update_date=st.sampled_from([dt.datetime(2024, 1, 1, 9), dt.datetime(2024, 3, 2, 9)]),
    )


def _assignment() -> st.SearchStrategy[dict[str, Any]]:
    return st.builds(
        assignment,
        st.sampled_from(["1", "2", "3"]),
        primary_assignment=st.sampled_from(["Yes", "No", "YES"]),
        location_id=st.sampled_from(["300001", "300002", None]),
        organisation_id=st.sampled_from(["400001", "400002"]),
        effective_start=st.sampled_from([D(2020, 1, 1), D(2024, 3, 2)]),
        effective_end=st.sampled_from([None, _DAY_1]),
        assignment_end_date=st.sampled_from([None, D(2024, 3, 5)]),
        system_assignment_status=st.sampled_from(["ACTIVE_ASSIGN", "TERM_ASSIGN"]),
    )


def _address() -> st.SearchStrategy[dict[str, Any]]:
    return st.builds(address, st.sampled_from(["1", "2"]), postcode=st.sampled_from(["AN1 1AA", "AN2 2BB"]),
                     effective_end=st.sampled_from([None, D(2024, 3, 4)]))


def _phone() -> st.SearchStrategy[dict[str, Any]]:
    return st.builds(phone, st.just("1"), phone_number=st.sampled_from(["07700 900001", "07700 900002"]))


# (entity, values or None for a delete, entity id of a delete)
_ROW = st.one_of(
    st.tuples(st.just(E.PERSON), _person(), st.none()),
    st.tuples(st.just(E.ASSIGNMENT), _assignment(), st.none()),
    st.tuples(st.just(E.ADDRESS), _address(), st.none()),
    st.tuples(st.just(E.PHONE), _phone(), st.none()),
    st.tuples(st.just(E.PERSON), st.none(), st.just(PERSON_ID)),
    st.tuples(st.just(E.ASSIGNMENT), st.none(), st.sampled_from(["1", "2", "3"])),
    st.tuples(st.just(E.ADDRESS), st.none(), st.sampled_from(["1", "2"])),
)


@st.composite
def employee_events(draw: st.DrawFn, min_size: int = 1, max_size: int = 24) -> list[dict[str, Any]]:
    """Record events of one person: a full file, then change files; lines numbered within each file."""
    rows = draw(st.lists(st.tuples(st.integers(0, 3), _ROW), min_size=min_size, max_size=max_size))
    events = []
    file_index, line = 0, 1
    for step, (entity, values, entity_id) in rows:
        if step == 0 and file_index < len(FILES) - 1:  # a quarter of the rows start a new file
            file_index, line = file_index + 1, 1
        line += 1
        events.append(event(entity, values, entity_id=entity_id, file=FILES[file_index], line=line))
    return events


@st.composite
def splits(draw: st.DrawFn, length: int) -> list[int]:
    """Batch sizes adding up to `length`."""
    sizes = []
    left = length
    while left > 0:
        size = draw(st.integers(1, max(1, min(left, 6))))
        sizes.append(size)
        left -= size
    return sizes
