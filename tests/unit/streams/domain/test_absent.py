"""End of a full file: entities it did not contain are reported, or deleted when the trust says so."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from esr.format.layouts import EntityType
from streams.domain import (
    ChangeSource,
    EmployeeState,
    NoReference,
    absent_from_full_file,
    apply_employee_batch,
    complete_in_file,
    event_id,
)
from tests.unit.streams.domain.builders import (
    FILE_1,
    FILE_2,
    NOW_MS,
    PERSON_ID,
    RUN_3,
    File,
    Stream,
    address,
    assignment,
    event,
    event_types,
    person,
    phone,
)
from tests.unit.streams.domain.strategies import FILES, employee_events

E = EntityType
FULL = File("f" * 64, RUN_3, 3, "F")
FULL_SOURCE = ChangeSource(FULL.name, FULL.sha, FULL.sequence, "F", FULL.run, topic="esr.control", partition=0,
                           offset=41)


def loaded() -> tuple[EmployeeState, Stream]:
    """A person with two assignments, an address and a phone from the first full file."""
    stream = Stream()
    outcome = apply_employee_batch(None, stream.records(
        event(E.PERSON, person()), event(E.ASSIGNMENT, assignment("1"), line=3),
        event(E.ASSIGNMENT, assignment("2", primary_assignment="No"), line=4),
        event(E.ADDRESS, address(), line=5), event(E.PHONE, phone(), line=6)), NoReference(), now_ms=NOW_MS)
    assert outcome.state is not None
    return outcome.state, stream


def in_new_full_file(state: EmployeeState, stream: Stream, *events: dict[str, Any]) -> EmployeeState:
    outcome = apply_employee_batch(state, stream.records(*events), NoReference(), now_ms=NOW_MS)
    assert outcome.state is not None
    return outcome.state


def test_absent_children_are_reported() -> None:
    state, stream = loaded()
    state = in_new_full_file(state, stream, event(E.PERSON, person(), file=FULL),
                             event(E.ASSIGNMENT, assignment("1"), file=FULL, line=3))
    outcome = absent_from_full_file(state, FULL.sha, FULL_SOURCE, treat_as_delete=False, now_ms=NOW_MS)
    assert [(c["event_type"], c["entity_type"], c["entity_id"]) for c in outcome.changes] == [
        ("ABSENT_FROM_FULL_FILE", "ASSIGNMENT", "2"), ("ABSENT_FROM_FULL_FILE", "ADDRESS", "810001"),
        ("ABSENT_FROM_FULL_FILE", "PHONE", "800001")]
    change = outcome.changes[0]
    assert change["before"] == change["after"]
    assert change["changes"] == []
    assert change["source"]["line_no"] is None
    assert change["source"]["topic"] == "esr.control"
    assert change["event_id"] == event_id(FULL.sha, None, "ASSIGNMENT", "2", "ABSENT_FROM_FULL_FILE")
    assert outcome.state is not None
    assert set(outcome.state.entities["ASSIGNMENT"]) == {"1", "2"}  # reported, kept


def test_absent_children_are_deleted_when_absence_means_delete() -> None:
    state, stream = loaded()
    state = in_new_full_file(state, stream, event(E.PERSON, person(), file=FULL),
                             event(E.ASSIGNMENT, assignment("2", primary_assignment="No"), file=FULL, line=3))
    outcome = absent_from_full_file(state, FULL.sha, FULL_SOURCE, treat_as_delete=True, now_ms=NOW_MS)
    assert event_types(outcome.changes) == ["ASSIGNMENT_DELETED", "HOME_ADDRESS_DELETED", "PHONE_DELETED",
                                            "PRIMARY_ASSIGNMENT_CHANGED"]
    assert {c["op"] for c in outcome.changes[:3]} == {"d"}
    assert outcome.state is not None
    assert set(outcome.state.entities["ASSIGNMENT"]) == {"2"}
    assert outcome.state.primary_assignment_id == "2"


def test_an_absent_person_is_deleted_whole() -> None:
    state, _ = loaded()
    outcome = absent_from_full_file(state, FULL.sha, FULL_SOURCE, treat_as_delete=True, now_ms=NOW_MS)
    assert event_types(outcome.changes) == ["PERSON_DELETED"]
    assert outcome.state is None
    assert outcome.tombstone is not None
    reported = absent_from_full_file(state, FULL.sha, FULL_SOURCE, treat_as_delete=False, now_ms=NOW_MS)
    assert len(reported.changes) == 5
    assert reported.changes[0]["entity_type"] == "PERSON"


def test_an_entity_seen_in_a_later_file_is_not_absent() -> None:
    """A change file read before the full file's reconciliation ran."""
    state, stream = loaded()
    later = File("9" * 64, FULL.run.replace(day=4), 4, "C")
    state = in_new_full_file(state, stream, event(E.PERSON, person(), file=FULL),
                             event(E.ASSIGNMENT, assignment("1"), file=FULL, line=3),
                             event(E.PHONE, phone(phone_number="07700 900999"), file=later))
    outcome = absent_from_full_file(state, FULL.sha, FULL_SOURCE, treat_as_delete=False, now_ms=NOW_MS)
    assert [c["entity_id"] for c in outcome.changes] == ["2", "810001"]


def test_nothing_is_absent_from_the_file_that_loaded_it() -> None:
    state, _ = loaded()
    source = ChangeSource(FILE_1.name, FILE_1.sha, 1, "F", FILE_1.run)
    assert absent_from_full_file(state, FILE_1.sha, source, treat_as_delete=True, now_ms=NOW_MS).changes == []


def test_with_nothing_absent_the_state_is_given_back_unmarked() -> None:
    """The common case costs no copy: no events, the very state (unchanged, as the shell does not write it)."""
    state, stream = loaded()
    state = in_new_full_file(state, stream, *(
        event(entity, values, file=FULL, line=line) for line, (entity, values) in enumerate([
            (E.PERSON, person()), (E.ASSIGNMENT, assignment("1")),
            (E.ASSIGNMENT, assignment("2", primary_assignment="No")), (E.ADDRESS, address()), (E.PHONE, phone()),
        ], 2)))
    outcome = absent_from_full_file(state, FULL.sha, FULL_SOURCE, treat_as_delete=True, now_ms=NOW_MS)
    assert outcome.changes == []
    assert outcome.state is state
    assert state.reconciled is None


def test_a_repeated_reconciliation_re_emits_the_same_events() -> None:
    state, stream = loaded()
    state = in_new_full_file(state, stream, event(E.PERSON, person(), file=FULL),
                             event(E.ASSIGNMENT, assignment("2", primary_assignment="No"), file=FULL, line=3))
    first = absent_from_full_file(state, FULL.sha, FULL_SOURCE, treat_as_delete=True, now_ms=NOW_MS)
    assert first.state is not None
    again = absent_from_full_file(first.state, FULL.sha, FULL_SOURCE, treat_as_delete=True, now_ms=NOW_MS + 9)
    assert [(c["event_id"], c["ts_ms"], c["before"]) for c in again.changes] == [
        (c["event_id"], c["ts_ms"], c["before"]) for c in first.changes]
    assert {c["op"] for c in again.changes} == {"r"}
    assert again.state is not None
    assert set(again.state.entities["ASSIGNMENT"]) == {"2"}


def test_a_deleted_person_has_nothing_absent() -> None:
    state, stream = loaded()
    outcome = apply_employee_batch(state, stream.records(event(E.PERSON, None, entity_id=PERSON_ID, file=FILE_2)),
                                   NoReference(), now_ms=NOW_MS)
    assert outcome.tombstone is not None
    reconciled = absent_from_full_file(outcome.tombstone, FULL.sha, FULL_SOURCE, treat_as_delete=True,
                                       now_ms=NOW_MS)
    assert reconciled.changes == []
    assert reconciled.state is None


def test_a_state_loaded_by_one_file_is_complete_in_it() -> None:
    state, _ = loaded()
    assert complete_in_file(state) == FILE_1.sha


def test_a_state_with_entities_of_two_files_is_complete_in_none() -> None:
    state, stream = loaded()
    state = in_new_full_file(state, stream, event(E.PERSON, person(), file=FULL))
    assert complete_in_file(state) is None


def test_a_state_reconciled_with_its_file_is_not_complete_in_it() -> None:
    """A replayed barrier must reach the domain, which re-emits the first run's events."""
    state, stream = loaded()
    state = in_new_full_file(state, stream, event(E.PERSON, person(), file=FULL),
                             event(E.ASSIGNMENT, assignment("1"), file=FULL, line=3))
    reconciled = absent_from_full_file(state, FULL.sha, FULL_SOURCE, treat_as_delete=True, now_ms=NOW_MS).state
    assert reconciled is not None
    assert {entity.sha for bucket in reconciled.entities.values() for entity in bucket.values()} == {FULL.sha}
    assert complete_in_file(reconciled) is None


def test_a_deleted_person_is_complete_in_no_file() -> None:
    state, stream = loaded()
    outcome = apply_employee_batch(state, stream.records(event(E.PERSON, None, entity_id=PERSON_ID)),
                                   NoReference(), now_ms=NOW_MS)
    assert outcome.tombstone is not None
    assert complete_in_file(outcome.tombstone) is None


@settings(max_examples=300, deadline=None)
@given(employee_events(max_size=16), st.booleans())
def test_a_complete_state_has_nothing_absent_from_its_file(events: list[dict[str, Any]], delete: bool) -> None:
    """What lets the shell skip a state at the barrier: for the file `complete_in_file` names, the domain
    returns the very state and no event, whatever the trust's option."""
    outcome = apply_employee_batch(None, Stream().records(*events), NoReference(), now_ms=NOW_MS)
    for state in (outcome.state, getattr(outcome, "tombstone", None)):
        if state is None:
            continue
        sha = complete_in_file(state)
        shas = {entity.sha for bucket in state.entities.values() for entity in bucket.values()}
        assert (sha is not None) == (not state.deleted and len(shas) == 1)
        if sha is None:
            continue
        file = next(f for f in FILES if f.sha == sha)
        source = ChangeSource(file.name, file.sha, file.sequence, "F", file.run, topic="esr.control", partition=0,
                              offset=1)
        reconciled = absent_from_full_file(state, sha, source, treat_as_delete=delete, now_ms=NOW_MS)
        assert reconciled.changes == []
        assert reconciled.state is state
