"""The compiled writer and reader agree with fastavro byte for byte and value for value."""

from __future__ import annotations

import datetime as dt
import io
from decimal import Decimal
from typing import Any

import pytest
from fastavro import parse_schema, schemaless_reader, schemaless_writer

from esr.codec.compat import sample_data
from esr.codec.events import RecordEvent
from esr.codec.reader import compile_reader
from esr.codec.schemas import SUBJECTS, load_versions
from esr.codec.writer import compile_writer, encode_long

EDGE = {
    "type": "record",
    "name": "Edge",
    "namespace": "t",
    "fields": [
        {"name": "l", "type": "long"},
        {"name": "i", "type": ["null", "int"]},
        {"name": "s", "type": "string"},
        {"name": "b", "type": "bytes"},
        {"name": "f", "type": "float"},
        {"name": "d", "type": "double"},
        {"name": "t", "type": "boolean"},
        {"name": "x", "type": {"type": "fixed", "name": "Four", "size": 4}},
        {"name": "dec", "type": ["null", {"type": "bytes", "logicalType": "decimal", "precision": 9, "scale": 3}]},
        {"name": "ts", "type": {"type": "long", "logicalType": "timestamp-millis"}},
        {"name": "lts", "type": ["null", {"type": "long", "logicalType": "local-timestamp-millis"}]},
        {"name": "day", "type": {"type": "int", "logicalType": "date"}},
        {"name": "u", "type": ["null", "string", "long", "t.Four"]},
        {"name": "m", "type": {"type": "map", "values": {"type": "array", "items": "string"}}},
        {"name": "z", "type": {"type": "string"}, "default": "zz"},
    ],
}


def edge_values() -> list[dict[str, Any]]:
    base: dict[str, Any] = {
        "l": 0, "i": None, "s": "", "b": b"", "f": 0.5, "d": -1.25, "t": True, "x": b"abcd", "dec": None,
        "ts": dt.datetime(2024, 3, 1, 12, 0, 0, 999999, tzinfo=dt.UTC), "lts": None, "day": dt.date(1970, 1, 1),
        "u": None, "m": {},
    }
    return [
        base,
        {**base, "l": -1, "i": 2**31 - 1, "s": "Siân Ó Súilleabháin ✓", "b": b"\x00\xff", "t": False,
         "dec": Decimal("-1.5"), "lts": dt.datetime(1969, 12, 31, 23, 59, 59, 1000), "day": dt.date(1900, 1, 1),
         "u": ("string", "x"), "m": {"k": ["a", "b"], "": []}, "z": "given"},
        {**base, "l": 2**63 - 1, "i": -(2**31), "s": "x" * 20_000, "dec": Decimal("999999.999"),
         "u": ("long", -(2**40)), "ts": 1_700_000_000_000, "day": 19_000, "m": {str(n): [] for n in range(300)}},
        {**base, "l": -(2**63), "dec": Decimal("-999999.999"), "u": ("t.Four", b"wxyz"), "lts": 0,
         "ts": dt.datetime(2024, 3, 1, 13, 0, tzinfo=dt.timezone(dt.timedelta(hours=1)))},
        {**base, "dec": Decimal("0.000"), "lts": dt.datetime(2024, 3, 1, 13, 0, tzinfo=dt.UTC)},
    ]


def _fastavro_write(schema: dict[str, Any], datum: Any) -> bytes:
    buf = io.BytesIO()
    schemaless_writer(buf, parse_schema(schema), datum)
    return buf.getvalue()


def _fastavro_read(schema: dict[str, Any], data: bytes) -> Any:
    return schemaless_reader(io.BytesIO(data), parse_schema(schema), None)


def _cases() -> list[tuple[str, dict[str, Any], Any]]:
    cases = [("edge", EDGE, datum) for datum in edge_values()]
    for name in SUBJECTS:
        for n, schema in enumerate(load_versions(name), 1):
            cases += [(f"{name}-v{n}", schema, datum) for datum in sample_data(schema)]
    return cases


@pytest.mark.parametrize(("label", "schema", "datum"), _cases())
def test_same_bytes_and_values_as_fastavro(label: str, schema: dict[str, Any], datum: Any) -> None:
    expected = _fastavro_write(schema, datum)
    assert compile_writer(schema, b"HDR")(datum) == b"HDR" + expected, label
    assert compile_reader(schema)(b"HDR" + expected, 3) == _fastavro_read(schema, expected), label


def test_real_events_same_bytes_as_fastavro(sample_events: list[RecordEvent]) -> None:
    schema = load_versions("record-event")[-1]
    write, read = compile_writer(schema), compile_reader(schema)
    for event in sample_events:
        data = write(event)
        assert data == _fastavro_write(schema, event)
        assert read(data, 0) == _fastavro_read(schema, data)


def test_long_encoding_matches_fastavro() -> None:
    for n in [*range(-20_000, 20_000, 7), 2**62, -(2**63), 2**63 - 1, 10**12, -(10**12)]:
        assert encode_long(n) == _fastavro_write({"type": "long"}, n), n
    with pytest.raises(ValueError, match="does not fit an Avro long"):
        encode_long(2**63)


def test_the_writer_refuses_what_does_not_fit() -> None:
    write = compile_writer(EDGE)
    good = edge_values()[0]
    for field, value, message in [
        ("dec", Decimal("1.2345"), "more than 3 decimal places"),
        ("dec", Decimal("1234567.0"), "more than 9 digits"),
        ("dec", 1.5, "not a Decimal"),
        ("ts", dt.datetime(2024, 3, 1), "timezone-aware"),
        ("day", dt.datetime(2024, 3, 1), "given a datetime"),
        ("x", b"abc", "not a valid value"),
        ("u", ("double", 1.0), "not a branch name"),
        ("u", "bare", "tuple"),
    ]:
        with pytest.raises(ValueError, match=message):
            write({**good, field: value})


def test_unsupported_schemas_fail_at_compile_time() -> None:
    odd = {"type": "record", "name": "T", "fields": [{"name": "u", "type": {"type": "string", "logicalType": "uuid"}}]}
    with pytest.raises(NotImplementedError, match="uuid"):
        compile_writer(odd)
    with pytest.raises(NotImplementedError, match="uuid"):
        compile_reader(odd)
    with pytest.raises(NotImplementedError, match="record schema"):
        compile_writer({"type": "array", "items": "long"})


def test_reader_rejects_impossible_sizes() -> None:
    read = compile_reader(EDGE)
    data = compile_writer(EDGE)(edge_values()[1])
    with pytest.raises(ValueError, match="after the record"):
        read(data + b"\x00", 0)
    with pytest.raises(ValueError, match="impossible"):
        read(b"\x00\x00\x80\x80\x04" + data[3:], 0)  # l=0, i=null, then a string of 32768 bytes


NAMED = {
    "type": "record",
    "name": "Named",
    "namespace": "t",
    "fields": [
        {"name": "changes", "type": {"type": "array", "items": {
            "type": "record", "name": "Change", "fields": [
                {"name": "field", "type": "string"},
                {"name": "old", "type": ["null", "string"]},
                {"name": "new", "type": ["null", "string"]},
            ]}}},
        {"name": "after", "type": ["null", {"type": "map", "values": ["null", "string"]}]},
    ],
}


def test_names_are_memoised_and_written_as_fastavro_writes_them() -> None:
    """Map keys and the string fields of an array's flat records go through the fast code's memo: the
    same bytes on a first write (miss) and on later ones (hit), whatever the name."""
    write = compile_writer(NAMED)
    long_name = "n" * 20_000  # longer than the fast code's length table
    data: list[dict[str, Any]] = [
        {"changes": [], "after": None},
        {"changes": [{"field": "last_name", "old": None, "new": "Jones"},
                     {"field": "first_name", "old": "Ann", "new": None}],
         "after": {"last_name": "Jones", "title": None, "": "empty key"}},
        {"changes": [{"field": long_name, "old": "Siân", "new": "Siôn"}], "after": {long_name: "x", "é": "ü"}},
    ]
    for _ in range(2):
        for datum in data:
            assert write(datum) == _fastavro_write(NAMED, datum)


def test_a_name_that_is_not_a_string_is_refused() -> None:
    """As the reference code refuses it (the Encoder reports these exceptions as ValueError)."""
    write = compile_writer(NAMED)
    with pytest.raises((ValueError, TypeError, AttributeError)):
        write({"changes": [{"field": 7, "old": None, "new": "x"}], "after": None})
    with pytest.raises((ValueError, TypeError, AttributeError)):
        write({"changes": [], "after": {("a",): "x"}})
    with pytest.raises((ValueError, TypeError, AttributeError)):
        write({"changes": [["field", None, "x"]], "after": None})


def test_a_varint_longer_than_a_long_is_refused_where_it_is_looked_up_by_its_bytes() -> None:
    schema = {"type": "record", "name": "T", "fields": [
        {"name": "at", "type": {"type": "long", "logicalType": "local-timestamp-millis"}}]}
    read = compile_reader(schema)
    good = compile_writer(schema)({"at": dt.datetime(2024, 3, 1, 7, 30, 15, 123000)})
    assert read(good, 0) == read(bytes(good), 0) == {"at": dt.datetime(2024, 3, 1, 7, 30, 15, 123000)}
    with pytest.raises(AttributeError):  # no varint end within 10 bytes: the Decoder reports it as corrupt
        read(b"\x80" * 11 + b"\x00", 0)
    with pytest.raises(AttributeError):
        read(good[:-1], 0)  # truncated inside the varint
