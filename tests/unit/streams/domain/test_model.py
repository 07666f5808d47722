"""Canonical values, version selection (date tracking), diffs and event ids."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from esr.codec import TextRecord
from esr.format.layouts import EntityType
from streams.domain import ChangeSource, InputRecord, apply_changes, canonical, diff, event_id, in_force, render
from streams.domain.events import EVENT_ID_NAMESPACE, record_source, uuid5_of
from streams.domain.model import as_date, is_open, preceding, run_day
from tests.unit.streams.domain.builders import FILE_2, event, person


def test_render() -> None:
    assert render(None) is None
    assert render("x") == "x"
    assert render(dt.date(2024, 3, 1)) == "2024-03-01"
    assert render(dt.date(1, 1, 1)) == "0001-01-01"
    assert render(dt.datetime(2024, 2, 29, 10, 10, 10)) == "2024-02-29T10:10:10"
    assert render(Decimal("37.50000")) == "37.50000"
    assert render(Decimal("0.00000")) == "0.00000"
    assert render(Decimal("1E+3")) == "1000"
    assert render(7000001) == "7000001"
    assert render(-3) == "-3"


def test_canonical_drops_nulls() -> None:
    assert canonical({"a": None, "b": "x", "c": dt.date(2020, 1, 2), "d": Decimal("1.50")}) == {
        "b": "x", "c": "2020-01-02", "d": "1.50"}


def test_a_payload_read_as_text_is_canonical_already() -> None:
    text = TextRecord({"b": "x", "c": "2020-01-02"})
    assert canonical(text) is text
    assert canonical(dict(text)) == text  # a plain dict of text: the same values, rebuilt


def test_iso_dates_order_as_dates() -> None:
    days = [dt.date(1951, 1, 1), dt.date(999, 12, 31), dt.date(4712, 12, 31), dt.date(2024, 2, 29)]
    assert sorted(d.isoformat() for d in days) == [render(d) for d in sorted(days)]


V1 = {"effective_start": "2020-01-01", "effective_end": "2023-12-31", "n": "1"}
V2 = {"effective_start": "2024-01-01", "n": "2"}
V3 = {"effective_start": "2024-06-01", "n": "3"}
VERSIONS = {"2020-01-01": V1, "2024-01-01": V2, "2024-06-01": V3}


@pytest.mark.parametrize(("run", "expected"), [
    ("2019-06-01", V3),  # before every version: none in force, the latest start stands for the entity
    ("2020-01-01", V1),  # start inclusive
    ("2023-12-31", V1),  # end inclusive
    ("2024-01-01", V2),
    ("2024-05-31", V2),
    ("2024-06-01", V3),  # two open versions cover it: the latest start wins
    ("2030-01-01", V3),
])
def test_version_in_force(run: str, expected: dict[str, str]) -> None:
    assert in_force(VERSIONS, run, "effective_end") is expected


def test_version_in_force_gap_falls_back_to_latest_start() -> None:
    versions = {"2020-01-01": {"effective_end": "2020-12-31"}, "2022-01-01": {"effective_end": "2022-12-31"}}
    assert in_force(versions, "2021-06-01", "effective_end") is versions["2022-01-01"]


def test_end_of_time_and_blank_are_open() -> None:
    versions = {"2020-01-01": {"effective_end": "4712-12-31"}, "2010-01-01": {"effective_end": "2015-01-01"}}
    assert in_force(versions, "2024-01-01", "effective_end") is versions["2020-01-01"]
    assert is_open(None)
    assert is_open("4712-12-31")
    assert not is_open("2024-01-01")


def test_single_and_no_versions() -> None:
    assert in_force({}, "2024-01-01", "effective_end") is None
    only = {"": {"x": "1"}}
    assert in_force(only, "2024-01-01", None) is only[""]


def test_preceding() -> None:
    assert preceding(VERSIONS, "2024-06-01") is V2
    assert preceding(VERSIONS, "2024-02-01") is V2
    assert preceding(VERSIONS, "2020-01-01") is None


def test_diff_and_apply() -> None:
    before = {"a": "1", "b": "2", "c": "3"}
    after = {"a": "1", "b": "20", "d": "4"}
    changes = diff(before, after)
    assert changes == [{"field": "b", "old": "2", "new": "20"}, {"field": "d", "old": None, "new": "4"},
                       {"field": "c", "old": "3", "new": None}]
    assert apply_changes(before, changes) == after
    assert diff(None, after) == [{"field": k, "old": None, "new": v} for k, v in after.items()]
    assert apply_changes(None, diff(None, after)) == after
    assert apply_changes(before, diff(before, None)) == {}
    assert diff(after, after) == []


def test_run_day() -> None:
    assert run_day(dt.datetime(2024, 3, 1, 23, 59)) == "2024-03-01"
    assert run_day(dt.date(2024, 3, 1)) == "2024-03-01"
    assert run_day("2024-03-01T00:00:00") == "2024-03-01"
    assert run_day(None) == "9999-12-31"
    assert as_date("2024-03-01") == dt.date(2024, 3, 1)
    assert as_date("2024-03-01T10:00:00") == dt.date(2024, 3, 1)
    assert as_date("garbage") is None
    assert as_date(None) is None


def test_event_id_is_a_uuid5_of_the_file_line_entity_and_type() -> None:
    sha = "ab" * 32
    expected = uuid.uuid5(EVENT_ID_NAMESPACE, f"{sha}:12:PERSON:600001:NEW_STARTER")
    assert event_id(sha, 12, "PERSON", "600001", "NEW_STARTER") == str(expected)
    assert uuid.UUID(event_id(sha, None, "PHONE", "1", "ABSENT_FROM_FULL_FILE")) == uuid.uuid5(
        EVENT_ID_NAMESPACE, f"{sha}::PHONE:1:ABSENT_FROM_FULL_FILE")
    ids = {event_id(sha, line, entity, "1", kind) for line in (1, 2) for entity in ("PERSON", "PHONE")
           for kind in ("A", "B")}
    assert len(ids) == 8


def test_change_source_of_a_record_and_of_a_control_event() -> None:
    item = event(EntityType.PERSON, person(), file=FILE_2, line=9)
    record = InputRecord(item, "esr.records", 2, 77)
    source = ChangeSource.of_record(record)
    assert source.as_dict() == record_source(record)
    assert (source.record_code, source.line_no, source.partition, source.offset) == ("PRA", 9, 2, 77)
    completed = {"event_type": "FILE_COMPLETED", "vpd": "999", "file_name": FILE_2.name, "file_sha256": FILE_2.sha,
                 "sequence": 2, "extract_type": "C", "run_date": FILE_2.run}
    control = ChangeSource.of_event(completed, topic="esr.control", partition=0, offset=3)
    assert control == ChangeSource(FILE_2.name, FILE_2.sha, 2, "C", FILE_2.run, None, None, "esr.control", 0, 3)


@given(st.uuids(), st.text())
def test_uuid5_of_is_the_uuid_modules_uuid5(namespace: uuid.UUID, name: str) -> None:
    assert uuid5_of(namespace)(name) == str(uuid.uuid5(namespace, name))
