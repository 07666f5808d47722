"""Replay safety (DESIGN §3, KAFKA-12508): a replayed record re-emits exactly what it emitted."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from esr.format.layouts import EntityType
from streams.domain import (
    JOURNAL_CALLS,
    EmployeeState,
    InputRecord,
    apply_changes,
    apply_employee_batch,
    employee_snapshot,
    encode_state,
)
from tests.unit.streams.domain.builders import (
    FILE_2,
    NOW_MS,
    PERSON_ID,
    Stream,
    address,
    assignment,
    event,
    event_types,
    person,
    phone,
)
from tests.unit.streams.domain.strategies import employee_events, splits
from tests.unit.streams.domain.test_employee import LOCATIONS, ORGANISATIONS, Reference

E = EntityType
REFERENCE = Reference(LOCATIONS, ORGANISATIONS)
LATER_MS = NOW_MS + 60_000


def apply(state: EmployeeState | None, records: Sequence[InputRecord], now_ms: int = NOW_MS) -> tuple[
        EmployeeState | None, list[dict[str, Any]]]:
    """One call as the shell makes it, keeping the tombstone of a deleted person."""
    outcome = apply_employee_batch(state, records, REFERENCE, now_ms=now_ms)
    assert outcome.rejected == []
    return outcome.state or outcome.tombstone, outcome.changes


def calls(records: list[InputRecord], sizes: list[int]) -> list[list[InputRecord]]:
    out, start = [], 0
    for size in sizes:
        out.append(records[start:start + size])
        start += size
    return out


def comparable(change: dict[str, Any]) -> dict[str, Any]:
    """An event without what may differ between its first emission and a replay's: op."""
    return {k: v for k, v in change.items() if k != "op"}


def hired_then_changed() -> tuple[EmployeeState, list[InputRecord]]:
    stream = Stream()
    state, _ = apply(None, stream.records(event(E.PERSON, person()), event(E.ASSIGNMENT, assignment(), line=3),
                                          event(E.PHONE, phone(), line=4)))
    assert state is not None
    changes = stream.records(
        event(E.PERSON, person(last_name="Smith"), file=FILE_2, line=2),
        event(E.ASSIGNMENT, assignment(location_id="300002"), file=FILE_2, line=3),
        event(E.ADDRESS, address(), file=FILE_2, line=4),
        event(E.PHONE, None, entity_id="800001", file=FILE_2, line=5),
    )
    return state, changes


def test_a_replayed_batch_re_emits_the_same_events() -> None:
    state, records = hired_then_changed()
    first_state, first = apply(state, records)
    assert event_types(first) == ["SURNAME_CHANGED", "ASSIGNMENT_CHANGED", "WORK_ADDRESS_CHANGED",
                                  "HOME_ADDRESS_ADDED", "PHONE_DELETED"]
    # crash: the table holds first_state, the events were never sent; the batch is read again
    again_state, again = apply(first_state, records, LATER_MS)
    assert [comparable(c) for c in again] == [comparable(c) for c in first]  # same ids, content and ts_ms
    assert {c["op"] for c in again} == {"r"}
    assert again_state is not None
    assert first_state is not None
    assert encode_state(again_state) == encode_state(first_state)


def test_a_replay_with_other_batch_boundaries() -> None:
    state, records = hired_then_changed()
    state_1, first = apply(state, records[:2])
    state_2, second = apply(state_1, records[2:])
    # the offsets up to records[0] were committed; the rest is read again in one batch
    replayed_state, replayed = apply(state_2, records[1:], LATER_MS)
    assert [comparable(c) for c in replayed] == [comparable(c) for c in first[1:] + second]
    assert replayed_state is not None
    assert state_2 is not None
    assert employee_snapshot(replayed_state) == employee_snapshot(state_2)


def test_a_replay_that_runs_into_new_records() -> None:
    state, records = hired_then_changed()
    state_1, first = apply(state, records[:2])
    _, rest = apply(state_1, records, LATER_MS)
    assert [c["op"] for c in rest] == ["r", "r", "r", "c", "d"]
    assert rest[3]["ts_ms"] == LATER_MS
    assert [comparable(c) for c in rest[:3]] == [comparable(c) for c in first]


def test_a_replay_older_than_the_journal_is_skipped() -> None:
    stream = Stream()
    state: EmployeeState | None = None
    log = []
    for n in range(JOURNAL_CALLS + 2):
        records = stream.records(event(E.PERSON, person(email=f"{n}@x"), file=FILE_2, line=n + 2))
        log.extend(records)
        state, _ = apply(state, records)
    _, replayed = apply(state, log, LATER_MS)
    # the first two calls are out of the journal: their events were delivered before later offsets committed
    assert len(replayed) == JOURNAL_CALLS
    assert {c["op"] for c in replayed} == {"r"}


def test_a_replayed_person_delete_with_its_tombstone() -> None:
    stream = Stream()
    state, _ = apply(None, stream.records(event(E.PERSON, person()), event(E.ADDRESS, address(), line=3)))
    delete = stream.records(event(E.PERSON, None, entity_id=PERSON_ID, file=FILE_2))
    outcome = apply_employee_batch(state, delete, REFERENCE, now_ms=NOW_MS)
    assert outcome.state is None
    assert outcome.tombstone is not None
    again = apply_employee_batch(outcome.tombstone, delete, REFERENCE, now_ms=LATER_MS)
    assert [comparable(c) for c in again.changes] == [comparable(c) for c in outcome.changes]
    assert again.changes[0]["before"]["last_name"] == "Jones"
    # without the tombstone the delete is still reported with the same id (not its `before`)
    bare = apply_employee_batch(None, delete, REFERENCE, now_ms=LATER_MS)
    assert [c["event_id"] for c in bare.changes] == [c["event_id"] for c in outcome.changes]


def test_a_different_record_at_a_journalled_offset_is_new_input() -> None:
    """A re-created topic (Tansu forgets topics on restart): offsets start again with other records."""
    state, records = hired_then_changed()
    first_state, _ = apply(state, records)
    changed = event(E.PERSON, person(last_name="Smith", email="new@x"), file=FILE_2, line=9)
    other = [InputRecord(changed, r.topic, r.partition, r.offset) for r in records[:1]]
    _, changes = apply(first_state, other)
    assert event_types(changes) == ["PERSON_UPDATED"]
    assert changes[0]["op"] == "u"


def test_another_partition_is_new_input() -> None:
    state, records = hired_then_changed()
    first_state, _ = apply(state, records)
    moved = [InputRecord(r.event, r.topic, 7, r.offset) for r in records]
    _, changes = apply(first_state, moved)
    assert changes == []  # applied again as new records: nothing changed


def test_re_sending_the_same_full_file_emits_nothing() -> None:
    stream = Stream()
    full = [event(E.PERSON, person()), event(E.ASSIGNMENT, assignment(), line=3), event(E.ADDRESS, address(), line=4)]
    state, first = apply(None, stream.records(*full))
    assert len(first) == 3
    _, again = apply(state, stream.records(*full))
    assert again == []


@settings(max_examples=200, deadline=None)
@given(events=employee_events(), data=st.data())
def test_crash_anywhere_loses_and_invents_nothing(events: list[dict[str, Any]], data: st.DataObject) -> None:
    """Run uninterrupted (one record per call) and with random batches, a crash after a random call with up
    to JOURNAL_CALLS calls uncommitted, and a restart from the committed offset with other batches: every
    event of the uninterrupted run is delivered, the same, and nothing else; the states end equal."""
    log = Stream(offset=data.draw(st.integers(0, 3))).records(*events)
    expected_state: EmployeeState | None = None
    expected: list[dict[str, Any]] = []
    for record in log:
        expected_state, changes = apply(expected_state, [record])
        expected.extend(changes)
    for change in expected:
        assert apply_changes(change["before"], change["changes"]) == (change["after"] or {})

    batches = calls(log, data.draw(splits(len(log))))
    crash = data.draw(st.integers(0, len(batches) - 1))
    uncommitted = data.draw(st.integers(1, min(JOURNAL_CALLS, crash + 1)))
    state: EmployeeState | None = None
    delivered: list[dict[str, Any]] = []
    for number, batch in enumerate(batches[:crash + 1]):
        state, changes = apply(state, batch)
        if number <= crash - uncommitted:
            delivered.extend(changes)
    restart = sum(len(batch) for batch in batches[:crash + 1 - uncommitted])
    for batch in calls(log[restart:], data.draw(splits(len(log) - restart))):
        state, changes = apply(state, batch, LATER_MS)
        delivered.extend(changes)

    def same(change: dict[str, Any]) -> dict[str, Any]:  # records first applied after the restart: a later ts_ms
        return {k: v for k, v in comparable(change).items() if k != "ts_ms"}

    by_id = {c["event_id"]: same(c) for c in delivered}
    assert by_id == {c["event_id"]: same(c) for c in expected}
    assert len(by_id) == len(expected)  # ids are unique
    assert (state is None) == (expected_state is None)
    if state is not None and expected_state is not None:
        assert employee_snapshot(state) == employee_snapshot(expected_state)
        assert state.deleted == expected_state.deleted
        assert state.primary_assignment_id == expected_state.primary_assignment_id


@settings(max_examples=100, deadline=None)
@given(events=employee_events(), data=st.data())
def test_batch_boundaries_do_not_change_the_events(events: list[dict[str, Any]], data: st.DataObject) -> None:
    log = Stream().records(*events)
    one_by_one: list[dict[str, Any]] = []
    state: EmployeeState | None = None
    for record in log:
        state, changes = apply(state, [record])
        one_by_one.extend(changes)
    batched: list[dict[str, Any]] = []
    state = None
    for batch in calls(log, data.draw(splits(len(log)))):
        state, changes = apply(state, batch)
        batched.extend(changes)
    assert batched == one_by_one
