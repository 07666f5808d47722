"""The change-event subject (DESIGN §4): envelope, compatibility mode, and what an older reader makes of
an event type it does not know."""

from __future__ import annotations

import copy
import datetime as dt
import io
from typing import Any

from fastavro import parse_schema, schemaless_reader, schemaless_writer

from esr.codec import CHANGE_EVENT, SUBJECTS, ChangeEventType, ChangeOp, Decoder, Encoder
from esr.codec.compat import Compatibility, incompatibilities
from esr.codec.schemas import generate, latest, load_versions


def _fields(schema: dict[str, Any]) -> dict[str, Any]:
    return {f["name"]: f for f in schema["fields"]}


def test_subject() -> None:
    assert SUBJECTS["change-event"] is CHANGE_EVENT
    assert CHANGE_EVENT.topic == "esr.changes"
    assert CHANGE_EVENT.registry_subject == "esr.changes-value"
    assert CHANGE_EVENT.compatibility is Compatibility.FULL_TRANSITIVE
    assert generate("change-event") == latest("change-event")


def test_envelope() -> None:
    fields = _fields(latest("change-event"))
    assert list(fields) == ["event_id", "event_type", "op", "entity_type", "entity_id", "vpd", "person_id",
                            "employee_number", "changes", "before", "after", "effective_date", "source", "ts_ms"]
    event_type = fields["event_type"]["type"]
    assert event_type["symbols"] == [t.value for t in ChangeEventType]
    assert event_type["default"] == "UNKNOWN"
    assert fields["op"]["type"]["symbols"] == [o.value for o in ChangeOp] == ["c", "u", "d", "r"]
    assert fields["entity_type"]["type"]["default"] == "UNKNOWN"
    assert fields["before"]["type"] == ["null", {"type": "map", "values": ["null", "string"]}]
    assert fields["effective_date"]["type"] == ["null", {"type": "int", "logicalType": "date"}]
    assert [f["name"] for f in fields["source"]["type"]["fields"]] == [
        "file_name", "file_sha256", "sequence", "extract_type", "run_date", "record_code", "line_no", "topic",
        "partition", "offset"]
    assert [f["name"] for f in fields["changes"]["type"]["items"]["fields"]] == ["field", "old", "new"]


def sample() -> dict[str, Any]:
    return {
        "event_id": "7f3d5c1e-0000-5000-8000-000000000000",
        "event_type": "SURNAME_CHANGED",
        "op": "u",
        "entity_type": "PERSON",
        "entity_id": "600001",
        "vpd": "999",
        "person_id": "600001",
        "employee_number": "20001234",
        "changes": [{"field": "last_name", "old": "Jones", "new": "Smith"}],
        "before": {"last_name": "Jones", "effective_start": "2024-01-01"},
        "after": {"last_name": "Smith", "effective_start": "2024-01-01"},
        "effective_date": dt.date(2024, 1, 1),
        "source": {"file_name": "GO_999_EXP_GOC_20240301_00000042.DAT", "file_sha256": "ab" * 32, "sequence": 42,
                   "extract_type": "C", "run_date": dt.datetime(2024, 3, 1), "record_code": "PRA", "line_no": 5,
                   "topic": "esr.records", "partition": 3, "offset": 1234},
        "ts_ms": 1_709_280_000_000,
    }


def test_round_trip() -> None:
    event = sample()
    assert Decoder("change-event").decode(Encoder("change-event").encode(event)) == event
    minimal = {"event_id": "x", "entity_id": "1", "vpd": "999", "source": {}}
    decoded = Decoder("change-event").decode(Encoder("change-event").encode(minimal))
    assert (decoded["event_type"], decoded["op"], decoded["changes"], decoded["before"]) == ("UNKNOWN", "u", [], None)


def test_an_older_reader_reads_a_new_event_type_as_unknown() -> None:
    newer = copy.deepcopy(latest("change-event"))
    _fields(newer)["event_type"]["type"]["symbols"].append("SABBATICAL_STARTED")
    assert incompatibilities(newer, load_versions("change-event"), Compatibility.FULL_TRANSITIVE) == []
    buffer = io.BytesIO()
    schemaless_writer(buffer, parse_schema(newer), {**sample(), "event_type": "SABBATICAL_STARTED"})
    buffer.seek(0)
    read = schemaless_reader(buffer, parse_schema(newer), parse_schema(latest("change-event")))
    assert isinstance(read, dict)
    assert read["event_type"] == "UNKNOWN"
    assert read["entity_id"] == "600001"
