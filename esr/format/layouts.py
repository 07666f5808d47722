"""Record layouts of the ESR Outbound v2 (GO, sub-type EXP) file, field by field.

The single source of truth for the parser, the formatter, the generator and the Avro schemas.
Positions, names and types follow `esr-outbound-v2.md` §2 (0-based index, index 0 = record code).
Lengths are the Assure column widths: soft maxima, warned about and never truncated (Q1).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class FieldType(enum.Enum):
    ID = "id"  # numeric ESR surrogate key, kept as a string of digits (Q1, Q15)
    TEXT = "text"  # free text; pipe composites are kept whole
    DATE = "date"  # YYYYMMDD
    TIMESTAMP = "timestamp"  # YYYYMMDD HHMMSS, UK local time, naive (Q6)
    INT = "int"
    DECIMAL = "decimal"


class EntityType(enum.Enum):
    LOCATION = "LOCATION"
    ORGANISATION = "ORGANISATION"
    POSITION = "POSITION"
    PERSON = "PERSON"
    ASSIGNMENT = "ASSIGNMENT"
    PHONE = "PHONE"
    ADDRESS = "ADDRESS"
    VEHICLE = "VEHICLE"
    COSTING = "COSTING"


REFERENCE_ENTITIES = frozenset({EntityType.LOCATION, EntityType.ORGANISATION, EntityType.POSITION})


@dataclass(frozen=True, slots=True)
class Field:
    name: str
    type: FieldType = FieldType.TEXT
    max_length: int | None = None
    mandatory: bool = False
    precision: int = 0  # DECIMAL only
    scale: int = 0  # DECIMAL only


@dataclass(frozen=True, slots=True)
class Layout:
    """The layout of one add/update record type (its delete twin has 2 fields: code + key)."""

    code: str  # e.g. "PRA"
    delete_code: str  # e.g. "PRD"
    entity: EntityType
    avro_name: str
    fields: tuple[Field, ...]  # fields[0] is the record code
    key_field: str  # the entity's ESR id
    owner_field: str | None  # person id for person-scoped records

    @property
    def field_count(self) -> int:
        return len(self.fields)

    @property
    def data_fields(self) -> tuple[Field, ...]:
        return self.fields[1:]

    @property
    def key_index(self) -> int:
        return self.index(self.key_field)

    def index(self, name: str) -> int:
        for i, f in enumerate(self.fields):
            if f.name == name:
                return i
        raise KeyError(f"{self.code} has no field {name!r}")

    @property
    def person_scoped(self) -> bool:
        return self.entity not in REFERENCE_ENTITIES


def _id(name: str, mandatory: bool = False) -> Field:
    return Field(name, FieldType.ID, 15, mandatory)


def _d(name: str, mandatory: bool = False) -> Field:
    return Field(name, FieldType.DATE, None, mandatory)


def _ts(name: str, mandatory: bool = False) -> Field:
    return Field(name, FieldType.TIMESTAMP, None, mandatory)


def _t(name: str, max_length: int | None = None, mandatory: bool = False) -> Field:
    return Field(name, FieldType.TEXT, max_length, mandatory)


def _n(name: str) -> Field:
    return Field(name, FieldType.INT)


def _dec(name: str, precision: int, scale: int, mandatory: bool = False) -> Field:
    return Field(name, FieldType.DECIMAL, None, mandatory, precision, scale)


_CODE = Field("record_code", FieldType.TEXT, 3, True)

LOCATION = Layout(
    "LCA", "LCD", EntityType.LOCATION, "Location",
    (
        _CODE,
        _id("location_id", True),
        _t("location_code", 60),
        _t("description", 240, True),
        _d("inactive_date"),
        _t("address_line_1", 240),
        _t("address_line_2", 240),
        _t("address_line_3", 240),
        _t("town", 30),
        _t("county", 70),
        _t("postcode", 30),
        _t("country", 60),
        _t("telephone", 60),
        _t("fax", 60),
        _t("payslip_delivery_point", 1),
        _t("site_code", 2),
        _t("welsh_location_translation", 60),
        _t("welsh_address_line_1", 60),
        _t("welsh_address_line_2", 60),
        _t("welsh_address_line_3", 60),
        _t("welsh_town_translation", 60),
        _ts("last_update_date"),
    ),
    "location_id", None,
)

ORGANISATION = Layout(
    "ORA", "ORD", EntityType.ORGANISATION, "Organisation",
    (
        _CODE,
        _id("organisation_id", True),
        _t("name", 240),
        _t("organisation_type", 80),
        _d("effective_from", True),
        _d("effective_to"),
        _id("hierarchy_version_id", True),
        _d("hierarchy_version_date_from"),
        _d("hierarchy_version_date_to"),
        _t("default_cost_centre", 15),
        _id("parent_organisation_id"),
        _t("nacs_code", 30),
        _id("location_id"),
        _ts("last_update_date", True),
        _t("cost_centre_description", 240),
    ),
    "organisation_id", None,
)

POSITION = Layout(
    "POA", "POD", EntityType.POSITION, "Position",
    (
        _CODE,
        _id("position_id", True),
        _d("effective_from"),
        _d("effective_to"),
        Field("position_number", FieldType.INT, None, True),
        _t("position_name", 240, True),
        _dec("budgeted_fte", 13, 5),
        _t("subjective_code", 15),
        _t("job_staff_group", 40),
        _t("job_role", 60),
        _t("occupation_code", 5),
        _t("payscale", 10),
        _t("grade_step", 30),
        _t("isa_regulated_post", 15),
        _id("organisation_id"),
        _t("hiring_status", 80),
        _t("position_type", 80),
        _t("eligible_for_oh_processing", 30),
        _t("epp_flag", 30),
        _t("deanery_post_number", 30),
        _t("managing_deanery_body", 10),
        _t("workplace_org_code", 10),
        _ts("last_update_date", True),
        _t("subjective_code_description", 240),
    ),
    "position_id", None,
)

PERSON = Layout(
    "PRA", "PRD", EntityType.PERSON, "Person",
    (
        _CODE,
        _id("person_id", True),
        _d("effective_start", True),
        _d("effective_end"),
        _t("employee_number", 30, True),
        _t("title", 30),
        _t("last_name", 150, True),
        _t("first_name", 150),
        _t("middle_names", 60),
        _t("maiden_name", 150),
        _t("preferred_name", 80),
        _t("previous_last_name", 150),
        _t("gender", 30),
        _d("date_of_birth"),
        _t("ni_number", 30),
        _t("nhs_unique_id", 15),
        _d("hire_date"),
        _d("termination_date"),
        _t("termination_reason", 30),
        _t("employee_status_flag", 3),
        _t("wtr_opt_out", 3),
        _d("wtr_opt_out_date"),
        _t("ethnic_origin", 30),
        _t("marital_status", 30),
        _t("country_of_birth", 30),
        _t("previous_employer", 240),
        _t("previous_employer_type", 30),
        _d("csd_3_months"),
        _d("csd_12_months"),
        _t("nhs_crs_uuid", 12),
        _t("spare_1"),
        _t("spare_2"),
        _t("spare_3"),
        _t("system_person_type", 30),
        _t("user_person_type", 80),
        _t("email", 240),
        _d("nhs_start_date"),
        _t("spare_4"),
        _ts("last_update_date"),
        _t("disability_flag", 1),
        _t("legacy_payroll_number", 150),
        _t("nationality", 30),
        _t("spare_6"),
        _t("spare_7"),
    ),
    "person_id", "person_id",
)

ASSIGNMENT = Layout(
    "ASA", "ASD", EntityType.ASSIGNMENT, "Assignment",
    (
        _CODE,
        _id("person_id", True),
        _id("assignment_id", True),
        _d("effective_start", True),
        _d("effective_end"),
        _d("earliest_assignment_start"),
        _t("assignment_type", 1, True),
        _t("assignment_number", 30, True),
        _t("system_assignment_status", 30),
        _t("user_assignment_status", 80),
        _t("employee_status_flag", 1),
        _t("payroll_name", 80),
        _t("payroll_period_type", 30),
        _id("location_id"),
        _t("supervisor_flag", 1),
        _id("supervisor_person_id"),
        _id("supervisor_assignment_id"),
        _t("supervisor_assignment_number", 30),
        _id("department_manager_person_id"),
        _t("employee_category", 30),
        _t("assignment_category", 30),
        _t("primary_assignment", 3),
        _dec("normal_hours", 22, 5),
        _t("frequency", 30),
        _dec("grade_contract_hours", 22, 5),
        _dec("fte", 22, 3),
        _t("flexible_working_pattern", 30),
        _id("organisation_id"),
        _id("position_id"),
        _t("position_name", 240),
        _t("grade", 240),
        _t("grade_step", 10),
        _d("start_date_in_grade"),
        _dec("annual_salary", 22, 2),
        _t("job_name", 120),
        _t("people_group", 240),
        _t("t_and_a_flag", 240),
        _t("night_worker_attribute", 3),
        _d("projected_hire_date"),
        _n("vacancy_id"),
        _d("contract_end_date"),
        _d("increment_date"),
        _t("maximum_part_time_flag", 30),
        _t("afc_flag", 1),
        _ts("last_update_date"),
        _d("last_working_day"),
        _t("eksf_spinal_point", 30),
        _t("manager_flag", 30),
        _d("assignment_end_date"),
        _t("spare"),
    ),
    "assignment_id", "person_id",
)

PHONE = Layout(
    "PHA", "PHD", EntityType.PHONE, "Phone",
    (
        _CODE,
        _id("person_id", True),
        _id("phone_id", True),
        _t("phone_type", 30),
        _t("phone_number", 60),
        _d("effective_start"),
        _d("effective_end"),
        _ts("last_update_date"),
    ),
    "phone_id", "person_id",
)

ADDRESS = Layout(
    "ADA", "ADD", EntityType.ADDRESS, "Address",
    (
        _CODE,
        _id("person_id", True),
        _id("address_id", True),
        _t("address_type", 30),
        _t("address_style", 30, True),
        _t("primary_flag", 30, True),
        _t("line_1", 240),
        _t("line_2", 240),
        _t("line_3", 240),
        _t("town", 30),
        _t("county", 70),
        _t("postcode", 30),
        _t("country", 60),
        _d("effective_start", True),
        _d("effective_end"),
        _ts("last_update_date"),
    ),
    "address_id", "person_id",
)

VEHICLE = Layout(
    "VHA", "VHD", EntityType.VEHICLE, "Vehicle",
    (
        _CODE,
        _id("person_id", True),
        _id("assignment_id", True),
        _id("vehicle_allocation_id", True),
        _d("effective_start", True),
        _d("effective_end"),
        _t("registration", 30),
        _t("make", 30),
        _t("model", 30),
        _t("ownership", 30),
        _d("initial_registration_date"),
        _ts("last_update_date", True),
        # Documented as an integer, but S1 reads a value under 10 as litres: keep "1.6" exact.
        _dec("engine_cc", 9, 3),
        _t("user_rates_table", 80),
        _t("fuel_type", 30),
    ),
    "vehicle_allocation_id", "person_id",
)

COSTING = Layout(
    "COA", "COD", EntityType.COSTING, "Costing",
    (
        _CODE,
        _id("person_id", True),
        _id("assignment_id", True),
        _id("costing_id", True),
        _d("effective_start", True),
        _d("effective_end"),
        _t("entity_code", 3),
        _t("charitable_indicator", 1),
        _t("cost_centre", 15),
        _t("subjective", 15),
        _t("analysis_1", 15),
        _t("analysis_2", 15),
        _n("element_number"),
        _t("spare_segment", 60),
        _dec("percentage", 5, 2, True),
        _ts("last_update_date"),
    ),
    "costing_id", "person_id",
)

LAYOUTS: tuple[Layout, ...] = (
    LOCATION, ORGANISATION, POSITION, PERSON, ASSIGNMENT, PHONE, ADDRESS, VEHICLE, COSTING,
)
BY_CODE: dict[str, Layout] = {layout.code: layout for layout in LAYOUTS}
BY_DELETE_CODE: dict[str, Layout] = {layout.delete_code: layout for layout in LAYOUTS}
BY_ENTITY: dict[EntityType, Layout] = {layout.entity: layout for layout in LAYOUTS}

HEADER_CODE = "HDR"
TRAILER_CODE = "TRL"
HEADER_FIELD_COUNT = 7
TRAILER_FIELD_COUNT = 2
DELETE_FIELD_COUNT = 2
DELIMITER = "~"
