"""esr.mapping.template: rules, UDFs, validation errors, the default template."""

from __future__ import annotations

import datetime as dt

import pytest

from esr.mapping.catalogue import STANDARD_FIELDS, Kind
from esr.mapping.template import (
    MappingRule,
    MappingTemplate,
    UdfDefinition,
    default_template,
    rule_kind,
    template_problems,
    validate_template,
)
from esr.mapping.transforms import Concat, DateFormat, Default, Lookup, ParseDate, SplitPart, ToText, Trim, Upper
from esr.validation import ValidationError

R = MappingRule.of


def problems_of(*rules: MappingRule, udfs: tuple[UdfDefinition, ...] = ()) -> list[str]:
    return [str(p) for p in template_problems(MappingTemplate(rules, udfs))]


def one_problem(*rules: MappingRule, udfs: tuple[UdfDefinition, ...] = ()) -> str:
    found = problems_of(*rules, udfs=udfs)
    assert len(found) == 1, found
    return found[0]


def test_default_template_is_valid_and_maps_the_usual_fields() -> None:
    template = validate_template(default_template())
    sources = {rule.target: rule.sources for rule in template.rules}
    assert sources["payroll_number"] == ("person.employee_number",)
    assert sources["surname"] == ("person.last_name",)
    assert sources["first_name"] == ("person.first_name",)
    assert sources["email"] == ("person.email",)
    assert sources["hire_date"] == ("person.hire_date",)
    assert sources["termination_date"] == ("person.termination_date",)
    assert sources["assignment_number"] == ("primary_assignment.assignment_number",)
    assert sources["line_manager"] == ("line_manager.employee_number",)
    assert sources["line_manager_person_id"] == ("primary_assignment.supervisor_person_id",)
    assert set(sources) == set(STANDARD_FIELDS)
    assert template.udfs == ()


def test_valid_rules_of_every_shape() -> None:
    udfs = (
        UdfDefinition("band", Kind.TEXT),
        UdfDefinition("fte", Kind.DECIMAL),
        UdfDefinition("vacancy", Kind.DECIMAL),
        UdfDefinition("trust", Kind.TEXT),
        UdfDefinition("started", Kind.TEXT),
        UdfDefinition("start", Kind.DATE),
    )
    template = MappingTemplate(
        (
            R("surname", "PRA.last_name", transforms=(Trim(), Upper())),
            R("udf.band", "primary_assignment.grade", transforms=(SplitPart(1),)),
            R("udf.fte", "primary_assignment.fte"),
            R("udf.vacancy", "primary_assignment.vacancy_id"),  # int into decimal
            R("udf.trust", transforms=(Default("Test Trust"),)),
            R("udf.started", "person.hire_date", transforms=(DateFormat("%d/%m/%Y"),)),
            R("udf.start", "person.nhs_crs_uuid", transforms=(ParseDate("%Y%m%d"),)),
            R("first_name", "person.preferred_name", "person.first_name", transforms=(Concat(" "),)),
            R("gender", "person.gender", transforms=(Lookup.of({"F": "Female"}, "Other"),)),
        ),
        udfs,
    )
    assert validate_template(template) is template
    assert rule_kind(template.rules[0]) is Kind.TEXT
    assert rule_kind(template.rules[3]) is Kind.INT
    assert rule_kind(template.rules[4]) is Kind.TEXT


def test_unknown_source_field() -> None:
    message = one_problem(R("surname", "person.surname"))
    assert message.startswith("rules[0] (surname).sources[0]: unknown ESR field 'person.surname'")


def test_unknown_target_field() -> None:
    message = one_problem(R("last_name", "person.last_name"))
    assert message.startswith("rules[0] (last_name).target: unknown target field 'last_name'")


def test_unknown_udf() -> None:
    message = one_problem(R("udf.band", "primary_assignment.grade"), udfs=(UdfDefinition("grade"),))
    assert "unknown UDF 'band': declare it in the template's udfs first (declared: grade)" in message


def test_duplicate_target() -> None:
    message = one_problem(R("surname", "person.last_name"), R("surname", "person.previous_last_name"))
    assert message == "rules[1] (surname): duplicate target: surname is already mapped by rules[0]"


def test_duplicate_udf_target_is_case_insensitive_through_the_definitions() -> None:
    found = problems_of(
        R("udf.band", "primary_assignment.grade"),
        R("udf.Band", "primary_assignment.grade"),
        udfs=(UdfDefinition("band"), UdfDefinition("Band")),
    )
    assert any("defined twice" in p for p in found)
    assert any("duplicate target" in p for p in found)


@pytest.mark.parametrize(
    ("rule", "udfs", "fragment"),
    [
        (R("surname", "person.hire_date"), (), "gives date but surname is text (add a date_format"),
        (R("hire_date", "person.email"), (), "gives text but hire_date is date (add a parse_date transform)"),
        (R("udf.n", "primary_assignment.fte"), (UdfDefinition("n", Kind.INT),), "gives decimal but udf.n is int"),
        (R("surname", "primary_assignment.fte"), (), "(add a to_text transform)"),
        (R("email", "person.hire_date", transforms=(Trim(),)), (), "transforms[0]: trim takes text but is given date"),
        (
            R("hire_date", "person.hire_date", transforms=(DateFormat(), Trim(), Default(dt.date(2000, 1, 1)))),
            (),
            "transforms[2]: default: the value datetime.date(2000, 1, 1) is date but the rule's value is text",
        ),
    ],
)
def test_type_mismatches(rule: MappingRule, udfs: tuple[UdfDefinition, ...], fragment: str) -> None:
    assert fragment in one_problem(rule, udfs=udfs)


def test_to_text_fixes_a_mismatch() -> None:
    assert problems_of(R("surname", "primary_assignment.fte", transforms=(ToText(),))) == []


def test_concat_rules() -> None:
    assert "2 sources need concat as the first transform" in one_problem(
        R("surname", "person.first_name", "person.last_name")
    )
    assert "must be the first transform" in one_problem(
        R("surname", "person.last_name", transforms=(Trim(), Concat()))
    )
    assert "concat has no sources to join" in one_problem(R("surname", transforms=(Concat(),)))
    assert "listed more than once" in one_problem(
        R("surname", "person.last_name", "PRA.last_name", transforms=(Concat(),))
    )
    # Concat of non-text sources is fine: they are written as text.
    assert problems_of(R("surname", "person.hire_date", "primary_assignment.fte", transforms=(Concat(),))) == []


def test_no_source_needs_a_default() -> None:
    assert "no source and no default" in one_problem(R("surname"))
    assert "has no value to work on" in one_problem(R("surname", transforms=(Trim(),)))


def test_transform_settings_are_checked() -> None:
    assert "lookup: the table is empty" in one_problem(R("gender", "person.gender", transforms=(Lookup(),)))
    assert "%Q is not supported" in one_problem(R("surname", "person.hire_date", transforms=(DateFormat("%Q"),)))
    assert "not a transform" in one_problem(R("surname", "person.last_name", transforms=("trim",)))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("udf", "fragment"),
    [
        (UdfDefinition("1abc"), "must be a letter"),
        (UdfDefinition("has space"), "must be a letter"),
        (UdfDefinition("x" * 64), "must be a letter"),
        (UdfDefinition("ok", "text"), "UDF kind 'text' is not one of"),  # type: ignore[arg-type]
        (UdfDefinition("ok", Kind.TEXT, "d" * 501), "description"),
    ],
)
def test_bad_udf_definitions(udf: UdfDefinition, fragment: str) -> None:
    assert fragment in one_problem(udfs=(udf,))


def test_template_needs_a_name() -> None:
    assert problems_of() == []
    assert [str(p) for p in template_problems(MappingTemplate((), (), " "))] == ["name: the template needs a name"]


def test_validation_reports_everything_at_once() -> None:
    template = MappingTemplate(
        (R("surnme", "person.lastname"), R("udf.x", "PRA.hire_date"), R("email", "person.hire_date")), ()
    )
    with pytest.raises(ValidationError) as raised:
        validate_template(template)
    assert len(raised.value.problems) == 4
    assert str(raised.value).startswith("invalid mapping template 'default': rules[0] (surnme).target:")


def test_canonical_and_describe() -> None:
    rule = R("surname", "PRA.last_name", transforms=(Trim(), SplitPart(1, "/")))
    assert rule.canonical().sources == ("person.last_name",)
    assert rule.describe() == "surname <- PRA.last_name | trim | split_part(index=1, separator='/')"
    assert R("udf.x", transforms=(Default("a"),)).describe() == "udf.x <- (no source) | default(value='a', kind='text')"
    template = MappingTemplate((rule,), (UdfDefinition("x"),))
    assert template.canonical().rules[0].sources == ("person.last_name",)
    assert template.rule_for("surname") is rule
    assert template.target_kind("udf.x") is Kind.TEXT
    assert template.target_kind("udf.y") is None
    assert template.target_kind("nope") is None
