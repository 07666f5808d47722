"""The native codec (esr/codec/_native.pyx) against the pure-Python reference: built and used here, and
the same bytes, values and errors on generated, Hypothesis-made, corrupt and truncated data."""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import math
import os
import sys
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import pytest
from fastavro import parse_schema
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from esr.codec import PAYLOAD_TYPES, Decoder, Encoder, TextRecord, native
from esr.codec.compat import sample_data
from esr.codec.events import RecordEvent
from esr.codec.reader import compile_reader
from esr.codec.schemas import SUBJECTS, load_versions
from esr.codec.writer import compile_writer
from tests.unit.codec.test_compiled import EDGE, NAMED, edge_values
from tests.unit.codec.test_text_records import FLAT

Schema = dict[str, Any]


def _native_module() -> Any:
    assert native.module is not None, "the native codec is not built: pip install -e . builds it (setup.py)"
    return native.module


@contextlib.contextmanager
def native_on() -> Iterator[None]:
    """The native code for what is compiled within, even when the tests run with ESR_CODEC_NATIVE=0."""
    previous = os.environ.pop(native.ENVIRONMENT_VARIABLE, None)
    try:
        yield
    finally:
        if previous is not None:
            os.environ[native.ENVIRONMENT_VARIABLE] = previous


# ------------------------------------------------------------------------------------ built and used


def test_the_native_codec_is_built_and_used(monkeypatch: pytest.MonkeyPatch) -> None:
    """CI proves the build: `pip install -e .` compiles the extension and the codec uses it."""
    monkeypatch.delenv(native.ENVIRONMENT_VARIABLE, raising=False)
    module = _native_module()
    assert native.enabled()
    assert isinstance(Encoder("change-event")._write, module.Writer)
    assert isinstance(Encoder("record-event")._write, module.Writer)
    assert isinstance(Decoder("record-event", text_records=PAYLOAD_TYPES)._read_latest, module.Reader)
    assert isinstance(Decoder("change-event")._read_latest, module.Reader)


def test_the_opcodes_agree() -> None:
    assert {**native.ReadOp.__members__, **native.WriteOp.__members__} == _native_module().OPCODES


def test_the_environment_variable_forces_the_python_code(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(native.ENVIRONMENT_VARIABLE, "0")
    assert not native.enabled()
    schema = load_versions("change-event")[-1]
    write, read = compile_writer(schema, b"x"), compile_reader(schema)
    module = _native_module()
    assert not isinstance(write, module.Writer)
    assert not isinstance(read, module.Reader)
    datum = sample_data(schema)[0]
    assert read(write(datum), 1) == compile_reader(schema)(write(datum), 1)


def test_a_missing_extension_falls_back_with_one_log_line(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setitem(sys.modules, "esr.codec._native", None)  # the import fails
    with caplog.at_level(logging.WARNING, logger=native.__name__):
        assert native._load() is None
    assert [r.getMessage() for r in caplog.records if "native Avro codec is not built" in r.getMessage()]
    monkeypatch.setattr(native, "module", None)
    assert not native.enabled()
    schema = load_versions("record-event")[-1]
    datum = sample_data(schema)[0]
    data = compile_writer(schema)(datum)
    assert compile_reader(schema)(data, 0) == Decoder("record-event")._read_latest(data, 0)


def test_unsupported_schemas_are_read_and_written_in_python() -> None:
    recursive = {"type": "record", "name": "Node", "fields": [
        {"name": "next", "type": ["null", "Node"]}, {"name": "v", "type": "long"}]}
    datum = {"next": {"next": None, "v": 2}, "v": 1}
    write, read = compile_writer(recursive), compile_reader(recursive)
    module = _native_module()
    assert not isinstance(write, module.Writer)
    assert not isinstance(read, module.Reader)
    assert read(write(datum), 0) == datum


# ------------------------------------------------------------------------------------ comparisons


def same(a: Any, b: Any) -> bool:
    """Equal, of the same types all the way down (True is not 1, a TextRecord not a dict), keys in order."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) and math.isnan(a):
        return math.isnan(b)
    return bool(a == b)


def outcome(function: Callable[..., Any], *args: Any) -> tuple[Any, ...]:
    try:
        return ("value", function(*args))
    except Exception as exc:  # the errors themselves are compared
        return ("error", type(exc), str(exc))


def assert_same_outcome(got: tuple[Any, ...], expected: tuple[Any, ...]) -> None:
    if got[0] == "value" and expected[0] == "value":
        assert same(got[1], expected[1]), (got, expected)
    else:
        assert got == expected


def check_write(write: Any, datum: Any) -> bytes | None:
    """The native writer writes what the reference writes, or refuses; the whole writer behaves as the
    reference. The bytes, if any."""
    expected = outcome(write.reference, datum)
    native_only = outcome(write.write, datum)
    if native_only[0] == "value":
        assert expected[0] == "value"
        assert native_only[1] == expected[1]
    assert_same_outcome(outcome(write, datum), expected)
    return expected[1] if expected[0] == "value" else None


def check_read(read: Any, data: bytes, offset: int = 0) -> None:
    """The native reader reads what the reference reads, or refuses; the whole reader behaves as the
    reference (values and errors)."""
    expected = outcome(read.reference, data, offset)
    native_only = outcome(read.read, data, offset)
    if native_only[0] == "value":
        assert expected[0] == "value", (data, native_only, expected)
        assert same(native_only[1], expected[1]), (data, native_only, expected)
    assert_same_outcome(outcome(read, data, offset), expected)


def damaged(data: bytes) -> list[bytes]:
    """Every truncation, and every byte set to a few telling values."""
    found = [data[:n] for n in range(len(data))] + [data + b"\x00", data + b"\x80"]
    for i in range(min(len(data), 400)):
        for value in (0x00, 0x01, 0x02, 0x7F, 0x80, 0xFF):
            found.append(data[:i] + bytes([value]) + data[i + 1:])
    return found


def _schemas() -> list[tuple[str, Schema, tuple[str, ...]]]:
    found: list[tuple[str, Schema, tuple[str, ...]]] = [("edge", EDGE, ()), ("named", NAMED, ()),
                                                        ("flat", FLAT, ()), ("flat-text", FLAT, ("t.Flat",))]
    for name in SUBJECTS:
        for n, schema in enumerate(load_versions(name), 1):
            found.append((f"{name}-v{n}", schema, ()))
    found.append(("record-event-text", load_versions("record-event")[-1], tuple(PAYLOAD_TYPES)))
    return found


SCHEMAS = _schemas()


def _compiled(schema: Schema, text: tuple[str, ...]) -> tuple[Any, Any]:
    module = _native_module()
    with native_on():
        write, read = compile_writer(schema, b"\xc3"), compile_reader(schema, text_records=text)
    assert isinstance(write, module.Writer)
    assert isinstance(read, module.Reader)
    return write, read


def _data(schema: Schema) -> list[Any]:
    return edge_values() if schema is EDGE else sample_data(schema)


@pytest.mark.parametrize(("label", "schema", "text"), SCHEMAS, ids=[s[0] for s in SCHEMAS])
def test_sample_data_and_its_damage(label: str, schema: Schema, text: tuple[str, ...]) -> None:
    write, read = _compiled(schema, text)
    for datum in _data(schema):
        data = check_write(write, datum)
        assert data is not None, label
        check_read(read, data, 1)
        for bad in damaged(data[1:]):
            check_read(read, b"\xc3" + bad, 1)


def test_the_common_case_is_written_and_read_natively(sample_events: list[RecordEvent]) -> None:
    """Not refused (the point of the native code): real record events, and sample data of every schema."""
    schema = load_versions("record-event")[-1]
    write, read = _compiled(schema, tuple(PAYLOAD_TYPES))
    for event in sample_events:
        assert read.read(write.write(event), 1) == read.reference(write.reference(event), 1)
    for _, schema, text in SCHEMAS:
        write, read = _compiled(schema, text)
        for datum in sample_data(schema):
            data = write.write(datum)
            assert data == write.reference(datum)
            assert same(read.read(data, 1), read.reference(data, 1))


class _Str(str):
    __slots__ = ()


class _OwnItems(dict[str, str]):
    """A dict subclass with items of its own: the native writer must not read the dict's storage."""

    def items(self) -> Any:
        return [("own", "item")]


def test_what_the_native_writer_refuses_the_reference_writes_or_refuses() -> None:
    """Bools for longs, tuples for arrays, str subclasses, dict subclasses, missing fields with defaults,
    values that do not fit: the same bytes or the same error as the reference code alone."""
    schema = load_versions("change-event")[-1]
    write, _ = _compiled(schema, ())
    base = sample_data(schema)[1]
    assert base["changes"]
    assert base["source"]["sequence"] is not None
    variants: list[Any] = [
        {**base, "ts_ms": True},
        {**base, "ts_ms": 2**63},
        {**base, "ts_ms": 1.5},
        {**base, "changes": tuple(base["changes"])},
        {**base, "changes": [{**base["changes"][0], "field": _Str("x")}]},
        {**base, "vpd": _Str("999")},
        {**base, "vpd": "\ud800"},
        {**base, "after": {"a": "b", _Str("k"): None}},
        {**base, "after": {"a": 7}},
        {k: v for k, v in base.items() if k != "before"},
        {k: v for k, v in base.items() if k != "event_id"},
        {**base, "source": {**base["source"], "run_date": dt.datetime(2024, 3, 1, tzinfo=dt.UTC)}},
        {**base, "source": {**base["source"], "run_date": "2024-03-01"}},
        {**base, "effective_date": dt.datetime(2024, 3, 1)},
        {**base, "event_type": "NO_SUCH_TYPE"},
        {**base, "changes": None},
        type("D", (dict,), {})(base),
        {**base, "after": TextRecord(a="b")},
        {**base, "after": _OwnItems(a="b")},
        None,
    ]
    for datum in variants:
        check_write(write, datum)
    edge_write, _ = _compiled(EDGE, ())
    good = edge_values()[0]
    for field, value in [("x", bytearray(b"abcd")), ("b", memoryview(b"ab")), ("u", ["long", 1]),
                         ("u", ("long", 1, 2)), ("dec", Decimal("1.2345")), ("f", 1), ("i", False)]:
        check_write(edge_write, {**good, field: value})


def test_huge_counts_and_lengths_are_refused_at_once() -> None:
    """A count or length beyond the bytes left is refused before any item is read (no allocation)."""
    schema = {"type": "record", "name": "M", "fields": [
        {"name": "m", "type": {"type": "map", "values": "null"}},
        {"name": "a", "type": {"type": "array", "items": "null"}}]}
    write, read = _compiled(schema, ())
    assert read.read(write({"m": {}, "a": []}), 1) == {"m": {}, "a": []}
    largest = b"\xfe\xff\xff\xff\xff\xff\xff\xff\xff\x01"  # zigzag varints of the largest long
    smallest = b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01"  # and of the smallest (no opposite)
    bodies = [largest + b"\x00", b"\x00" + largest + b"\x00", b"\x00\x80\x80\x80\x80\x02",
              smallest + b"\x02\x00\x00", b"\x00" + smallest + b"\x02\x00"]  # a block size, then the end
    for body in bodies:
        check_read(read, b"\xc3" + body, 1)
        with pytest.raises(native.module.Refused if native.module else Exception):
            read.read(b"\xc3" + body, 1)


# ------------------------------------------------------------------------------------ Hypothesis


def _strategy(schema: Any, named: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Values of a parsed schema, as the writers take them (fastavro's tuples for multi-branch unions)."""
    if isinstance(schema, str) and schema in named:
        schema = named[schema]
    if isinstance(schema, list):
        others = [b for b in schema if b != "null"]
        if len(others) == 1:
            return st.none() | _strategy(others[0], named) if "null" in schema else _strategy(others[0], named)
        branches = [st.tuples(st.just(_name(b)), _strategy(b, named)) for b in others]
        return st.one_of([st.none()] * ("null" in schema) + branches)
    if isinstance(schema, dict) and schema["type"] in _PRIMITIVE and "logicalType" not in schema:
        schema = schema["type"]
    if isinstance(schema, str):
        return _PRIMITIVE[schema]
    logical, kind = schema.get("logicalType"), schema["type"]
    if logical == "date":
        return st.dates()
    if logical == "timestamp-millis":
        return st.datetimes(dt.datetime(1900, 1, 1), dt.datetime(2200, 1, 1), timezones=st.just(dt.UTC)).map(_millis)
    if logical == "local-timestamp-millis":
        return st.datetimes(dt.datetime(1900, 1, 1), dt.datetime(2200, 1, 1)).map(_millis)
    if logical == "decimal":
        bound = Decimal(10) ** (schema["precision"] - schema.get("scale", 0))
        return st.decimals(-bound + 1, bound - 1, places=schema.get("scale", 0), allow_nan=False)
    match kind:
        case "record" | "error":
            return st.fixed_dictionaries({f["name"]: _strategy(f["type"], named) for f in schema["fields"]})
        case "enum":
            return st.sampled_from(schema["symbols"])
        case "fixed":
            return st.binary(min_size=schema["size"], max_size=schema["size"])
        case "array":
            return st.lists(_strategy(schema["items"], named), max_size=4)
        case "map":
            return st.dictionaries(st.text(max_size=8), _strategy(schema["values"], named), max_size=4)
    raise NotImplementedError(kind)


def _millis(value: dt.datetime) -> dt.datetime:
    return value.replace(microsecond=value.microsecond // 1000 * 1000)


def _name(branch: Any) -> str:
    if isinstance(branch, str):
        return branch
    return str(branch["name"] if branch["type"] in ("record", "error", "enum", "fixed") else branch["type"])


_PRIMITIVE: dict[str, st.SearchStrategy[Any]] = {
    "null": st.none(),
    "boolean": st.booleans(),
    "int": st.integers(-(2**31), 2**31 - 1),
    "long": st.integers(-(2**63), 2**63 - 1),
    "float": st.floats(width=32),
    "double": st.floats(),
    "bytes": st.binary(max_size=20),
    "string": st.text(max_size=20),
}


def _cases() -> st.SearchStrategy[tuple[Any, Any, Any]]:
    compiled = []
    for _, schema, text in SCHEMAS:
        named: dict[str, Any] = {}
        parsed = parse_schema(schema, named_schemas=named)
        write, read = _compiled(schema, text)
        compiled.append(st.tuples(st.just(write), st.just(read), _strategy(parsed, named)))
    return st.one_of(compiled)


CASES = _cases()


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(CASES, st.data())
def test_hypothesis_values_and_damaged_bytes(case: tuple[Any, Any, Any], data: st.DataObject) -> None:
    write, read, datum = case
    encoded = check_write(write, datum)
    assert encoded is not None
    check_read(read, encoded, 1)
    body = bytearray(encoded)
    for _ in range(data.draw(st.integers(1, 4))):
        position = data.draw(st.integers(1, len(body)))
        action = data.draw(st.sampled_from(["set", "cut", "insert"]))
        if action == "cut":
            del body[position:]
        elif action == "insert":
            body[position:position] = data.draw(st.binary(min_size=1, max_size=10))
        elif position < len(body):
            body[position] = data.draw(st.integers(0, 255))
    check_read(read, bytes(body), 1)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_hypothesis_garbage(garbage: bytes) -> None:
    for _, schema, text in SCHEMAS[:4] + SCHEMAS[-1:]:
        _, read = _compiled(schema, text)
        check_read(read, garbage, 0)


def test_the_decoder_reports_what_the_python_decoder_reports(monkeypatch: pytest.MonkeyPatch) -> None:
    """`Decoder.decode` tries the native reader on the whole message (header included) first: damaged
    messages, headers included, give the values or the `UndecodableMessage`s of the pure-Python decoder."""
    monkeypatch.delenv(native.ENVIRONMENT_VARIABLE, raising=False)
    native_decoder = Decoder("record-event", text_records=PAYLOAD_TYPES)
    assert native_decoder._native_decode is not None
    monkeypatch.setenv(native.ENVIRONMENT_VARIABLE, "0")
    python_decoder = Decoder("record-event", text_records=PAYLOAD_TYPES)
    assert python_decoder._native_decode is None
    encode = Encoder("record-event").encode
    for datum in sample_data(load_versions("record-event")[-1])[:3]:
        data = encode(datum)
        for bad in [data, *damaged(data)[::7]]:
            assert_same_outcome(outcome(native_decoder.decode, bad), outcome(python_decoder.decode, bad))
