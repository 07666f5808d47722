"""What a mapping template may read (ESR source fields) and write (standard fields, UDFs). Pure.

Source fields
-------------
Every data field of the layouts in `esr.format.layouts` (record code and spare fields excluded), in one
of the scopes an employee record is built from:

=====================  ======  ===========================================================================
scope                  record  which row
=====================  ======  ===========================================================================
``person``             PRA     the person's version in force
``primary_assignment`` ASA     the primary assignment (`esr.mapping.view.select_primary`)
``home_address``       ADA     the current home address (primary only unless the trust says otherwise)
``line_manager``       PRA     the person whose person id is the primary assignment's supervisor person id
``work_location``      LCA     the primary assignment's location, else its organisation's location
``organisation``       ORA     the primary assignment's organisation
``position``           POA     the primary assignment's position
=====================  ======  ===========================================================================

A source is written ``<scope>.<field>`` (``person.last_name``). The record code stands for its usual scope
too (``PRA.last_name`` = ``person.last_name``, ``ASA.grade`` = ``primary_assignment.grade``, ``ADA`` =
home address, ``LCA`` = work location, ``ORA`` = organisation, ``POA`` = position); the canonical spelling,
used in JSON, is the scope name.

Kinds
-----
Values flowing through a rule have a `Kind`. ESR ids are text (Q1/Q15), timestamps are date-times.
"""

from __future__ import annotations

import datetime as dt
import difflib
import enum
import re
from dataclasses import dataclass
from decimal import Decimal

from esr.format.layouts import (
    ADDRESS,
    ASSIGNMENT,
    LOCATION,
    ORGANISATION,
    PERSON,
    POSITION,
    FieldType,
    Layout,
)


class Kind(enum.Enum):
    TEXT = "text"
    DATE = "date"
    DATETIME = "datetime"
    INT = "int"
    DECIMAL = "decimal"


MappedValue = str | int | Decimal | dt.date | dt.datetime | None

KIND_OF_FIELD_TYPE: dict[FieldType, Kind] = {
    FieldType.ID: Kind.TEXT,
    FieldType.TEXT: Kind.TEXT,
    FieldType.DATE: Kind.DATE,
    FieldType.TIMESTAMP: Kind.DATETIME,
    FieldType.INT: Kind.INT,
    FieldType.DECIMAL: Kind.DECIMAL,
}


def assignable(value_kind: Kind, target_kind: Kind) -> bool:
    """Whether a value of one kind may be stored in a field of another: equal kinds, or int into decimal."""
    return value_kind is target_kind or (value_kind is Kind.INT and target_kind is Kind.DECIMAL)


class Scope(enum.Enum):
    PERSON = "person"
    PRIMARY_ASSIGNMENT = "primary_assignment"
    HOME_ADDRESS = "home_address"
    LINE_MANAGER = "line_manager"
    WORK_LOCATION = "work_location"
    ORGANISATION = "organisation"
    POSITION = "position"


SCOPE_LAYOUT: dict[Scope, Layout] = {
    Scope.PERSON: PERSON,
    Scope.PRIMARY_ASSIGNMENT: ASSIGNMENT,
    Scope.HOME_ADDRESS: ADDRESS,
    Scope.LINE_MANAGER: PERSON,
    Scope.WORK_LOCATION: LOCATION,
    Scope.ORGANISATION: ORGANISATION,
    Scope.POSITION: POSITION,
}
RECORD_CODE_SCOPE: dict[str, Scope] = {
    "PRA": Scope.PERSON,
    "ASA": Scope.PRIMARY_ASSIGNMENT,
    "ADA": Scope.HOME_ADDRESS,
    "LCA": Scope.WORK_LOCATION,
    "ORA": Scope.ORGANISATION,
    "POA": Scope.POSITION,
}


@dataclass(frozen=True, slots=True)
class SourceField:
    scope: Scope
    record_type: str  # the layout's record code, e.g. "PRA"
    field: str  # the layout's field name
    kind: Kind

    @property
    def key(self) -> str:
        return f"{self.scope.value}.{self.field}"


def _catalogue() -> dict[str, SourceField]:
    fields: dict[str, SourceField] = {}
    for scope, layout in SCOPE_LAYOUT.items():
        for f in layout.data_fields:
            if f.name.startswith("spare"):
                continue
            source = SourceField(scope, layout.code, f.name, KIND_OF_FIELD_TYPE[f.type])
            fields[source.key] = source
    return fields


#: Every mappable ESR field by canonical key ("person.last_name").
SOURCE_FIELDS: dict[str, SourceField] = _catalogue()


def canonical_source_key(key: str) -> str:
    """``PRA.last_name`` -> ``person.last_name``; other spellings come back unchanged."""
    prefix, dot, name = key.strip().partition(".")
    scope = RECORD_CODE_SCOPE.get(prefix.upper())
    return f"{scope.value}.{name}" if dot and scope is not None else key.strip()


def find_source(key: str) -> SourceField | None:
    return SOURCE_FIELDS.get(canonical_source_key(key))


def _suggest(key: str, candidates: list[str]) -> str:
    close = difflib.get_close_matches(key, candidates, n=3, cutoff=0.6)
    return f" (did you mean {' or '.join(close)}?)" if close else ""


def unknown_source_message(key: str) -> str:
    canonical = canonical_source_key(key)
    prefix, dot, _ = canonical.partition(".")
    scopes = [s.value for s in Scope]
    if not dot or prefix not in scopes:
        return (
            f"unknown ESR field {key!r}: write <scope>.<field> with a scope of {', '.join(scopes)} "
            f"(or a record code {', '.join(RECORD_CODE_SCOPE)})" + _suggest(canonical, list(SOURCE_FIELDS))
        )
    return f"unknown ESR field {key!r}" + _suggest(canonical, list(SOURCE_FIELDS))


# --- targets ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StandardField:
    name: str
    kind: Kind
    description: str


STANDARD_FIELD_LIST: tuple[StandardField, ...] = (
    StandardField("payroll_number", Kind.TEXT, "payroll number (ESR employee number)"),
    StandardField("title", Kind.TEXT, "title"),
    StandardField("first_name", Kind.TEXT, "first name"),
    StandardField("middle_names", Kind.TEXT, "middle names"),
    StandardField("surname", Kind.TEXT, "surname"),
    StandardField("preferred_name", Kind.TEXT, "preferred (known as) name"),
    StandardField("maiden_name", Kind.TEXT, "maiden name"),
    StandardField("gender", Kind.TEXT, "gender"),
    StandardField("date_of_birth", Kind.DATE, "date of birth"),
    StandardField("ni_number", Kind.TEXT, "National Insurance number"),
    StandardField("email", Kind.TEXT, "work e-mail address"),
    StandardField("hire_date", Kind.DATE, "hire date"),
    StandardField("termination_date", Kind.DATE, "termination date"),
    StandardField("person_type", Kind.TEXT, "ESR person type"),
    StandardField("assignment_number", Kind.TEXT, "the primary assignment's number"),
    StandardField("job_name", Kind.TEXT, "the primary assignment's job name"),
    StandardField("position_name", Kind.TEXT, "the primary assignment's position name"),
    StandardField("grade", Kind.TEXT, "the primary assignment's grade"),
    StandardField("department", Kind.TEXT, "the primary assignment's organisation"),
    StandardField("cost_centre", Kind.TEXT, "the primary assignment's organisation's cost centre"),
    StandardField("work_location", Kind.TEXT, "the primary assignment's work location"),
    StandardField("line_manager", Kind.TEXT, "the line manager's employee number"),
    StandardField("line_manager_person_id", Kind.TEXT, "the line manager's ESR person id"),
)
#: The standard employee fields by name: one column each in `esr.employee`.
STANDARD_FIELDS: dict[str, StandardField] = {f.name: f for f in STANDARD_FIELD_LIST}

UDF_PREFIX = "udf."
UDF_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,62}")


def is_udf_target(target: str) -> bool:
    return target.startswith(UDF_PREFIX)


def udf_name(target: str) -> str:
    return target[len(UDF_PREFIX) :]


def unknown_standard_message(target: str) -> str:
    return (
        f"unknown target field {target!r}: a standard field or udf.<name>"
        + _suggest(target, list(STANDARD_FIELDS))
    )
