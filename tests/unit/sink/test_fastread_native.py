"""The native body of the sink's change-event reader returns exactly what the Python body returns: the
same JSON text of `changes`, the same values, and on damaged bytes the same value or error."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.sink.fastread import FastChangeReader
from connectors.sink.mapping import JsonText
from esr.codec import Encoder, UndecodableMessage, native
from esr.codec.framing import SINGLE_OBJECT_HEADER_SIZE
from tests import sink_events as ev
from tests.unit.codec.test_native import damaged, native_on, same
from tests.unit.sink.test_fastread import change_events

with native_on():
    READER = FastChangeReader()
ENCODER = Encoder("change-event")
H = SINGLE_OBJECT_HEADER_SIZE


def _outcome(reader: FastChangeReader, data: bytes, *, native_body: bool) -> tuple[Any, ...]:
    try:
        if native_body:
            assert reader._native is not None
            return ("value", reader._native(data, H))
        return ("value", reader._read(data, H))
    except Exception as exc:  # the errors themselves are compared
        return ("error", type(exc), str(exc))


def check(data: bytes) -> None:
    """Native: the Python body's value, or refused; `decode`: the Python body's value or its error."""
    expected = _outcome(READER, data, native_body=False)
    got = _outcome(READER, data, native_body=True)
    if got[0] == "value":
        assert expected[0] == "value", (got, expected)
        assert same(got[1], expected[1])
    try:
        decoded: tuple[Any, ...] = ("value", READER.decode(data))
    except UndecodableMessage as exc:
        decoded = ("error", str(exc))
    if expected[0] == "value":
        assert decoded[0] == "value"
        assert same(decoded[1], expected[1])
    else:
        message = f"corrupt or unreadable change-event message: {expected[1].__name__}: {expected[2]}"
        assert decoded == ("error", message)


def test_the_native_body_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    assert native.module is not None, "the native codec is not built: pip install -e . builds it (setup.py)"
    assert READER.enabled
    assert READER._native is not None
    monkeypatch.setenv(native.ENVIRONMENT_VARIABLE, "0")
    assert FastChangeReader()._native is None


@settings(max_examples=300, deadline=None)
@given(change_events())
def test_same_as_the_python_body(event: dict[str, Any]) -> None:
    data = ENCODER.encode(event)
    assert READER._native is not None
    fast = READER._native(data, H)
    assert type(fast["changes"]) is JsonText
    assert same(fast, READER._read(data, H))


@settings(max_examples=200, deadline=None)
@given(change_events(), st.data())
def test_damaged_bytes(event: dict[str, Any], data: st.DataObject) -> None:
    body = bytearray(ENCODER.encode(event))
    for _ in range(data.draw(st.integers(1, 3))):
        position = data.draw(st.integers(H, len(body)))
        action = data.draw(st.sampled_from(["set", "cut", "insert"]))
        if action == "cut":
            del body[position:]
        elif action == "insert":
            body[position:position] = data.draw(st.binary(min_size=1, max_size=8))
        elif position < len(body):
            body[position] = data.draw(st.integers(0, 255))
    check(bytes(body))


def test_every_truncation_and_byte_of_a_realistic_event() -> None:
    event = ev.change("PERSON", "1", "SURNAME_CHANGED", before=ev.person("1", 'O"Brien\\'),
                      after=ev.person("1", "Ó Briain\n"), person_id="1", effective_date=dt.date(2024, 2, 1))
    encoded = ENCODER.encode(event)
    for bad in damaged(encoded[H:]):
        check(encoded[:H] + bad)


def test_json_escapes_every_character_as_the_json_module() -> None:
    text = "".join(map(chr, range(0x80))) + "é€😀\u2028\u2029\ufeff"
    event = ev.change("PHONE", "40", "PHONE_CHANGED", before={text: text}, after={text: "x", "a": text},
                      person_id="1")
    data = ENCODER.encode(event)
    assert READER._native is not None
    assert same(READER._native(data, H), READER._read(data, H))
