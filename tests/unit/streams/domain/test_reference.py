"""Reference entities (locations, organisations, positions) and the work-address fan-out."""

from __future__ import annotations

from typing import Any

from esr.format.layouts import EntityType
from streams.domain import (
    ChangeSource,
    EmployeeState,
    NoReference,
    ReferenceOutcome,
    ReferenceState,
    StateReferenceView,
    apply_changes,
    apply_employee_batch,
    apply_reference_batch,
    reference_absent_from_full_file,
    reference_key,
    work_address_changes,
)
from tests.unit.streams.domain.builders import (
    FILE_1,
    FILE_2,
    FILE_3,
    NOW_MS,
    VPD,
    D,
    Stream,
    assignment,
    event,
    event_types,
    location,
    organisation,
    person,
    position,
)

E = EntityType


class Entity:
    """One reference key's stream and state."""

    def __init__(self) -> None:
        self.stream = Stream(partition=3)
        self.state: ReferenceState | None = None
        self.last: ReferenceOutcome | None = None

    def feed(self, *events: dict[str, Any]) -> ReferenceOutcome:
        outcome = apply_reference_batch(self.state, self.stream.records(*events), now_ms=NOW_MS)
        assert outcome.rejected == []
        for change in outcome.changes:
            assert apply_changes(change["before"], change["changes"]) == (change["after"] or {})
            assert change["person_id"] is None
            assert change["employee_number"] is None
        self.state = outcome.state
        self.last = outcome
        return outcome


def test_location_added_changed_deleted() -> None:
    entity = Entity()
    added = entity.feed(event(E.LOCATION, location()))
    assert event_types(added.changes) == ["LOCATION_ADDED"]
    assert added.changes[0]["op"] == "c"
    assert (added.changed_location_ids, added.previous) == (set(), None)  # an addition is not fanned out
    assert entity.feed(event(E.LOCATION, location(), file=FILE_2)).changes == []

    telephone = entity.feed(event(E.LOCATION, location(telephone="01000 000000"), file=FILE_2, line=3))
    assert event_types(telephone.changes) == ["LOCATION_CHANGED"]
    assert telephone.changed_location_ids == set()  # not an address field

    moved = entity.feed(event(E.LOCATION, location(telephone="01000 000000", postcode="AN9 9ZZ"), file=FILE_3))
    assert event_types(moved.changes) == ["LOCATION_CHANGED"]
    assert moved.changed_location_ids == {"300001"}
    assert moved.previous is not None
    assert moved.previous["postcode"] == "AN1 1AA"
    assert moved.fanout_source is not None
    assert (moved.fanout_source.record_code, moved.fanout_source.file_sha256) == ("LCA", FILE_3.sha)

    deleted = entity.feed(event(E.LOCATION, None, entity_id="300001", file=FILE_3, line=3))
    assert event_types(deleted.changes) == ["LOCATION_DELETED"]
    assert deleted.changes[0]["op"] == "d"
    assert deleted.changed_location_ids == {"300001"}
    assert deleted.state is None
    assert deleted.tombstone is not None


def test_organisation_location_change_is_fanned_out() -> None:
    entity = Entity()
    entity.feed(event(E.ORGANISATION, organisation()))
    renamed = entity.feed(event(E.ORGANISATION, organisation(name="999 Ward 1A"), file=FILE_2))
    assert event_types(renamed.changes) == ["ORGANISATION_CHANGED"]
    assert renamed.changed_organisation_ids == set()
    moved = entity.feed(event(E.ORGANISATION, organisation(name="999 Ward 1A", location_id="300002"), file=FILE_3))
    assert moved.changed_organisation_ids == {"400001"}
    assert moved.changes[0]["effective_date"] == D(1951, 1, 1)


def test_organisations_are_date_tracked() -> None:
    entity = Entity()
    entity.feed(event(E.ORGANISATION, organisation()))
    future = entity.feed(event(E.ORGANISATION, organisation(effective_from=D(2024, 6, 1), name="New"), file=FILE_2))
    assert event_types(future.changes) == ["ORGANISATION_CHANGED"]
    assert future.changes[0]["effective_date"] == D(2024, 6, 1)
    assert entity.state is not None
    assert entity.state.current() is not None
    assert entity.state.current()["name"] == "999 Ward 1"  # type: ignore[index]


def test_positions() -> None:
    entity = Entity()
    assert event_types(entity.feed(event(E.POSITION, position())).changes) == ["POSITION_ADDED"]
    changed = entity.feed(event(E.POSITION, position(job_role="Sister"), file=FILE_2))
    assert event_types(changed.changes) == ["POSITION_CHANGED"]
    assert changed.changed_location_ids == changed.changed_organisation_ids == set()
    assert event_types(entity.feed(event(E.POSITION, None, entity_id="500001", file=FILE_3)).changes) == [
        "POSITION_DELETED"]


def test_a_replayed_reference_batch_re_emits() -> None:
    entity = Entity()
    entity.feed(event(E.LOCATION, location()))
    records = entity.stream.records(event(E.LOCATION, location(postcode="X1 1XX"), file=FILE_2))
    first = apply_reference_batch(entity.state, records, now_ms=NOW_MS)
    again = apply_reference_batch(first.state, records, now_ms=NOW_MS + 5)
    assert [c["event_id"] for c in again.changes] == [c["event_id"] for c in first.changes]
    assert again.changes[0]["op"] == "r"
    assert again.changed_location_ids == first.changed_location_ids
    assert again.previous == first.previous


def test_records_of_another_entity_are_rejected() -> None:
    entity = Entity()
    entity.feed(event(E.LOCATION, location()))
    outcome = apply_reference_batch(entity.state, entity.stream.records(event(E.LOCATION, location("300002"))),
                                    now_ms=NOW_MS)
    assert [reason for _, reason in outcome.rejected] == ["record for 999:LOCATION:300002 in the batch of "
                                                          "999:LOCATION:300001"]
    person_batch = apply_reference_batch(None, Stream().records(event(E.PERSON, person())), now_ms=NOW_MS)
    assert person_batch.rejected
    assert person_batch.state is None


def test_state_reference_view() -> None:
    table: dict[str, ReferenceState] = {}
    for values, entity_type in ((location(), E.LOCATION), (organisation(), E.ORGANISATION)):
        outcome = apply_reference_batch(None, Stream().records(event(entity_type, values)), now_ms=NOW_MS)
        assert outcome.state is not None
        table[outcome.state.key] = outcome.state
    view = StateReferenceView(table.get)
    assert view.location(VPD, "300001") == table[reference_key(VPD, "LOCATION", "300001")].current()
    assert view.organisation(VPD, "400001") is not None
    assert view.location(VPD, "399999") is None
    assert view.position(VPD, "500001") is None


def test_reference_absent_from_full_file() -> None:
    entity = Entity()
    entity.feed(event(E.LOCATION, location()))
    full = ChangeSource("GO_999_EXP_GOF_20240303_00000003.DAT", FILE_3.sha, 3, "F", FILE_3.run)
    assert entity.state is not None
    reported = reference_absent_from_full_file(entity.state, FILE_3.sha, full, treat_as_delete=False, now_ms=NOW_MS)
    assert event_types(reported.changes) == ["ABSENT_FROM_FULL_FILE"]
    deleted = reference_absent_from_full_file(entity.state, FILE_3.sha, full, treat_as_delete=True, now_ms=NOW_MS)
    assert event_types(deleted.changes) == ["LOCATION_DELETED"]
    assert deleted.state is None
    assert deleted.changed_location_ids == {"300001"}
    present = reference_absent_from_full_file(entity.state, FILE_1.sha, full, treat_as_delete=True, now_ms=NOW_MS)
    assert present.changes == []


# -- the fan-out ---------------------------------------------------------------------------------------------

class Tables:
    """Reference states by key, as the reference table holds them."""

    def __init__(self) -> None:
        self.states: dict[str, ReferenceState] = {}

    def apply(self, *events: dict[str, Any]) -> ReferenceOutcome:
        outcome = None
        for item in events:
            key = reference_key(VPD, item["entity_type"], item["entity_id"])
            outcome = apply_reference_batch(self.states.get(key), Stream().records(item), now_ms=NOW_MS)
            assert outcome.state is not None
            self.states[key] = outcome.state
        assert outcome is not None
        return outcome

    @property
    def view(self) -> StateReferenceView:
        return StateReferenceView(self.states.get)


def fanned_out_employee(tables: Tables) -> EmployeeState:
    records = Stream().records(
        event(E.PERSON, person()),
        event(E.ASSIGNMENT, assignment("1"), line=3),  # at location 300001
        event(E.ASSIGNMENT, assignment("2", location_id=None, primary_assignment="No"), line=4),  # org 400001
        event(E.ASSIGNMENT, assignment("3", location_id="300002", primary_assignment="No"), line=5),
        event(E.ASSIGNMENT, assignment("4", primary_assignment="No", effective_end=D(2024, 1, 31)), line=6),
    )
    outcome = apply_employee_batch(None, records, tables.view, now_ms=NOW_MS)
    assert outcome.state is not None
    return outcome.state


def test_a_moved_location_changes_the_work_address_of_every_assignment_there() -> None:
    tables = Tables()
    tables.apply(event(E.LOCATION, location()), event(E.LOCATION, location("300002", postcode="OT1 1AA")),
                 event(E.ORGANISATION, organisation()))
    state = fanned_out_employee(tables)
    moved = tables.apply(event(E.LOCATION, location(postcode="AN9 9ZZ", address_line_1="9 New Road"), file=FILE_2))
    assert moved.fanout_source is not None
    changes = work_address_changes(state, VPD, moved.changed_location_ids, moved.changed_organisation_ids,
                                   tables.view, source=moved.fanout_source, now_ms=NOW_MS,
                                   previous_locations={"300001": moved.previous})
    # assignment 1 directly, 2 through its organisation; not 3 (elsewhere) nor 4 (ended before the run date)
    assert [(c["event_type"], c["entity_id"]) for c in changes] == [("WORK_ADDRESS_CHANGED", "1"),
                                                                    ("WORK_ADDRESS_CHANGED", "2")]
    direct, via = changes
    assert {c["field"]: (c["old"], c["new"]) for c in direct["changes"]} == {
        "line1": ("1 Hospital Road", "9 New Road"), "postcode": ("AN1 1AA", "AN9 9ZZ")}
    assert via["after"]["via"] == "ORGANISATION"
    assert direct["source"]["record_code"] == "LCA"
    assert direct["person_id"] == "600001"
    assert direct["employee_number"] == "20001234"
    assert direct["event_id"] != via["event_id"]
    # deterministic: the same call gives the same events (all a replay needs)
    again = work_address_changes(state, VPD, moved.changed_location_ids, moved.changed_organisation_ids,
                                 tables.view, source=moved.fanout_source, now_ms=NOW_MS,
                                 previous_locations={"300001": moved.previous})
    assert again == changes


def test_an_organisation_moving_to_another_location() -> None:
    tables = Tables()
    tables.apply(event(E.LOCATION, location()), event(E.LOCATION, location("300002", postcode="OT1 1AA")),
                 event(E.ORGANISATION, organisation()))
    state = fanned_out_employee(tables)
    moved = tables.apply(event(E.ORGANISATION, organisation(location_id="300002"), file=FILE_2))
    assert moved.fanout_source is not None
    changes = work_address_changes(state, VPD, set(), moved.changed_organisation_ids, tables.view,
                                   source=moved.fanout_source, now_ms=NOW_MS,
                                   previous_organisations={"400001": moved.previous})
    assert [c["entity_id"] for c in changes] == ["2"]
    assert {c["field"]: (c["old"], c["new"]) for c in changes[0]["changes"]}["location_id"] == ("300001", "300002")


def test_without_the_previous_address_the_new_one_is_reported_whole() -> None:
    tables = Tables()
    tables.apply(event(E.LOCATION, location()), event(E.ORGANISATION, organisation()))
    state = fanned_out_employee(tables)
    moved = tables.apply(event(E.LOCATION, location(postcode="AN9 9ZZ"), file=FILE_2))
    assert moved.fanout_source is not None
    changes = work_address_changes(state, VPD, {"300001"}, set(), tables.view, source=moved.fanout_source,
                                   now_ms=NOW_MS)
    assert len(changes) == 2
    assert changes[0]["before"] is None
    assert changes[0]["after"]["postcode"] == "AN9 9ZZ"


def test_no_fan_out_to_a_deleted_or_unrelated_employee() -> None:
    source = ChangeSource("f", FILE_2.sha, 2, "C", FILE_2.run, "LCA", 5)
    state = fanned_out_employee(Tables())
    assert work_address_changes(state, VPD, {"399999"}, {"499999"}, NoReference(), source=source,
                                now_ms=NOW_MS) == []
    assert work_address_changes(state, "888", {"300001"}, set(), NoReference(), source=source, now_ms=NOW_MS) == []
    tombstone = EmployeeState(vpd=VPD, person_id="600001", deleted=True)
    assert work_address_changes(tombstone, VPD, {"300001"}, set(), NoReference(), source=source,
                                now_ms=NOW_MS) == []
