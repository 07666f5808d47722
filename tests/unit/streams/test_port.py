"""The domain port: how the shell encodes what the domain hands it."""

from __future__ import annotations

import datetime as dt
import json
import types
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, NamedTuple

from streams import domain as real_domain
from streams.port import JSON_HEADERS, load_domain, port_from_module


@dataclass
class Marker:
    name: str


class Pair(NamedTuple):
    left: str
    right: int


def _module(snapshot: Any) -> types.ModuleType:
    module = types.ModuleType("snapshot_domain")
    for name in ("InputRecord", "ChangeSource", "apply_employee_batch", "apply_reference_batch",
                 "work_address_changes", "absent_from_full_file", "encode_state", "decode_state"):
        setattr(module, name, getattr(real_domain, name))
    module.employee_snapshot = snapshot  # type: ignore[attr-defined]
    return module


def test_the_snapshot_is_the_json_modules_encoding() -> None:
    """orjson writes esr.employees as `json` did: compact, UTF-8, tuples as arrays, and everything JSON has no
    type for (dates, decimals, dataclasses) as its text."""
    value = {
        "name": "Siân Ó Súilleabháin", "versions": {"2024-03-01": {"hours": "37.50000"}},
        "pair": ("a", 1), "named": Pair("b", 2),
        "day": dt.date(2024, 3, 1), "at": dt.datetime(2024, 3, 1, 7, 30), "amount": Decimal("1.50"),
        "marker": Marker("x"), "none": None, "flag": True, "count": 3,
    }
    port = port_from_module(_module(lambda state: {**value, "state": state}))
    expected = json.dumps({**value, "state": "s1"}, ensure_ascii=False, separators=(",", ":"), default=str)
    assert port.employee_value("s1") == expected.encode()
    assert port.employee_headers == JSON_HEADERS


def test_input_records_are_made_by_the_domain_class_itself() -> None:
    port = load_domain()
    record = port.input_record({"vpd": "999"}, "esr.records", 2, 7)
    assert record == real_domain.InputRecord({"vpd": "999"}, "esr.records", 2, 7)
    assert (record.topic, record.partition, record.offset) == ("esr.records", 2, 7)


def test_the_workers_change_events_are_written_by_the_native_codec() -> None:
    """The worker's change events carry the decoder's `TextRecord`s as their `before` / `after` maps (a dict
    subclass): the native writer must take them, not hand every event to the slower reference code."""
    import pytest

    from esr.codec import PAYLOAD_TYPES, Decoder, Encoder, TextRecord, native
    from tests.unit.streams.test_shell import person, record

    if not native.enabled():
        pytest.skip("the pure-Python codec is forced (ESR_CODEC_NATIVE=0)")
    domain = load_domain()
    decoder = Decoder("record-event", text_records=PAYLOAD_TYPES)
    decoded = decoder.decode(record("PERSON", "7", person("7", "Jones"), person_id="7", line_no=2))
    outcome = domain.apply_employee_batch(None, [domain.input_record(decoded, "esr.records", 0, 0)],
                                          real_domain.NoReference(), now_ms=1)
    assert outcome.changes
    write: Any = Encoder("change-event")._write
    for change in outcome.changes:
        assert type(change["after"]) is TextRecord
        assert write.write(change) == write.reference(change)  # `write`: the native code alone, or it raises
