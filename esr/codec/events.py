"""Event builders: parsed ESR lines and file lifecycle facts -> event dicts ready for `Encoder.encode`.

Pure functions. Built for speed on the ingest path: the record's value dict becomes the payload as is
(no copy), and the payload union branch is named with fastavro's tuple notation `(fullname, values)`
so the encoder never has to guess it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TypedDict

from esr.codec.schemas import Action, ControlEventType, fullname
from esr.format.header import ExtractType, RejectionCode
from esr.format.layouts import LAYOUTS
from esr.format.lines import Delete, Record
from esr.format.reader import FileScan
from esr.format.values import Value

__all__ = [
    "Action",
    "ControlEvent",
    "ControlEventType",
    "FieldIssueDict",
    "Provenance",
    "RecordEvent",
    "SourceDict",
    "control_event",
    "record_event",
]

_PAYLOAD_TYPE: dict[str, str] = {layout.code: fullname(layout.avro_name) for layout in LAYOUTS}
_UPSERT = Action.UPSERT.value
_DELETE = Action.DELETE.value


@dataclass(frozen=True, slots=True)
class Provenance:
    """What every record event of one file says about where it came from."""

    vpd: str
    file_name: str
    file_sha256: str
    sequence: int
    extract_type: ExtractType
    extract_date: dt.date
    run_date: dt.datetime
    previous_run_date: dt.datetime | None

    @classmethod
    def from_scan(cls, scan: FileScan) -> Provenance:
        """From an `EsrFile.open()` that succeeded (file name and header parsed)."""
        if scan.file_name is None or scan.header is None:
            raise ValueError(f"{scan.path}: no provenance for a file whose name or header did not parse")
        return cls(
            vpd=scan.header.vpd,
            file_name=scan.file_name.name,
            file_sha256=scan.sha256,
            sequence=scan.file_name.sequence,
            extract_type=scan.file_name.extract_type,
            extract_date=scan.file_name.extract_date,
            run_date=scan.header.run_date,
            previous_run_date=scan.header.previous_run_date,
        )


class SourceDict(TypedDict):
    file_name: str
    file_sha256: str
    line_no: int
    sequence: int
    extract_type: str
    extract_date: dt.date
    run_date: dt.datetime
    previous_run_date: dt.datetime | None


class FieldIssueDict(TypedDict):
    field: str
    raw: str
    message: str


class RecordEvent(TypedDict):
    """A RecordEvent as built for encoding; decoded events have `payload` as a plain dict instead."""

    record_id: str
    vpd: str
    record_code: str
    entity_type: str
    action: str
    entity_id: str
    person_id: str | None
    payload: tuple[str, dict[str, Value]] | None
    extra_fields: list[str]
    issues: list[FieldIssueDict]
    source: SourceDict
    ingested_at: dt.datetime


class ControlEvent(TypedDict):
    event_type: str
    vpd: str
    file_name: str
    file_sha256: str
    sequence: int | None
    extract_type: str | None
    run_date: dt.datetime | None
    line_count: int
    record_count: int
    quarantined_count: int
    warning_count: int
    unknown_count: int
    counts_by_code: dict[str, int]
    rejection_code: str | None
    message: str | None
    ts: dt.datetime


def _require_aware(name: str, value: dt.datetime) -> None:
    if value.tzinfo is None:
        raise ValueError(f"{name} must be timezone-aware (timestamp-millis is UTC): {value!r}")


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def record_event(
    line: Record | Delete,
    provenance: Provenance,
    line_no: int,
    person_id: str | None = None,
    *,
    ingested_at: dt.datetime | None = None,
) -> RecordEvent:
    """The RecordEvent of one parsed data line.

    `person_id` is for deletes of person-scoped records, whose row carries only the entity id: the caller
    supplies the owner (None when it is not known). An add/update row carries its owner itself (passing
    the same value is allowed). `record_id` is `<file_sha256>:<line_no>`, identical on every replay of the
    file. `ingested_at` defaults to now; pass it (once per batch, say) to keep the function pure.
    """
    if ingested_at is None:
        ingested_at = _utc_now()
    else:
        _require_aware("ingested_at", ingested_at)
    layout = line.layout
    if isinstance(line, Record):
        own = line.person_id
        if person_id is not None and person_id != own:
            raise ValueError(f"{layout.code} line {line_no}: person_id {person_id!r} but the row says {own!r}")
        code, action, entity_id = layout.code, _UPSERT, line.entity_id
        payload: tuple[str, dict[str, Value]] | None = (_PAYLOAD_TYPE[layout.code], line.values)
        person_id = own
    else:
        if person_id is not None and not layout.person_scoped:
            raise ValueError(f"{layout.delete_code} line {line_no}: a {layout.entity.value} has no person_id")
        code, action, entity_id, payload = layout.delete_code, _DELETE, line.entity_id, None
    return {
        "record_id": f"{provenance.file_sha256}:{line_no}",
        "vpd": provenance.vpd,
        "record_code": code,
        "entity_type": layout.entity.value,
        "action": action,
        "entity_id": entity_id,
        "person_id": person_id,
        "payload": payload,
        "extra_fields": line.extra_fields,
        "issues": [{"field": i.field, "raw": i.raw, "message": i.message} for i in line.issues],
        "source": {
            "file_name": provenance.file_name,
            "file_sha256": provenance.file_sha256,
            "line_no": line_no,
            "sequence": provenance.sequence,
            "extract_type": provenance.extract_type.value,
            "extract_date": provenance.extract_date,
            "run_date": provenance.run_date,
            "previous_run_date": provenance.previous_run_date,
        },
        "ingested_at": ingested_at,
    }


def control_event(
    event_type: ControlEventType | str,
    *,
    vpd: str,
    file_name: str,
    file_sha256: str,
    ts: dt.datetime | None = None,
    sequence: int | None = None,
    extract_type: ExtractType | str | None = None,
    run_date: dt.datetime | None = None,
    line_count: int = 0,
    record_count: int = 0,
    quarantined_count: int = 0,
    warning_count: int = 0,
    unknown_count: int = 0,
    counts_by_code: Mapping[str, int] | None = None,
    rejection_code: RejectionCode | str | None = None,
    message: str | None = None,
) -> ControlEvent:
    """A file lifecycle event. Enums may be given by value ("FILE_STARTED", "F"); `rejection_code` is
    carried by name (e.g. "RECORD_COUNT"); `ts` defaults to now."""
    if ts is None:
        ts = _utc_now()
    else:
        _require_aware("ts", ts)
    return {
        "event_type": ControlEventType(event_type).value,
        "vpd": vpd,
        "file_name": file_name,
        "file_sha256": file_sha256,
        "sequence": sequence,
        "extract_type": None if extract_type is None else ExtractType(extract_type).value,
        "run_date": run_date,
        "line_count": line_count,
        "record_count": record_count,
        "quarantined_count": quarantined_count,
        "warning_count": warning_count,
        "unknown_count": unknown_count,
        "counts_by_code": dict(counts_by_code or {}),
        "rejection_code": rejection_code.name if isinstance(rejection_code, RejectionCode) else rejection_code,
        "message": message,
        "ts": ts,
    }
