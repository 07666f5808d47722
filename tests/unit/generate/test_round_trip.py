"""Generated typed values -> `format_record` -> the reader's decoding -> `parse_fields` -> the same values."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from esr.format.layouts import DELIMITER
from esr.format.lines import Delete, Record, parse_fields
from esr.format.reader import decode_line
from esr.generate import DeleteRow, RecordRow, TrustSimulation, format_line


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(min_value=0, max_value=2**64),
    employees=st.integers(min_value=1, max_value=60),
    days=st.integers(min_value=0, max_value=3),
    vpd=st.sampled_from(["999", "431", "X7b"]),
)
def test_generated_values_survive_format_and_parse(seed: int, employees: int, days: int, vpd: str) -> None:
    simulation = TrustSimulation(vpd, employees, seed)
    lines = list(simulation.full_file_records())
    for day in range(1, days + 1):
        lines.extend(simulation.change_file_records(day))
    for line in lines:
        text, problem = decode_line(format_line(line).encode("cp1252"), utf8_only=False)
        assert problem is None
        assert text is not None
        parsed = parse_fields(text.split(DELIMITER))
        if isinstance(line, DeleteRow):
            assert isinstance(parsed, Delete)
            assert parsed.layout is line.layout
            assert (parsed.entity_id, parsed.issues) == (line.entity_id, [])
            continue
        assert isinstance(parsed, Record)
        assert parsed.layout is line.layout
        assert parsed.issues == []
        assert parsed.extra_fields == []
        names = [field.name for field in line.layout.data_fields]
        assert set(line.values) <= set(names), f"{line.layout.code}: unknown {set(line.values) - set(names)}"
        for name in names:
            generated, read = line.values.get(name), parsed.values[name]
            assert generated != "", f"{line.layout.code}.{name}: empty text is written as null"
            where = (line.layout.code, name, generated, read)
            assert read == generated, where
            assert type(read) is type(generated), where


def test_typed_values_have_the_layout_types() -> None:
    simulation = TrustSimulation("999", 40, 5)
    lines = [*simulation.full_file_records(), *simulation.change_file_records(1)]
    records = [line for line in lines if isinstance(line, RecordRow)]
    timestamps = [value for record in records for value in record.values.values()
                  if isinstance(value, dt.datetime)]
    assert timestamps
    assert all(value.microsecond == 0 and value.tzinfo is None for value in timestamps)


def test_days_are_simulated_in_order() -> None:
    simulation = TrustSimulation("999", 10, 1)
    simulation.change_file_records(1)
    with pytest.raises(ValueError, match="in order"):
        simulation.change_file_records(3)
