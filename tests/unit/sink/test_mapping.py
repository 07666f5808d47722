"""The sink's pure part: change events -> typed rows of the read model (no Kafka, no PostgreSQL)."""

from __future__ import annotations

import datetime as dt
import json
import re
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from connectors.sink.mapping import (
    BY_NAME,
    CHANGE_EVENT_COLUMNS,
    END_OF_FILE,
    NO_SEQUENCE,
    TABLES,
    UK,
    Cascade,
    Consumed,
    Tombstone,
    UnmappableEvent,
    Upsert,
    change_event_row,
    json_changes,
    plan,
    position_of,
    state_write,
    to_flag,
)
from esr.format.layouts import LAYOUTS
from tests import sink_events as ev

# DESIGN §5: the required columns of every current-state table (a public contract).
REQUIRED = {
    "person": "employee_number title first_name middle_names last_name maiden_name preferred_name previous_last_name "
              "gender date_of_birth ni_number email hire_date termination_date effective_start effective_end",
    "assignment": "person_id assignment_number is_primary assignment_status job_name position_id position_name grade "
                  "organisation_id location_id supervisor_person_id effective_start effective_end "
                  "assignment_end_date",
    "home_address": "person_id line1 line2 line3 town county postcode country is_primary effective_start "
                    "effective_end",
    "phone": "person_id phone_type phone_number effective_start effective_end",
    "vehicle": "person_id assignment_id registration make model ownership fuel_type engine_cc user_rates_table "
               "effective_start effective_end",
    "costing": "person_id assignment_id cost_centre subjective percentage effective_start effective_end",
    "location": "code description line1 line2 line3 town county postcode country inactive_date",
    "organisation": "name type cost_centre parent_organisation_id location_id",
    "position": "position_number name job_role staff_group organisation_id",
}
KEYS = {"person": "person_id", "assignment": "assignment_id", "home_address": "address_id", "phone": "phone_id",
        "vehicle": "vehicle_allocation_id", "costing": "costing_id", "location": "location_id",
        "organisation": "organisation_id", "position": "position_id"}
CHANGE_EVENT_REQUIRED = ("event_id vpd person_id event_type entity_type entity_id changes effective_date file_name "
                         "line_no")


def row_of(upsert: Any) -> dict[str, Any]:
    assert isinstance(upsert, Upsert)
    return dict(zip(upsert.table.columns, upsert.row, strict=True))


def consumed(*events: dict[str, Any]) -> list[Consumed]:
    return [Consumed(event, "esr.changes", 0, offset) for offset, event in enumerate(events)]


# -- the tables -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("table", sorted(REQUIRED))
def test_every_required_column_is_filled(table: str) -> None:
    spec = BY_NAME[table]
    assert spec.columns[:2] == ("vpd", KEYS[table])
    assert set(REQUIRED[table].split()) <= set(spec.columns)


def test_change_event_columns() -> None:
    assert set(CHANGE_EVENT_REQUIRED.split()) - {"recorded_at"} <= set(CHANGE_EVENT_COLUMNS)


def test_every_layout_field_has_a_column() -> None:
    assert {spec.layout.code for spec in TABLES} == {layout.code for layout in LAYOUTS}
    for spec in TABLES:
        mapped = {name for column in spec.data_columns for name in column.fields}
        fields = {f.name for f in spec.layout.data_fields} - {spec.key_column}
        assert fields <= mapped, spec.name
        assert len(set(spec.columns)) == len(spec.columns), spec.name


# -- values -----------------------------------------------------------------------------------------------

def test_person_row_types_and_absent_fields() -> None:
    event = ev.change("PERSON", "100", "NEW_STARTER", after=ev.person("100", email="a@b.nhs.uk"), person_id="100",
                      sequence=7, line_no=12)
    write, cascade = state_write(event)
    assert cascade is None
    row = row_of(write)
    assert row["vpd"] == "999"
    assert row["person_id"] == "100"
    assert row["last_name"] == "Smith"
    assert row["date_of_birth"] == dt.date(1985, 3, 2)
    assert row["last_update_date"] == dt.datetime(2024, 2, 29, 10, 10, 10)
    assert row["email"] == "a@b.nhs.uk"
    assert row["termination_date"] is None  # absent from `after` = null
    assert row["maiden_name"] is None
    assert (row["src_sequence"], row["src_line_no"]) == (7, 12)
    assert row["src_file_sha256"] == ev.sha_of(7)
    assert row["last_event_id"] == event["event_id"]
    assert row["last_event_type"] == "NEW_STARTER"
    assert isinstance(write, Upsert)
    assert write.position == (7, 12)


def test_renamed_columns_and_derived_flags() -> None:
    location = row_of(state_write(ev.change("LOCATION", "300", "LOCATION_ADDED", after=ev.location("300")))[0])
    assert (location["code"], location["line1"], location["description"]) == ("L300", "1 Hospital Road", "St Elsewhere")
    organisation = row_of(state_write(ev.change(
        "ORGANISATION", "400", "ORGANISATION_ADDED",
        after=ev.organisation("400", default_cost_centre="CC1", location_id="300")))[0])
    assert (organisation["type"], organisation["cost_centre"], organisation["location_id"]) == ("Ward", "CC1", "300")
    position = row_of(state_write(ev.change("POSITION", "500", "POSITION_ADDED", after=ev.position("500")))[0])
    assert (position["name"], position["staff_group"], position["position_number"]) == ("Staff Nurse", "Nursing",
                                                                                       7000001)
    address = row_of(state_write(ev.change("ADDRESS", "20", "HOME_ADDRESS_ADDED", after=ev.address("1", "20"),
                                           person_id="1"))[0])
    assert (address["line1"], address["is_primary"]) == ("1 High Street", True)
    assignment = row_of(state_write(ev.change(
        "ASSIGNMENT", "11", "ASSIGNMENT_STARTED", after=ev.assignment("1", "11", primary_assignment="No"),
        person_id="1"))[0])
    assert assignment["is_primary"] is False
    assert assignment["assignment_status"] == "ACTIVE_ASSIGN"
    assert assignment["normal_hours"] == Decimal("37.50000")
    # the stream app's own decision, when the event carries it, wins over the record's flag
    derived = row_of(state_write(ev.change(
        "ASSIGNMENT", "11", "PRIMARY_ASSIGNMENT_CHANGED",
        after={**ev.assignment("1", "11", primary_assignment="No"), "is_primary": "true"}, person_id="1"))[0])
    assert derived["is_primary"] is True


def test_vehicle_engine_litres_kept_exact() -> None:
    row = row_of(state_write(ev.change("VEHICLE", "30", "VEHICLE_ADDED", after=ev.vehicle("1", "11", "30",
                                                                                      engine_cc="1.600")))[0])
    assert row["engine_cc"] == Decimal("1.600")


def test_child_row_takes_the_envelope_person_when_after_lacks_it() -> None:
    after = ev.phone("1", "40")
    del after["person_id"]
    row = row_of(state_write(ev.change("PHONE", "40", "PHONE_ADDED", after=after, person_id="1"))[0])
    assert row["person_id"] == "1"


@pytest.mark.parametrize(("field", "value"), [
    ("date_of_birth", "1985-02-30"), ("hire_date", "yesterday"), ("last_update_date", "2024-02-29 25:00:00"),
])
def test_a_value_that_does_not_parse_is_unmappable(field: str, value: str) -> None:
    event = ev.change("PERSON", "1", "PERSON_UPDATED", after=ev.person("1", **{field: value}), person_id="1")
    with pytest.raises(UnmappableEvent, match=re.escape(f"person.{field}: '{value}' does not parse")):
        state_write(event)


@pytest.mark.parametrize("value", ["NaN", "Infinity", "12,5", ""])
def test_decimals_must_be_finite_numbers(value: str) -> None:
    event = ev.change("COSTING", "50", "COSTING_ADDED", after=ev.costing("1", "11", "50", percentage=value),
                      person_id="1")
    with pytest.raises(UnmappableEvent, match=r"costing\.percentage"):
        state_write(event)


@pytest.mark.parametrize(("text", "flag"), [("Yes", True), ("YES", True), ("y", True), ("true", True),
                                            ("No", False), ("N", False), ("false", False), (" no ", False)])
def test_flags(text: str, flag: bool) -> None:
    assert to_flag(text) is flag


def test_a_flag_that_is_neither() -> None:
    with pytest.raises(ValueError, match="Yes/No"):
        to_flag("Maybe")


# -- what an event does to state ----------------------------------------------------------------------------

@pytest.mark.parametrize("event_type", ["WORK_ADDRESS_CHANGED", "ABSENT_FROM_FULL_FILE", "UNKNOWN"])
def test_history_only_events(event_type: str) -> None:
    event = ev.change("ASSIGNMENT", "11", event_type, after=ev.assignment("1", "11"), person_id="1")
    assert state_write(event) == (None, None)


def test_an_after_that_is_not_the_entity_writes_no_state() -> None:
    event = ev.change("ASSIGNMENT", "11", "PRIMARY_ASSIGNMENT_CHANGED", after={"primary_assignment_id": "12"},
                      person_id="1")
    assert state_write(event) == (None, None)
    assert state_write(ev.change("PHONE", "40", "PHONE_ENDED", person_id="1")) == (None, None)  # no after


def test_deletes_are_tombstones_at_the_run_date() -> None:
    event = ev.change("VEHICLE", "30", "VEHICLE_DELETED", person_id="1", sequence=3, line_no=9, op="d")
    write, cascade = state_write(event)
    assert isinstance(write, Tombstone)
    assert cascade is None
    assert write.table.name == "vehicle"
    assert (write.vpd, write.entity_id, write.person_id) == ("999", "30", "1")
    assert write.provenance.position == (3, 9)
    assert write.deleted_at == dt.datetime(2024, 3, 1, 7, 15, 3, tzinfo=UK)


def test_a_replayed_delete_is_still_a_delete() -> None:
    write, _ = state_write(ev.change("PHONE", "40", "PHONE_DELETED", person_id="1", op="r"))
    assert isinstance(write, Tombstone)


def test_person_deleted_cascades() -> None:
    event = ev.change("PERSON", "1", "PERSON_DELETED", person_id="1", sequence=4, line_no=2, op="d")
    write, cascade = state_write(event)
    assert isinstance(write, Tombstone)
    assert write.table.name == "person"
    assert isinstance(cascade, Cascade)
    assert (cascade.vpd, cascade.person_id, cascade.provenance.position) == ("999", "1", (4, 2))


def test_positions() -> None:
    assert position_of({"sequence": 5, "line_no": 7}) == (5, 7)
    assert position_of({"sequence": 5, "line_no": None}) == (5, END_OF_FILE)  # the file as a whole: its end
    assert position_of({"sequence": None, "line_no": 7}) == (NO_SEQUENCE, 7)


def test_a_delete_without_run_date_uses_the_processing_time() -> None:
    event = ev.change("PHONE", "40", "PHONE_DELETED", person_id="1", run_date=None)
    write, _ = state_write(event)
    assert isinstance(write, Tombstone)
    assert write.deleted_at == dt.datetime.fromtimestamp(event["ts_ms"] / 1000, dt.UTC)


# -- change_event rows ------------------------------------------------------------------------------------

def test_change_event_row() -> None:
    event = ev.change("PERSON", "1", "SURNAME_CHANGED", before=ev.person("1"), after=ev.person("1", "Jones"),
                      person_id="1", employee_number="E1", sequence=2, line_no=5, op="u",
                      effective_date=dt.date(2024, 2, 1), record_code="PRA")
    row = dict(zip(CHANGE_EVENT_COLUMNS, change_event_row(Consumed(event, "esr.changes", 3, 42)), strict=True))
    assert json.loads(row["changes"]) == [{"field": "last_name", "old": "Smith", "new": "Jones"}]
    assert row["effective_date"] == dt.date(2024, 2, 1)
    assert (row["file_name"], row["line_no"], row["sequence"], row["record_code"]) == (ev.file_name(2), 5, 2, "PRA")
    assert (row["topic"], row["partition"], row["offset"]) == ("esr.changes", 3, 42)
    assert (row["input_topic"], row["input_offset"]) == ("esr.records", 5)
    assert row["event_ts"] == dt.datetime.fromtimestamp(event["ts_ms"] / 1000, dt.UTC)
    assert (row["op"], row["employee_number"]) == ("u", "E1")


_TEXT = st.one_of(st.none(), st.text())


@given(st.lists(st.fixed_dictionaries({"field": st.text(), "old": _TEXT, "new": _TEXT})))
def test_json_changes_is_json(changes: list[dict[str, str | None]]) -> None:
    assert json.loads(json_changes(changes)) == changes


# -- a batch ----------------------------------------------------------------------------------------------

def test_plan_keeps_the_newest_position_per_row() -> None:
    newer = ev.change("PERSON", "1", "SURNAME_CHANGED", after=ev.person("1", "Jones"), person_id="1", sequence=2,
                      line_no=3)
    older = ev.change("PERSON", "1", "PERSON_UPDATED", after=ev.person("1", "Older"), person_id="1", sequence=1,
                      line_no=9)
    batch = plan(consumed(newer, older))
    assert [row[batch_column("person", "last_name")] for row in batch.upserts["person"]] == ["Jones"]
    assert len(batch.change_events) == 2  # history keeps both


def test_plan_ties_go_to_the_later_event() -> None:
    first = ev.change("ASSIGNMENT", "11", "ASSIGNMENT_CHANGED", after=ev.assignment("1", "11", grade="B5"),
                      person_id="1", line_no=4)
    second = ev.change("ASSIGNMENT", "11", "PRIMARY_ASSIGNMENT_CHANGED",
                       after=ev.assignment("1", "11", grade="B6"), person_id="1", line_no=4)
    batch = plan(consumed(first, second))
    assert [row[batch_column("assignment", "grade")] for row in batch.upserts["assignment"]] == ["B6"]


def test_plan_delete_then_re_add() -> None:
    events = [
        ev.change("PHONE", "40", "PHONE_ADDED", after=ev.phone("1", "40"), person_id="1", sequence=1, line_no=2),
        ev.change("PHONE", "40", "PHONE_DELETED", person_id="1", sequence=2, line_no=2),
        ev.change("PHONE", "40", "PHONE_ADDED", after=ev.phone("1", "40", phone_number="999"), person_id="1",
                  sequence=3, line_no=2),
    ]
    batch = plan(consumed(*events))
    # the newest add, then the delete (older: the guard keeps the row live), as one at a time would
    assert [row[batch_column("phone", "phone_number")] for row in batch.upserts["phone"]] == ["999"]
    assert [(d.entity_id, d.provenance.position) for d in batch.deletes if isinstance(d, Tombstone)] == [("40", (2, 2))]
    deleted = plan(consumed(*events[:2]))
    # the add is written too: the deleted row keeps its data, whatever the batch boundaries were
    assert [row[batch_column("phone", "phone_number")] for row in deleted.upserts["phone"]] == ["0113 000 0000"]
    assert [d.entity_id for d in deleted.deletes if isinstance(d, Tombstone)] == ["40"]


def test_plan_drops_repeated_event_ids_and_refuses_unmappable_events() -> None:
    good = ev.change("PERSON", "1", "NEW_STARTER", after=ev.person("1"), person_id="1")
    bad = ev.change("PERSON", "2", "NEW_STARTER", after=ev.person("2", hire_date="2024-13-01"), person_id="2")
    malformed: dict[str, Any] = {"event_id": "x"}
    batch = plan(consumed(good, good, bad, malformed))
    assert batch.duplicates == 1
    assert len(batch.change_events) == 1
    assert [r.consumed.offset for r in batch.refused] == [2, 3]
    assert "person.hire_date" in batch.refused[0].reason
    assert "malformed change event" in batch.refused[1].reason
    assert batch.state_rows == 1


def test_plan_orders_deletes_by_position() -> None:
    events = [
        ev.change("PERSON", "1", "PERSON_DELETED", person_id="1", sequence=1, line_no=5),
        ev.change("PERSON", "1", "NEW_STARTER", after=ev.person("1"), person_id="1", sequence=2, line_no=5),
        ev.change("PERSON", "1", "PERSON_DELETED", person_id="1", sequence=3, line_no=5),
    ]
    batch = plan(consumed(*events))
    assert [(type(d).__name__, d.provenance.position) for d in batch.deletes] == [
        ("Tombstone", (1, 5)), ("Cascade", (1, 5)), ("Tombstone", (3, 5)), ("Cascade", (3, 5))]


def batch_column(table: str, column: str) -> int:
    return BY_NAME[table].columns.index(column)
