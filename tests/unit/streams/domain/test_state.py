"""The per-key state's encoding: stable, compact, exact."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from esr.format.layouts import EntityType
from streams.domain import (
    EmployeeState,
    NoReference,
    ReferenceState,
    apply_employee_batch,
    apply_reference_batch,
    decode_reference_state,
    decode_state,
    encode_reference_state,
    encode_state,
)
from tests.unit.streams.domain.builders import (
    FILE_2,
    NOW_MS,
    Stream,
    assignment,
    event,
    location,
    person,
    vehicle,
)
from tests.unit.streams.domain.strategies import employee_events, splits

E = EntityType


def employee(*events: dict[str, Any]) -> EmployeeState:
    outcome = apply_employee_batch(None, Stream().records(*events), NoReference(), now_ms=NOW_MS)
    state = outcome.state or outcome.tombstone
    assert state is not None
    return state


def test_round_trip_is_exact() -> None:
    state = employee(event(E.PERSON, person()), event(E.ASSIGNMENT, assignment(), line=3),
                     event(E.VEHICLE, vehicle(), line=4), event(E.PERSON, person(last_name="X"), file=FILE_2))
    data = encode_state(state)
    decoded = decode_state(data)
    assert encode_state(decoded) == data
    assert decoded.entities == state.entities
    assert decoded.journal == state.journal
    assert (decoded.person_id, decoded.primary_assignment_id, decoded.first_sha, decoded.offset) == (
        state.person_id, state.primary_assignment_id, state.first_sha, state.offset)
    vehicle_values = decoded.entities["VEHICLE"]["820001"].versions["2020-01-01"]
    assert vehicle_values["engine_cc"] == "1596.000"
    assert vehicle_values["last_update_date"] == "2024-02-29T10:10:10"


def test_encoding_is_compact_json() -> None:
    data = encode_state(employee(event(E.PERSON, person(first_name="Siân"))))
    assert b" " not in data.replace(b"Ann Jones", b"")  # no padding (values may hold spaces)
    assert "Siân".encode() in data  # UTF-8, not \\u escapes
    assert json.loads(data)["person_id"] == "600001"


def test_a_tombstone_round_trips() -> None:
    state = employee(event(E.PERSON, person()), event(E.PERSON, None, entity_id="600001", file=FILE_2))
    assert state.deleted
    decoded = decode_state(encode_state(state))
    assert decoded.deleted
    assert decoded.entities == {}
    assert decoded.journal == state.journal


def test_a_decoded_state_replays_like_the_original() -> None:
    stream = Stream()
    first = apply_employee_batch(None, stream.records(event(E.PERSON, person())), NoReference(), now_ms=NOW_MS)
    records = stream.records(event(E.PERSON, person(last_name="Smith"), file=FILE_2),
                             event(E.PERSON, None, entity_id="600001", file=FILE_2, line=3))
    second = apply_employee_batch(first.state, records, NoReference(), now_ms=NOW_MS)
    assert second.tombstone is not None
    replay = apply_employee_batch(decode_state(encode_state(second.tombstone)), records, NoReference(), now_ms=1)
    assert [c["event_id"] for c in replay.changes] == [c["event_id"] for c in second.changes]
    assert [c["ts_ms"] for c in replay.changes] == [NOW_MS, NOW_MS]


def test_reference_state_round_trip() -> None:
    outcome = apply_reference_batch(None, Stream().records(event(E.LOCATION, location())), now_ms=NOW_MS)
    assert outcome.state is not None
    data = encode_reference_state(outcome.state)
    decoded = decode_reference_state(data)
    assert isinstance(decoded, ReferenceState)
    assert encode_reference_state(decoded) == data
    assert decoded.current() == outcome.state.current()


def test_the_encoding_is_the_json_modules() -> None:
    """States written before the encoder was orjson (by `json.dumps`) and after are the same bytes, so a
    changelog written by either version is read by both."""
    state = employee(event(E.PERSON, person(first_name="Siân\u2028")), event(E.ASSIGNMENT, assignment(), line=3),
                     event(E.VEHICLE, vehicle(), line=4), event(E.PERSON, person(last_name="Ó Súilleabháin"),
                                                                  file=FILE_2))
    data = encode_state(state)
    assert data == json.dumps(state.to_json(), ensure_ascii=False, separators=(",", ":")).encode()
    assert encode_state(decode_state(data)) == data


def test_a_state_holds_nothing_else() -> None:
    state = employee(event(E.PERSON, person()))
    state.first_sha = {"a", "set"}  # type: ignore[assignment]
    with pytest.raises(TypeError, match="not JSON serializable: set"):
        encode_state(state)


@pytest.mark.parametrize("data", [b"", b"{}", b"[]", b'{"format": 99}', b"\xff", b'{"format":1,"vpd":"1"}'])
def test_anything_else_does_not_decode(data: bytes) -> None:
    with pytest.raises(ValueError, match="state"):
        decode_state(data)
    with pytest.raises(ValueError, match="state"):
        decode_reference_state(data)


@settings(max_examples=100, deadline=None)
@given(events=employee_events(), data=st.data())
def test_any_state_round_trips(events: list[dict[str, Any]], data: st.DataObject) -> None:
    """Hypothesis (3): decode(encode(state)) is the same state, and goes on exactly like it."""
    log = Stream().records(*events)
    sizes = data.draw(splits(len(log)))
    cut = data.draw(st.integers(1, len(sizes)))
    state: EmployeeState | None = None
    start = 0
    for size in sizes[:cut]:
        outcome = apply_employee_batch(state, log[start:start + size], NoReference(), now_ms=NOW_MS)
        state = outcome.state or outcome.tombstone
        start += size
    assert state is not None
    encoded = encode_state(state)
    decoded = decode_state(encoded)
    assert encode_state(decoded) == encoded
    assert decoded.entities == state.entities
    rest = log[start:] or log[-1:]  # nothing left: replay the last record
    original = apply_employee_batch(state, rest, NoReference(), now_ms=NOW_MS)
    again = apply_employee_batch(decoded, rest, NoReference(), now_ms=NOW_MS)
    assert again.changes == original.changes
    assert encode_state(again.state or again.tombstone) == encode_state(  # type: ignore[arg-type]
        original.state or original.tombstone)  # type: ignore[arg-type]
