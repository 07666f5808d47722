"""Event builders: what a parsed line and its file say in a RecordEvent, and ControlEvent defaults."""

from __future__ import annotations

import datetime as dt

import pytest

from esr.codec.events import ControlEventType, Provenance, control_event, record_event
from esr.format.header import ExtractType
from esr.format.layouts import LOCATION, PERSON
from esr.format.lines import Delete, FieldIssue, Record, parse_fields
from tests.unit.codec.conftest import NOW, OWNER_OF_DELETED

Sample = tuple[Provenance, list[tuple[int, Record | Delete]]]


def test_provenance_from_the_file(sample: Sample) -> None:
    provenance, _ = sample
    assert provenance.vpd == "999"
    assert provenance.file_name == "GO_999_EXP_GOC_20240301_00000042.DAT"
    assert len(provenance.file_sha256) == 64
    assert provenance.sequence == 42
    assert provenance.extract_type is ExtractType.CHANGES
    assert provenance.extract_date == dt.date(2024, 3, 1)
    assert provenance.run_date == dt.datetime(2024, 3, 1)
    assert provenance.previous_run_date == dt.datetime(2024, 2, 29)


def test_upsert_event(sample: Sample) -> None:
    provenance, lines = sample
    number, person = next((n, r) for n, r in lines if r.layout is PERSON)
    assert isinstance(person, Record)
    event = record_event(person, provenance, number, ingested_at=NOW)
    assert event["record_id"] == f"{provenance.file_sha256}:{number}"
    assert (event["vpd"], event["record_code"], event["entity_type"], event["action"]) == (
        "999", "PRA", "PERSON", "UPSERT",
    )
    assert event["entity_id"] == event["person_id"] == "600001"
    assert event["payload"] == ("nhs.esr.Person", person.values)
    assert event["payload"][1] is person.values, "no copy of the values on the hot path"
    assert event["source"] == {
        "file_name": provenance.file_name,
        "file_sha256": provenance.file_sha256,
        "line_no": number,
        "sequence": 42,
        "extract_type": "C",
        "extract_date": dt.date(2024, 3, 1),
        "run_date": dt.datetime(2024, 3, 1),
        "previous_run_date": dt.datetime(2024, 2, 29),
    }
    assert event["ingested_at"] == NOW
    replayed = record_event(person, provenance, number, ingested_at=NOW + dt.timedelta(hours=1))
    assert replayed["record_id"] == event["record_id"]


def test_reference_record_has_no_person(sample: Sample) -> None:
    provenance, lines = sample
    number, location = next((n, r) for n, r in lines if r.layout is LOCATION)
    event = record_event(location, provenance, number, ingested_at=NOW)
    assert (event["entity_type"], event["entity_id"], event["person_id"]) == ("LOCATION", "300001", None)
    assert event["payload"] is not None
    assert event["payload"][0] == "nhs.esr.Location"


def test_delete_event(sample: Sample) -> None:
    provenance, lines = sample
    number, delete = next((n, r) for n, r in lines if isinstance(r, Delete))
    event = record_event(delete, provenance, number, ingested_at=NOW, person_id=OWNER_OF_DELETED)
    assert (event["record_code"], event["action"], event["entity_type"]) == ("ASD", "DELETE", "ASSIGNMENT")
    assert (event["entity_id"], event["person_id"], event["payload"]) == ("700099", OWNER_OF_DELETED, None)
    assert record_event(delete, provenance, number, ingested_at=NOW)["person_id"] is None  # owner not known


def test_person_id_rules(sample: Sample) -> None:
    provenance, lines = sample
    _, person = next((n, r) for n, r in lines if r.layout is PERSON)
    with pytest.raises(ValueError, match="but the row says"):
        record_event(person, provenance, 5, ingested_at=NOW, person_id="1")
    assert record_event(person, provenance, 5, ingested_at=NOW, person_id="600001")["person_id"] == "600001"
    location_delete = parse_fields(["LCD", "300001"])
    assert isinstance(location_delete, Delete)
    with pytest.raises(ValueError, match="a LOCATION has no person_id"):
        record_event(location_delete, provenance, 5, ingested_at=NOW, person_id="1")


def test_issues_and_extra_fields(sample: Sample) -> None:
    provenance, _ = sample
    line = parse_fields(["LCD", "30000X", "extra", ""])
    assert isinstance(line, Delete)
    event = record_event(line, provenance, 9, ingested_at=NOW)
    assert event["extra_fields"] == ["extra", ""]
    assert event["issues"] == [
        {"field": i.field, "raw": i.raw, "message": i.message} for i in line.issues
    ]
    assert FieldIssue("location_id", "30000X", "ESR id is not numeric (kept as text)") in line.issues


def test_naive_timestamps_are_refused(sample: Sample) -> None:
    provenance, lines = sample
    with pytest.raises(ValueError, match="timezone-aware"):
        record_event(lines[0][1], provenance, lines[0][0], ingested_at=dt.datetime(2024, 3, 1))
    with pytest.raises(ValueError, match="timezone-aware"):
        control_event(ControlEventType.FILE_STARTED, vpd="999", file_name="f", file_sha256="x",
                      ts=dt.datetime(2024, 3, 1))


def test_control_event_defaults() -> None:
    event = control_event(ControlEventType.FILE_STARTED, vpd="999", file_name="f", file_sha256="x", ts=NOW)
    assert event == {
        "event_type": "FILE_STARTED", "vpd": "999", "file_name": "f", "file_sha256": "x", "sequence": None,
        "extract_type": None, "run_date": None, "line_count": 0, "record_count": 0, "quarantined_count": 0,
        "warning_count": 0, "unknown_count": 0, "counts_by_code": {}, "rejection_code": None, "message": None,
        "ts": NOW,
    }
    assert control_event(
        ControlEventType.FILE_REJECTED, vpd="", file_name="f", file_sha256="x", ts=NOW, rejection_code="DUPLICATE"
    )["rejection_code"] == "DUPLICATE"


def test_defaults_and_values_by_name(sample: Sample) -> None:
    provenance, lines = sample
    before = dt.datetime.now(dt.UTC)
    event = record_event(lines[0][1], provenance, lines[0][0])
    assert before <= event["ingested_at"] <= dt.datetime.now(dt.UTC)
    control = control_event("FILE_COMPLETED", vpd="999", file_name="f", file_sha256="x", extract_type="F")
    assert (control["event_type"], control["extract_type"]) == ("FILE_COMPLETED", "F")
    assert control["ts"].tzinfo is not None
    with pytest.raises(ValueError, match="FILE_EXPLODED"):
        control_event("FILE_EXPLODED", vpd="999", file_name="f", file_sha256="x")
