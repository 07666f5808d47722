"""Person-scoped records -> typed change events, one event type at a time."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import pytest

from esr.codec.serde import Decoder, Encoder
from esr.format.layouts import EntityType
from streams.domain import (
    EmployeeOutcome,
    EmployeeState,
    InputRecord,
    NoReference,
    ReferenceView,
    apply_changes,
    apply_employee_batch,
    employee_snapshot,
    encode_state,
    primary_assignment,
    work_address,
)
from tests.unit.streams.domain.builders import (
    FILE_1,
    FILE_2,
    FILE_3,
    NOW_MS,
    PERSON_ID,
    VPD,
    D,
    File,
    Stream,
    address,
    assignment,
    costing,
    event,
    event_types,
    person,
    phone,
    vehicle,
)

E = EntityType


class Reference:
    """A ReferenceView over plain dicts."""

    def __init__(self, locations: Mapping[str, Mapping[str, Any]] | None = None,
                 organisations: Mapping[str, Mapping[str, Any]] | None = None) -> None:
        self.locations = dict(locations or {})
        self.organisations = dict(organisations or {})

    def location(self, vpd: str, location_id: str) -> Mapping[str, Any] | None:
        assert vpd == VPD
        return self.locations.get(location_id)

    def organisation(self, vpd: str, organisation_id: str) -> Mapping[str, Any] | None:
        assert vpd == VPD
        return self.organisations.get(organisation_id)

    def position(self, _vpd: str, _position_id: str) -> Mapping[str, Any] | None:
        return None


class Employee:
    """One employee's stream: feeds records and keeps the state the shell would keep."""

    def __init__(self, reference: ReferenceView | None = None) -> None:
        self.stream = Stream()
        self.state: EmployeeState | None = None
        self.reference: ReferenceView = reference or NoReference()
        self.last: EmployeeOutcome | None = None

    def feed(self, *events: dict[str, Any]) -> list[dict[str, Any]]:
        return self.apply(self.stream.records(*events))

    def apply(self, records: list[InputRecord]) -> list[dict[str, Any]]:
        outcome = apply_employee_batch(self.state, records, self.reference, now_ms=NOW_MS)
        assert outcome.rejected == []
        self.last = outcome
        self.state = outcome.state
        for change in outcome.changes:
            assert apply_changes(change["before"], change["changes"]) == (change["after"] or {})
        return outcome.changes

    def upsert(self, entity: EntityType, values: dict[str, Any], file: File = FILE_1, line: int = 2) -> list[
            dict[str, Any]]:
        return self.feed(event(entity, values, file=file, line=line))

    def delete(self, entity: EntityType, entity_id: str, file: File = FILE_2, line: int = 2) -> list[dict[str, Any]]:
        return self.feed(event(entity, None, entity_id=entity_id, file=file, line=line))


def hired(*children: tuple[EntityType, dict[str, Any]], reference: ReferenceView | None = None) -> Employee:
    """An employee whose full file (FILE_1) has been applied: the person and `children`."""
    employee = Employee(reference)
    employee.feed(event(E.PERSON, person(), line=2),
                  *(event(entity, values, line=n) for n, (entity, values) in enumerate(children, 3)))
    return employee


def only(changes: list[dict[str, Any]]) -> dict[str, Any]:
    assert len(changes) == 1, event_types(changes)
    return changes[0]


def fields(change: dict[str, Any]) -> dict[str, tuple[str | None, str | None]]:
    return {c["field"]: (c["old"], c["new"]) for c in change["changes"]}


# -- person ------------------------------------------------------------------------------------------------

def test_new_starter() -> None:
    employee = Employee()
    change = only(employee.feed(event(E.PERSON, person(), line=7)))
    assert change["event_type"] == "NEW_STARTER"
    assert change["op"] == "c"
    assert (change["entity_type"], change["entity_id"], change["person_id"]) == ("PERSON", PERSON_ID, PERSON_ID)
    assert change["employee_number"] == "20001234"
    assert change["vpd"] == VPD
    assert change["before"] is None
    assert change["after"]["last_name"] == "Jones"
    assert change["after"]["date_of_birth"] == "1990-01-15"
    assert change["after"]["last_update_date"] == "2024-02-29T10:10:10"
    assert "middle_names" not in change["after"]  # nulls are left out
    assert change["effective_date"] == D(2020, 1, 1)  # the hire date
    assert change["source"]["line_no"] == 7
    assert change["source"]["record_code"] == "PRA"
    assert change["source"]["topic"] == "esr.records"
    assert change["source"]["offset"] == 0
    assert change["ts_ms"] == NOW_MS
    assert employee.state is not None
    assert employee.state.first_sha == FILE_1.sha


def test_unchanged_resent_person_emits_nothing() -> None:
    employee = hired()
    assert employee.upsert(E.PERSON, person(), FILE_2) == []
    # a new Last Update Date alone is no change either
    assert employee.upsert(E.PERSON, person(last_update_date=dt.datetime(2024, 3, 2, 9, 0)), FILE_3) == []


def test_leaver() -> None:
    employee = hired()
    change = only(employee.upsert(E.PERSON, person(termination_date=D(2024, 3, 31),
                                                   termination_reason="Resignation"), FILE_2))
    assert change["event_type"] == "LEAVER"
    assert change["op"] == "u"
    assert change["effective_date"] == D(2024, 3, 31)
    assert fields(change) == {"termination_date": (None, "2024-03-31"), "termination_reason": (None, "Resignation")}
    # a later change of the date is an update, not a second LEAVER
    change = only(employee.upsert(E.PERSON, person(termination_date=D(2024, 4, 30),
                                                   termination_reason="Resignation"), FILE_3))
    assert change["event_type"] == "PERSON_UPDATED"


def test_surname_change_on_a_new_version_is_one_chain() -> None:
    """As ESR sends it: the old version end-dated, then the new version (esr.generate.changes)."""
    employee = hired()
    old = person(effective_end=D(2024, 3, 1))
    new = person(effective_start=D(2024, 3, 2), last_name="Smith", previous_last_name="Jones", title="Mrs.",
                 maiden_name="Jones", marital_status="Married")
    changes = employee.feed(event(E.PERSON, old, file=FILE_3, line=2), event(E.PERSON, new, file=FILE_3, line=3))
    assert event_types(changes) == ["SURNAME_CHANGED", "NAME_CHANGED", "PERSON_UPDATED"]
    surname, name, updated = changes
    assert fields(surname) == {
        "last_name": ("Jones", "Smith"), "previous_last_name": (None, "Jones"),
        "effective_start": ("2020-01-01", "2024-03-02"), "effective_end": ("2024-03-01", None),
    }
    assert fields(name) == {"title": ("Ms.", "Mrs."), "maiden_name": (None, "Jones")}
    assert fields(updated) == {"marital_status": (None, "Married")}
    assert surname["effective_date"] == D(2024, 3, 2)
    # a chain: each event starts where the previous one ended, the last ends at the new view
    assert surname["after"] == name["before"]
    assert name["after"] == updated["before"]
    assert updated["after"]["last_name"] == "Smith"
    assert len({c["event_id"] for c in changes}) == 3


def test_name_changed() -> None:
    employee = hired()
    change = only(employee.upsert(E.PERSON, person(first_name="Anne", preferred_name="Annie"), FILE_2))
    assert change["event_type"] == "NAME_CHANGED"
    assert fields(change) == {"first_name": ("Ann", "Anne"), "preferred_name": (None, "Annie")}


def test_person_updated() -> None:
    employee = hired()
    change = only(employee.upsert(E.PERSON, person(email="ann@example.org"), FILE_2))
    assert change["event_type"] == "PERSON_UPDATED"
    assert change["effective_date"] == D(2020, 1, 1)


def test_leaver_with_other_changes_is_split() -> None:
    employee = hired()
    changes = employee.upsert(E.PERSON, person(termination_date=D(2024, 3, 31), last_name="Smith",
                                               email="x@example.org"), FILE_2)
    assert event_types(changes) == ["LEAVER", "SURNAME_CHANGED", "PERSON_UPDATED"]
    assert changes[0]["before"] == hired().state.person("2024-03-02")  # type: ignore[union-attr]
    assert changes[-1]["after"]["email"] == "x@example.org"


def test_future_dated_version_is_reported_when_it_arrives() -> None:
    employee = hired()
    future = person(effective_start=D(2024, 6, 1), last_name="Smith")
    change = only(employee.upsert(E.PERSON, future, FILE_2))
    assert change["event_type"] == "SURNAME_CHANGED"
    assert change["effective_date"] == D(2024, 6, 1)
    assert change["before"]["last_name"] == "Jones"
    assert employee.state is not None
    assert employee.state.person("2024-03-02")["last_name"] == "Jones"  # type: ignore[index]
    assert employee.state.person("2024-06-01")["last_name"] == "Smith"  # type: ignore[index]
    # re-sent once in force: nothing new
    later = File("4" * 64, dt.datetime(2024, 6, 2), 4, "C")
    assert employee.upsert(E.PERSON, future, later) == []


def test_a_prd_removes_the_person_and_everything_under_them() -> None:
    employee = hired((E.ASSIGNMENT, assignment()), (E.ADDRESS, address()), (E.VEHICLE, vehicle()),
                     (E.PHONE, phone()), (E.COSTING, costing()))
    change = only(employee.delete(E.PERSON, PERSON_ID))
    assert change["event_type"] == "PERSON_DELETED"
    assert change["op"] == "d"
    assert change["after"] is None
    assert change["before"]["last_name"] == "Jones"
    assert change["employee_number"] == "20001234"
    assert employee.state is None
    assert employee.last is not None
    tombstone = employee.last.tombstone
    assert tombstone is not None
    assert tombstone.deleted
    assert tombstone.entities == {}


def test_child_deletes_after_a_prd_say_nothing_and_a_new_pra_starts_again() -> None:
    employee = hired((E.ASSIGNMENT, assignment()))
    changes = employee.feed(event(E.PERSON, None, entity_id=PERSON_ID, file=FILE_2, line=2),
                            event(E.ASSIGNMENT, None, entity_id="700001", file=FILE_2, line=3))
    assert event_types(changes) == ["PERSON_DELETED"]
    assert employee.state is None
    assert event_types(employee.upsert(E.PERSON, person(), FILE_3)) == ["NEW_STARTER"]


def test_a_prd_for_an_unknown_person_still_reports_the_delete() -> None:
    change = only(Employee().delete(E.PERSON, PERSON_ID))
    assert change["event_type"] == "PERSON_DELETED"
    assert change["before"] is None


def test_children_before_their_person_are_kept() -> None:
    employee = Employee()
    assert event_types(employee.upsert(E.ADDRESS, address())) == ["HOME_ADDRESS_ADDED"]
    assert event_types(employee.upsert(E.PERSON, person(), line=3)) == ["NEW_STARTER"]
    assert employee.state is not None
    assert set(employee.state.entities) == {"ADDRESS", "PERSON"}


# -- children ---------------------------------------------------------------------------------------------

CHILDREN = [
    (E.ADDRESS, address, "810001", "HOME_ADDRESS", {"postcode": "AN9 9ZZ"}),
    (E.PHONE, phone, "800001", "PHONE", {"phone_number": "07700 900123"}),
    (E.VEHICLE, vehicle, "820001", "VEHICLE", {"registration": "XY70ABC", "engine_cc": Decimal("1998.000")}),
    (E.COSTING, costing, "830001", "COSTING", {"cost_centre": "999C002", "percentage": Decimal("50.00")}),
]


@pytest.mark.parametrize(("entity", "build", "entity_id", "prefix", "change"), CHILDREN,
                         ids=[c[3] for c in CHILDREN])
def test_child_added_changed_ended_deleted(entity: EntityType, build: Any, entity_id: str, prefix: str,
                                           change: dict[str, Any]) -> None:
    employee = hired()
    added = only(employee.upsert(entity, build(), FILE_1, line=9))
    assert (added["event_type"], added["op"]) == (f"{prefix}_ADDED", "c")
    assert added["entity_id"] == entity_id
    assert added["employee_number"] == "20001234"
    assert added["effective_date"] == D(2020, 1, 1)
    assert employee.upsert(entity, build(), FILE_2) == []

    changed = only(employee.upsert(entity, build(**change), FILE_2, line=3))
    assert changed["event_type"] == f"{prefix}_CHANGED"
    assert set(fields(changed)) == set(change)

    ended = only(employee.upsert(entity, build(**change, effective_end=D(2024, 3, 10)), FILE_3))
    assert ended["event_type"] == f"{prefix}_ENDED"
    assert ended["effective_date"] == D(2024, 3, 10)
    assert fields(ended) == {"effective_end": (None, "2024-03-10")}

    deleted = only(employee.delete(entity, entity_id, FILE_3, line=3))
    assert (deleted["event_type"], deleted["op"]) == (f"{prefix}_DELETED", "d")
    assert deleted["after"] is None
    assert deleted["before"]["effective_end"] == "2024-03-10"
    assert employee.delete(entity, entity_id, FILE_3, line=4) == []  # already gone: nothing more to say


def test_an_end_of_time_end_date_is_open() -> None:
    employee = hired((E.PHONE, phone()))
    change = only(employee.upsert(E.PHONE, phone(effective_end=D(4712, 12, 31)), FILE_2))
    assert change["event_type"] == "PHONE_CHANGED"


def test_vehicle_decimal_keeps_its_scale() -> None:
    employee = hired()
    change = only(employee.upsert(E.VEHICLE, vehicle(engine_cc=Decimal("1.600")), FILE_1, line=3))
    assert change["after"]["engine_cc"] == "1.600"


# -- assignments ----------------------------------------------------------------------------------------

def test_assignment_started_changed_ended() -> None:
    employee = hired()
    started = only(employee.upsert(E.ASSIGNMENT, assignment(), FILE_1, line=3))
    assert (started["event_type"], started["op"]) == ("ASSIGNMENT_STARTED", "c")
    assert started["after"]["normal_hours"] == "37.50000"
    changed = only(employee.upsert(E.ASSIGNMENT, assignment(grade="XN06|Band 6"), FILE_2))
    assert changed["event_type"] == "ASSIGNMENT_CHANGED"
    ended = only(employee.upsert(E.ASSIGNMENT, assignment(
        grade="XN06|Band 6", effective_end=D(2024, 3, 2), assignment_end_date=D(2024, 3, 2),
        system_assignment_status="TERM_ASSIGN"), FILE_3))
    assert ended["event_type"] == "ASSIGNMENT_ENDED"
    assert ended["effective_date"] == D(2024, 3, 2)
    deleted, primary = employee.delete(E.ASSIGNMENT, "700001", FILE_3, line=3)
    assert deleted["event_type"] == "ASSIGNMENT_DELETED"
    assert primary["event_type"] == "PRIMARY_ASSIGNMENT_CHANGED"  # the person has no primary assignment left
    assert primary["after"] == {}


def test_an_assignment_version_closed_then_continued_is_no_end() -> None:
    """ESR date-tracks assignments: the old version re-sent end-dated, then the version that continues it."""
    employee = hired((E.ASSIGNMENT, assignment()))
    changes = employee.feed(event(E.ASSIGNMENT, assignment(effective_end=D(2024, 3, 1)), file=FILE_2, line=2),
                            event(E.ASSIGNMENT, assignment(effective_start=D(2024, 3, 2), grade="B6"), file=FILE_2,
                                  line=3))
    assert event_types(changes) == ["ASSIGNMENT_CHANGED", "ASSIGNMENT_CHANGED"]
    assert changes[1]["after"]["grade"] == "B6"
    assert "ASSIGNMENT_ENDED" not in event_types(changes)


def test_a_terminated_status_ends_the_assignment() -> None:
    employee = hired((E.ASSIGNMENT, assignment()))
    change = only(employee.upsert(E.ASSIGNMENT, assignment(system_assignment_status="TERM_ASSIGN"), FILE_2))
    assert change["event_type"] == "ASSIGNMENT_ENDED"


def test_an_assignment_delete_does_not_cascade() -> None:
    employee = hired((E.ASSIGNMENT, assignment()), (E.ASSIGNMENT, assignment("700002", primary_assignment="No")),
                     (E.VEHICLE, vehicle(assignment_id="700002")))
    assert event_types(employee.delete(E.ASSIGNMENT, "700002")) == ["ASSIGNMENT_DELETED"]
    assert employee.state is not None
    assert "820001" in employee.state.entities["VEHICLE"]


# -- primary assignment (Q17) -----------------------------------------------------------------------------

def state_with(*assignments: dict[str, Any]) -> EmployeeState:
    employee = hired(*((E.ASSIGNMENT, values) for values in assignments))
    assert employee.state is not None
    return employee.state


RUN = "2024-03-01"


def test_primary_is_the_single_active_yes() -> None:
    state = state_with(assignment("1", primary_assignment="No", effective_start=D(2023, 1, 1)),
                       assignment("2", primary_assignment="Yes", effective_start=D(2020, 1, 1)))
    assert primary_assignment(state, RUN) == "2"


def test_primary_flag_is_case_insensitive() -> None:
    state = state_with(assignment("1", primary_assignment="No", effective_start=D(2023, 1, 1)),
                       assignment("2", primary_assignment="YES"))
    assert primary_assignment(state, RUN) == "2"


def test_two_yes_fall_back_to_the_latest_start() -> None:
    state = state_with(assignment("1", effective_start=D(2021, 1, 1)), assignment("2", effective_start=D(2022, 1, 1)),
                       assignment("3", primary_assignment="No", effective_start=D(2023, 1, 1)))
    assert primary_assignment(state, RUN) == "2"


def test_no_yes_falls_back_to_the_latest_active_start() -> None:
    state = state_with(
        assignment("1", primary_assignment="No", effective_start=D(2021, 1, 1)),
        assignment("2", primary_assignment="No", effective_start=D(2022, 1, 1)),
        assignment("3", primary_assignment="No", effective_start=D(2023, 1, 1), effective_end=D(2024, 1, 1)),
    )
    assert primary_assignment(state, RUN) == "2"


def test_an_ended_yes_gives_way_to_an_active_yes() -> None:
    state = state_with(assignment("1", effective_end=D(2024, 2, 1), effective_start=D(2023, 1, 1)),
                       assignment("2", effective_start=D(2019, 1, 1)))
    assert primary_assignment(state, RUN) == "2"


def test_a_single_ended_yes_stays_primary() -> None:
    """One flag is no ambiguity: the assignments of a file's rows ending one by one must not move it."""
    state = state_with(assignment("1", effective_end=D(2024, 2, 1)),
                       assignment("2", primary_assignment="No", effective_start=D(2023, 1, 1)))
    assert primary_assignment(state, RUN) == "1"


def test_without_a_flag_the_latest_active_start_wins_over_ended_ones() -> None:
    state = state_with(assignment("1", primary_assignment="No", effective_start=D(2023, 1, 1),
                                  effective_end=D(2024, 2, 1)),
                       assignment("2", primary_assignment="No", effective_start=D(2019, 1, 1)))
    assert primary_assignment(state, RUN) == "2"


def test_when_every_assignment_has_ended_the_flagged_one_stays_primary() -> None:
    state = state_with(assignment("1", effective_end=D(2024, 2, 1)),
                       assignment("2", primary_assignment="No", effective_start=D(2023, 1, 1),
                                  effective_end=D(2024, 2, 1)))
    assert primary_assignment(state, RUN) == "1"


def test_ties_go_to_the_highest_id_whatever_the_order() -> None:
    ids = ["9", "10", "100"]
    for order in (ids, ids[::-1]):
        state = state_with(*(assignment(i, primary_assignment="No") for i in order))
        assert primary_assignment(state, RUN) == "100"


def test_primary_assignment_changed_in_a_later_file() -> None:
    employee = hired((E.ASSIGNMENT, assignment("1", assignment_number="20001234")),
                     (E.ASSIGNMENT, assignment("2", primary_assignment="No", assignment_number="20001234-2")))
    assert employee.state is not None
    assert employee.state.primary_assignment_id == "1"
    changes = employee.feed(
        event(E.ASSIGNMENT, assignment("1", primary_assignment="No", assignment_number="20001234"), file=FILE_2),
        event(E.ASSIGNMENT, assignment("2", assignment_number="20001234-2"), file=FILE_2, line=3))
    # after the first record no assignment says Yes: the tie of starts goes to the highest id, already "2"
    assert event_types(changes) == ["ASSIGNMENT_CHANGED", "PRIMARY_ASSIGNMENT_CHANGED", "ASSIGNMENT_CHANGED"]
    primary = changes[1]
    assert (primary["entity_type"], primary["entity_id"]) == ("PERSON", PERSON_ID)
    assert primary["before"] == {"primary_assignment_id": "1", "primary_assignment_number": "20001234"}
    assert primary["after"] == {"primary_assignment_id": "2", "primary_assignment_number": "20001234-2"}


def test_the_primary_is_established_silently_in_the_first_file() -> None:
    employee = Employee()
    changes = employee.feed(event(E.PERSON, person()),
                            event(E.ASSIGNMENT, assignment("2", primary_assignment="No"), line=3),
                            event(E.ASSIGNMENT, assignment("1"), line=4))
    assert "PRIMARY_ASSIGNMENT_CHANGED" not in event_types(changes)
    assert employee.state is not None
    assert employee.state.primary_assignment_id == "1"


def test_deleting_the_primary_moves_it() -> None:
    employee = hired((E.ASSIGNMENT, assignment("1")),
                     (E.ASSIGNMENT, assignment("2", primary_assignment="No")))
    changes = employee.delete(E.ASSIGNMENT, "1")
    assert event_types(changes) == ["ASSIGNMENT_DELETED", "PRIMARY_ASSIGNMENT_CHANGED"]
    assert changes[1]["after"]["primary_assignment_id"] == "2"


# -- work address -------------------------------------------------------------------------------------------

LOCATIONS = {
    "300001": {"location_id": "300001", "description": "Main Hospital", "address_line_1": "1 Hospital Road",
               "town": "Anytown", "postcode": "AN1 1AA"},
    "300002": {"location_id": "300002", "description": "Clinic", "address_line_1": "5 Clinic Lane",
               "town": "Othertown", "postcode": "OT1 1AA"},
}
ORGANISATIONS = {"400001": {"organisation_id": "400001", "location_id": "300001"},
                 "400002": {"organisation_id": "400002", "location_id": "300002"},
                 "400003": {"organisation_id": "400003", "location_id": "300002"}}


def test_work_address_is_the_assignment_location_else_its_organisation_location() -> None:
    reference = Reference(LOCATIONS, ORGANISATIONS)
    direct = work_address(VPD, {"location_id": "300001", "organisation_id": "400002", "assignment_number": "1"},
                          reference)
    assert direct == {"location_id": "300001", "via": "ASSIGNMENT", "assignment_number": "1",
                      "description": "Main Hospital", "line1": "1 Hospital Road", "town": "Anytown",
                      "postcode": "AN1 1AA"}
    fallback = work_address(VPD, {"organisation_id": "400002"}, reference)
    assert fallback is not None
    assert (fallback["location_id"], fallback["via"], fallback["line1"]) == ("300002", "ORGANISATION", "5 Clinic Lane")
    assert work_address(VPD, {"organisation_id": "499999"}, reference) is None
    assert work_address(VPD, {}, reference) is None
    assert work_address(VPD, {"location_id": "399999"}, reference) == {"location_id": "399999", "via": "ASSIGNMENT"}


def test_a_new_location_on_the_assignment_changes_the_work_address() -> None:
    employee = hired((E.ASSIGNMENT, assignment()), reference=Reference(LOCATIONS, ORGANISATIONS))
    changes = employee.upsert(E.ASSIGNMENT, assignment(location_id="300002"), FILE_2)
    assert event_types(changes) == ["ASSIGNMENT_CHANGED", "WORK_ADDRESS_CHANGED"]
    work = changes[1]
    assert (work["entity_type"], work["entity_id"]) == ("ASSIGNMENT", "700001")
    assert fields(work)["line1"] == ("1 Hospital Road", "5 Clinic Lane")


def test_work_address_through_the_organisation() -> None:
    employee = hired((E.ASSIGNMENT, assignment(location_id=None)), reference=Reference(LOCATIONS, ORGANISATIONS))
    changes = employee.upsert(E.ASSIGNMENT, assignment(location_id=None, organisation_id="400002"), FILE_2)
    assert event_types(changes) == ["ASSIGNMENT_CHANGED", "WORK_ADDRESS_CHANGED"]
    assert changes[1]["before"]["via"] == "ORGANISATION"
    assert fields(changes[1])["location_id"] == ("300001", "300002")
    # another organisation at the same location: no work address change
    changes = employee.upsert(E.ASSIGNMENT, assignment(location_id=None, organisation_id="400003"), FILE_3)
    assert event_types(changes) == ["ASSIGNMENT_CHANGED"]


def test_an_organisation_change_under_an_assignment_location_is_no_work_address_change() -> None:
    employee = hired((E.ASSIGNMENT, assignment()), reference=Reference(LOCATIONS, ORGANISATIONS))
    assert event_types(employee.upsert(E.ASSIGNMENT, assignment(organisation_id="400002"), FILE_2)) == [
        "ASSIGNMENT_CHANGED"]


# -- the seam's contract --------------------------------------------------------------------------------------

def test_the_input_state_is_never_changed() -> None:
    employee = hired((E.ASSIGNMENT, assignment()))
    assert employee.state is not None
    before = encode_state(employee.state)
    records = Stream(offset=100).records(event(E.ASSIGNMENT, assignment(grade="B7"), file=FILE_2),
                                         event(E.PERSON, None, entity_id=PERSON_ID, file=FILE_2, line=3))
    apply_employee_batch(employee.state, records, NoReference(), now_ms=NOW_MS)
    assert encode_state(employee.state) == before


def test_records_of_another_key_or_type_are_rejected() -> None:
    employee = hired()
    foreign = event(E.PERSON, person(person_id="600002"), file=FILE_2)
    reference = event(E.LOCATION, {"location_id": "1", "description": "x"}, file=FILE_2, line=3)
    records = Stream(offset=10).records(foreign, reference, event(E.PERSON, person(email="e@x"), file=FILE_2, line=4))
    outcome = apply_employee_batch(employee.state, records, NoReference(), now_ms=NOW_MS)
    assert [reason for _, reason in outcome.rejected] == [
        "record for 999:600002 in the batch of 999:600001", "LOCATION is not person-scoped"]
    assert event_types(outcome.changes) == ["PERSON_UPDATED"]


def test_a_record_without_a_person_id_is_rejected() -> None:
    orphan = event(E.ASSIGNMENT, None, entity_id="700009", person_id=None, file=FILE_2)
    outcome = apply_employee_batch(None, Stream().records(orphan), NoReference(), now_ms=NOW_MS)
    assert [reason for _, reason in outcome.rejected] == [
        "no person id (the owner of a child delete row was not resolved)"]
    assert outcome.changes == []


def test_employee_snapshot() -> None:
    employee = hired((E.ASSIGNMENT, assignment()))
    employee.upsert(E.PERSON, person(effective_start=D(2024, 6, 1), last_name="Smith"), FILE_2)
    assert employee.state is not None
    snapshot = employee_snapshot(employee.state)
    assert json.loads(json.dumps(snapshot)) == snapshot
    person_entry = snapshot["entities"]["PERSON"][PERSON_ID]
    assert person_entry["current"]["last_name"] == "Jones"  # as of the run date of the last file
    assert set(person_entry["versions"]) == {"2020-01-01", "2024-06-01"}
    assert person_entry["last_file_sha256"] == FILE_2.sha
    assert employee_snapshot(employee.state, D(2024, 7, 1))["entities"]["PERSON"][PERSON_ID]["current"][
        "last_name"] == "Smith"
    assert snapshot["primary_assignment_id"] == "700001"
    assert "journal" not in snapshot


def test_every_event_encodes_and_decodes() -> None:
    employee = hired((E.ASSIGNMENT, assignment()), (E.ADDRESS, address()), (E.PHONE, phone()),
                     (E.VEHICLE, vehicle()), (E.COSTING, costing()), reference=Reference(LOCATIONS, ORGANISATIONS))
    employee.upsert(E.PERSON, person(termination_date=D(2024, 3, 5), last_name="Smith"), FILE_2)
    employee.upsert(E.ASSIGNMENT, assignment(location_id="300002"), FILE_2, line=3)
    employee.delete(E.PERSON, PERSON_ID, FILE_3)
    encoder, decoder = Encoder("change-event"), Decoder("change-event")
    # regenerate everything the employee said, from scratch, and check it round-trips
    replayed = Employee(Reference(LOCATIONS, ORGANISATIONS))
    changes = replayed.apply(employee.stream.log)
    assert len(changes) > 8
    for change in changes:
        decoded = decoder.decode(encoder.encode(change))
        assert decoded == change
