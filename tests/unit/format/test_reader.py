"""esr.format.reader building blocks: line decoding, the line splitter, the scan, the EsrFile life cycle.

Whole files, good and bad, are in test_corpus.py.
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import pytest

from esr.format.header import ExtractType
from esr.format.lines import Delete, Record
from esr.format.reader import (
    _CHUNK,
    DEFAULT_MAX_LINE_BYTES,
    UTF8_BOM,
    EsrFile,
    decode_line,
    iter_raw_lines,
    scan,
)
from tests.unit.format.files import BODY, NAME, SAMPLE, file_bytes, read, write

# --- decode_line -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "text"),
    [
        (b"LCA~Main Hospital", "LCA~Main Hospital"),
        (b"LCA~Caf\xc3\xa9", "LCA~Café"),  # valid UTF-8
        (b"LCA~Caf\xe9", "LCA~Café"),  # not UTF-8: Windows-1252
        (b"LCA~\x80 \x8a \x9f \x85", "LCA~€ Š Ÿ …"),  # cp1252's 0x80..0x9F are letters, not C1 controls
        (b"LCA~\xa0\xad", "LCA~\xa0\xad"),  # NBSP, soft hyphen
        (b"LCA~a\tb", "LCA~a\tb"),  # a tab is allowed
        (b"LCA~\xe2\x82\xac", "LCA~€"),  # the euro in UTF-8
        (b"", ""),
    ],
)
def test_decode_line(raw: bytes, text: str) -> None:
    assert decode_line(raw, utf8_only=False) == (text, None)


def test_valid_utf8_wins_even_when_cp1252_was_meant() -> None:
    # Q4 heuristic, per line: "Ã©" written in cp1252 is C3 A9, which is UTF-8 for "é". Recorded, not changed:
    # ESR text rarely holds a lead character (Â..ô) straight before a continuation one (€..¿).
    assert decode_line("PRA~Ã©".encode("cp1252"), utf8_only=False) == ("PRA~é", None)
    # One byte that is not UTF-8 anywhere on the line makes the whole line cp1252.
    assert decode_line("PRA~Ã©~é".encode("cp1252"), utf8_only=False) == ("PRA~Ã©~é", None)


@pytest.mark.parametrize(
    ("raw", "code_point", "column"),
    [
        (b"LCA~\x81", 0x81, 5),  # undefined in cp1252: mapped as in ISO-8859-1, a C1 control
        (b"LCA~\x8d\x8f\x90\x9d", 0x8D, 5),
        (b"LCA~a\x00b", 0x00, 6),
        (b"\x00", 0x00, 1),
        (b"LCA~\x1b[31m", 0x1B, 5),
        (b"LCA~\x7f", 0x7F, 5),
        (b"LCA~a\rb", 0x0D, 6),  # a bare CR is not a line ending
        (b"LCA~a\x0bb", 0x0B, 6),
        (b"LCA~\xc2\x85", 0x85, 5),  # NEL, valid UTF-8 but a C1 control
        (b"LCA~\xc3\xa9\x81", 0x81, 7),  # not UTF-8 (0x81), so cp1252: "Ã©" then the control
    ],
)
def test_control_characters_make_a_line_unreadable(raw: bytes, code_point: int, column: int) -> None:
    text, problem = decode_line(raw, utf8_only=False)
    assert text is None
    assert problem == f"control character U+{code_point:04X} at column {column} (binary data?)"


def test_in_a_utf8_file_invalid_utf8_is_unreadable() -> None:
    text, problem = decode_line(b"LCA~Caf\xe9", utf8_only=True)
    assert text is None
    assert problem == "invalid UTF-8 at byte 8 in a file marked UTF-8 by its byte-order mark"
    assert decode_line(b"LCA~Caf\xc3\xa9", utf8_only=True) == ("LCA~Café", None)


# --- iter_raw_lines --------------------------------------------------------------------------------------


def lines_of(data: bytes, **options: int) -> list[tuple[int, bytes, bool]]:
    return list(iter_raw_lines(io.BytesIO(data), **options))


def test_lines_end_with_lf_or_crlf_and_blank_lines_keep_their_numbers() -> None:
    assert lines_of(b"a\nb\r\n\n\r\n  \nc") == [
        (1, b"a", False),
        (2, b"b", False),
        (3, b"", False),
        (4, b"", False),
        (5, b"  ", False),
        (6, b"c", False),
    ]


def test_every_trailing_cr_is_removed() -> None:
    assert lines_of(b"a\r\r\n") == [(1, b"a", False)]


def test_no_lines() -> None:
    assert lines_of(b"") == []
    assert lines_of(b"\n") == [(1, b"", False)]


def test_limit_stops_after_that_many_bytes() -> None:
    assert lines_of(b"aaa\nbbb\nccc\n", limit=6) == [(1, b"aaa", False), (2, b"bb", False)]
    assert lines_of(b"aaa\nbbb\n", limit=0) == []


def test_lines_at_and_over_the_length_limit() -> None:
    data = b"1234\n12345\n123456\r\n1234\r\n12345\r\n" + b"x" * 100 + b"\nend\n" + b"y" * 7
    assert lines_of(data, max_line_bytes=4) == [
        (1, b"1234", False),  # exactly the limit
        (2, b"1234", True),  # limit + 1: cut to the limit
        (3, b"1234", True),
        (4, b"1234", False),  # exactly the limit, CRLF
        (5, b"1234", True),  # limit + 1, CRLF: the CR lands past the read window
        (6, b"xxxx", True),
        (7, b"end", False),  # the line after a long one is intact
        (8, b"yyyy", True),  # a long last line without a line ending
    ]


class RecordingStream(io.BytesIO):
    """Remembers the biggest block handed out by readline/read."""

    biggest = 0

    def readline(self, size: int | None = -1, /) -> bytes:
        data = super().readline(size)
        self.biggest = max(self.biggest, len(data))
        return data

    def read(self, size: int | None = -1, /) -> bytes:
        data = super().read(size)
        self.biggest = max(self.biggest, len(data))
        return data


def test_an_over_long_line_is_skipped_in_bounded_blocks() -> None:
    stream = RecordingStream(b"LCA~" + b"x" * (5 * _CHUNK) + b"\nORA~1\n")
    assert list(iter_raw_lines(stream, max_line_bytes=100)) == [(1, b"LCA~" + b"x" * 96, True), (2, b"ORA~1", False)]
    assert stream.biggest <= _CHUNK


# --- scan ------------------------------------------------------------------------------------------------


def test_scan_of_the_sample() -> None:
    data = SAMPLE.read_bytes()
    with SAMPLE.open("rb") as stream:
        result = scan(stream, SAMPLE)
    assert result.path == SAMPLE
    assert result.size == len(data)
    assert result.sha256 == hashlib.sha256(data).hexdigest()
    assert result.line_count == 12
    assert result.last_line_no == 12
    assert result.utf8_bom is False
    assert result.first_line == data.decode().splitlines()[0]
    assert result.last_line == "TRL~12"
    assert (result.file_name, result.header, result.trailer_count, result.warnings) == (None, None, None, [])


def test_scan_skips_blank_lines_and_the_byte_order_mark() -> None:
    data = UTF8_BOM + b"\n\nHDR~x\r\n\r\n  \nLCA~1\nTRL~3\n\n\n"
    result = scan(io.BytesIO(data), Path(NAME))
    assert result.utf8_bom is True
    assert result.size == len(data)
    assert result.sha256 == hashlib.sha256(data).hexdigest()  # of every byte, the BOM included
    assert (result.line_count, result.last_line_no) == (3, 7)
    assert (result.first_line, result.last_line) == ("HDR~x", "TRL~3")


def test_scan_of_unreadable_first_and_last_lines() -> None:
    result = scan(io.BytesIO(b"\x00\x01\nLCA~1\n\x81\n"), Path(NAME))
    assert (result.line_count, result.first_line, result.last_line) == (3, None, None)


# --- EsrFile ---------------------------------------------------------------------------------------------


def test_the_sample_file_opens_and_streams() -> None:
    with EsrFile(SAMPLE) as esr:
        result = esr.open()
        assert result is esr.scan
        assert result.warnings == []
        assert result.trailer_count == 12
        assert esr.file_name.extract_type is ExtractType.CHANGES
        assert esr.file_name.sequence == 42
        assert esr.header.vpd == "999"
        assert esr.header.interface_version == "01"
        parsed = list(esr.records())
    assert [number for number, _ in parsed] == list(range(2, 12))  # physical line numbers
    assert [p.layout.code for _, p in parsed if isinstance(p, Record)] == [line[:3] for line in BODY[:-1]]
    assert isinstance(parsed[-1][1], Delete)
    assert all(not p.issues for _, p in parsed if isinstance(p, Record | Delete))


def test_records_can_be_read_twice() -> None:
    with EsrFile(SAMPLE) as esr:
        esr.open()
        assert list(esr.records()) == list(esr.records())


def test_lines_gives_each_lines_bytes() -> None:
    with EsrFile(SAMPLE) as esr:
        esr.open()
        lines = list(esr.lines())
    assert [(number, raw) for number, raw, _ in lines] == [(n, line.encode()) for n, line in enumerate(BODY, 2)]


def test_nothing_before_open() -> None:
    esr = EsrFile(SAMPLE)
    with pytest.raises(RuntimeError, match=r"EsrFile\.open\(\) has not run"):
        esr.scan  # noqa: B018 - the property is the test
    with pytest.raises(RuntimeError, match=r"EsrFile\.open\(\) has not run"):
        list(esr.records())
    esr.close()  # harmless


def test_close_is_idempotent(tmp_path: Path) -> None:
    path = write(tmp_path, file_bytes())
    with EsrFile(path) as esr:
        esr.open()
        esr.close()
    esr.close()


def test_default_limits() -> None:
    assert DEFAULT_MAX_LINE_BYTES == 64 * 1024
    assert EsrFile(SAMPLE).max_line_bytes == DEFAULT_MAX_LINE_BYTES
    assert EsrFile(SAMPLE).strict_count is True


def test_smaller_line_limit(tmp_path: Path) -> None:
    path = write(tmp_path, file_bytes())
    _, parsed = read(path, max_line_bytes=100)
    too_long = {number for number, p in parsed if not isinstance(p, Record | Delete)}
    assert too_long == {n for n, line in enumerate(BODY, 2) if len(line) > 100}
    assert too_long  # PRA, ASA and POA are longer than 100 bytes
