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


class ImportFileDetail(ImportFile):
    run_date: dt.datetime | None = None
    unknown_count: int | None = None
    counts_by_code: dict[str, int] | None = None
    size_bytes: int | None = None
    forced: bool | None = None
    attempts: int | None = None


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


class TrustDetail(Trust):
    mileage_categories: list[MileageCategory]


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
