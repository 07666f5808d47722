"""JSON shapes of the API (they make the OpenAPI document). Fields masked for the caller's role are null
and listed in `masked`."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, Field

from esr.web.roles import Role


class _Model(BaseModel):
    model_config = {"extra": "ignore"}


class EmployeeSummary(_Model):
    vpd: str
    person_id: str
    employee_number: str | None = None
    title: str | None = None
    first_name: str | None = None
    middle_names: str | None = None
    last_name: str | None = None
    preferred_name: str | None = None
    date_of_birth: dt.date | None = None
    ni_number: str | None = None
    hire_date: dt.date | None = None
    termination_date: dt.date | None = None
    deleted_at: dt.datetime | None = None
    assignment_number: str | None = Field(None, description="The primary (else latest) assignment's number.")
    position_name: str | None = None
    organisation_name: str | None = None
    masked: list[str] = Field(default_factory=list, description="Fields hidden from the caller's role.")


class EmployeePage(_Model):
    items: list[EmployeeSummary]
    next_cursor: str | None = Field(None, description="Pass as `after` for the next page; null on the last.")


class Employee(_Model):
    vpd: str
    trust_name: str | None = None
    person_id: str
    employee_number: str | None = None
    title: str | None = None
    first_name: str | None = None
    middle_names: str | None = None
    last_name: str | None = None
    maiden_name: str | None = None
    preferred_name: str | None = None
    previous_last_name: str | None = None
    gender: str | None = None
    date_of_birth: dt.date | None = None
    ni_number: str | None = None
    email: str | None = None
    hire_date: dt.date | None = None
    termination_date: dt.date | None = None
    effective_start: dt.date | None = None
    effective_end: dt.date | None = None
    deleted_at: dt.datetime | None = None
    masked: list[str] = Field(default_factory=list)


class Costing(_Model):
    costing_id: str
    cost_centre: str | None = None
    subjective: str | None = None
    percentage: Decimal | None = None
    effective_start: dt.date | None = None
    effective_end: dt.date | None = None
    deleted_at: dt.datetime | None = None


class LineManager(_Model):
    person_id: str
    employee_number: str | None = None
    name: str | None = None


class Assignment(_Model):
    assignment_id: str
    assignment_number: str | None = None
    is_primary: bool | None = None
    current: bool = Field(description="Not deleted, and its effective end is empty or not yet passed.")
    assignment_status: str | None = None
    job_name: str | None = None
    position_id: str | None = None
    position_name: str | None = None
    position_number: int | str | None = None
    staff_group: str | None = None
    grade: str | None = None
    organisation_id: str | None = None
    organisation_name: str | None = None
    location_id: str | None = None
    location_description: str | None = None
    line_manager: LineManager | None = None
    effective_start: dt.date | None = None
    effective_end: dt.date | None = None
    assignment_end_date: dt.date | None = None
    deleted_at: dt.datetime | None = None
    costings: list[Costing] = Field(default_factory=list)


class HomeAddress(_Model):
    address_id: str
    line1: str | None = None
    line2: str | None = None
    line3: str | None = None
    town: str | None = None
    county: str | None = None
    postcode: str | None = None
    country: str | None = None
    is_primary: bool | None = None
    effective_start: dt.date | None = None
    effective_end: dt.date | None = None
    deleted_at: dt.datetime | None = None


class WorkAddress(_Model):
    assignment_id: str
    assignment_number: str | None = None
    is_primary: bool | None = None
    location_id: str | None = None
    code: str | None = None
    description: str | None = None
    line1: str | None = None
    line2: str | None = None
    line3: str | None = None
    town: str | None = None
    county: str | None = None
    postcode: str | None = None
    country: str | None = None
    location_source: str | None = Field(None, description="'assignment' or 'organisation': whose location it is")


class Phone(_Model):
    phone_id: str
    phone_type: str | None = None
    phone_number: str | None = None
    effective_start: dt.date | None = None
    effective_end: dt.date | None = None
    deleted_at: dt.datetime | None = None


class Addresses(_Model):
    home: list[HomeAddress]
    work: list[WorkAddress]
    phones: list[Phone]


class MileageMatch(_Model):
    code: str
    engine_size_cc: int | None = Field(None, description="The vehicle's engine size in cc, as matched")
    engine_from: int | None = None
    engine_to: int | None = None
    rate_per_mile: Decimal | None = None
    description: str | None = None


class Vehicle(_Model):
    vehicle_allocation_id: str
    assignment_id: str | None = None
    assignment_number: str | None = None
    registration: str | None = None
    make: str | None = None
    model: str | None = None
    ownership: str | None = None
    fuel_type: str | None = None
    engine_cc: Decimal | None = Field(None, description="As ESR sends it: cc, or litres when under 10")
    user_rates_table: str | None = None
    effective_start: dt.date | None = None
    effective_end: dt.date | None = None
    deleted_at: dt.datetime | None = None
    mileage: list[MileageMatch] = Field(default_factory=list, description="NHS mileage categories matched.")


class ChangeEvent(_Model):
    event_id: str
    event_type: str
    entity_type: str | None = None
    entity_id: str | None = None
    changes: Any = Field(None, description="Field changes {field, old, new}; NI number and date of birth masked.")
    effective_date: dt.date | None = None
    file_name: str | None = None
    line_no: int | None = None
    recorded_at: dt.datetime


class HistoryPage(_Model):
    items: list[ChangeEvent]
    next_cursor: str | None = None


class ImportFile(_Model):
    sha256: str
    vpd: str | None = None
    trust_name: str | None = None
    file_name: str
    sequence: int | None = None
    extract_type: str | None = None
    extract_date: dt.date | None = None
    status: str
    rejection_code: str | None = None
    line_count: int | None = None
    record_count: int | None = None
    error_count: int | None = None
    warning_count: int | None = None
    message: str | None = None
    received_at: dt.datetime
    completed_at: dt.datetime | None = None


class ImportFilePage(_Model):
    items: list[ImportFile]
    next_cursor: str | None = None


class UnmatchedVehicle(_Model):
    line_no: int
    vehicle_allocation_id: str
    person_id: str | None = None
    user_rates_table: str | None = None
    engine_cc: Decimal | None = None


class ImportFileDetail(ImportFile):
    run_date: dt.datetime | None = None
    unknown_count: int | None = None
    counts_by_code: dict[str, int] | None = None
    size_bytes: int | None = None
    forced: bool | None = None
    attempts: int | None = None
    #: the file's vehicles that match no mileage category of the trust (NHS mileage, issue 5)
    unmatched_vehicles: list[UnmatchedVehicle] = []


class LineError(_Model):
    line_no: int
    record_code: str | None = None
    severity: str
    field: str | None = None
    reason: str
    raw_line: str | None = None


class LineErrorPage(_Model):
    items: list[LineError]
    next_cursor: str | None = None


class Trust(_Model):
    vpd: str
    name: str
    interface_version: int
    import_frequency: str
    last_sequence: int | None = None
    active: bool
    created_at: dt.datetime | None = None
    updated_at: dt.datetime | None = None
    last_file_at: dt.datetime | None = None


class MileageCategory(_Model):
    code: str
    engine_from: int
    engine_to: int | None = None
    rate_per_mile: Decimal | None = None
    description: str | None = None


class NhsOptions(_Model):
    employee_activation: str = Field(description="none, manual or automatic (on the hire date)")
    employee_archiving: str = Field(description="none, manual or automatic (termination + grace days)")
    archive_grace_days: int
    username_format: str
    home_address_format: str
    only_primary_address: bool
    vehicle_automatic_activation: bool
    display_with_assignment: str = Field(description="none, paypoint, job_name or position_name")
    full_file_absence: str = Field(description="report or delete")


class TrustDetail(Trust):
    inbox_path: str | None = None
    nhs_options: NhsOptions
    mileage_categories: list[MileageCategory]


class _Input(BaseModel):
    model_config = {"extra": "forbid"}


class TrustCreate(_Input):
    """Checked as a whole by the profile model (esr.profiles): every problem is listed, with its field."""

    vpd: str = Field(max_length=3, description="3 letters or digits, unique regardless of case")
    name: str = Field(max_length=200)
    interface_version: int = 2
    import_frequency: str = Field("daily", max_length=10, description="daily or weekly")
    inbox_path: str | None = Field(None, max_length=1000)
    active: bool = True
    nhs_options: dict[str, Any] = Field(default_factory=dict, description="Options left out keep their defaults.")


class TrustPatch(_Input):
    """Only the fields sent change; `nhs_options` are merged into the current ones, then the whole profile is
    checked. `inbox_path: null` removes the inbox."""

    name: str | None = Field(None, max_length=200)
    import_frequency: str | None = Field(None, max_length=10, description="daily or weekly")
    inbox_path: str | None = Field(None, max_length=1000)
    active: bool | None = Field(None, description="false archives the trust: its files are then rejected")
    nhs_options: dict[str, Any] | None = None


class MappingVersionSummary(_Model):
    vpd: str
    version: int = Field(description="0 is the default template, which a trust that saved none maps with.")
    author: str
    created_at: dt.datetime
    note: str
    rules: int
    udfs: int


class MappingVersion(_Model):
    vpd: str
    version: int = Field(description="0 is the default template, which a trust that saved none maps with.")
    author: str
    created_at: dt.datetime
    note: str
    template: dict[str, Any] = Field(description="The template JSON, as PUT /api/trusts/{vpd}/mapping takes it.")


class MappingSave(_Input):
    template: dict[str, Any] = Field(description="Template JSON: format_version, name, udfs, rules.")
    note: str = Field("", max_length=2000, description="Why the template changed (kept with the version).")


class CatalogueSource(_Model):
    key: str = Field(description="What a rule names as a source: <scope>.<field>.")
    scope: str
    record_type: str
    field: str
    kind: str


class CatalogueTarget(_Model):
    name: str
    kind: str
    description: str


class MappingCatalogue(_Model):
    sources: list[CatalogueSource]
    standard_fields: list[CatalogueTarget] = Field(description="Targets with a column each in esr.employee.")
    udf_prefix: str = Field(description="Targets udf.<name> are user-defined fields the template declares.")
    transforms: list[str]


class MileageCategoryIn(_Input):
    code: str = Field(max_length=200, description="The user rates table ESR sends (compared case-insensitively).")
    engine_from: int
    engine_to: int | None = Field(None, description="null: no upper limit")
    rate_per_mile: Decimal
    description: str = Field("", max_length=1000)


class MileageTable(_Input):
    """Replaces the trust's whole table; checked like `esr mileage import` (bands must not overlap)."""

    categories: list[MileageCategoryIn] = Field(max_length=1000)


class GrantOut(_Model):
    grant_id: int
    role: Role
    vpd: str | None = Field(None, description="null: every trust")


class UserOut(_Model):
    user_id: int
    username: str
    display_name: str | None = None
    active: bool
    locked_until: dt.datetime | None = None
    last_login_at: dt.datetime | None = None
    created_at: dt.datetime
    grants: list[GrantOut]


class UserCreate(BaseModel):
    username: str = Field(min_length=3, max_length=64)
    password: str = Field(min_length=12, max_length=256)
    display_name: str | None = Field(None, max_length=200)


class GrantCreate(BaseModel):
    role: Role
    vpd: str | None = Field(None, min_length=3, max_length=3, description="null: every trust")


class UserPatch(BaseModel):
    active: bool | None = None
    password: str | None = Field(None, min_length=12, max_length=256)


class TokenOut(_Model):
    token_id: int
    name: str
    token_prefix: str
    created_at: dt.datetime
    expires_at: dt.datetime
    last_used_at: dt.datetime | None = None
    revoked_at: dt.datetime | None = None
    usable: bool


class TokenCreate(BaseModel):
    name: str = Field(min_length=1, max_length=100)
    days: int = Field(90, ge=1, le=366)


class TokenCreated(_Model):
    token_id: int
    token: str = Field(description="Shown once; only its SHA-256 digest is kept.")


class Me(_Model):
    user_id: int
    username: str
    display_name: str | None = None
    via: str
    grants: list[GrantOut]
    permissions: dict[str, Any] = Field(description="Per permission: 'all' or the list of trusts.")
