"""Which locations and organisations an employee's work addresses go through (the shell's fan-out index)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from esr.format.layouts import EntityType
from streams.domain import (
    EmployeeState,
    apply_employee_batch,
    organisations_at,
    work_address_changes,
    work_address_refs,
)
from tests.unit.streams.domain.builders import (
    FILE_2,
    NOW_MS,
    VPD,
    D,
    Stream,
    assignment,
    event,
    location,
    organisation,
    person,
)
from tests.unit.streams.domain.test_reference import Tables, fanned_out_employee

E = EntityType
LOCATIONS = ("300001", "300002", "300003")
ORGANISATIONS = ("400001", "400002")


def test_refs_are_the_locations_and_the_location_less_organisations_of_the_assignments() -> None:
    state = fanned_out_employee(Tables())
    # assignments 1 and 4 at 300001, 3 at 300002; 2 names no location, so its organisation counts
    assert work_address_refs(state) == (frozenset({"300001", "300002"}), frozenset({"400001"}))


def test_refs_keep_every_version_of_an_assignment() -> None:
    stream = Stream()
    first = apply_employee_batch(None, stream.records(event(E.PERSON, person()), event(E.ASSIGNMENT, assignment())),
                                 Tables().view, now_ms=NOW_MS)
    moved = apply_employee_batch(first.state, stream.records(event(
        E.ASSIGNMENT, assignment(location_id=None, organisation_id="400002", effective_start=D(2024, 3, 2)),
        file=FILE_2)), Tables().view, now_ms=NOW_MS)
    assert moved.state is not None
    assert work_address_refs(moved.state) == (frozenset({"300001"}), frozenset({"400002"}))


def test_no_refs_without_assignments_or_once_deleted() -> None:
    assert work_address_refs(EmployeeState(vpd=VPD, person_id="1")) == (frozenset(), frozenset())
    state = fanned_out_employee(Tables())
    state.deleted = True
    assert work_address_refs(state) == (frozenset(), frozenset())


def test_organisations_at_a_location_as_the_reference_view_shows_them() -> None:
    tables = Tables()
    tables.apply(event(E.ORGANISATION, organisation()), event(E.ORGANISATION, organisation("400002",
                                                                                        location_id="300002")))
    assert organisations_at(VPD, ["400001", "400002", "499999"], {"300001"}, tables.view) == {"400001"}
    assert organisations_at(VPD, ["400001", "400002"], {"300002", "300003"}, tables.view) == {"400002"}
    assert organisations_at("888", ["400001"], {"300001"}, tables.view) == set()


assignments = st.lists(
    st.tuples(st.sampled_from((*LOCATIONS, None)), st.sampled_from((*ORGANISATIONS, None)), st.booleans()),
    min_size=1, max_size=4,
)


@settings(max_examples=150, deadline=None)
@given(assignments, st.sampled_from(ORGANISATIONS), st.sampled_from(LOCATIONS),
       st.sets(st.sampled_from(LOCATIONS), max_size=2), st.sets(st.sampled_from(ORGANISATIONS), max_size=1))
def test_every_employee_the_fan_out_emits_for_is_a_candidate(
        rows: list[tuple[str | None, str | None, bool]], moving: str, moved_to: str,
        locations: set[str], organisations: set[str]) -> None:
    """The shell's rule (streams.places.WorkPlaces.candidates) never leaves out an employee that
    `work_address_changes` emits for, whatever the assignments, their history and the change."""
    tables = Tables()
    tables.apply(*(event(E.LOCATION, location(loc, postcode=f"AN{n} 1AA")) for n, loc in enumerate(LOCATIONS)),
                 *(event(E.ORGANISATION, organisation(org)) for org in ORGANISATIONS))
    stream = Stream()
    records = [event(E.PERSON, person())]
    for number, (location_id, organisation_id, moved_later) in enumerate(rows):
        values = assignment(str(number), location_id=location_id, organisation_id=organisation_id,
                            primary_assignment="Yes" if number == 0 else "No")
        records.append(event(E.ASSIGNMENT, values, line=3 + number))
        if moved_later:  # a later version elsewhere: both versions stay in the state
            records.append(event(E.ASSIGNMENT, {**values, "location_id": None, "effective_start": D(2024, 3, 2)},
                                 line=10 + number))
    state = apply_employee_batch(None, stream.records(*records), tables.view, now_ms=NOW_MS).state
    assert state is not None
    moves = [event(E.LOCATION, location(loc, postcode="ZZ9 9ZZ"), file=FILE_2) for loc in sorted(locations)]
    if organisations:
        moves.append(event(E.ORGANISATION, organisation(moving, location_id=moved_to), file=FILE_2))
    if not moves:
        return
    previous = {}
    source = None
    for move in moves:
        outcome = tables.apply(move)
        previous[move["entity_id"]] = outcome.previous
        source = outcome.fanout_source or source
    if source is None:
        return  # nothing moved (the organisation "moved" to its own location)
    changed_organisations = {moving} if organisations else set()
    emitted = work_address_changes(state, VPD, locations, changed_organisations, tables.view, source=source,
                                   now_ms=NOW_MS, previous_locations={k: previous[k] for k in locations},
                                   previous_organisations={k: previous[k] for k in changed_organisations})
    refs_locations, refs_organisations = work_address_refs(state)
    routed = changed_organisations | organisations_at(VPD, refs_organisations, locations, tables.view)
    candidate = bool(refs_locations & locations) or bool(refs_organisations & routed)
    assert candidate or not emitted
