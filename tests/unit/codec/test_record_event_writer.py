"""RecordEventWriter and compile_template: the bytes of `Encoder.encode(record_event(...))`, byte for byte."""

from __future__ import annotations

import datetime as dt
import functools
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from esr.codec.events import Provenance, RecordEventWriter, record_event
from esr.codec.serde import Encoder, Registry
from esr.codec.writer import TemplateMismatch, compile_template, compile_writer
from esr.format.layouts import BY_CODE, LAYOUTS, Layout
from esr.format.lines import Delete, FieldIssue, Record, format_record, parse_fields
from tests.strategies import Values, any_record
from tests.unit.codec.conftest import NOW, OWNER_OF_DELETED, SAMPLE, require_registry_client
from tests.unit.format.test_fast_paths import AWKWARD, mutations

Sample = tuple[Provenance, list[tuple[int, Record | Delete]]]


@functools.cache
def _encoder() -> Encoder:
    return Encoder("record-event")


def reference(encoder: Encoder, line: Record | Delete, provenance: Provenance, line_no: int, person_id: str | None,
              ingested_at: dt.datetime = NOW) -> bytes:
    return encoder.encode(record_event(line, provenance, line_no, person_id, ingested_at=ingested_at))


@pytest.mark.parametrize("line_no", [2, 8191, 8192, 16383, 16384, 500_000, 2**27, 2**40])
def test_every_line_of_the_sample(sample: Sample, line_no: int) -> None:
    provenance, lines = sample
    encoder = Encoder("record-event")
    writer = RecordEventWriter(encoder, provenance, NOW)
    for _, line in lines:
        owner = OWNER_OF_DELETED if isinstance(line, Delete) and line.layout.person_scoped else None
        for person_id in {None, owner}:
            assert writer.encode(line, line_no, person_id) == reference(encoder, line, provenance, line_no, person_id)


def test_confluent_framing(sample: Sample) -> None:
    require_registry_client()
    provenance, lines = sample
    encoder = Encoder("record-event", registry=Registry.from_url("mock://record-event-writer"))
    writer = RecordEventWriter(encoder, provenance, NOW)
    for line_no, line in lines:
        assert writer.encode(line, line_no) == reference(encoder, line, provenance, line_no, None)


def test_issues_extra_fields_and_unusual_values(sample: Sample) -> None:
    provenance, lines = sample
    encoder = Encoder("record-event")
    writer = RecordEventWriter(encoder, provenance, NOW)
    record = next(line for _, line in lines if isinstance(line, Record) and line.layout.code == "PRA")
    noisy = Record(record.layout, dict(record.values), ["", "x"], [FieldIssue("title", "Dr" * 40, "long"),
                                                                    FieldIssue("(extra)", "~x", "1 extra")])
    assert writer.encode(noisy, 7) == reference(encoder, noisy, provenance, 7, None)
    long_text = Record(record.layout, {**record.values, "last_name": "é" * 20_000}, [], [])
    assert writer.encode(long_text, 9) == reference(encoder, long_text, provenance, 9, None)


def test_what_record_event_refuses_is_refused_the_same_way(sample: Sample) -> None:
    provenance, lines = sample
    encoder = Encoder("record-event")
    writer = RecordEventWriter(encoder, provenance, NOW)
    person = next(line for _, line in lines if isinstance(line, Record) and line.layout.code == "PRA")
    with pytest.raises(ValueError, match="person_id '1' but the row says '600001'"):
        writer.encode(person, 5, "1")
    location_delete = Delete(BY_CODE["LCA"], "300001")
    with pytest.raises(ValueError, match="a LOCATION has no person_id"):
        writer.encode(location_delete, 5, "1")
    bad = Record(person.layout, {**person.values, "date_of_birth": "1985-03-02"}, [], [])
    with pytest.raises(ValueError, match="record-event event does not fit") as refused:
        writer.encode(bad, 5)
    with pytest.raises(ValueError, match="record-event event does not fit") as expected:
        reference(encoder, bad, provenance, 5, None)
    assert str(refused.value) == str(expected.value)
    with pytest.raises(ValueError, match="timezone-aware"):
        RecordEventWriter(encoder, provenance, dt.datetime(2024, 3, 1)).encode(person, 5)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(record=any_record(), line_no=st.integers(1, 2**31), ingested_at=st.datetimes(timezones=st.just(dt.UTC)))
def test_generated_records(sample: Sample, record: tuple[Layout, Values], line_no: int,
                           ingested_at: dt.datetime) -> None:
    provenance, _ = sample
    layout, values = record
    parsed = parse_fields(format_record(layout, values).split("~"))
    assert isinstance(parsed, Record)
    encoder = _encoder()
    writer = RecordEventWriter(encoder, provenance, ingested_at)
    assert writer.encode(parsed, line_no) == reference(encoder, parsed, provenance, line_no, None, ingested_at)
    deleted = Delete(layout, parsed.entity_id)
    owner = "42" if layout.person_scoped else None
    assert writer.encode(deleted, line_no, owner) == reference(encoder, deleted, provenance, line_no, owner,
                                                               ingested_at)


def test_a_schema_with_other_fields_is_encoded_the_slow_way(schema_dir: Path, sample: Sample) -> None:
    v2 = json.loads((schema_dir / "record-event" / "v1.avsc").read_text())
    v2["fields"].append({"name": "batch", "type": ["null", "string"], "default": None})
    (schema_dir / "record-event" / "v2.avsc").write_text(json.dumps(v2))
    provenance, lines = sample
    encoder = Encoder("record-event")
    assert encoder.version == 2
    with pytest.raises(TemplateMismatch, match="batch is neither"):
        encoder.template(
            ("record_id", "entity_id", "person_id", "payload", "extra_fields", "issues", "source.line_no"),
            ("vpd", "record_code", "entity_type", "action", "source", "ingested_at"),
        )
    writer = RecordEventWriter(encoder, provenance, NOW)
    for line_no, line in lines:
        assert writer.encode(line, line_no) == reference(encoder, line, provenance, line_no, None)


# --- compile_template --------------------------------------------------------------------------------

SCHEMA = {
    "type": "record", "name": "T", "namespace": "t",
    "fields": [
        {"name": "a", "type": "string"},
        {"name": "b", "type": ["null", "long"]},
        {"name": "inner", "type": {"type": "record", "name": "Inner", "fields": [
            {"name": "c", "type": {"type": "int", "logicalType": "date"}},
            {"name": "d", "type": "long"},
            {"name": "e", "type": {"type": "enum", "name": "E", "symbols": ["X", "Y"]}},
        ]}},
        {"name": "f", "type": {"type": "array", "items": "string"}, "default": []},
        {"name": "g", "type": "t.E"},
    ],
}
DATUM = {"a": "const", "b": 5, "inner": {"c": dt.date(2024, 2, 29), "d": 10**12, "e": "Y"}, "f": ["v"], "g": "X"}


@pytest.mark.parametrize(
    ("variables", "constants"),
    [
        (("inner.d", "a"), ("b", "inner.c", "inner.e", "f", "g")),
        ((), ("a", "b", "inner", "f", "g")),
        (("a", "b", "inner", "f", "g"), ()),
        (("g", "inner.c"), ("a", "b", "inner.d", "inner.e", "f")),
    ],
)
def test_template_writes_what_the_writer_writes(variables: tuple[str, ...], constants: tuple[str, ...]) -> None:
    template = compile_template(SCHEMA, b"\xc3\x01", variables, constants)
    write = compile_writer(SCHEMA, b"\xc3\x01")
    base = template.constants(DATUM)
    others: dict[str, Any] = {"a": "other", "b": None, "inner.d": -3, "inner.c": dt.date(1, 1, 1), "g": "Y", "f": []}

    def get(path: str, datum: Any) -> Any:
        for part in path.split("."):
            datum = datum[part]
        return datum

    def with_value(datum: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
        head, _, rest = path.partition(".")
        return {**datum, head: with_value(datum[head], rest, value) if rest else value}

    assert template.write(base, *(get(v, DATUM) for v in variables)) == write(DATUM)
    for path, value in others.items():
        datum = with_value(DATUM, path, value)
        expected = write(datum)
        assert template.write(template.constants(datum), *(get(v, datum) for v in variables)) == expected
        if path in variables:  # the constants of the first datum still hold
            assert template.write(base, *(get(v, datum) for v in variables)) == expected


@pytest.mark.parametrize(
    ("variables", "constants", "message"),
    [
        (("a",), ("b", "inner", "f"), "g is neither"),
        (("a", "zz"), ("b", "inner", "f", "g"), "no such field"),
        (("a", "inner.zz"), ("b", "inner", "f", "g"), "no such field"),
    ],
)
def test_template_mismatch(variables: tuple[str, ...], constants: tuple[str, ...], message: str) -> None:
    with pytest.raises(TemplateMismatch, match=message):
        compile_template(SCHEMA, b"", variables, constants)


def test_every_layout_has_a_payload_branch(sample: Sample) -> None:
    """The writer names payload branches by layout: a new layout without a schema would not go unnoticed."""
    provenance, _ = sample
    writer = RecordEventWriter(Encoder("record-event"), provenance, NOW)
    for layout in LAYOUTS:
        values: Values = {
            f.name: ("1" if f.name in (layout.key_field, layout.owner_field) else None) for f in layout.data_fields
        }
        record = Record(layout, values)
        assert writer.encode(record, 3) == reference(Encoder("record-event"), record, provenance, 3, None)


# --- clean lines straight to their payload ---------------------------------------------------------------


def check_clean_line(writer: RecordEventWriter, provenance: Provenance, fields: list[str], line_no: int) -> bool:
    """A line `clean_line` takes parses into a Record without issues or extra fields, and its event has the
    bytes of that Record's event. True when it was taken."""
    clean = writer.clean_line(fields) if writer.clean_line else None
    if clean is None:
        return False
    parsed = parse_fields(fields)
    assert isinstance(parsed, Record), parsed
    assert (parsed.issues, parsed.extra_fields) == ([], [])
    assert clean[:3] == (parsed.layout.code, parsed.entity_id, parsed.person_id)
    assert writer.encode_clean(clean, line_no) == reference(_encoder(), parsed, provenance, line_no, None,
                                                           writer.ingested_at)
    return True


@pytest.mark.parametrize("records_first", [False, True])
def test_the_sample_lines_are_clean(sample: Sample, records_first: bool) -> None:
    """Both ways of writing share the encoded code fields, whichever comes first."""
    provenance, parsed = sample
    writer = RecordEventWriter(_encoder(), provenance, NOW)
    if records_first:
        for line_no, line in parsed:
            writer.encode(line, line_no, OWNER_OF_DELETED if isinstance(line, Delete) else None)
    lines = SAMPLE.read_text(encoding="cp1252").splitlines()[1:-1]
    taken = [check_clean_line(writer, provenance, line.split("~"), n) for n, line in enumerate(lines, 2)]
    assert sum(taken) == len(lines) - 1  # all but the delete
    for line_no, line in parsed:
        person_id = OWNER_OF_DELETED if isinstance(line, Delete) else None
        assert writer.encode(line, line_no, person_id) == reference(_encoder(), line, provenance, line_no, person_id)


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), line_no=st.integers(1, 2**31))
def test_clean_lines_of_generated_records(sample: Sample, data: st.DataObject, line_no: int) -> None:
    provenance, _ = sample
    writer = RecordEventWriter(_encoder(), provenance, NOW)
    layout, values = data.draw(any_record())
    fields = format_record(layout, values).split("~")
    assert check_clean_line(writer, provenance, fields, line_no)
    check_clean_line(writer, provenance, data.draw(mutations(fields)), line_no)


@pytest.mark.parametrize("text", [*AWKWARD, "19700101 000000", "19691231 235959", "00010101 000000",
                                  "99991231 235959", "20240229 120000", "20230229 120000"])
def test_clean_lines_with_awkward_fields(sample: Sample, text: str) -> None:
    provenance, lines = sample
    writer = RecordEventWriter(_encoder(), provenance, NOW)
    for _, line in lines:
        if not isinstance(line, Record):
            continue
        clean = format_record(line.layout, line.values).split("~")
        for i in range(1, line.layout.field_count):
            fields = list(clean)
            fields[i] = text
            check_clean_line(writer, provenance, fields, 3)
