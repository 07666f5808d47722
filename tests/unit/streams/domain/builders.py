"""Hand-built record events, shaped exactly as `Decoder("record-event").decode` returns them."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from esr.format.layouts import BY_ENTITY, EntityType
from streams.domain import InputRecord

VPD = "999"
PERSON_ID = "600001"
SHA_1 = "1" * 64
SHA_2 = "2" * 64
SHA_3 = "3" * 64
RUN_1 = dt.datetime(2024, 3, 1)
RUN_2 = dt.datetime(2024, 3, 2)
RUN_3 = dt.datetime(2024, 3, 3)
NOW_MS = 1_709_280_000_000


@dataclass(frozen=True)
class File:
    """The provenance of the records of one ESR file."""

    sha: str = SHA_1
    run: dt.datetime = RUN_1
    sequence: int = 1
    extract_type: str = "F"

    @property
    def name(self) -> str:
        return f"GO_{VPD}_EXP_GO{self.extract_type}_{self.run:%Y%m%d}_{self.sequence:08d}.DAT"


FILE_1 = File()
FILE_2 = File(SHA_2, RUN_2, 2, "C")
FILE_3 = File(SHA_3, RUN_3, 3, "C")


def _payload(entity: EntityType, values: dict[str, Any]) -> dict[str, Any]:
    layout = BY_ENTITY[entity]
    unknown = set(values) - {f.name for f in layout.data_fields}
    assert not unknown, f"{entity.value} has no field(s) {unknown}"
    return {f.name: values.get(f.name) for f in layout.data_fields}


def event(entity: EntityType, values: dict[str, Any] | None, *, entity_id: str | None = None,
          person_id: str | None = PERSON_ID, file: File = FILE_1, line: int = 2, vpd: str = VPD) -> dict[str, Any]:
    """An upsert (`values` given) or delete (`values` None, `entity_id` given) record event."""
    layout = BY_ENTITY[entity]
    if values is not None:
        entity_id = values[layout.key_field]
        person_id = values.get("person_id") if layout.owner_field else None
    assert entity_id is not None
    if not layout.person_scoped:
        person_id = None
    return {
        "record_id": f"{file.sha}:{line}",
        "vpd": vpd,
        "record_code": layout.code if values is not None else layout.delete_code,
        "entity_type": entity.value,
        "action": "UPSERT" if values is not None else "DELETE",
        "entity_id": entity_id,
        "person_id": person_id,
        "payload": None if values is None else _payload(entity, values),
        "extra_fields": [],
        "issues": [],
        "source": {
            "file_name": file.name,
            "file_sha256": file.sha,
            "line_no": line,
            "sequence": file.sequence,
            "extract_type": file.extract_type,
            "extract_date": file.run.date(),
            "run_date": file.run,
            "previous_run_date": None,
        },
        "ingested_at": dt.datetime(2024, 3, 1, 7, 30, tzinfo=dt.UTC),
    }


D = dt.date


def person(**values: Any) -> dict[str, Any]:
    return {
        "person_id": PERSON_ID, "effective_start": D(2020, 1, 1), "employee_number": "20001234", "title": "Ms.",
        "last_name": "Jones", "first_name": "Ann", "gender": "F", "date_of_birth": D(1990, 1, 15),
        "hire_date": D(2020, 1, 1), "email": "ann.jones@example.nhs.uk",
        "last_update_date": dt.datetime(2024, 2, 29, 10, 10, 10), **values,
    }


def assignment(assignment_id: str = "700001", **values: Any) -> dict[str, Any]:
    return {
        "person_id": PERSON_ID, "assignment_id": assignment_id, "effective_start": D(2020, 1, 1),
        "assignment_type": "E", "assignment_number": "20001234", "system_assignment_status": "ACTIVE_ASSIGN",
        "location_id": "300001", "primary_assignment": "Yes", "normal_hours": Decimal("37.50000"),
        "fte": Decimal("1.000"), "organisation_id": "400001", "position_id": "500001",
        "annual_salary": Decimal("30000.00"), "last_update_date": dt.datetime(2024, 2, 29, 10, 10, 10), **values,
    }


def address(address_id: str = "810001", **values: Any) -> dict[str, Any]:
    return {
        "person_id": PERSON_ID, "address_id": address_id, "address_style": "GB", "primary_flag": "Yes",
        "line_1": "2 Home Street", "town": "Anytown", "postcode": "AN2 2BB", "country": "GB",
        "effective_start": D(2020, 1, 1), **values,
    }


def phone(phone_id: str = "800001", **values: Any) -> dict[str, Any]:
    return {"person_id": PERSON_ID, "phone_id": phone_id, "phone_type": "M", "phone_number": "07700 900000",
            "effective_start": D(2020, 1, 1), **values}


def vehicle(vehicle_id: str = "820001", **values: Any) -> dict[str, Any]:
    return {
        "person_id": PERSON_ID, "assignment_id": "700001", "vehicle_allocation_id": vehicle_id,
        "effective_start": D(2020, 1, 1), "registration": "AB12CDE", "make": "FORD", "model": "FOCUS",
        "ownership": "P", "last_update_date": dt.datetime(2024, 2, 29, 10, 10, 10),
        "engine_cc": Decimal("1596.000"), "user_rates_table": "NHS_MILEAGE_CASUAL", "fuel_type": "P", **values,
    }


def costing(costing_id: str = "830001", **values: Any) -> dict[str, Any]:
    return {"person_id": PERSON_ID, "assignment_id": "700001", "costing_id": costing_id,
            "effective_start": D(2020, 1, 1), "cost_centre": "999C001", "percentage": Decimal("100.00"), **values}


def location(location_id: str = "300001", **values: Any) -> dict[str, Any]:
    return {"location_id": location_id, "location_code": "999 z 0100 Main", "description": "Main Hospital",
            "address_line_1": "1 Hospital Road", "town": "Anytown", "postcode": "AN1 1AA",
            "country": "United Kingdom", **values}


def organisation(organisation_id: str = "400001", **values: Any) -> dict[str, Any]:
    return {"organisation_id": organisation_id, "name": "999 Ward 1", "organisation_type": "NHS_DE",
            "effective_from": D(1951, 1, 1), "hierarchy_version_id": "5001", "location_id": "300001",
            "last_update_date": dt.datetime(2024, 2, 29, 10, 10, 10), **values}


def position(position_id: str = "500001", **values: Any) -> dict[str, Any]:
    return {"position_id": position_id, "effective_from": D(2024, 1, 1), "position_number": 7000001,
            "position_name": "7000001|Staff Nurse|N7B|Ward 1|", "organisation_id": "400001",
            "last_update_date": dt.datetime(2024, 2, 29, 10, 10, 10), **values}


@dataclass
class Stream:
    """Offsets of one key's partition: `records(...)` places events after the ones already placed."""

    topic: str = "esr.records"
    partition: int = 0
    offset: int = 0
    log: list[InputRecord] = field(default_factory=list)

    def records(self, *events: dict[str, Any]) -> list[InputRecord]:
        placed = []
        for item in events:
            placed.append(InputRecord(item, self.topic, self.partition, self.offset))
            self.offset += 1
        self.log.extend(placed)
        return placed


def lines(file: File, *items: tuple[EntityType, dict[str, Any]]) -> list[dict[str, Any]]:
    """Upsert events of one file on consecutive lines from 2."""
    return [event(entity, values, file=file, line=n) for n, (entity, values) in enumerate(items, 2)]


def event_types(changes: Iterable[dict[str, Any]]) -> list[str]:
    return [change["event_type"] for change in changes]
