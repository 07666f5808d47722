"""esr.format.lines: one data line <-> one typed record (format reference §1.7, §2, §4.6, Q7, Q15, Q19)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from esr.format.layouts import (
    ADDRESS,
    ASSIGNMENT,
    COSTING,
    LAYOUTS,
    LOCATION,
    ORGANISATION,
    PERSON,
    PHONE,
    POSITION,
    VEHICLE,
    FieldType,
    Layout,
)
from esr.format.lines import (
    Delete,
    FieldIssue,
    ParsedLine,
    Quarantined,
    Record,
    Unknown,
    format_delete,
    format_record,
    parse_fields,
)
from tests.strategies import Values, values_for

SAMPLE = Path(__file__).parents[2] / "data" / "GO_999_EXP_GOC_20240301_00000042.DAT"
SAMPLE_LINES: dict[str, str] = {line[:3]: line for line in SAMPLE.read_text(encoding="cp1252").splitlines()[1:-1]}


def parse(line: str) -> ParsedLine:
    return parse_fields(line.split("~"))


def parse_record(line: str) -> Record:
    parsed = parse(line)
    assert isinstance(parsed, Record), parsed
    return parsed


def parse_quarantined(line: str) -> Quarantined:
    parsed = parse(line)
    assert isinstance(parsed, Quarantined), parsed
    return parsed


def sample(layout: Layout, **changes: str) -> str:
    """The sample file's line for `layout`, with some fields (by name) replaced."""
    fields = SAMPLE_LINES[layout.code].split("~")
    for name, text in changes.items():
        fields[layout.index(name)] = text
    return "~".join(fields)


# --- the real-looking sample file ------------------------------------------------------------------------


def test_the_sample_holds_one_line_per_layout() -> None:
    assert set(SAMPLE_LINES) == {layout.code for layout in LAYOUTS} | {"ASD"}


@pytest.mark.parametrize("layout", LAYOUTS, ids=lambda layout: layout.code)
def test_every_sample_line_parses_cleanly(layout: Layout) -> None:
    record = parse_record(SAMPLE_LINES[layout.code])
    assert record.layout is layout
    assert record.issues == []
    assert record.extra_fields == []
    assert list(record.values) == [f.name for f in layout.data_fields]


def test_location() -> None:
    record = parse_record(SAMPLE_LINES["LCA"])
    assert record.entity_id == "300001"
    assert record.person_id is None  # reference data has no owner
    assert record.values["location_code"] == "999 z 0100 Main Hospital"
    assert record.values["description"] == "Main Hospital"
    assert record.values["inactive_date"] is None
    assert record.values["address_line_1"] == "1 Hospital Road"
    assert record.values["postcode"] == "AN1 1AA"
    assert record.values["payslip_delivery_point"] == "Y"
    assert record.values["welsh_town_translation"] is None
    assert record.values["last_update_date"] == dt.datetime(2024, 2, 29, 10, 10, 10)


def test_organisation() -> None:
    record = parse_record(SAMPLE_LINES["ORA"])
    assert record.entity_id == "400001"
    assert record.values["effective_from"] == dt.date(1951, 1, 1)
    assert record.values["effective_to"] is None
    assert record.values["hierarchy_version_id"] == "5001"
    assert record.values["parent_organisation_id"] == "400000"
    assert record.values["location_id"] == "300001"
    assert record.values["cost_centre_description"] == "Ward 1 Nursing"


def test_position() -> None:
    record = parse_record(SAMPLE_LINES["POA"])
    assert record.entity_id == "500001"
    assert record.values["position_number"] == 7000001
    assert record.values["position_name"] == "7000001|Staff Nurse|N7B|Ward 1|"  # pipe composite kept whole
    assert record.values["budgeted_fte"] == Decimal("1")
    assert str(record.values["budgeted_fte"]) == "1.00000"
    assert record.values["grade_step"] == "XN05|1"
    assert record.values["organisation_id"] == "400001"


def test_person() -> None:
    record = parse_record(SAMPLE_LINES["PRA"])
    assert record.entity_id == record.person_id == "600001"
    assert record.values["effective_start"] == dt.date(2024, 1, 1)
    assert record.values["employee_number"] == "20001234"
    assert (record.values["title"], record.values["last_name"], record.values["first_name"]) == ("Ms.", "Jones", "Ann")
    assert record.values["date_of_birth"] == dt.date(1990, 1, 15)
    assert record.values["ni_number"] == "QQ123456C"
    assert record.values["email"] == "ann.jones@example.nhs.uk"
    assert record.values["nationality"] == "British"
    assert record.values["spare_7"] is None


def test_assignment() -> None:
    record = parse_record(SAMPLE_LINES["ASA"])
    assert record.entity_id == "700001"
    assert record.person_id == "600001"
    assert record.values["assignment_number"] == "20001234"
    assert record.values["primary_assignment"] == "Yes"
    assert record.values["normal_hours"] == Decimal("37.5")
    assert record.values["fte"] == Decimal("1")
    assert record.values["annual_salary"] == Decimal("30000")
    assert str(record.values["annual_salary"]) == "30000.00"
    assert record.values["job_name"] == "Nursing and Midwifery Registered|Staff Nurse"
    assert record.values["vacancy_id"] is None
    assert record.values["last_update_date"] == dt.datetime(2024, 2, 29, 10, 10, 10)
    assert record.values["spare"] is None


def test_phone_address_vehicle_costing() -> None:
    phone = parse_record(SAMPLE_LINES["PHA"])
    assert (phone.entity_id, phone.person_id, phone.values["phone_type"]) == ("800001", "600001", "H1")
    assert phone.values["phone_number"] == "07700900000"  # leading zero: text, not a number

    address = parse_record(SAMPLE_LINES["ADA"])
    assert (address.entity_id, address.person_id) == ("810001", "600001")
    assert address.values["primary_flag"] == "Yes"
    assert address.values["effective_start"] == dt.date(2024, 1, 1)

    vehicle = parse_record(SAMPLE_LINES["VHA"])
    assert (vehicle.entity_id, vehicle.person_id, vehicle.values["assignment_id"]) == ("820001", "600001", "700001")
    assert vehicle.values["engine_cc"] == Decimal("1596")
    assert vehicle.values["user_rates_table"] == "NHS_MILEAGE_CASUAL"
    assert vehicle.values["initial_registration_date"] == dt.date(2020, 1, 1)

    costing = parse_record(SAMPLE_LINES["COA"])
    assert (costing.entity_id, costing.person_id) == ("830001", "600001")
    assert costing.values["percentage"] == Decimal("100.00")
    assert costing.values["element_number"] is None


def test_sample_delete_row() -> None:
    parsed = parse(SAMPLE_LINES["ASD"])
    assert parsed == Delete(ASSIGNMENT, "700099")


def test_engine_cc_in_litres_stays_exact() -> None:
    record = parse_record(sample(VEHICLE, engine_cc="1.6"))
    assert record.values["engine_cc"] == Decimal("1.6")
    assert record.issues == []


# --- field counts ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("layout", LAYOUTS, ids=lambda layout: layout.code)
def test_too_few_fields_is_quarantined_naming_code_and_counts(layout: Layout) -> None:
    short = SAMPLE_LINES[layout.code].split("~")[:-1]
    quarantined = parse_quarantined("~".join(short))
    assert quarantined.code == layout.code
    assert quarantined.field is None
    assert quarantined.reason == f"{layout.code} needs {layout.field_count} fields, the line has {len(short)}"


def test_code_alone_is_quarantined() -> None:
    assert parse_quarantined("PRA").reason == "PRA needs 44 fields, the line has 1"


@pytest.mark.parametrize("layout", LAYOUTS, ids=lambda layout: layout.code)
def test_empty_extra_trailing_fields_are_kept_without_an_issue(layout: Layout) -> None:
    # Q7: S2's later layouts add a trailing spare (ASA 51, ORA 16).
    record = parse_record(SAMPLE_LINES[layout.code] + "~")
    assert record.extra_fields == [""]
    assert record.issues == []
    assert record.values == parse_record(SAMPLE_LINES[layout.code]).values


def test_non_empty_extra_trailing_fields_are_kept_with_an_issue() -> None:
    record = parse_record(SAMPLE_LINES["ASA"] + "~~NEW~")
    assert record.extra_fields == ["", "NEW", ""]
    assert record.values == parse_record(SAMPLE_LINES["ASA"]).values
    assert record.issues == [FieldIssue("(extra)", "~NEW~", "3 extra trailing field(s)")]
    assert str(record.issues[0]) == "field (extra): 3 extra trailing field(s)"


# --- delete rows -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("layout", LAYOUTS, ids=lambda layout: layout.delete_code)
def test_delete_row_for_every_layout(layout: Layout) -> None:
    parsed = parse(f"{layout.delete_code}~10820689")
    assert parsed == Delete(layout, "10820689")


def test_person_delete() -> None:
    parsed = parse("PRD~10820689")
    assert isinstance(parsed, Delete)
    assert parsed.layout is PERSON
    assert parsed.entity_id == "10820689"
    assert parsed.issues == []
    assert parsed.extra_fields == []


@pytest.mark.parametrize(
    ("line", "field"), [("ASD~", "assignment_id"), ("ASD", "assignment_id"), ("PRD~~5", "person_id")]
)
def test_delete_without_an_id_is_quarantined_naming_the_key(line: str, field: str) -> None:
    quarantined = parse_quarantined(line)
    assert quarantined.code == line[:3]
    assert quarantined.field == field
    assert quarantined.reason == f"{line[:3]} has no {field}"


def test_delete_with_a_non_numeric_id_is_kept_with_an_issue() -> None:
    parsed = parse("ADD~A1234")
    assert isinstance(parsed, Delete)
    assert parsed.layout is ADDRESS
    assert parsed.entity_id == "A1234"
    assert parsed.issues == [FieldIssue("address_id", "A1234", "ESR id is not numeric (kept as text)")]


def test_delete_extra_fields() -> None:
    quiet = parse("VHD~820001~")
    assert isinstance(quiet, Delete)
    assert (quiet.extra_fields, quiet.issues) == ([""], [])
    noisy = parse("VHD~820001~x~y")
    assert isinstance(noisy, Delete)
    assert noisy.extra_fields == ["x", "y"]
    assert [issue.field for issue in noisy.issues] == ["(extra)"]
    assert noisy.issues[0].message == "2 extra trailing field(s)"


# --- record codes ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("code", ["LOV", "ABA", "ABD", "CDA", "CMA", "QLA", "ELA", "PER", "ASG", "FTR", "AB1"])
def test_unknown_three_letter_codes_are_skipped(code: str) -> None:
    # Q19: GDW-only codes (and v1 codes) are not errors.
    assert parse(f"{code}~1~2~3") == Unknown(code)
    assert parse(code) == Unknown(code)


def test_hdr_and_trl_are_unknown_to_the_line_parser() -> None:
    # The reader quarantines them inside the body before they get here (see test_reader).
    assert parse("HDR~x") == Unknown("HDR")
    assert parse("TRL~12") == Unknown("TRL")


@pytest.mark.parametrize(
    ("line", "code"),
    [
        ("lca~300001", "lca"),  # lower case
        ("Lca~300001", "Lca"),
        ("LC~300001", "LC"),
        ("LCAX~300001", "LCA"),
        ("123~1", "123"),
        ("L-A~1", "L-A"),
        ("~LCA~1", ""),
        (" LCA~1", " LC"),
        ("LCA ~1", "LCA"),
        ("\ufeffLCA~1", "\ufeffLC"),  # a stray byte-order mark
        ("garbage that is not a record at all", "gar"),
    ],
)
def test_garbage_codes_are_quarantined(line: str, code: str) -> None:
    quarantined = parse_quarantined(line)
    assert quarantined.code == code
    assert quarantined.reason == f"record code {line.split('~', maxsplit=1)[0][:20]!r} is not a record code"
    assert quarantined.field is None


# --- keys ------------------------------------------------------------------------------------------------

REQUIRED_KEYS: list[tuple[Layout, str]] = [
    (LOCATION, "location_id"),
    (ORGANISATION, "organisation_id"),
    (POSITION, "position_id"),
    (PERSON, "person_id"),
    (ASSIGNMENT, "person_id"),
    (ASSIGNMENT, "assignment_id"),
    (PHONE, "person_id"),
    (PHONE, "phone_id"),
    (ADDRESS, "person_id"),
    (ADDRESS, "address_id"),
    (VEHICLE, "person_id"),
    (VEHICLE, "assignment_id"),
    (VEHICLE, "vehicle_allocation_id"),
    (COSTING, "person_id"),
    (COSTING, "assignment_id"),
    (COSTING, "costing_id"),
]


@pytest.mark.parametrize(("layout", "name"), REQUIRED_KEYS, ids=lambda v: v.code if isinstance(v, Layout) else v)
def test_missing_key_or_owner_is_quarantined_naming_the_field(layout: Layout, name: str) -> None:
    quarantined = parse_quarantined(sample(layout, **{name: ""}))
    assert quarantined == Quarantined(layout.code, f"{layout.code} has no {name}", name)


@pytest.mark.parametrize("layout", LAYOUTS, ids=lambda layout: layout.code)
def test_every_layout_requires_its_key_and_owner(layout: Layout) -> None:
    names = {name for owner, name in REQUIRED_KEYS if owner is layout}
    assert layout.key_field in names
    if layout.owner_field is not None:
        assert layout.owner_field in names


@pytest.mark.parametrize(
    ("layout", "name"),
    [
        (ORGANISATION, "parent_organisation_id"),
        (ASSIGNMENT, "supervisor_person_id"),
        (ASSIGNMENT, "location_id"),
    ],
)
def test_other_ids_may_be_empty(layout: Layout, name: str) -> None:
    record = parse_record(sample(layout, **{name: ""}))
    assert record.values[name] is None
    assert record.issues == []


@pytest.mark.parametrize("text", ["A48180", "６００００１", "60000²", " 600001", "600001 ", "-1"])
def test_non_numeric_person_id_is_kept_with_an_issue(text: str) -> None:
    # Q15: a warning, not an error; non-ASCII digits are not numeric either.
    record = parse_record(sample(PERSON, person_id=text))
    assert record.entity_id == record.person_id == text
    assert record.issues == [FieldIssue("person_id", text, "ESR id is not numeric (kept as text)")]
    assert str(record.issues[0]) == "field person_id: ESR id is not numeric (kept as text)"


def test_non_numeric_child_key_is_kept_with_an_issue() -> None:
    record = parse_record(sample(VEHICLE, vehicle_allocation_id="V1", assignment_id="A2"))
    assert record.entity_id == "V1"
    assert [(issue.field, issue.raw) for issue in record.issues] == [
        ("assignment_id", "A2"),
        ("vehicle_allocation_id", "V1"),
    ]


def test_non_key_ids_are_not_checked_for_digits() -> None:
    record = parse_record(sample(ASSIGNMENT, supervisor_person_id="S1"))
    assert record.values["supervisor_person_id"] == "S1"
    assert record.issues == []


def test_id_longer_than_15_digits_is_kept_with_an_issue() -> None:
    record = parse_record(sample(PERSON, person_id="1" * 16))
    assert record.entity_id == "1" * 16
    assert record.issues == [FieldIssue("person_id", "1" * 16, "longer than 15 characters (kept whole)")]


# --- other fields ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("layout", "name", "text", "message"),
    [
        (PERSON, "date_of_birth", "19901332", "'19901332' is not a calendar date"),
        (PERSON, "hire_date", "2024-01-01", "'2024-01-01' is not a date (YYYYMMDD)"),
        (PERSON, "effective_start", "20240230", "'20240230' is not a calendar date"),  # mandatory, not a key
        (PERSON, "last_update_date", "20240229101010", "'20240229101010' is not a timestamp (YYYYMMDD HHMMSS)"),
        (POSITION, "position_number", "7OOOOO1", "'7OOOOO1' is not a whole number"),
        (POSITION, "budgeted_fte", "1.000001", "'1.000001' has more than 5 decimal places"),
        (ASSIGNMENT, "fte", "NaN", "'NaN' is not a finite decimal number"),
        (ASSIGNMENT, "annual_salary", "30,000", "'30,000' is not a decimal number"),
        (ASSIGNMENT, "vacancy_id", "12.5", "'12.5' is not a whole number"),
        (COSTING, "percentage", "1000", "'1000' has more than 5 significant digits"),
        (COSTING, "percentage", "1e30", "'1e30' has more than 5 significant digits"),  # used to crash
        (VEHICLE, "engine_cc", "1.6L", "'1.6L' is not a decimal number"),
        (VEHICLE, "last_update_date", "20240229 256161", "'20240229 256161' is not a calendar date and time"),
        (ORGANISATION, "effective_from", "00000101", "'00000101' is not a calendar date"),
    ],
)
def test_malformed_field_becomes_null_with_an_issue_naming_it(
    layout: Layout, name: str, text: str, message: str
) -> None:
    record = parse_record(sample(layout, **{name: text}))
    good = parse_record(SAMPLE_LINES[layout.code])
    assert record.values[name] is None
    assert record.issues == [FieldIssue(name, text, message)]
    assert str(record.issues[0]) == f"field {name}: {message}"
    assert {k: v for k, v in record.values.items() if k != name} == {k: v for k, v in good.values.items() if k != name}


def test_several_malformed_fields_are_all_reported_in_field_order() -> None:
    record = parse_record(sample(ASSIGNMENT, effective_start="x", fte="y", last_working_day="z"))
    assert [issue.field for issue in record.issues] == ["effective_start", "fte", "last_working_day"]
    assert record.entity_id == "700001"


def test_empty_mandatory_fields_are_reported_and_the_row_goes_on() -> None:
    # Only the routing keys quarantine a row; other mandatory fields are reported as issues.
    record = parse_record(sample(PERSON, last_name="", employee_number=""))
    assert record.values["last_name"] is None
    assert record.values["employee_number"] is None
    assert record.issues == [
        FieldIssue("employee_number", "", "mandatory field is empty"),
        FieldIssue("last_name", "", "mandatory field is empty"),
    ]


def test_empty_mandatory_non_key_id_is_reported() -> None:
    record = parse_record(sample(ORGANISATION, hierarchy_version_id=""))
    assert record.values["hierarchy_version_id"] is None
    assert record.issues == [FieldIssue("hierarchy_version_id", "", "mandatory field is empty")]


@pytest.mark.parametrize("text", [" ", "   "])
def test_blank_key_is_quarantined(text: str) -> None:
    assert parse_fields(["PRD", text]) == Quarantined("PRD", "PRD has no person_id", "person_id")


@pytest.mark.parametrize(
    ("layout", "name", "limit"),
    [
        (LOCATION, "town", 30),
        (LOCATION, "payslip_delivery_point", 1),
        (PERSON, "last_name", 150),
        (COSTING, "entity_code", 3),
    ],
)
def test_over_length_text_is_kept_whole_with_an_issue(layout: Layout, name: str, limit: int) -> None:
    text = "Llanfairpwllgwyngyllgogerychwyrndrobwllllantysiliogogogoch" * (limit // 58 + 1)
    text = text[: limit + 1]
    record = parse_record(sample(layout, **{name: text}))
    assert record.values[name] == text
    assert record.issues == [FieldIssue(name, text, f"longer than {limit} characters (kept whole)")]


def test_text_at_its_limit_has_no_issue() -> None:
    record = parse_record(sample(LOCATION, town="x" * 30, payslip_delivery_point="Y"))
    assert record.issues == []


def test_length_is_counted_in_characters_not_bytes() -> None:
    record = parse_record(sample(PERSON, last_name="É" * 150))
    assert record.values["last_name"] == "É" * 150
    assert record.issues == []


def test_non_ascii_and_odd_text_is_data() -> None:
    record = parse_record(sample(PERSON, first_name="Siân", last_name="Ó Briain", middle_names='"Bob"', title="€"))
    assert (record.values["first_name"], record.values["last_name"]) == ("Siân", "Ó Briain")
    assert record.values["middle_names"] == '"Bob"'  # Q5: no quoting, a quote is data
    assert record.values["title"] == "€"
    assert record.issues == []


def test_zero_and_end_of_time_dates_in_a_record() -> None:
    record = parse_record(sample(ASSIGNMENT, effective_end="47121231", projected_hire_date="00000000"))
    assert record.values["effective_end"] == dt.date(4712, 12, 31)
    assert record.values["projected_hire_date"] is None
    assert record.issues == []


# --- format_record / format_delete -----------------------------------------------------------------------


@pytest.mark.parametrize("layout", LAYOUTS, ids=lambda layout: layout.code)
def test_format_record_rewrites_the_sample_exactly(layout: Layout) -> None:
    line = SAMPLE_LINES[layout.code]
    assert format_record(layout, parse_record(line).values) == line


def test_format_record_writes_missing_values_as_empty_fields() -> None:
    line = format_record(PHONE, {"person_id": "1", "phone_id": "2"})
    assert line == "PHA~1~2~~~~~"
    assert len(line.split("~")) == PHONE.field_count


@pytest.mark.parametrize("bad", ["a~b", "a\nb", "a\rb", "~", "\r\n"])
def test_format_record_refuses_delimiters_and_line_breaks(bad: str) -> None:
    with pytest.raises(ValueError, match=r"PRA\.last_name: a value cannot contain '~' or a line break"):
        format_record(PERSON, {"person_id": "1", "last_name": bad})


def test_format_delete() -> None:
    assert format_delete(PERSON, "10820689") == "PRD~10820689"
    assert parse(format_delete(COSTING, "830001")) == Delete(COSTING, "830001")


@pytest.mark.parametrize("layout", LAYOUTS, ids=lambda layout: layout.code)
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_format_then_parse_round_trips(layout: Layout, data: st.DataObject) -> None:
    values: Values = data.draw(values_for(layout), label="values")
    line = format_record(layout, values)
    parsed = parse_fields(line.split("~"))
    assert isinstance(parsed, Record), parsed
    assert parsed.layout is layout
    assert parsed.values == values
    assert parsed.issues == []
    assert parsed.extra_fields == []
    for f in layout.data_fields:
        value = parsed.values[f.name]
        # Types survive, not just equality (1 == Decimal(1), date vs datetime...).
        assert type(value) is type(values[f.name]), f.name
        # ... and the strategy kept its promises (tests/strategies.py).
        if f.mandatory:
            assert value is not None, f.name
        if f.type is FieldType.ID and isinstance(value, str):
            assert value.isascii()
            assert value.isdigit()
        if f.type is FieldType.TEXT and isinstance(value, str):
            assert value
            assert f.max_length is None or len(value) <= f.max_length
