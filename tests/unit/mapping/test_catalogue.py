"""esr.mapping.catalogue: mappable ESR fields and target fields."""

from __future__ import annotations

import pytest

from esr.format.layouts import ADDRESS, ASSIGNMENT, LOCATION, ORGANISATION, PERSON, POSITION, FieldType, Layout
from esr.mapping.catalogue import (
    KIND_OF_FIELD_TYPE,
    SOURCE_FIELDS,
    STANDARD_FIELDS,
    Kind,
    Scope,
    assignable,
    canonical_source_key,
    find_source,
    unknown_source_message,
    unknown_standard_message,
)


@pytest.mark.parametrize(
    ("scope", "layout"),
    [
        (Scope.PERSON, PERSON),
        (Scope.PRIMARY_ASSIGNMENT, ASSIGNMENT),
        (Scope.HOME_ADDRESS, ADDRESS),
        (Scope.LINE_MANAGER, PERSON),
        (Scope.WORK_LOCATION, LOCATION),
        (Scope.ORGANISATION, ORGANISATION),
        (Scope.POSITION, POSITION),
    ],
)
def test_every_layout_field_is_in_the_catalogue(scope: Scope, layout: Layout) -> None:
    for field in layout.data_fields:
        key = f"{scope.value}.{field.name}"
        if field.name.startswith("spare"):
            assert key not in SOURCE_FIELDS
            continue
        source = SOURCE_FIELDS[key]
        assert source.record_type == layout.code
        assert source.kind is KIND_OF_FIELD_TYPE[field.type]


def test_record_code_is_never_a_source() -> None:
    assert not any(s.field == "record_code" for s in SOURCE_FIELDS.values())


def test_kinds_follow_the_layouts() -> None:
    assert SOURCE_FIELDS["person.person_id"].kind is Kind.TEXT  # ids are text
    assert SOURCE_FIELDS["person.hire_date"].kind is Kind.DATE
    assert SOURCE_FIELDS["person.last_update_date"].kind is Kind.DATETIME
    assert SOURCE_FIELDS["primary_assignment.vacancy_id"].kind is Kind.INT
    assert SOURCE_FIELDS["primary_assignment.fte"].kind is Kind.DECIMAL
    assert set(KIND_OF_FIELD_TYPE) == set(FieldType)


@pytest.mark.parametrize(
    ("written", "canonical"),
    [
        ("PRA.last_name", "person.last_name"),
        ("pra.last_name", "person.last_name"),
        ("ASA.grade", "primary_assignment.grade"),
        ("ADA.postcode", "home_address.postcode"),
        ("LCA.description", "work_location.description"),
        ("ORA.name", "organisation.name"),
        ("POA.job_role", "position.job_role"),
        (" person.email ", "person.email"),
        ("line_manager.employee_number", "line_manager.employee_number"),
    ],
)
def test_record_codes_are_aliases(written: str, canonical: str) -> None:
    assert canonical_source_key(written) == canonical
    source = find_source(written)
    assert source is not None
    assert source.key == canonical


def test_unknown_source_messages_suggest() -> None:
    assert find_source("person.surname") is None
    assert "did you mean" in unknown_source_message("person.lastname")
    assert "person.last_name" in unknown_source_message("person.lastname")
    message = unknown_source_message("employee.surname")
    assert "write <scope>.<field>" in message
    assert "primary_assignment" in message


def test_standard_fields() -> None:
    for name in (
        "payroll_number", "title", "first_name", "middle_names", "surname", "preferred_name", "email",
        "hire_date", "termination_date", "assignment_number", "line_manager", "date_of_birth", "ni_number",
        "gender",
    ):
        assert name in STANDARD_FIELDS
    assert STANDARD_FIELDS["hire_date"].kind is Kind.DATE
    assert "did you mean surname" in unknown_standard_message("surnme")


def test_assignable() -> None:
    assert assignable(Kind.TEXT, Kind.TEXT)
    assert assignable(Kind.INT, Kind.DECIMAL)
    assert not assignable(Kind.DECIMAL, Kind.INT)
    assert not assignable(Kind.DATE, Kind.TEXT)
    assert not assignable(Kind.DATETIME, Kind.DATE)
