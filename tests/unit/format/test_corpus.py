"""The malformed-file corpus: whole files written to disk and read with EsrFile.open() + records().

Part 1: files the reader rejects, one or more per rejection code it can raise (VPD_NOT_FOUND and
WRONG_SEQUENCE need the ledger and belong to the ingest job). Part 2: damaged files the reader accepts,
quarantining single lines by their physical, 1-based line numbers.
"""

from __future__ import annotations

import contextlib
import os
import random
import tempfile
import tracemalloc
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from esr.format.header import FileRejected, RejectionCode
from esr.format.layouts import LOCATION, Layout
from esr.format.lines import Delete, Quarantined, Record, Unknown, format_record
from esr.format.reader import DEFAULT_MAX_LINE_BYTES, UTF8_BOM, EsrFile
from tests.strategies import Values, any_record
from tests.unit.format.files import (
    BODY,
    HEADER,
    NAME,
    SAMPLE,
    Parsed,
    assert_rejected,
    byte_lines,
    file_bytes,
    join,
    read,
    rejection,
    write,
)

LCA, ORA, POA, PRA, ASA, PHA, ADA, VHA, COA, ASD = BODY
LIMIT = DEFAULT_MAX_LINE_BYTES


def lca(description: str) -> str:
    """The sample LCA line with another description (field 3)."""
    fields = LCA.split("~")
    fields[LOCATION.index("description")] = description
    return "~".join(fields)


def lca_of_length(size: int) -> bytes:
    """An LCA line of exactly `size` bytes (its description padded)."""
    base = len(lca("").encode())
    line = lca("x" * (size - base)).encode()
    assert len(line) == size
    return line


def kinds(parsed: Parsed) -> list[tuple[int, str]]:
    """(line number, record code or what the line became) for each parsed line."""
    out: list[tuple[int, str]] = []
    for number, line in parsed:
        match line:
            case Record() | Delete():
                out.append((number, line.layout.code if isinstance(line, Record) else line.layout.delete_code))
            case Unknown():
                out.append((number, f"unknown {line.code}"))
            case Quarantined():
                out.append((number, f"quarantined {line.code}"))
    return out


def quarantined(parsed: Parsed) -> dict[int, Quarantined]:
    return {number: line for number, line in parsed if isinstance(line, Quarantined)}


SAMPLE_KINDS = [(n, line[:3]) for n, line in enumerate(BODY, 2)]


# =========================================================================================================
# Part 1: rejected files
# =========================================================================================================


@dataclass(frozen=True, slots=True)
class Bad:
    id: str
    content: bytes
    code: RejectionCode
    message: str  # a fragment of the rejection message
    name: str = NAME


def _garbage(seed: int, size: int = 4096) -> bytes:
    return random.Random(seed).randbytes(size)


REJECTED: list[Bad] = [
    # --- NO_HEADER
    Bad("empty file", b"", RejectionCode.NO_HEADER, "the file is empty"),
    Bad("byte-order mark only", UTF8_BOM, RejectionCode.NO_HEADER, "the file is empty"),
    Bad("only blank lines", b"\n\n   \r\n\t\n\n", RejectionCode.NO_HEADER, "the file holds only blank lines"),
    Bad("binary garbage", _garbage(1), RejectionCode.NO_HEADER, "line 1 is not readable text (binary data?)"),
    Bad("UTF-16", file_bytes(encoding="utf-16"), RejectionCode.NO_HEADER, "line 1 is not readable text"),
    Bad("gzip", b"\x1f\x8b\x08\x00" + _garbage(2, 200), RejectionCode.NO_HEADER, "line 1 is not readable text"),
    Bad(
        "data before the header",
        join([LCA.encode(), *byte_lines([ORA.encode()])]),
        RejectionCode.NO_HEADER,
        "line 1 is not a HDR record: 'LCA~300001",
    ),
    Bad("lower-case hdr", file_bytes(header=HEADER.lower()), RejectionCode.NO_HEADER, "line 1 is not a HDR record"),
    Bad(
        "header with too few fields",
        file_bytes(header=HEADER.rsplit("~", 1)[0]),
        RejectionCode.NO_HEADER,
        "line 1: HDR needs 7 fields, it has 6",
    ),
    Bad("old Mac CR line endings", file_bytes(newline="\r"), RejectionCode.NO_HEADER, "line 1 is not readable text"),
    # --- NO_TRAILER
    Bad(
        "header only",
        file_bytes()[: len(HEADER) + 1],
        RejectionCode.NO_TRAILER,
        "the file ends after its header (no TRL record)",
    ),
    Bad("header only, no newline", HEADER.encode(), RejectionCode.NO_TRAILER, "ends after its header"),
    Bad(
        "truncated mid-record",
        file_bytes()[: file_bytes().index(b"~Jones~") + 3],
        RejectionCode.NO_TRAILER,
        "last line (line 5) is not a TRL record: 'PRA~600001",
    ),
    Bad(
        "truncated mid-trailer",
        file_bytes()[:-5],
        RejectionCode.NO_TRAILER,
        "last line (line 12) is not a TRL record: 'TR'",
    ),
    Bad(
        "trailer missing",
        join([HEADER.encode(), *(line.encode() for line in BODY)]),
        RejectionCode.NO_TRAILER,
        "last line (line 11) is not a TRL record: 'ASD~700099'",
    ),
    Bad(
        "TRL~abc",
        join([*byte_lines([LCA.encode()])[:-1], b"TRL~abc"]),
        RejectionCode.NO_TRAILER,
        "line 3: invalid trailer 'TRL~abc' (expected TRL~<count>)",
    ),
    Bad(
        "TRL~1~2",
        join([*byte_lines([LCA.encode()])[:-1], b"TRL~1~2"]),
        RejectionCode.NO_TRAILER,
        "line 3: invalid trailer 'TRL~1~2'",
    ),
    Bad(
        "TRL~ with a superscript digit",
        join([*byte_lines([LCA.encode()])[:-1], "TRL~³".encode("cp1252")]),
        RejectionCode.NO_TRAILER,
        "line 3: invalid trailer 'TRL~³'",
    ),
    Bad(
        "garbage after the trailer",
        file_bytes() + _garbage(3, 64).replace(b"\n", b"") + b"\n",
        RejectionCode.NO_TRAILER,
        "last line (line 13) is not readable text (binary data?), not a TRL record",
    ),
    # --- RECORD_COUNT
    Bad(
        "count one short",
        file_bytes(count=11),
        RejectionCode.RECORD_COUNT,
        "trailer count 11 matches neither the 12 lines of the file nor its 10 data lines",
    ),
    Bad("count one over", file_bytes(count=13), RejectionCode.RECORD_COUNT, "trailer count 13"),
    Bad(
        "count of physical lines with blank lines",
        file_bytes([LCA, "", ORA], count=5),
        RejectionCode.RECORD_COUNT,
        "trailer count 5 matches neither the 4 lines",
    ),  # blank lines do not count
    Bad("count zero", file_bytes(count=0), RejectionCode.RECORD_COUNT, "trailer count 0"),
    # --- WRONG_FORMAT
    Bad(
        "pipe delimiter",
        file_bytes().replace(b"~", b"|"),
        RejectionCode.WRONG_FORMAT,
        "line 1: the field delimiter is not '~' (wrong delimiter)",
    ),
    Bad("comma delimiter", file_bytes().replace(b"~", b","), RejectionCode.WRONG_FORMAT, "wrong delimiter"),
    Bad("tab delimiter", file_bytes().replace(b"~", b"\t"), RejectionCode.WRONG_FORMAT, "wrong delimiter"),
    Bad(
        "lower-case .dat",
        file_bytes(header=HEADER.replace(".DAT", ".dat")),
        RejectionCode.WRONG_FORMAT,
        "is not GO_<VPD>_EXP_GO<F|C>_<YYYYMMDD>_<8-digit sequence>.DAT",
        NAME.replace(".DAT", ".dat"),
    ),
    Bad("GDW sub-type", file_bytes(), RejectionCode.WRONG_FORMAT, "is not GO_", "GO_999_GDW_GOC_20240301_00000042.DAT"),
    Bad(
        "7-digit sequence",
        file_bytes(),
        RejectionCode.WRONG_FORMAT,
        "8-digit sequence",
        "GO_999_EXP_GOC_20240301_0000042.DAT",
    ),
    Bad(
        "impossible date in the name",
        file_bytes(),
        RejectionCode.WRONG_FORMAT,
        "extract date '20240230' is not a calendar date",
        "GO_999_EXP_GOC_20240230_00000042.DAT",
    ),
    Bad(
        "header names another file",
        file_bytes(header=HEADER.replace("00000042", "00000041")),
        RejectionCode.WRONG_FORMAT,
        "line 1 field file_name: header names 'GO_999_EXP_GOC_20240301_00000041.DAT'",
    ),
    Bad(
        "header VPD differs",
        file_bytes(header=HEADER.replace("~999~", "~998~")),
        RejectionCode.WRONG_FORMAT,
        "line 1 field vpd: header VPD '998' differs from file name VPD '999'",
    ),
    Bad(
        "bad creation timestamp",
        file_bytes(header=HEADER.replace("20240301 071503", "20240301071503")),
        RejectionCode.WRONG_FORMAT,
        "line 1: field file creation timestamp: '20240301071503' is not a timestamp",
    ),
    Bad(
        "bad run date",
        file_bytes(header=HEADER.replace("~20240301 000000~", "~20240301 250000~")),
        RejectionCode.WRONG_FORMAT,
        "line 1: field run date: '20240301 250000' is not a calendar date and time",
    ),
    Bad(
        "bad interface version",
        file_bytes(header=HEADER[:-2] + "1"),
        RejectionCode.WRONG_FORMAT,
        "line 1 field interface_version: '1' is not a 2-digit version",
    ),
]


@pytest.mark.parametrize("case", REJECTED, ids=lambda case: case.id)
def test_rejected_file(tmp_path: Path, case: Bad) -> None:
    path = write(tmp_path, case.content, case.name)
    rejected = assert_rejected(path, case.code, case.message)
    assert str(rejected).startswith(f"{case.code.name}: ")


def test_random_garbage_is_always_no_header(tmp_path: Path) -> None:
    for seed in range(20):
        rejected = rejection(write(tmp_path, _garbage(seed, 2000 + seed)))
        assert rejected.code is RejectionCode.NO_HEADER, (seed, rejected)


def test_the_scan_survives_a_rejection(tmp_path: Path) -> None:
    path = write(tmp_path, file_bytes(count=99))
    with EsrFile(path) as esr:
        with pytest.raises(FileRejected):
            esr.open()
        assert esr.scan.size == path.stat().st_size
        assert esr.scan.line_count == 12
        assert esr.scan.trailer_count == 99


def test_a_bad_file_name_is_found_after_the_scan(tmp_path: Path) -> None:
    path = write(tmp_path, file_bytes(), "something.DAT")
    with EsrFile(path) as esr:
        with pytest.raises(FileRejected) as excinfo:
            esr.open()
        assert excinfo.value.code is RejectionCode.WRONG_FORMAT
        assert esr.scan.line_count == 12
        assert esr.scan.file_name is None


# --- FILE_NOT_AVAILABLE ----------------------------------------------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    assert_rejected(tmp_path / NAME, RejectionCode.FILE_NOT_AVAILABLE, "cannot be read (No such file or directory)")


def test_a_directory(tmp_path: Path) -> None:
    (tmp_path / NAME).mkdir()
    assert_rejected(tmp_path / NAME, RejectionCode.FILE_NOT_AVAILABLE, "is not a regular file")


def test_a_dangling_symlink(tmp_path: Path) -> None:
    (tmp_path / NAME).symlink_to(tmp_path / "gone.DAT")
    assert_rejected(tmp_path / NAME, RejectionCode.FILE_NOT_AVAILABLE, "cannot be read")


def test_a_symlink_to_a_good_file_is_read(tmp_path: Path) -> None:
    (tmp_path / NAME).symlink_to(SAMPLE)
    scan, parsed = read(tmp_path / NAME)
    assert scan.warnings == []
    assert kinds(parsed) == SAMPLE_KINDS


@pytest.mark.timeout(10)
def test_a_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    # Regression: open() of a FIFO blocks until a writer appears; the check used to come after it.
    os.mkfifo(tmp_path / NAME)
    assert_rejected(tmp_path / NAME, RejectionCode.FILE_NOT_AVAILABLE, "is not a regular file")


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_an_unreadable_file(tmp_path: Path) -> None:
    path = write(tmp_path, file_bytes())
    path.chmod(0)
    assert_rejected(path, RejectionCode.FILE_NOT_AVAILABLE, "cannot be read (Permission denied)")


# --- BYTE_COUNT ------------------------------------------------------------------------------------------


def _read_until_rejected(esr: EsrFile) -> tuple[Parsed, FileRejected]:
    parsed: Parsed = []
    try:
        for item in esr.records():
            parsed.append(item)
    except FileRejected as rejected:
        return parsed, rejected
    pytest.fail("the file was read to the end without a rejection")


def test_a_file_that_grows_after_open_is_byte_count(tmp_path: Path) -> None:
    path = write(tmp_path, file_bytes())
    size = path.stat().st_size
    with EsrFile(path) as esr:
        esr.open()
        with path.open("ab") as more:
            more.write(f"{LCA}\nTRL~13\n".encode())
        parsed, rejected = _read_until_rejected(esr)
    assert rejected.code is RejectionCode.BYTE_COUNT
    assert rejected.message == f"{path} changed size while it was read ({size} bytes when scanned)"
    assert kinds(parsed) == SAMPLE_KINDS  # nothing past the scanned size was read


def test_a_file_that_shrinks_after_open_is_byte_count(tmp_path: Path) -> None:
    path = write(tmp_path, file_bytes())
    with EsrFile(path) as esr:
        esr.open()
        os.truncate(path, 300)
        parsed, rejected = _read_until_rejected(esr)
    assert rejected.code is RejectionCode.BYTE_COUNT
    assert len(parsed) < len(BODY)


def test_every_code_the_reader_can_raise_is_in_the_corpus() -> None:
    covered = {case.code for case in REJECTED}
    covered |= {RejectionCode.FILE_NOT_AVAILABLE, RejectionCode.BYTE_COUNT}  # the tests above
    ledger_only = {RejectionCode.VPD_NOT_FOUND, RejectionCode.WRONG_SEQUENCE}
    assert covered == set(RejectionCode) - ledger_only


# =========================================================================================================
# Part 2: damaged files the reader accepts
# =========================================================================================================


def test_header_and_trailer_only_is_accepted_with_a_warning(tmp_path: Path) -> None:
    scan, parsed = read(write(tmp_path, file_bytes([])))
    assert parsed == []
    assert scan.warnings == ["the file holds no records (header and trailer only)"]


def test_header_and_trailer_only_counting_data_lines(tmp_path: Path) -> None:
    scan, parsed = read(write(tmp_path, file_bytes([], count=0)))
    assert parsed == []
    assert scan.warnings == [
        "trailer count 0 counts data lines only (the file has 2 lines in all)",
        "the file holds no records (header and trailer only)",
    ]


def test_trailer_counting_data_lines_is_a_warning(tmp_path: Path) -> None:
    scan, parsed = read(write(tmp_path, file_bytes(count=10)))
    assert scan.warnings == ["trailer count 10 counts data lines only (the file has 12 lines in all)"]
    assert kinds(parsed) == SAMPLE_KINDS


def test_a_wrong_count_is_only_a_warning_when_not_strict(tmp_path: Path) -> None:
    scan, parsed = read(write(tmp_path, file_bytes(count=7)), strict_count=False)
    assert scan.warnings == ["trailer count 7 matches neither the 12 lines of the file nor its 10 data lines"]
    assert kinds(parsed) == SAMPLE_KINDS


def test_lf_and_crlf_files_parse_identically(tmp_path: Path) -> None:
    lf_scan, lf = read(write(tmp_path, file_bytes(newline="\n"), NAME))
    crlf_dir = tmp_path / "crlf"
    crlf_dir.mkdir()
    crlf_scan, crlf = read(write(crlf_dir, file_bytes(newline="\r\n")))
    assert lf == crlf
    assert kinds(lf) == SAMPLE_KINDS
    assert (lf_scan.line_count, lf_scan.header, lf_scan.warnings) == (
        crlf_scan.line_count,
        crlf_scan.header,
        crlf_scan.warnings,
    )
    assert crlf_scan.size == lf_scan.size + 12


def test_mixed_line_endings(tmp_path: Path) -> None:
    lines = file_bytes().split(b"\n")
    content = b"".join(line + (b"\r\n" if i % 2 else b"\n") for i, line in enumerate(lines[:-1]))
    _, parsed = read(write(tmp_path, content))
    assert kinds(parsed) == SAMPLE_KINDS


def test_no_final_newline(tmp_path: Path) -> None:
    scan, parsed = read(write(tmp_path, file_bytes(final_newline=False)))
    assert scan.warnings == []
    assert scan.trailer_count == 12
    assert kinds(parsed) == SAMPLE_KINDS


def test_blank_lines_in_the_middle_keep_the_line_numbers(tmp_path: Path) -> None:
    # 1 HDR, 2 LCA, 3 blank, 4 ORA, 5 spaces, 6 CRLF-only, 7 POA, 8 TRL: 5 non-blank lines.
    content = join([HEADER.encode(), LCA.encode(), b"", ORA.encode(), b"   ", b"\r", POA.encode(), b"TRL~5"])
    scan, parsed = read(write(tmp_path, content))
    assert kinds(parsed) == [(2, "LCA"), (4, "ORA"), (7, "POA")]
    assert (scan.line_count, scan.last_line_no) == (5, 8)


def test_blank_lines_before_the_header_and_after_the_trailer(tmp_path: Path) -> None:
    scan, parsed = read(write(tmp_path, b"\n\r\n" + file_bytes() + b"\n\n  \n"))
    assert scan.warnings == []
    assert scan.last_line_no == 14
    assert kinds(parsed) == [(n + 2, code) for n, code in SAMPLE_KINDS]


def test_hdr_and_trl_inside_the_body_are_quarantined(tmp_path: Path) -> None:
    content = file_bytes([LCA, HEADER, "TRL~4", ORA])
    _, parsed = read(write(tmp_path, content))
    assert kinds(parsed) == [(2, "LCA"), (3, "quarantined HDR"), (4, "quarantined TRL"), (5, "ORA")]
    assert quarantined(parsed) == {
        3: Quarantined("HDR", "HDR record inside the file body"),
        4: Quarantined("TRL", "TRL record inside the file body"),
    }


def test_unknown_and_garbage_codes_count_as_lines(tmp_path: Path) -> None:
    # Q19: skipped lines still count towards the trailer.
    scan, parsed = read(write(tmp_path, file_bytes([LCA, "LOV~1~x", "??? not a record", "PRD~10820689"])))
    assert scan.warnings == []
    assert kinds(parsed) == [(2, "LCA"), (3, "unknown LOV"), (4, "quarantined ???"), (5, "PRD")]


def test_short_and_keyless_lines_are_quarantined_by_line_number(tmp_path: Path) -> None:
    short_pra = PRA.rsplit("~", 1)[0]
    keyless_asa = "ASA~~" + ASA.split("~", 2)[2]
    _, parsed = read(write(tmp_path, file_bytes([LCA, short_pra, keyless_asa, "ASD~", ORA])))
    assert quarantined(parsed) == {
        3: Quarantined("PRA", "PRA needs 44 fields, the line has 43"),
        4: Quarantined("ASA", "ASA has no person_id", "person_id"),
        5: Quarantined("ASD", "ASD has no assignment_id", "assignment_id"),
    }
    assert kinds(parsed)[-1] == (6, "ORA")


# --- encodings -------------------------------------------------------------------------------------------


def _description(parsed: Parsed, number: int) -> object:
    line = dict(parsed)[number]
    assert isinstance(line, Record), line
    return line.values["description"]


def test_cp1252_file(tmp_path: Path) -> None:
    content = file_bytes([lca("Café Ysbyty Gwynedd – Siân’s ward €5"), ORA], encoding="cp1252")
    assert b"Caf\xe9" in content
    _, parsed = read(write(tmp_path, content))
    assert _description(parsed, 2) == "Café Ysbyty Gwynedd – Siân’s ward €5"


def test_utf8_file_without_a_byte_order_mark(tmp_path: Path) -> None:
    content = file_bytes([lca("Café – Siân"), ORA], encoding="utf-8")
    assert b"Caf\xc3\xa9" in content
    _, parsed = read(write(tmp_path, content))
    assert _description(parsed, 2) == "Café – Siân"


def test_utf8_and_cp1252_lines_in_one_file(tmp_path: Path) -> None:
    content = join(byte_lines([lca("Café").encode("cp1252"), lca("Café").encode("utf-8")]))
    _, parsed = read(write(tmp_path, content))
    assert _description(parsed, 2) == _description(parsed, 3) == "Café"


def test_utf8_file_with_a_byte_order_mark(tmp_path: Path) -> None:
    body = [lca("Café").encode(), lca("Caf\xe9").encode("cp1252"), lca("Ŵyn").encode(), ORA.encode()]
    scan, parsed = read(write(tmp_path, UTF8_BOM + join(byte_lines(body))))
    assert scan.utf8_bom is True
    assert scan.header is not None
    assert scan.header.vpd == "999"  # the BOM is not part of line 1
    assert _description(parsed, 2) == "Café"
    byte = lca("Caf\xe9").index("\xe9") + 1
    assert quarantined(parsed) == {
        3: Quarantined("LCA", f"invalid UTF-8 at byte {byte} in a file marked UTF-8 by its byte-order mark")
    }
    assert _description(parsed, 4) == "Ŵyn"  # not in cp1252: only a UTF-8 file can carry it
    assert kinds(parsed)[-1] == (5, "ORA")


def test_cp1252_undefined_byte_is_quarantined_as_a_control_character(tmp_path: Path) -> None:
    body = [LCA.encode(), lca("Caf\x81").encode("latin-1"), ORA.encode()]
    _, parsed = read(write(tmp_path, join(byte_lines(body))))
    column = lca("Caf\x81").index("\x81") + 1
    assert quarantined(parsed) == {3: Quarantined("LCA", f"control character U+0081 at column {column} (binary data?)")}
    assert kinds(parsed) == [(2, "LCA"), (3, "quarantined LCA"), (4, "ORA")]


def test_nul_byte_inside_a_line_is_quarantined(tmp_path: Path) -> None:
    body = [LCA.encode(), PRA.encode().replace(b"Jones", b"Jo\x00es"), ORA.encode()]
    _, parsed = read(write(tmp_path, join(byte_lines(body))))
    column = PRA.index("Jones") + 3
    assert quarantined(parsed) == {3: Quarantined("PRA", f"control character U+0000 at column {column} (binary data?)")}
    assert kinds(parsed)[-1] == (4, "ORA")


def test_binary_garbage_lines_inside_a_good_file(tmp_path: Path) -> None:
    garbage = [line for line in _garbage(7, 3000).split(b"\n") if line.strip()][:5]
    _, parsed = read(write(tmp_path, join(byte_lines([LCA.encode(), *garbage, ORA.encode()]))))
    assert kinds(parsed)[0] == (2, "LCA")
    assert kinds(parsed)[-1] == (8, "ORA")
    assert set(quarantined(parsed)) == {3, 4, 5, 6, 7}


# --- long lines ------------------------------------------------------------------------------------------


def test_a_200_kb_line_is_quarantined_and_reading_goes_on(tmp_path: Path) -> None:
    long_line = "PRA~" + "x" * 200_000
    _, parsed = read(write(tmp_path, file_bytes([LCA, long_line, ORA, POA])))
    assert kinds(parsed) == [(2, "LCA"), (3, "quarantined PRA"), (4, "ORA"), (5, "POA")]
    assert quarantined(parsed)[3] == Quarantined("PRA", f"line is longer than {LIMIT} bytes")


@pytest.mark.parametrize("newline", [b"\n", b"\r\n"], ids=["LF", "CRLF"])
def test_lines_at_the_limit_and_one_over(tmp_path: Path, newline: bytes) -> None:
    at_limit = lca_of_length(LIMIT)
    over = lca_of_length(LIMIT + 1)
    body = [at_limit, over, lca_of_length(LIMIT + 2), ORA.encode()]
    _, parsed = read(write(tmp_path, join(byte_lines(body), newline)))
    assert kinds(parsed) == [(2, "LCA"), (3, "quarantined LCA"), (4, "quarantined LCA"), (5, "ORA")]
    record = dict(parsed)[2]
    assert isinstance(record, Record)
    description = record.values["description"]
    assert isinstance(description, str)
    assert len(description) == LIMIT - len(lca("").encode())  # whole, with an over-length issue
    assert [issue.field for issue in record.issues] == ["description"]


def test_an_over_long_last_line_without_newline(tmp_path: Path) -> None:
    content = join(byte_lines([LCA.encode()], count=4)) + b"PRA~" + b"x" * (LIMIT * 2)
    # The over-long line is the last non-blank line: it is read as the trailer (cut) and refused.
    assert_rejected(write(tmp_path, content), RejectionCode.NO_TRAILER, "last line (line 4) is not a TRL record")


def test_an_over_long_header_does_not_swallow_the_first_record(tmp_path: Path) -> None:
    # Regression: the over-long line 1 was quarantined and line 2 taken for the header, dropped unseen.
    header = HEADER + "~" + "z" * (LIMIT + 10)  # seven good fields, then an eighth (extra fields are ignored)
    scan, parsed = read(write(tmp_path, file_bytes(header=header)))
    assert scan.header is not None
    assert kinds(parsed) == SAMPLE_KINDS


def test_memory_stays_bounded_on_a_huge_line(tmp_path: Path) -> None:
    huge = 24 * 1024 * 1024
    with write(tmp_path, b"").open("wb") as out:
        out.write((HEADER + "\n").encode())
        out.write(b"PRA~")
        block = b"x" * (1024 * 1024)
        for _ in range(huge // len(block)):
            out.write(block)
        out.write(f"\n{LCA}\nTRL~4\n".encode())
    tracemalloc.start()
    try:
        scan, parsed = read(tmp_path / NAME)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert scan.size > huge
    assert kinds(parsed) == [(2, "quarantined PRA"), (3, "LCA")]
    assert peak < 8 * 1024 * 1024, f"peak {peak} bytes while reading a {huge}-byte line"


# --- whole-file round trip -------------------------------------------------------------------------------


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rows=st.lists(any_record(), min_size=1, max_size=6),
    encoding=st.sampled_from(["cp1252", "utf-8", "utf-8-sig"]),
    newline=st.sampled_from(["\n", "\r\n"]),
    final_newline=st.booleans(),
)
def test_any_valid_records_survive_a_file(
    rows: list[tuple[Layout, Values]], encoding: str, newline: str, final_newline: bool
) -> None:
    body = [format_record(layout, values) for layout, values in rows]
    content = file_bytes(body, newline=newline, final_newline=final_newline, encoding=encoding)
    with tempfile.TemporaryDirectory() as directory:
        scan, parsed = read(write(Path(directory), content))
    assert scan.warnings == []
    assert scan.utf8_bom is (encoding == "utf-8-sig")
    assert [number for number, _ in parsed] == list(range(2, len(rows) + 2))
    for (layout, values), (_, line) in zip(rows, parsed, strict=True):
        assert isinstance(line, Record), line
        assert line.layout is layout
        assert line.values == values
        assert line.issues == []


@settings(max_examples=60, deadline=None)
@given(content=st.binary(max_size=600))
def test_arbitrary_bytes_never_crash_the_reader(content: bytes) -> None:
    with tempfile.TemporaryDirectory() as directory:
        path = write(Path(directory), content)
        with contextlib.suppress(FileRejected):
            read(path)


@settings(max_examples=60, deadline=None)
@given(body=st.lists(st.binary(max_size=120).filter(lambda raw: b"\n" not in raw), max_size=6))
def test_arbitrary_body_lines_are_each_parsed_or_quarantined(body: list[bytes]) -> None:
    with tempfile.TemporaryDirectory() as directory:
        path = write(Path(directory), join(byte_lines(body, count=2 + sum(1 for raw in body if raw.strip()))))
        _, parsed = read(path)
    # One parsed line (record, delete, unknown or quarantined) per non-blank line, never an exception.
    assert [number for number, _ in parsed] == [n for n, raw in enumerate(body, 2) if raw.strip()]
