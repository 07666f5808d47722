"""streams.mapping: the mapping stage's directory (line managers across partitions, reference data,
templates, deletes) and its convergence whatever the order of its inputs."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import uuid
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from esr.codec import Decoder, Encoder
from esr.mapping.catalogue import Kind
from esr.mapping.store import default_version
from esr.mapping.template import MappingRule, MappingTemplate, UdfDefinition
from esr.mapping.transforms import Concat, Upper
from esr.mapping.versions import TemplateVersion
from esr.mapping.view import EmployeeView
from esr.profiles import DisplayWithAssignment, NhsOptions
from streams.mapping import (
    MAPPED_EVENT_NAMESPACE,
    MappingDirectory,
    Source,
    display_name,
    employee_rows,
    field_changes,
    mapped_event_id,
    nhs_fields,
)
from streams.mapping_stage import employee_key, reference_key

VPD = "999"
RUN = "2026-01-05"


def snapshot(person_id: str, *, employee_number: str | None = None, last_name: str = "Smith",
             supervisor: str | None = None, location: str | None = None, organisation: str | None = None,
             run: str = RUN, vpd: str = VPD) -> dict[str, Any]:
    person = {"person_id": person_id, "employee_number": employee_number or f"E{person_id}",
              "last_name": last_name, "first_name": "Ann", "hire_date": "2020-01-01"}
    assignment: dict[str, Any] = {"assignment_id": f"A{person_id}", "person_id": person_id,
                                  "assignment_number": f"N{person_id}", "primary_assignment": "Yes",
                                  "effective_start": "2020-01-01", "effective_end": "4712-12-31"}
    if supervisor is not None:
        assignment["supervisor_person_id"] = supervisor
    if location is not None:
        assignment["location_id"] = location
    if organisation is not None:
        assignment["organisation_id"] = organisation

    def entry(values: dict[str, Any]) -> dict[str, Any]:
        return {"current": values, "versions": {"": values}, "last_file_sha256": "ab", "last_run": run}

    return {"vpd": vpd, "person_id": person_id, "primary_assignment_id": f"A{person_id}",
            "primary_assignment_number": f"N{person_id}",
            "entities": {"PERSON": {person_id: entry(person)}, "ASSIGNMENT": {f"A{person_id}": entry(assignment)}}}


def directory() -> MappingDirectory:
    return MappingDirectory(default_template=default_version)


def by_person(events: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {event["person_id"]: event for event in events}


def test_snapshot_rows_are_the_current_versions_at_the_latest_file() -> None:
    data = snapshot("1", supervisor="2")
    data["entities"]["ADDRESS"] = {"9": {"current": {"address_id": "9", "primary_flag": "Yes"}, "versions": {},
                                         "last_run": "2026-02-01"}}
    rows = employee_rows(data, Source("esr.employees", 2, 7))
    assert rows.person is not None
    assert rows.person["last_name"] == "Smith"
    assert [a["assignment_id"] for a in rows.assignments] == ["A1"]
    assert rows.run_date == dt.date(2026, 2, 1)
    assert rows.source == Source("esr.employees", 2, 7)


def test_a_new_employee_is_emitted_once_and_again_only_when_the_record_changes() -> None:
    d = directory()
    d.put_employee((VPD, "1"), snapshot("1"))
    [event] = d.drain(1000)
    assert (event["event_type"], event["op"], event["template_version"]) == ("EMPLOYEE_MAPPED", "c", 0)
    assert event["standard"]["surname"] == "Smith"
    assert event["standard"]["payroll_number"] == "E1"
    assert event["standard"]["hire_date"] == "2020-01-01"
    assert d.drain(2000) == []

    d.put_employee((VPD, "1"), snapshot("1"))  # the same state again: nothing to say
    assert d.drain(3000) == []
    d.put_employee((VPD, "1"), snapshot("1", last_name="Jones"))
    [event] = d.drain(4000)
    assert event["op"] == "u"
    assert event["changes"] == [  # the NHS option fields rendered from the name change with it
        {"field": "display_name", "old": "Ann Smith", "new": "Ann Jones"},
        {"field": "surname", "old": "Smith", "new": "Jones"},
        {"field": "username", "old": "Ann.Smith", "new": "Ann.Jones"},
    ]


def test_the_line_manager_is_resolved_whichever_arrives_first() -> None:
    d = directory()
    d.put_employee((VPD, "1"), snapshot("1", supervisor="2"))
    [first] = d.drain(1)
    assert first["standard"]["line_manager"] is None
    assert first["standard"]["line_manager_person_id"] == "2"
    assert first["problems"] == [{"target": "line_manager", "message": "the line manager (person id 2) is not known"}]

    d.put_employee((VPD, "2"), snapshot("2", employee_number="M2"))  # another partition, later
    events = by_person(d.drain(2))
    assert events["1"]["standard"]["line_manager"] == "M2"
    assert events["1"]["problems"] == []
    assert events["1"]["changes"] == [{"field": "line_manager", "old": None, "new": "M2"}]

    d.put_employee((VPD, "2"), snapshot("2", employee_number="M2b"))  # the manager's own field changed
    events = by_person(d.drain(3))
    assert events["1"]["standard"]["line_manager"] == "M2b"

    d.put_employee((VPD, "2"), None)  # the manager deleted
    events = by_person(d.drain(4))
    assert events["2"]["event_type"] == "PERSON_DELETED"
    assert events["2"]["op"] == "d"
    assert events["1"]["standard"]["line_manager"] is None


def test_a_manager_in_another_trust_is_not_the_line_manager() -> None:
    d = directory()
    d.put_employee(("111", "2"), snapshot("2", vpd="111", employee_number="OTHER"))
    d.put_employee((VPD, "1"), snapshot("1", supervisor="2"))
    assert by_person(d.drain(1))["1"]["standard"]["line_manager"] is None


def test_the_work_location_follows_the_reference_data_and_the_organisation_fallback() -> None:
    d = directory()
    d.put_employee((VPD, "1"), snapshot("1", organisation="O1"))
    assert d.drain(1)[0]["standard"]["work_location"] is None
    d.put_reference((VPD, "ORGANISATION", "O1"), {"organisation_id": "O1", "name": "Ward 1", "location_id": "L7"})
    [event] = d.drain(2)
    assert event["standard"]["department"] == "Ward 1"
    assert event["standard"]["work_location"] is None  # the organisation's location has not arrived yet
    d.put_reference((VPD, "LOCATION", "L7"), {"location_id": "L7", "description": "Main site"})
    [event] = d.drain(3)
    assert event["standard"]["work_location"] == "Main site"
    d.put_reference((VPD, "LOCATION", "L7"), {"location_id": "L7", "description": "Main site"})  # no change
    assert d.drain(4) == []
    d.put_reference((VPD, "LOCATION", "L7"), None)
    assert d.drain(5)[0]["standard"]["work_location"] is None


def test_a_tombstone_of_an_employee_never_mapped_here_is_still_a_delete_and_a_state_without_person_is_not() -> None:
    d = directory()
    d.put_employee((VPD, "5"), None)
    [event] = d.drain(1)
    assert (event["event_type"], event["standard"], event["udf"]) == ("PERSON_DELETED", {}, {})
    assert d.drain(2) == []
    headless = snapshot("6")
    del headless["entities"]["PERSON"]
    d.put_employee((VPD, "6"), headless)
    assert d.drain(3) == []


UDF_TEMPLATE = MappingTemplate(
    (MappingRule.of("surname", "person.last_name", transforms=(Upper(),)),
     MappingRule.of("udf.full_name", "person.first_name", "person.last_name", transforms=(Concat(" "),))),
    (UdfDefinition("full_name", Kind.TEXT),),
    "custom",
)


def custom(version: int = 1) -> TemplateVersion:
    return TemplateVersion(VPD, version, UDF_TEMPLATE, "tester", dt.datetime(2026, 1, 1, tzinfo=dt.UTC))


def test_a_template_change_applies_to_later_changes_and_records_give_everyone_in_it() -> None:
    d = directory()
    d.put_employee((VPD, "1"), snapshot("1"))
    d.put_employee((VPD, "2"), snapshot("2"))
    d.drain(1)
    d.set_template(custom())
    assert d.drain(2) == []  # nothing changed: nothing is mapped again
    d.put_employee((VPD, "1"), snapshot("1", last_name="Jones"))
    [event] = d.drain(3)
    assert event["template_version"] == 1
    assert event["standard"]["surname"] == "JONES"
    assert event["standard"]["payroll_number"] is None
    assert event["udf"] == {"full_name": "Ann Jones"}
    assert event["udf_kinds"] == {"full_name": "text"}
    remapped = dict(d.records(VPD))  # what `esr remap` writes: everyone in the current mapping
    assert [(p, r["template_version"], r["udf"]) for p, r in remapped.items()] == [
        ("1", 1, {"full_name": "Ann Jones"}), ("2", 1, {"full_name": "Ann Smith"})]
    assert d.drain(4) == []


def test_the_trusts_only_primary_address_option_decides_the_home_address() -> None:
    postcode = MappingTemplate((MappingRule.of("udf.postcode", "home_address.postcode"),),
                               (UdfDefinition("postcode", Kind.TEXT),))
    d = directory()
    d.set_template(TemplateVersion(VPD, 1, postcode, "tester", dt.datetime(2026, 1, 1, tzinfo=dt.UTC)))
    state = snapshot("1")
    state["entities"]["ADDRESS"] = {"9": {"current": {"address_id": "9", "primary_flag": "No", "postcode": "LS1 1AA",
                                                      "effective_start": "2020-01-01"}, "last_run": RUN}}
    d.put_employee((VPD, "1"), state)
    assert d.drain(1)[0]["udf"] == {"postcode": None}  # by default only a primary address counts
    d.options[VPD] = NhsOptions(only_primary_address=False)
    assert d.drain(2) == []  # applies to the changes mapped from now on
    assert dict(d.records(VPD))["1"]["udf"] == {"postcode": "LS1 1AA"}  # (what a remap writes)
    d.put_employee((VPD, "1"), state)
    assert d.drain(3)[0]["udf"] == {"postcode": "LS1 1AA"}


def test_events_fit_the_schema_and_ids_are_a_function_of_the_record() -> None:
    d = directory()
    d.set_template(custom())
    d.put_employee((VPD, "1"), snapshot("1"))
    [event] = d.drain(1)
    assert Decoder("mapped-change-event").decode(Encoder("mapped-change-event").encode(event)) == event
    again = directory()
    again.set_template(custom())
    again.put_employee((VPD, "1"), snapshot("1"))
    assert again.drain(99)[0]["event_id"] == event["event_id"]
    one, two = (mapped_event_id(VPD, "1", "EMPLOYEE_MAPPED", {"x": x}) for x in (1, 2))
    assert one != two


def test_field_changes_cover_udfs() -> None:
    old = {"standard": {"surname": "A"}, "udf": {"band": "5"}}
    new = {"standard": {"surname": "A"}, "udf": {"band": "6", "x": None}}
    assert field_changes(old, new) == [{"field": "udf.band", "old": "5", "new": "6"}]
    assert field_changes(None, None) == []


@pytest.mark.parametrize(("key", "expected"), [
    (b"999:LOCATION:L1@2", ("999", "LOCATION", "L1")),
    (b"999:ORGANISATION:7@0", ("999", "ORGANISATION", "7")),
    (b"999:PERSON:1@0", None),
    (b"999:LOCATION:@0", None),
])
def test_reference_replica_keys(key: bytes, expected: tuple[str, str, str] | None) -> None:
    assert reference_key(key) == expected


def test_employee_keys() -> None:
    assert employee_key(b"999:12") == ("999", "12")
    assert employee_key(b"nonsense") is None


# -- convergence -----------------------------------------------------------------------------------------

Input = tuple[str, Any, Any]  # ("employee", key, snapshot) | ("reference", key, row)

FINAL: list[Input] = [
    ("employee", (VPD, "1"), snapshot("1", supervisor="2", location="L1")),
    ("employee", (VPD, "2"), snapshot("2", supervisor="3", organisation="O1", employee_number="M2")),
    ("employee", (VPD, "3"), snapshot("3", employee_number="M3", last_name="Boss")),
    ("employee", (VPD, "4"), snapshot("4", supervisor="1")),
    ("reference", (VPD, "LOCATION", "L1"), {"location_id": "L1", "description": "North"}),
    ("reference", (VPD, "LOCATION", "L2"), {"location_id": "L2", "description": "South"}),
    ("reference", (VPD, "ORGANISATION", "O1"), {"organisation_id": "O1", "name": "Org", "location_id": "L2"}),
]
STALE: list[Input] = [  # earlier states, each read before its key's final one
    ("employee", (VPD, "1"), snapshot("1", supervisor="3")),
    ("employee", (VPD, "3"), snapshot("3", employee_number="OLD")),
    ("employee", (VPD, "5"), snapshot("5", supervisor="3")),
    ("reference", (VPD, "LOCATION", "L1"), {"location_id": "L1", "description": "Old north"}),
]
FINAL.append(("employee", (VPD, "5"), None))  # 5 is deleted in the end


def feed(d: MappingDirectory, item: Input) -> None:
    kind, key, value = item
    if kind == "employee":
        d.put_employee(key, value)
    else:
        d.put_reference(key, value)


def final_records(order: list[Input], drain_every: int) -> dict[str, Any]:
    d = directory()
    emitted: dict[str, Any] = {}
    for index, item in enumerate(order):
        feed(d, item)
        if index % drain_every == 0:
            emitted.update(by_person(d.drain(index)))
    emitted.update(by_person(d.drain(len(order))))
    return {pid: (e["event_type"], e["standard"], e["problems"]) for pid, e in emitted.items()}


@settings(max_examples=60, deadline=None)
@given(st.permutations(range(len(FINAL) + len(STALE))), st.integers(1, 4))
def test_the_emitted_records_converge_to_a_function_of_the_final_states(perm: list[int], drain_every: int) -> None:
    # any interleaving of the partitions, keeping each key's own order (a stale state before the final one)
    items = STALE + FINAL
    order = [items[i] for i in perm]
    for stale in STALE:
        final = next(f for f in FINAL if f[:2] == stale[:2])
        if order.index(stale) > order.index(final):
            a, b = order.index(stale), order.index(final)
            order[a], order[b] = order[b], order[a]
    expected = final_records(FINAL, 100)
    assert final_records(order, drain_every) == expected
    assert expected["1"][1]["line_manager"] == "M2"
    assert expected["1"][1]["work_location"] == "North"
    assert expected["2"][1]["work_location"] == "South"
    assert expected["2"][1]["line_manager"] == "M3"
    assert expected["4"][1]["line_manager"] == "E1"


# -- the NHS options the stage renders: username, home address, display name ------------------------------
ASSIGNMENT = {"assignment_id": "A1", "primary_assignment": "Yes", "payroll_name": "999 Monthly",
              "job_name": "Staff Nurse", "position_name": "Ward 7 Nurse"}
ADDRESS = {"address_id": "9", "line_1": "1 Road", "line_2": "", "town": "Leeds", "postcode": "LS1 1AA"}


def view(person: dict[str, Any] | None = None, assignment: dict[str, Any] | None = ASSIGNMENT,
         address: dict[str, Any] | None = ADDRESS) -> EmployeeView:
    return EmployeeView(person={"first_name": "Ann", "last_name": "Smith"} if person is None else person,
                        primary_assignment=assignment, home_address=address)


@pytest.mark.parametrize(("option", "expected"), [
    (DisplayWithAssignment.NONE, "Ann Smith"),
    (DisplayWithAssignment.PAYPOINT, "Ann Smith (999 Monthly)"),
    (DisplayWithAssignment.JOB_NAME, "Ann Smith (Staff Nurse)"),
    (DisplayWithAssignment.POSITION_NAME, "Ann Smith (Ward 7 Nurse)"),
])
def test_the_display_name_shows_the_primary_assignment_per_the_option(
    option: DisplayWithAssignment, expected: str
) -> None:
    assert display_name(NhsOptions(display_with_assignment=option), view()) == expected


def test_the_display_name_is_the_name_alone_without_the_assignments_value() -> None:
    options = NhsOptions(display_with_assignment=DisplayWithAssignment.JOB_NAME)
    assert display_name(options, view(assignment=None)) == "Ann Smith"
    assert display_name(options, view(assignment={**ASSIGNMENT, "job_name": "  "})) == "Ann Smith"
    assert display_name(options, view(person={"last_name": "Smith", "first_name": None})) == "Smith (Staff Nurse)"
    assert display_name(options, view(person={"last_name": " "})) == "(Staff Nurse)"
    assert display_name(NhsOptions(), view(person={})) is None


def test_username_and_home_address_follow_the_trusts_formats() -> None:
    options = NhsOptions(username_format="{first_name:1|lower}{last_name|lower}",
                         home_address_format="{line_1}, {line_2}, {town} {postcode}")
    assert nhs_fields(options, view()) == {
        "username": "asmith", "home_address": "1 Road, Leeds LS1 1AA", "display_name": "Ann Smith"}
    defaults = nhs_fields(NhsOptions(), view())
    assert (defaults["username"], defaults["home_address"]) == ("Ann.Smith", "1 Road, Leeds, LS1 1AA")


def test_a_missing_address_and_empty_parts_render_as_none() -> None:
    assert nhs_fields(NhsOptions(), view(person={}, assignment=None, address=None)) == {
        "username": None, "home_address": None, "display_name": None}
    blank = {"address_id": "9", "line_1": " ", "town": ""}
    assert nhs_fields(NhsOptions(), view(address=blank))["home_address"] is None


def test_the_trusts_nhs_options_are_carried_in_the_mapped_change() -> None:
    d = directory()
    state = snapshot("1")
    state["entities"]["ASSIGNMENT"]["A1"]["current"]["job_name"] = "Porter"
    state["entities"]["ADDRESS"] = {"9": {"current": {"address_id": "9", "primary_flag": "Yes", "line_1": "1 Road",
                                                      "postcode": "LS1 1AA", "effective_start": "2020-01-01"},
                                          "last_run": RUN}}
    d.put_employee((VPD, "1"), state)
    [event] = d.drain(1)
    assert event["nhs"] == {"username": "Ann.Smith", "home_address": "1 Road, LS1 1AA", "display_name": "Ann Smith"}
    assert Decoder("mapped-change-event").decode(Encoder("mapped-change-event").encode(event)) == event
    d.options[VPD] = NhsOptions(display_with_assignment=DisplayWithAssignment.JOB_NAME)
    assert dict(d.records(VPD))["1"]["nhs"]["display_name"] == "Ann Smith (Porter)"  # (what a remap writes)
    d.put_employee((VPD, "1"), state)
    [changed] = d.drain(2)
    assert changed["changes"] == [{"field": "display_name", "old": "Ann Smith", "new": "Ann Smith (Porter)"}]
    d.put_employee((VPD, "1"), None)
    assert d.drain(3)[0]["nhs"] == {}


# -- what the directory does not do again ----------------------------------------------------------------

def test_a_state_whose_mapped_rows_are_unchanged_is_mapped_again_only_after_a_template_or_option_change() -> None:
    d = directory()
    mapped: list[tuple[str, str]] = []
    map_employee = d.map_employee

    def counting(key: tuple[str, str]) -> dict[str, Any] | None:
        mapped.append(key)
        return map_employee(key)

    d.map_employee = counting  # type: ignore[method-assign]
    d.put_employee((VPD, "1"), snapshot("1"))
    d.drain(1)
    phone = snapshot("1")
    phone["entities"]["PHONE"] = {"7": {"current": {"phone_id": "7", "number": "01632"}, "last_run": RUN}}
    d.put_employee((VPD, "1"), phone, Source("esr.employees", 0, 5))  # a phone: nothing the mapping reads
    assert d.pending
    assert d.drain(2) == []
    assert mapped == [(VPD, "1")]
    d.set_template(custom())
    d.put_employee((VPD, "1"), phone, Source("esr.employees", 0, 6))
    [event] = d.drain(3)
    assert (event["template_version"], event["source"]["offset"]) == (1, 6)
    d.options[VPD] = NhsOptions(display_with_assignment=DisplayWithAssignment.JOB_NAME)
    d.put_employee((VPD, "1"), phone)
    d.drain(4)
    assert len(mapped) == 3
    d.put_employee((VPD, "1"), snapshot("1", run="2026-02-01"))  # the run date is read: mapped again
    d.drain(5)
    assert len(mapped) == 4


def _field_changes_by_text(old: dict[str, Any] | None, new: dict[str, Any] | None) -> list[dict[str, str | None]]:
    """field_changes as first written: every value flattened to text, then compared."""
    def flat(record: dict[str, Any] | None) -> dict[str, str | None]:
        if record is None:
            return {}
        values = {k: None if v is None else str(v) for k, v in record["standard"].items()}
        values.update({k: None if v is None else str(v) for k, v in record.get("nhs", {}).items()})
        values.update({f"udf.{k}": None if v is None else str(v) for k, v in record["udf"].items()})
        return values

    before, after = flat(old), flat(new)
    return [{"field": name, "old": before.get(name), "new": after.get(name)}
            for name in sorted(before.keys() | after.keys()) if before.get(name) != after.get(name)]


_values = st.dictionaries(st.sampled_from(["surname", "title", "grade", "b", "username"]),
                          st.one_of(st.none(), st.sampled_from(["1", "x", "y", ""]), st.integers(0, 2)), max_size=5)
_records = st.one_of(st.none(), st.fixed_dictionaries({"standard": _values, "nhs": _values, "udf": _values}))


@given(_records, _records)
def test_field_changes_compare_the_values_as_text(old: dict[str, Any] | None, new: dict[str, Any] | None) -> None:
    assert field_changes(old, new) == _field_changes_by_text(old, new)


@given(st.dictionaries(st.text(), st.one_of(st.none(), st.text(), st.integers(-5, 5),
                                            st.lists(st.dictionaries(st.text(), st.text()), max_size=2))))
def test_event_ids_hash_the_records_sorted_json(record: dict[str, Any]) -> None:
    content = json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    digest = hashlib.sha256(content.encode()).hexdigest()
    expected = str(uuid.uuid5(MAPPED_EVENT_NAMESPACE, f"{VPD}:1:EMPLOYEE_MAPPED:{digest}"))
    assert mapped_event_id(VPD, "1", "EMPLOYEE_MAPPED", record) == expected
