"""Text records: the compiled reader returns chosen record types as the canonical text of their non-null fields."""

from __future__ import annotations

import datetime as dt
import struct
from decimal import Decimal
from typing import Any

import pytest

from esr.codec import PAYLOAD_TYPES, Decoder, Encoder, TextRecord, UndecodableMessage
from esr.codec.events import RecordEvent
from esr.codec.reader import compile_reader, to_text
from esr.codec.schemas import load_versions
from esr.codec.writer import compile_writer

FLAT = {
    "type": "record",
    "name": "Flat",
    "namespace": "t",
    "fields": [
        {"name": "key", "type": "string"},
        {"name": "text", "type": ["null", "string"]},
        {"name": "count", "type": ["null", "long"]},
        {"name": "small", "type": "int"},
        {"name": "flag", "type": ["null", "boolean"]},
        {"name": "ratio", "type": ["null", "double"]},
        {"name": "day", "type": ["null", {"type": "int", "logicalType": "date"}]},
        {"name": "at", "type": ["null", {"type": "long", "logicalType": "local-timestamp-millis"}]},
        {"name": "utc", "type": {"type": "long", "logicalType": "timestamp-millis"}},
        {"name": "hours", "type": ["null", {"type": "bytes", "logicalType": "decimal", "precision": 9, "scale": 5}]},
        {"name": "kind", "type": {"type": "enum", "name": "Kind", "symbols": ["A", "B"]}},
        {"name": "nothing", "type": "null"},
    ],
}
OUTER = {
    "type": "record",
    "name": "Outer",
    "namespace": "t",
    "fields": [
        {"name": "id", "type": "string"},
        {"name": "when", "type": {"type": "int", "logicalType": "date"}},
        {"name": "inner", "type": ["null", FLAT]},
    ],
}


def flat(**values: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "key": "k1", "text": None, "count": None, "small": 0, "flag": None, "ratio": None, "day": None, "at": None,
        "utc": dt.datetime(2024, 3, 1, 12, 0, tzinfo=dt.UTC), "hours": None, "kind": "A", "nothing": None,
    }
    return {**base, **values}


CASES = [
    flat(),
    flat(text="Siân Ó Súilleabháin", count=-(2**40), small=70_000, flag=True, ratio=0.1, day=dt.date(2024, 2, 29),
         at=dt.datetime(2024, 2, 29, 10, 10, 10, 123000), hours=Decimal("37.50000"), kind="B"),
    flat(text="", count=0, small=-1, flag=False, ratio=-2.5, day=dt.date(1900, 1, 1),
         at=dt.datetime(1969, 12, 31, 23, 59, 59), hours=Decimal("-0.00001")),
    flat(small=63, count=64, day=dt.date(1970, 1, 1), hours=Decimal("0.00000")),  # varints of 1, 2 and 3 bytes
    flat(small=8191, count=-8193, day=dt.date(2200, 12, 31)),
]


def expected_text(typed: dict[str, Any]) -> dict[str, str]:
    return {name: text for name, value in typed.items() if (text := to_text(value)) is not None}


@pytest.mark.parametrize("datum", CASES)
def test_a_text_record_is_the_text_of_its_typed_read(datum: dict[str, Any]) -> None:
    data = compile_writer(OUTER)({"id": "x", "when": dt.date(2024, 3, 1), "inner": datum})
    typed = compile_reader(OUTER)(data, 0)
    text = compile_reader(OUTER, text_records={"t.Flat"})(data, 0)
    assert type(text["inner"]) is TextRecord
    assert text["inner"] == expected_text(typed["inner"])
    assert {k: v for k, v in text.items() if k != "inner"} == {k: v for k, v in typed.items() if k != "inner"}


def test_the_text_of_each_kind_of_value() -> None:
    data = compile_writer(FLAT)(CASES[1])
    assert compile_reader(FLAT, text_records={"t.Flat"})(data, 0) == {
        "key": "k1", "text": "Siân Ó Súilleabháin", "count": str(-(2**40)), "small": "70000", "flag": "true",
        "ratio": "0.1", "day": "2024-02-29", "at": "2024-02-29T10:10:10.123000", "utc": "2024-03-01T12:00:00+00:00",
        "hours": "37.50000", "kind": "B",
    }


def test_names_the_schema_does_not_have_are_ignored() -> None:
    data = compile_writer(FLAT)(CASES[0])
    assert compile_reader(FLAT, text_records={"t.Other"})(data, 0) == compile_reader(FLAT)(data, 0)


def test_a_corrupt_text_record_raises() -> None:
    read = compile_reader(FLAT, text_records={"t.Flat"})
    data = compile_writer(FLAT)(CASES[1])
    with pytest.raises(ValueError, match="union branch 4"):
        read(data[:3] + b"\x04" + data[4:], 0)  # "text" (after "k1"): branch 2 of a 2-branch union
    for cut in range(1, len(data)):
        with pytest.raises((IndexError, ValueError, AttributeError, struct.error)):
            read(data[:-cut], 0)  # truncated anywhere
    with pytest.raises(ValueError, match="after the record"):
        read(data + b"\x00", 0)


def test_only_flat_records_can_be_text() -> None:
    nested = {"type": "record", "name": "N", "fields": [{"name": "inner", "type": FLAT}]}
    with pytest.raises(NotImplementedError, match="cannot hold 'record'"):
        compile_reader(nested, text_records={"N"})
    choice = {"type": "record", "name": "C", "fields": [{"name": "u", "type": ["null", "string", "long"]}]}
    with pytest.raises(NotImplementedError, match=r"\[null, T\] unions only"):
        compile_reader(choice, text_records={"C"})
    listed = {"type": "record", "name": "L", "fields": [{"name": "a", "type": {"type": "array", "items": "long"}}]}
    with pytest.raises(NotImplementedError, match="cannot hold 'array'"):
        compile_reader(listed, text_records={"L"})


def test_record_event_payloads_read_as_text(sample_events: list[RecordEvent]) -> None:
    encoder = Encoder("record-event")
    typed, text = Decoder("record-event"), Decoder("record-event", text_records=PAYLOAD_TYPES)
    for event in sample_events:
        data = encoder.encode(event)
        plain, as_text = typed.decode(data), text.decode(data)
        if plain["payload"] is None:
            assert as_text["payload"] is None
        else:
            assert type(as_text["payload"]) is TextRecord
            assert as_text["payload"] == expected_text(plain["payload"])
        assert {k: v for k, v in as_text.items() if k != "payload"} == {
            k: v for k, v in plain.items() if k != "payload"}


def test_a_corrupt_record_event_is_undecodable_in_text_mode(sample_events: list[RecordEvent]) -> None:
    data = Encoder("record-event").encode(sample_events[0])
    with pytest.raises(UndecodableMessage, match="corrupt"):
        Decoder("record-event", text_records=PAYLOAD_TYPES).decode(data[:-5])


def test_payload_types_are_the_payload_union() -> None:
    schema = load_versions("record-event")[-1]
    (payload,) = [field for field in schema["fields"] if field["name"] == "payload"]
    assert {branch["name"] if "." in branch["name"] else f"{schema['namespace']}.{branch['name']}"
            for branch in payload["type"] if branch != "null"} == PAYLOAD_TYPES
