"""The parser's and the reader's fast paths give exactly what their precise references give.

`parse_fields` first tries a generated per-layout function for clean lines and falls back to
`_parse_record` (the precise path, the only one that reports issues); `iter_raw_lines` reads blocks
instead of lines; `EsrFile.lines` decodes ASCII lines without `decode_line`. Each must never differ
from its reference, whatever the input: clean values, every kind of bad value, field counts, lengths.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import BinaryIO

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from esr.format import reader
from esr.format.layouts import LAYOUTS, Layout
from esr.format.lines import _parse_record, format_record, parse_fields
from esr.format.reader import DEFAULT_MAX_LINE_BYTES, decode_line, iter_raw_lines
from tests.strategies import any_record

# Texts that break one rule or another of some field type (and some that are fine).
AWKWARD = [
    "", " ", "  ", "0", "00000000", "00000000 000000", "20240229", "20230229", "20241301", "2024-02-01",
    "20240101 240000", "20240101 235960", "20240101 101010", "20240101T101010", "20240101 1010", "2024010110101",
    "٢٠٢٤٠١٠١", "20240101 10101٠", "1.5", "1.23456", "-0", "+7", "1e3", "NaN", "Infinity", "1_000",
    "12345678901234567890123", "abc", "A1234", "x" * 300, "9" * 16, "Ó Briain", "a|b|c",
]


def mutations(fields: list[str]) -> st.SearchStrategy[list[str]]:
    """The line with a few fields replaced by awkward texts, and/or fields added or removed at the end."""
    index = st.integers(1, len(fields) - 1)
    change = st.tuples(index, st.sampled_from(AWKWARD) | st.text(max_size=20))

    def apply(changes: list[tuple[int, str]], tail: int, extra: list[str]) -> list[str]:
        out = list(fields)
        for i, text in changes:
            out[i] = text
        if tail < 0:
            return out[:tail]
        return out + extra[:tail]

    return st.builds(
        apply,
        st.lists(change, max_size=4),
        st.integers(-3, 3),
        st.lists(st.sampled_from(["", "", "x", " "]), min_size=3, max_size=3),
    )


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_the_fast_parser_matches_the_precise_one(data: st.DataObject) -> None:
    layout, values = data.draw(any_record())
    fields = format_record(layout, values).split("~")
    assert parse_fields(fields) == _parse_record(layout, fields)
    mutated = data.draw(mutations(fields))
    assert parse_fields(mutated) == _parse_record(layout, mutated)


@pytest.mark.parametrize("layout", LAYOUTS, ids=lambda layout: layout.code)
@pytest.mark.parametrize("text", AWKWARD)
def test_every_awkward_text_in_every_field(layout: Layout, text: str) -> None:
    clean = format_record(layout, {f.name: None for f in layout.data_fields}).split("~")
    for i in range(1, layout.field_count):
        fields = list(clean)
        fields[i] = text
        assert parse_fields(fields) == _parse_record(layout, fields), (layout.code, i, text)


# --- iter_raw_lines against the line-by-line reading it replaced -----------------------------------------


def _readline_lines(
    stream: BinaryIO, *, limit: int | None = None, max_line_bytes: int = DEFAULT_MAX_LINE_BYTES
) -> Iterator[tuple[int, bytes, bool]]:
    """The reference: `readline(max_line_bytes + 2)` at a time (the reader's first implementation)."""
    remaining = -1 if limit is None else limit
    number = 0

    def read(size: int) -> bytes:
        nonlocal remaining
        data = stream.readline(size if remaining < 0 else min(size, remaining))
        if remaining > 0:
            remaining -= len(data)
        return data

    while remaining != 0:
        want = max_line_bytes + 2
        chunk = read(want)
        if not chunk:
            return
        number += 1
        if not chunk.endswith(b"\n") and len(chunk) == want and remaining != 0:
            piece = chunk
            while piece and not piece.endswith(b"\n") and remaining != 0:
                piece = read(1 << 20)
            yield number, chunk[:max_line_bytes], True
            continue
        line = chunk.rstrip(b"\n").rstrip(b"\r")
        if len(line) > max_line_bytes:
            yield number, line[:max_line_bytes], True
        else:
            yield number, line, False


@settings(max_examples=1500)
@given(
    data=st.lists(st.sampled_from([b"a", b"b", b" ", b"\n", b"\r", b"\r\n", b"~", b"\xe9"]), max_size=80).map(
        b"".join
    ),
    max_line_bytes=st.integers(1, 12),
    block=st.integers(1, 9),
    limit=st.none() | st.integers(0, 90),
)
def test_block_reading_matches_line_reading(data: bytes, max_line_bytes: int, block: int, limit: int | None) -> None:
    expected = list(_readline_lines(io.BytesIO(data), limit=limit, max_line_bytes=max_line_bytes))
    chunk = reader._CHUNK
    reader._CHUNK = block  # tiny blocks: lines and line endings split across them
    try:
        got = list(iter_raw_lines(io.BytesIO(data), limit=limit, max_line_bytes=max_line_bytes))
    finally:
        reader._CHUNK = chunk
    assert got == expected


@settings(max_examples=500)
@given(st.binary(max_size=40) | st.text(max_size=20).map(lambda t: t.encode("utf-8", "surrogatepass")))
def test_the_ascii_decoding_shortcut_matches_decode_line(raw: bytes) -> None:
    if raw.isascii() and len(raw.translate(None, reader._ASCII_CONTROLS)) == len(raw):
        assert decode_line(raw, utf8_only=False) == (raw.decode("ascii"), None)
        assert decode_line(raw, utf8_only=True) == (raw.decode("ascii"), None)
