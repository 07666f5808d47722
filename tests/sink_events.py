"""Change events built by hand for the sink's tests, in the shape of `schemas/change-event` (DESIGN §4):
values of `after` are canonical text, keyed by the layout field names of esr/format/layouts.py."""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from collections.abc import Mapping
from typing import Any

VPD = "999"
RUN_DATE = dt.datetime(2024, 3, 1, 7, 15, 3)
_NAMESPACE = uuid.UUID("00000000-0000-5000-8000-00000000e5e5")


def sha_of(sequence: int) -> str:
    return hashlib.sha256(f"file {sequence}".encode()).hexdigest()


def file_name(sequence: int, extract: str = "C") -> str:
    return f"GO_{VPD}_EXP_GO{extract}_20240301_{sequence:08d}.DAT"


def change(
    entity_type: str,
    entity_id: str,
    event_type: str,
    *,
    after: Mapping[str, str] | None = None,
    before: Mapping[str, str] | None = None,
    person_id: str | None = None,
    sequence: int = 1,
    line_no: int | None = 1,
    op: str = "c",
    event_id: str | None = None,
    vpd: str = VPD,
    employee_number: str | None = None,
    record_code: str | None = None,
    run_date: dt.datetime | None = RUN_DATE,
    effective_date: dt.date | None = None,
) -> dict[str, Any]:
    """One change event; the event id is derived like the real one (file, line, entity, event type)."""
    sha = sha_of(sequence)
    if event_id is None:
        event_id = str(uuid.uuid5(_NAMESPACE, f"{sha}:{line_no}:{entity_type}:{entity_id}:{event_type}"))
    changes = []
    for field in sorted(set(after or {}) | set(before or {})):
        old, new = (before or {}).get(field), (after or {}).get(field)
        if old != new:
            changes.append({"field": field, "old": old, "new": new})
    return {
        "event_id": event_id,
        "event_type": event_type,
        "op": op,
        "entity_type": entity_type,
        "entity_id": entity_id,
        "vpd": vpd,
        "person_id": person_id,
        "employee_number": employee_number,
        "changes": changes,
        "before": dict(before) if before is not None else None,
        "after": dict(after) if after is not None else None,
        "effective_date": effective_date,
        "source": {
            "file_name": file_name(sequence),
            "file_sha256": sha,
            "sequence": sequence,
            "extract_type": "C",
            "run_date": run_date,
            "record_code": record_code,
            "line_no": line_no,
            "topic": "esr.records",
            "partition": 0,
            "offset": line_no or 0,
        },
        "ts_ms": 1_709_277_303_000,
    }


def person(person_id: str, last_name: str = "Smith", **fields: str) -> dict[str, str]:
    return {
        "person_id": person_id,
        "effective_start": "2024-01-01",
        "employee_number": f"E{person_id}",
        "last_name": last_name,
        "first_name": "Alex",
        "date_of_birth": "1985-03-02",
        "hire_date": "2020-01-01",
        "last_update_date": "2024-02-29T10:10:10",
        **fields,
    }


def assignment(person_id: str, assignment_id: str, **fields: str) -> dict[str, str]:
    return {
        "person_id": person_id,
        "assignment_id": assignment_id,
        "effective_start": "2024-01-01",
        "assignment_type": "E",
        "assignment_number": f"A{assignment_id}",
        "system_assignment_status": "ACTIVE_ASSIGN",
        "primary_assignment": "Yes",
        "normal_hours": "37.50000",
        "fte": "1.000",
        **fields,
    }


def address(person_id: str, address_id: str, **fields: str) -> dict[str, str]:
    return {
        "person_id": person_id,
        "address_id": address_id,
        "address_style": "GB",
        "primary_flag": "Yes",
        "line_1": "1 High Street",
        "town": "Leeds",
        "postcode": "LS1 1AA",
        "effective_start": "2024-01-01",
        **fields,
    }


def phone(person_id: str, phone_id: str, **fields: str) -> dict[str, str]:
    return {"person_id": person_id, "phone_id": phone_id, "phone_type": "H1", "phone_number": "0113 000 0000",
            "effective_start": "2024-01-01", **fields}


def vehicle(person_id: str, assignment_id: str, allocation_id: str, **fields: str) -> dict[str, str]:
    return {
        "person_id": person_id,
        "assignment_id": assignment_id,
        "vehicle_allocation_id": allocation_id,
        "effective_start": "2024-01-01",
        "registration": "X123ABC",
        "make": "VAUXHALL",
        "model": "VECTRA",
        "ownership": "P",
        "last_update_date": "2024-02-29T10:10:10",
        "engine_cc": "2000.000",
        "user_rates_table": "NHS_MILEAGE_CASUAL",
        "fuel_type": "P",
        **fields,
    }


def costing(person_id: str, assignment_id: str, costing_id: str, **fields: str) -> dict[str, str]:
    return {
        "person_id": person_id,
        "assignment_id": assignment_id,
        "costing_id": costing_id,
        "effective_start": "2024-01-01",
        "cost_centre": "CC100",
        "subjective": "S200",
        "percentage": "100.00",
        **fields,
    }


def location(location_id: str, **fields: str) -> dict[str, str]:
    return {"location_id": location_id, "location_code": f"L{location_id}", "description": "St Elsewhere",
            "address_line_1": "1 Hospital Road", "town": "Leeds", "postcode": "LS2 2BB", **fields}


def organisation(organisation_id: str, **fields: str) -> dict[str, str]:
    return {"organisation_id": organisation_id, "name": "Ward 1", "organisation_type": "Ward",
            "effective_from": "1951-01-01", "hierarchy_version_id": "1", "last_update_date": "2024-02-29T10:10:10",
            **fields}


def position(position_id: str, **fields: str) -> dict[str, str]:
    return {"position_id": position_id, "position_number": "7000001", "position_name": "Staff Nurse",
            "job_role": "Staff Nurse", "job_staff_group": "Nursing", "last_update_date": "2024-02-29T10:10:10",
            **fields}
