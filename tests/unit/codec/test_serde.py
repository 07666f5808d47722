"""Encoder and Decoder: round trips in both framings, and every way a message can be undecodable."""

from __future__ import annotations

import datetime as dt
import json
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from esr.codec.events import ControlEventType, RecordEvent, control_event
from esr.codec.framing import (
    CONFLUENT_MAGIC,
    SINGLE_OBJECT_MAGIC,
    Framing,
    UndecodableMessage,
    confluent_header,
    content_type,
    fingerprint,
    read_frame,
)
from esr.codec.schemas import latest
from esr.codec.serde import Decoder, Encoder, Registry
from esr.format.header import ExtractType, RejectionCode
from esr.format.layouts import LAYOUTS
from tests.unit.codec.conftest import NOW, require_registry_client


def expected_decoded(event: RecordEvent) -> dict[str, Any]:
    """What a decoder returns for an event it was given: the payload as a plain dict."""
    decoded: dict[str, Any] = dict(event)
    decoded["payload"] = None if event["payload"] is None else event["payload"][1]
    return decoded


@pytest.fixture(scope="module")
def registry() -> Registry:
    require_registry_client()
    return Registry.from_url("mock://serde")


def test_sample_file_has_every_record_type(sample_events: list[RecordEvent]) -> None:
    assert {e["record_code"] for e in sample_events} == {layout.code for layout in LAYOUTS} | {"ASD"}


def test_round_trip_single_object(sample_events: list[RecordEvent]) -> None:
    encoder, decoder = Encoder("record-event"), Decoder("record-event")
    assert encoder.framing is Framing.SINGLE_OBJECT
    for event in sample_events:
        data = encoder.encode(event)
        assert data[:2] == SINGLE_OBJECT_MAGIC
        assert data[2:10] == fingerprint(latest("record-event"))
        assert decoder.decode(data) == expected_decoded(event)


def test_round_trip_confluent(sample_events: list[RecordEvent], registry: Registry) -> None:
    encoder = Encoder("record-event", registry=registry)
    decoder = Decoder("record-event", registry=registry)
    assert encoder.framing is Framing.CONFLUENT
    assert encoder.schema_id == registry.id_for("esr.records-value", latest("record-event"))
    for event in sample_events:
        data = encoder.encode(event)
        assert data[:5] == confluent_header(encoder.schema_id)
        assert decoder.decode(data) == expected_decoded(event)


def test_one_decoder_reads_both_framings(sample_events: list[RecordEvent], registry: Registry) -> None:
    decoder = Decoder("record-event", registry=registry)
    single, confluent = Encoder("record-event"), Encoder("record-event", registry=registry)
    for event in sample_events:
        assert decoder.decode(single.encode(event)) == decoder.decode(confluent.encode(event))


def test_same_body_in_both_framings(sample_events: list[RecordEvent], registry: Registry) -> None:
    event = sample_events[3]
    assert Encoder("record-event").encode(event)[10:] == Encoder("record-event", registry=registry).encode(event)[5:]


def test_values_survive_with_their_types(sample_events: list[RecordEvent]) -> None:
    encoder, decoder = Encoder("record-event"), Decoder("record-event")
    by_code = {e["record_code"]: decoder.decode(encoder.encode(e)) for e in sample_events}
    person = by_code["PRA"]
    assert person["payload"]["date_of_birth"] == dt.date(1990, 1, 15)
    assert person["payload"]["last_update_date"] == dt.datetime(2024, 2, 29, 10, 10, 10)
    assert person["source"]["run_date"] == dt.datetime(2024, 3, 1)
    assert person["ingested_at"] == NOW
    assert str(by_code["VHA"]["payload"]["engine_cc"]) == "1596.000"
    assert by_code["POA"]["payload"]["position_number"] == 7000001
    assert by_code["ASD"]["payload"] is None
    assert by_code["ASD"]["action"] == "DELETE"


def test_control_event_round_trip(registry: Registry) -> None:
    event = control_event(
        ControlEventType.FILE_REJECTED, vpd="999", file_name="f.DAT", file_sha256="ab" * 32, ts=NOW,
        sequence=42, extract_type=ExtractType.CHANGES, run_date=dt.datetime(2024, 3, 1), line_count=12,
        counts_by_code={"PRA": 1, "ASA": 2}, rejection_code=RejectionCode.RECORD_COUNT, message="bad count",
    )
    for encoder in (Encoder("control-event"), Encoder("control-event", registry=registry)):
        decoded = Decoder("control-event", registry=registry).decode(encoder.encode(event))
        assert decoded == event
        assert decoded["rejection_code"] == "RECORD_COUNT"


def test_content_type_header() -> None:
    encoder = Encoder("record-event")
    fp = fingerprint(latest("record-event")).hex()
    assert encoder.content_type == content_type(latest("record-event")) == f"application/avro; fp={fp}"
    assert encoder.headers == [("content-type", f"application/avro; fp={fp}".encode())]


def test_fingerprint_is_crc64_avro_of_the_canonical_form() -> None:
    """Checked against the Avro spec's algorithm, written out here independently of fastavro."""
    from fastavro.schema import to_parsing_canonical_form

    empty = 0xC15D213AA4D7A795
    table = []
    for i in range(256):
        fp = i
        for _ in range(8):
            fp = (fp >> 1) ^ (empty & -(fp & 1))
        table.append(fp)
    schema = latest("control-event")
    fp = empty
    for byte in to_parsing_canonical_form(schema).encode():
        fp = (fp >> 8) ^ table[(fp ^ byte) & 0xFF]
    assert fingerprint(schema) == fp.to_bytes(8, "little")


# --- what cannot be decoded -------------------------------------------------------------------------


def _encoded(sample_events: list[RecordEvent]) -> bytes:
    return Encoder("record-event").encode(sample_events[4])


def test_unknown_fingerprint(sample_events: list[RecordEvent]) -> None:
    data = bytearray(_encoded(sample_events))
    data[2:10] = b"\x01" * 8
    with pytest.raises(UndecodableMessage, match="unknown writer schema: fingerprint 0101010101010101"):
        Decoder("record-event").decode(bytes(data))


def test_message_of_another_subject(sample_events: list[RecordEvent]) -> None:
    with pytest.raises(UndecodableMessage, match="committed control-event"):
        Decoder("control-event").decode(_encoded(sample_events))


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty message"),
        (b"garbage, not avro", "unknown framing: starts with 67 61 72 62"),
        (b'{"json": true}', "unknown framing"),
        (SINGLE_OBJECT_MAGIC + b"\x00\x01", "shorter than its header"),
        (CONFLUENT_MAGIC + b"\x00", "shorter than its header"),
    ],
)
def test_garbage(data: bytes, message: str) -> None:
    with pytest.raises(UndecodableMessage, match=message):
        Decoder("record-event").decode(data)


def test_confluent_framing_without_a_registry(sample_events: list[RecordEvent], registry: Registry) -> None:
    data = Encoder("record-event", registry=registry).encode(sample_events[0])
    with pytest.raises(UndecodableMessage, match="no schema registry is configured"):
        Decoder("record-event").decode(data)


def test_unknown_schema_id(sample_events: list[RecordEvent], registry: Registry) -> None:
    data = confluent_header(999_999) + _encoded(sample_events)[10:]
    decoder = Decoder("record-event", registry=registry)
    for _ in range(2):  # the second time from the cache
        with pytest.raises(UndecodableMessage, match="registry has no Avro schema with id 999999"):
            decoder.decode(data)


def test_registry_schema_that_is_not_ours(make_registry: Callable[[str], Registry]) -> None:
    """A registry id of an unrelated schema: decoded through resolution, which fails cleanly."""
    registry = make_registry("mock://other")
    other = {"type": "record", "name": "Other", "fields": [{"name": "x", "type": "long"}]}
    schema_id = registry.id_for("esr.records-value", other)
    with pytest.raises(UndecodableMessage, match=f"schema id {schema_id}"):
        Decoder("record-event", registry=registry).decode(confluent_header(schema_id) + b"\x02")


def test_every_truncation_is_undecodable(sample_events: list[RecordEvent]) -> None:
    data = _encoded(sample_events)
    decoder = Decoder("record-event")
    for size in range(len(data)):
        with pytest.raises(UndecodableMessage):
            decoder.decode(data[:size])


def test_trailing_bytes_are_undecodable(sample_events: list[RecordEvent]) -> None:
    with pytest.raises(UndecodableMessage, match=r"1 byte\(s\) after the record"):
        Decoder("record-event").decode(_encoded(sample_events) + b"\x00")


def test_corrupt_bodies_never_crash_otherwise(sample_events: list[RecordEvent]) -> None:
    """Random corruption of a valid message: it decodes to something or is UndecodableMessage."""
    rng = random.Random(7)
    original = _encoded(sample_events)
    decoder = Decoder("record-event")
    undecodable = 0
    for _ in range(3000):
        data = bytearray(original)
        for _ in range(rng.randint(1, 4)):
            data[rng.randrange(10, len(data))] = rng.randrange(256)
        try:
            decoder.decode(bytes(data))
        except UndecodableMessage:
            undecodable += 1
    assert undecodable > 0
    for _ in range(500):
        body = bytes(rng.randrange(256) for _ in range(rng.randint(0, 600)))
        with pytest.raises(UndecodableMessage):
            decoder.decode(original[:10] + body + b"\xff")  # a varint cannot end on 0xff


# --- versions -----------------------------------------------------------------------------------------


def test_old_version_is_resolved_to_the_latest(schema_dir: Path, sample_events: list[RecordEvent]) -> None:
    """A message written with v1 after v2 added fields: decoded in v2's shape, defaults filled in."""
    v2 = json.loads((schema_dir / "record-event" / "v1.avsc").read_text())
    v2["fields"].append({"name": "batch", "type": ["null", "string"], "default": None})
    v2["fields"][-3]["type"]["fields"].append({"name": "note", "type": "string", "default": ""})  # Source
    (schema_dir / "record-event" / "v2.avsc").write_text(json.dumps(v2))
    old = Encoder("record-event", version=1)
    new = Encoder("record-event")
    assert (old.version, new.version) == (1, 2)
    assert old.fingerprint != new.fingerprint
    decoder = Decoder("record-event")
    for event in sample_events:
        decoded = decoder.decode(old.encode(event))
        expected = expected_decoded(event)
        expected["batch"] = None
        expected["source"] = {**event["source"], "note": ""}
        assert decoded == expected
        assert decoder.decode(new.encode({**event, "batch": "b1"}))["batch"] == "b1"


def test_encoding_an_event_that_does_not_fit(sample_events: list[RecordEvent]) -> None:
    encoder = Encoder("record-event")
    bad: dict[str, Any] = dict(sample_events[0])
    bad["entity_type"] = "SPACESHIP"
    with pytest.raises(ValueError, match="SPACESHIP"):
        encoder.encode(bad)
    with pytest.raises(ValueError, match="vpd"):
        encoder.encode({k: v for k, v in sample_events[0].items() if k != "vpd"})
    bad = dict(sample_events[0])
    bad["payload"] = sample_events[0]["payload"][1] if sample_events[0]["payload"] else None
    with pytest.raises(ValueError, match=r"\(branch name, value\) tuple"):
        encoder.encode(bad)


def test_read_frame() -> None:
    frame = read_frame(confluent_header(258) + b"x")
    assert (frame.framing, frame.schema_ref, frame.body_offset) == (Framing.CONFLUENT, 258, 5)
    frame = read_frame(SINGLE_OBJECT_MAGIC + bytes(range(8)) + b"x")
    assert (frame.framing, frame.schema_ref, frame.body_offset) == (Framing.SINGLE_OBJECT, bytes(range(8)), 10)
