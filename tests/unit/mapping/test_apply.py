"""esr.mapping.apply: templates applied to employee views."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from esr.format.lines import Record, parse_fields
from esr.format.values import Value
from esr.mapping.apply import MappedEmployee, MappingProblem, apply_template, compile_template
from esr.mapping.catalogue import STANDARD_FIELDS, Kind
from esr.mapping.template import MappingRule, MappingTemplate, UdfDefinition, default_template
from esr.mapping.transforms import (
    Concat,
    DateFormat,
    Default,
    Lookup,
    ParseDate,
    SplitPart,
    TitleCase,
    ToText,
    Trim,
    Upper,
)
from esr.mapping.view import EmployeeView, Row, build_view
from esr.validation import ValidationError
from tests.strategies import PERSON_VALUES

SAMPLE = Path(__file__).parents[2] / "data" / "GO_999_EXP_GOC_20240301_00000042.DAT"
RUN = dt.date(2024, 3, 1)
R = MappingRule.of


def _sample_rows() -> dict[str, list[dict[str, Value]]]:
    rows: dict[str, list[dict[str, Value]]] = {}
    for line in SAMPLE.read_text(encoding="ascii").splitlines()[1:-1]:
        parsed = parse_fields(line.split("~"))
        if isinstance(parsed, Record):
            rows.setdefault(parsed.layout.code, []).append(parsed.values)
    return rows


ROWS = _sample_rows()
PERSON = ROWS["PRA"][0]
MANAGER: Row = {**PERSON, "person_id": "600002", "employee_number": "20009999", "last_name": "Boss"}
PRIMARY = {**ROWS["ASA"][0], "supervisor_person_id": "600002"}
SECONDARY = {
    **ROWS["ASA"][0],
    "assignment_id": "700002",
    "assignment_number": "20001234-2",
    "primary_assignment": "No",
    "effective_start": dt.date(2024, 2, 1),
    "supervisor_person_id": "600003",
    "grade": "XN06|Band 6",
}


def sample_view(**changes: object) -> EmployeeView:
    view = build_view(
        PERSON,
        RUN,
        assignments=[SECONDARY, PRIMARY],
        addresses=ROWS["ADA"],
        vehicles=ROWS["VHA"],
        people={"600002": MANAGER}.get,
        locations={r["location_id"]: r for r in ROWS["LCA"]}.get,
        organisations={r["organisation_id"]: r for r in ROWS["ORA"]}.get,
        positions={r["position_id"]: r for r in ROWS["POA"]}.get,
    )
    if not changes:
        return view
    fields = {name: getattr(view, name) for name in EmployeeView.__dataclass_fields__}
    return EmployeeView(**(fields | changes))


def test_default_template_on_the_sample() -> None:
    mapped = apply_template(default_template(), sample_view())
    assert mapped.problems == []
    assert mapped.udf == {}
    assert mapped.standard == {
        "payroll_number": "20001234",
        "title": "Ms.",
        "first_name": "Ann",
        "middle_names": None,
        "surname": "Jones",
        "preferred_name": "Annie",
        "maiden_name": None,
        "gender": "F",
        "date_of_birth": dt.date(1990, 1, 15),
        "ni_number": "QQ123456C",
        "email": "ann.jones@example.nhs.uk",
        "hire_date": dt.date(2024, 1, 1),
        "termination_date": None,
        "person_type": "Employee",
        "assignment_number": "20001234",  # the primary's, not the later secondary's
        "job_name": "Nursing and Midwifery Registered|Staff Nurse",
        "position_name": "7000001|Staff Nurse|N7B|Ward 1|",
        "grade": "XN05|Band 5",
        "department": "999 Ward 1",
        "cost_centre": "999C001",
        "work_location": "Main Hospital",
        "line_manager": "20009999",  # the employee number of the primary assignment's supervisor
        "line_manager_person_id": "600002",
    }


def test_every_standard_field_is_present_even_when_unmapped() -> None:
    template = MappingTemplate((R("payroll_number", "person.employee_number"),))
    mapped = apply_template(template, sample_view())
    assert set(mapped.standard) == set(STANDARD_FIELDS)
    assert mapped.standard["payroll_number"] == "20001234"
    assert all(v is None for k, v in mapped.standard.items() if k != "payroll_number")


def test_udfs_and_transforms() -> None:
    udfs = (
        UdfDefinition("band", Kind.TEXT),
        UdfDefinition("fte", Kind.DECIMAL),
        UdfDefinition("salary", Kind.DECIMAL),
        UdfDefinition("home_postcode", Kind.TEXT),
        UdfDefinition("started", Kind.TEXT),
        UdfDefinition("trust", Kind.TEXT),
        UdfDefinition("vehicle_count_text", Kind.TEXT),
        UdfDefinition("site", Kind.TEXT),
        UdfDefinition("never", Kind.DATE),
        UdfDefinition("unmapped", Kind.INT),
    )
    template = MappingTemplate(
        (
            R("surname", "person.last_name", transforms=(Upper(),)),
            R("first_name", "person.preferred_name", "person.first_name", transforms=(Concat(" / "),)),
            R("gender", "person.gender", transforms=(Lookup.of({"F": "Female", "M": "Male"}, "Unknown"),)),
            R("udf.band", "primary_assignment.grade", transforms=(SplitPart(1), Trim())),
            R("udf.fte", "primary_assignment.fte"),
            R("udf.salary", "position.position_number"),  # an int into a decimal UDF
            R("udf.home_postcode", "home_address.postcode"),
            R("udf.started", "person.hire_date", transforms=(DateFormat("%d/%m/%Y"),)),
            R("udf.trust", transforms=(Default("Test Trust"),)),
            R("udf.site", "work_location.location_code", transforms=(SplitPart(2, " "), TitleCase())),
            R("udf.never", "person.termination_date"),
        ),
        udfs,
    )
    mapped = apply_template(template, sample_view())
    assert mapped.problems == []
    assert mapped.standard["surname"] == "JONES"
    assert mapped.standard["first_name"] == "Annie / Ann"
    assert mapped.standard["gender"] == "Female"
    assert mapped.udf == {
        "band": "Band 5",
        "fte": Decimal("1.000"),
        "salary": Decimal(7000001),
        "home_postcode": "AN2 2BB",
        "started": "01/01/2024",
        "trust": "Test Trust",
        "vehicle_count_text": None,
        "site": "0100",
        "never": None,
        "unmapped": None,
    }
    assert isinstance(mapped.udf["salary"], Decimal)


def test_secondary_assignment_fields_never_leak() -> None:
    template = MappingTemplate(
        (R("grade", "primary_assignment.grade"), R("line_manager_person_id", "ASA.supervisor_person_id"))
    )
    mapped = apply_template(template, sample_view())
    assert mapped.standard["grade"] == "XN05|Band 5"
    assert mapped.standard["line_manager_person_id"] == "600002"


def test_unknown_line_manager_is_a_problem_once_per_target() -> None:
    template = MappingTemplate(
        (
            R("line_manager", "line_manager.employee_number"),
            R("surname", "line_manager.last_name", "line_manager.first_name", transforms=(Concat(),)),
        )
    )
    mapped = apply_template(template, sample_view(line_manager=None))
    assert mapped.standard["line_manager"] is None
    assert mapped.problems == [
        MappingProblem("line_manager", "the line manager (person id 600002) is not known"),
        MappingProblem("surname", "the line manager (person id 600002) is not known"),
    ]


def test_no_supervisor_is_not_a_problem() -> None:
    view = sample_view(primary_assignment={**PRIMARY, "supervisor_person_id": None}, line_manager=None)
    mapped = apply_template(default_template(), view)
    assert mapped.problems == []
    assert mapped.standard["line_manager"] is None


def test_missing_rows_read_as_none() -> None:
    view = EmployeeView(person=PERSON)
    mapped = apply_template(default_template(), view)
    assert mapped.problems == []
    assert mapped.standard["payroll_number"] == "20001234"
    assert mapped.standard["assignment_number"] is None
    assert mapped.standard["work_location"] is None


def test_lookup_failure_and_bad_values_are_problems_not_errors() -> None:
    template = MappingTemplate(
        (
            R("gender", "person.gender", transforms=(Lookup.of({"M": "Male"}),)),
            R("hire_date", "person.hire_date"),
            R("date_of_birth", "person.ni_number", transforms=(ParseDate("%d/%m/%Y"),)),
        )
    )
    person = {**PERSON, "hire_date": "31st of January"}
    mapped = apply_template(template, EmployeeView(person=person))
    assert mapped.standard["gender"] is None
    assert mapped.standard["hire_date"] is None
    assert mapped.standard["date_of_birth"] is None
    assert [str(p) for p in mapped.problems] == [
        "gender: the lookup for 'F' has failed (not in the table and no default)",
        "hire_date: person.hire_date: '31st of January' is not a date (YYYYMMDD)",
        "date_of_birth: 'QQ123456C' does not match the date pattern '%d/%m/%Y'",
    ]


def test_text_values_give_the_same_result_as_typed_values() -> None:
    """A view rebuilt from JSON (dates ISO or YYYYMMDD, decimals as text) maps the same."""

    def as_text(row: Row | None, iso: bool) -> Row | None:
        if row is None:
            return None
        out: dict[str, object] = {}
        for key, value in row.items():
            if isinstance(value, dt.datetime):
                out[key] = value.isoformat() if iso else value.strftime("%Y%m%d %H%M%S")
            elif isinstance(value, dt.date):
                out[key] = value.isoformat() if iso else value.strftime("%Y%m%d")
            elif isinstance(value, Decimal | int):
                out[key] = str(value)
            else:
                out[key] = value
        return out

    template = MappingTemplate(
        (*default_template().rules, R("udf.fte", "primary_assignment.fte"), R("udf.seen", "person.last_update_date")),
        (UdfDefinition("fte", Kind.DECIMAL), UdfDefinition("seen", Kind.DATETIME)),
    )
    typed = sample_view()
    expected = apply_template(template, typed)
    for iso in (True, False):
        textual = EmployeeView(
            person=as_text(typed.person, iso) or {},
            primary_assignment=as_text(typed.primary_assignment, iso),
            home_address=as_text(typed.home_address, iso),
            line_manager=as_text(typed.line_manager, iso),
            work_location=as_text(typed.work_location, iso),
            organisation=as_text(typed.organisation, iso),
            position=as_text(typed.position, iso),
        )
        assert apply_template(template, textual) == expected


def test_two_trusts_two_mappings() -> None:
    north = default_template("north")
    south = MappingTemplate(
        (
            R("payroll_number", "person.employee_number", transforms=(Concat(),)),
            R("surname", "person.last_name", transforms=(Upper(),)),
            R("udf.esr_person", "person.person_id"),
        ),
        (UdfDefinition("esr_person"),),
        "south",
    )
    view = sample_view()
    a, b = apply_template(north, view), apply_template(south, view)
    assert a.standard["surname"] == "Jones"
    assert b.standard["surname"] == "JONES"
    assert b.udf == {"esr_person": "600001"}
    assert a.udf == {}
    assert b.standard["email"] is None


def test_invalid_template_is_refused() -> None:
    with pytest.raises(ValidationError, match="unknown ESR field"):
        apply_template(MappingTemplate((R("surname", "person.surname"),)), sample_view())


def test_compiled_templates_are_cached() -> None:
    template = default_template("cached")
    assert compile_template(template) is compile_template(default_template("cached"))


def test_unhashable_settings_still_apply() -> None:
    lookup = Lookup([("F", "Female")])  # type: ignore[arg-type]  # a list: valid, but not hashable
    template = MappingTemplate((R("gender", "person.gender", transforms=(lookup,)),))
    assert apply_template(template, sample_view()).standard["gender"] == "Female"


def test_json_form() -> None:
    mapped = MappedEmployee(
        {"hire_date": dt.date(2024, 1, 1), "surname": "Jones", "x": None},
        {"fte": Decimal("0.50"), "n": 3, "at": dt.datetime(2024, 1, 1, 7, 0)},
        [MappingProblem("surname", "oops")],
    )
    assert mapped.to_json_dict() == {
        "standard": {"hire_date": "2024-01-01", "surname": "Jones", "x": None},
        "udf": {"fte": "0.50", "n": 3, "at": "2024-01-01T07:00:00"},
        "problems": [{"target": "surname", "message": "oops"}],
    }


_noise = st.one_of(
    st.none(), st.text(max_size=12), st.integers(), st.dates(), st.decimals(allow_nan=False, allow_infinity=False)
)


@given(PERSON_VALUES, st.dictionaries(st.sampled_from(sorted(PERSON)), _noise, max_size=6))
def test_any_person_maps_without_raising(person: dict[str, Value], noise: dict[str, object]) -> None:
    template = MappingTemplate(
        (
            *default_template().rules[:14],
            R("udf.label", "person.title", "person.first_name", "person.hire_date", transforms=(Concat(), Trim())),
            R("udf.born", "person.date_of_birth", transforms=(DateFormat("%d %b %Y"), ToText())),
        ),
        (UdfDefinition("label"), UdfDefinition("born")),
    )
    for values in (person, {**person, **noise}):
        mapped = apply_template(template, EmployeeView(person=values))
        for value in (*mapped.standard.values(), *mapped.udf.values()):
            assert value != ""
        number = values.get("employee_number")
        if isinstance(number, str) and number:
            assert mapped.standard["payroll_number"] == number
