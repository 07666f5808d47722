"""Properties of every event, whatever the records (Hypothesis)."""

from __future__ import annotations

import itertools
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from esr.codec.serde import Encoder
from esr.format.layouts import EntityType
from streams.domain import (
    EmployeeState,
    ReferenceState,
    apply_changes,
    apply_employee_batch,
    apply_reference_batch,
)
from tests.unit.streams.domain.builders import NOW_MS, D, Stream, event, location, organisation
from tests.unit.streams.domain.strategies import FILES, employee_events
from tests.unit.streams.domain.test_employee import LOCATIONS, ORGANISATIONS, Reference

REFERENCE = Reference(LOCATIONS, ORGANISATIONS)
ENCODER = Encoder("change-event")


def run(events: list[dict[str, Any]], *, resend: bool = False) -> list[list[dict[str, Any]]]:
    """Each record in its own call; with `resend`, each immediately sent again (a new offset) and the
    events of that re-send checked to be none."""
    stream = Stream()
    state: EmployeeState | None = None
    emitted = []
    for item in events:
        outcome = apply_employee_batch(state, stream.records(item), REFERENCE, now_ms=NOW_MS)
        state = outcome.state or outcome.tombstone
        emitted.append(outcome.changes)
        if resend:
            again = apply_employee_batch(state, stream.records(item), REFERENCE, now_ms=NOW_MS)
            assert again.changes == [], [c["event_type"] for c in again.changes]
            state = again.state or again.tombstone
    return emitted


@settings(max_examples=300, deadline=None)
@given(events=employee_events())
def test_applying_the_changes_to_before_gives_after(events: list[dict[str, Any]]) -> None:
    """Hypothesis (1), and each record's person events chain (one's after is the next one's before)."""
    for changes in run(events):
        for change in changes:
            assert apply_changes(change["before"], change["changes"]) == (change["after"] or {})
            assert change["changes"] or change["before"] == change["after"]  # no change without changes
            ENCODER.encode(change)
        person = [c for c in changes
                  if c["entity_type"] == "PERSON" and c["event_type"] != "PRIMARY_ASSIGNMENT_CHANGED"]
        for first, second in itertools.pairwise(person):
            assert first["after"] == second["before"]
        ids = [c["event_id"] for c in changes]
        assert len(set(ids)) == len(ids)


@settings(max_examples=300, deadline=None)
@given(events=employee_events())
def test_re_sending_the_same_record_emits_nothing(events: list[dict[str, Any]]) -> None:
    """Hypothesis (2)."""
    run(events, resend=True)


_REFERENCE_ROW = st.one_of(
    st.builds(lambda v: (EntityType.LOCATION, v), st.builds(
        location, postcode=st.sampled_from(["A1", "B2"]), telephone=st.sampled_from([None, "1"]))),
    st.builds(lambda v: (EntityType.ORGANISATION, v), st.builds(
        organisation, effective_from=st.sampled_from([D(1951, 1, 1), D(2024, 3, 2)]),
        location_id=st.sampled_from(["300001", "300002", None]), name=st.sampled_from(["x", "y"]))),
)


@settings(max_examples=200, deadline=None)
@given(rows=st.lists(st.tuples(st.integers(0, len(FILES) - 1), st.booleans(), _REFERENCE_ROW), min_size=1,
                     max_size=12))
def test_reference_events_hold_the_same_properties(rows: list[tuple[int, bool, tuple[EntityType, Any]]]) -> None:
    streams: dict[EntityType, Stream] = {}
    states: dict[EntityType, ReferenceState | None] = {}
    for line, (file_index, delete, (entity, values)) in enumerate(sorted(rows, key=lambda r: r[0]), 2):
        key_field = "location_id" if entity is EntityType.LOCATION else "organisation_id"
        item = event(entity, None if delete else values, entity_id=values[key_field], file=FILES[file_index],
                     line=line)
        stream = streams.setdefault(entity, Stream())
        for attempt in range(2):
            outcome = apply_reference_batch(states.get(entity), stream.records(item), now_ms=NOW_MS)
            states[entity] = outcome.state or outcome.tombstone
            if attempt:
                assert outcome.changes == []  # re-sent: nothing new
            for change in outcome.changes:
                assert apply_changes(change["before"], change["changes"]) == (change["after"] or {})
                ENCODER.encode(change)
