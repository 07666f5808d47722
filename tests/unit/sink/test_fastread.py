"""The sink's change-event reader returns what the generic decoder returns (changes as JSON, no before)."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.sink.fastread import FastChangeReader
from connectors.sink.mapping import JsonText
from esr.codec import Decoder, Encoder, UndecodableMessage
from esr.codec.schemas import ChangeEventType, ChangeOp, latest
from tests import sink_events as ev

READER = FastChangeReader()
ENCODER = Encoder("change-event")
GENERIC = Decoder("change-event")

_text = st.text(max_size=80)
_maybe_text = st.none() | _text
_values = st.none() | st.dictionaries(st.text(max_size=20), _maybe_text, max_size=30)


@st.composite
def change_events(draw: st.DrawFn) -> dict[str, Any]:
    return {
        "event_id": draw(_text),
        "event_type": draw(st.sampled_from([t.value for t in ChangeEventType])),
        "op": draw(st.sampled_from([o.value for o in ChangeOp])),
        "entity_type": draw(st.sampled_from(["UNKNOWN", "PERSON", "ASSIGNMENT", "LOCATION", "COSTING"])),
        "entity_id": draw(_text),
        "vpd": draw(_text),
        "person_id": draw(_maybe_text),
        "employee_number": draw(_maybe_text),
        "changes": draw(st.lists(st.fixed_dictionaries({"field": _text, "old": _maybe_text, "new": _maybe_text}),
                                 max_size=30)),
        "before": draw(_values),
        "after": draw(_values),
        "effective_date": draw(st.none() | st.dates(dt.date(1900, 1, 1), dt.date(4712, 12, 31))),
        "source": {
            "file_name": draw(_text),
            "file_sha256": draw(_text),
            "sequence": draw(st.none() | st.integers(-(2**63), 2**63 - 1)),
            "extract_type": draw(st.none() | st.sampled_from(["F", "C"])),
            "run_date": draw(st.none() | st.datetimes(dt.datetime(1900, 1, 1), dt.datetime(2200, 1, 1)).map(
                lambda d: d.replace(microsecond=d.microsecond // 1000 * 1000))),
            "record_code": draw(_maybe_text),
            "line_no": draw(st.none() | st.integers(0, 2**40)),
            "topic": draw(_maybe_text),
            "partition": draw(st.none() | st.integers(-(2**31), 2**31 - 1)),
            "offset": draw(st.none() | st.integers(0, 2**62)),
        },
        "ts_ms": draw(st.integers(0, 2**42)),
    }


def test_the_latest_schema_has_the_shape_the_reader_reads() -> None:
    """If this fails, the change-event schema changed: update connectors/sink/fastread.py (until then the
    sink decodes everything with the generic decoder, correctly but slower)."""
    assert READER.enabled, latest("change-event")["fields"]


@settings(max_examples=300, deadline=None)
@given(change_events())
def test_same_as_the_generic_decoder(event: dict[str, Any]) -> None:
    data = ENCODER.encode(event)
    fast = READER.decode(data)
    generic = GENERIC.decode(data)
    assert isinstance(fast["changes"], JsonText)
    assert json.loads(fast["changes"]) == generic["changes"]
    assert fast["before"] is None
    assert {**fast, "changes": None} == {**generic, "changes": None, "before": None}


def test_a_realistic_event() -> None:
    event = ev.change("PERSON", "1", "SURNAME_CHANGED", before=ev.person("1", 'O"Brien\\'),
                      after=ev.person("1", "Ó Briain\n"), person_id="1", effective_date=dt.date(2024, 2, 1))
    fast = READER.decode(ENCODER.encode(event))
    assert json.loads(fast["changes"]) == event["changes"]
    assert fast["after"] == event["after"]
    assert fast["source"] == event["source"]


def test_other_writers_go_through_the_generic_decoder() -> None:
    older = FastChangeReader()
    older._header = b"\xc3\x01" + b"\x00" * 8  # as if the message were written with another schema version
    event = ev.change("PHONE", "40", "PHONE_ADDED", after=ev.phone("1", "40"), person_id="1")
    decoded = older.decode(ENCODER.encode(event))
    assert decoded["changes"] == event["changes"]  # a list: the mapping renders it


@pytest.mark.parametrize("damage", [
    lambda b: b[:-3],  # truncated
    lambda b: b + b"\x00",  # trailing byte
    lambda b: b[:10] + b"\x7f" * (len(b) - 10),  # garbage body
    lambda _b: b"\x01\x02",  # no framing
])
def test_corrupt_messages_are_undecodable(damage: Any) -> None:
    data = ENCODER.encode(ev.change("PERSON", "1", "NEW_STARTER", after=ev.person("1"), person_id="1"))
    with pytest.raises(UndecodableMessage):
        READER.decode(damage(data))


def test_field_names_are_remembered_within_bounds() -> None:
    """Field names are cached as read (the same few in every event); unknown names without end must not
    grow the caches without end, nor change what is read."""
    reader = FastChangeReader()
    for n in range(5000):
        event = ev.change("PHONE", "40", "PHONE_CHANGED", before={f"f{n}": "a"}, after={f"f{n}": 'b"', "g": ""},
                          person_id="1")
        decoded = reader.decode(ENCODER.encode(event))
        assert json.loads(decoded["changes"]) == event["changes"]
        assert decoded["after"] == event["after"]
    assert len(reader._heads) <= 4097
    assert len(reader._keys) <= 4097
