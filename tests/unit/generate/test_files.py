"""The generated files on disk: names, header, trailer, encoding, determinism, and a clean read back."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import pytest

from esr.format.header import ExtractType, parse_file_name
from esr.format.layouts import PERSON
from esr.format.lines import Record
from esr.generate import generate_files
from tests.unit.generate.parsed import ParsedFile, read_clean

START = dt.date(2026, 1, 5)


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    return generate_files("431", 400, 4, 20260105, tmp_path_factory.mktemp("esr"), first_sequence=41)


@pytest.fixture(scope="module")
def parsed(files: list[Path]) -> list[ParsedFile]:
    return [read_clean(path) for path in files]


def test_same_arguments_give_byte_identical_files(tmp_path: Path) -> None:
    first = generate_files("999", 60, 3, 7, tmp_path / "a")
    second = generate_files("999", 60, 3, 7, tmp_path / "b")
    assert [path.name for path in first] == [path.name for path in second]
    assert [path.read_bytes() for path in first] == [path.read_bytes() for path in second]
    other_seed = generate_files("999", 60, 3, 8, tmp_path / "c")
    assert first[0].read_bytes() != other_seed[0].read_bytes()


def test_files_do_not_depend_on_string_hashing(tmp_path: Path) -> None:
    """Another interpreter with another PYTHONHASHSEED writes the same bytes (no set-order leaks)."""
    here = generate_files("999", 60, 2, 7, tmp_path / "here")
    script = "import pathlib, sys; from esr.generate import generate_files; " \
             "generate_files('999', 60, 2, 7, pathlib.Path(sys.argv[1]))"
    subprocess.run([sys.executable, "-c", script, str(tmp_path / "there")], check=True,
                   env={**os.environ, "PYTHONHASHSEED": "12345"})
    assert [(tmp_path / "there" / path.name).read_bytes() for path in here] == [path.read_bytes() for path in here]


def test_a_full_file_then_one_change_file_a_day_with_consecutive_sequences(files: list[Path]) -> None:
    assert [path.name for path in files] == [
        "GO_431_EXP_GOF_20260105_00000041.DAT",
        "GO_431_EXP_GOC_20260106_00000042.DAT",
        "GO_431_EXP_GOC_20260107_00000043.DAT",
        "GO_431_EXP_GOC_20260108_00000044.DAT",
        "GO_431_EXP_GOC_20260109_00000045.DAT",
    ]
    names = [parse_file_name(path.name) for path in files]
    assert [name.extract_type for name in names] == [ExtractType.FULL] + [ExtractType.CHANGES] * 4
    assert [name.sequence for name in names] == list(range(41, 46))


def test_headers_carry_the_run_window(parsed: list[ParsedFile]) -> None:
    full, *changes = parsed
    assert full.header.file_name == full.path.name
    assert full.header.vpd == "431"
    assert full.header.previous_run_date is None  # written as 00000000 000000
    assert full.header.run_date == dt.datetime(2026, 1, 5)
    assert full.header.interface_version == "01"
    assert full.path.read_bytes().split(b"~")[4] == b"00000000 000000"
    for day, change in enumerate(changes, start=1):
        run = dt.datetime(2026, 1, 5 + day)
        assert change.header.run_date == run
        assert change.header.previous_run_date == run - dt.timedelta(days=1)
        assert run + dt.timedelta(hours=7) <= change.header.created_at < run + dt.timedelta(hours=8)


def test_the_trailer_counts_every_line_including_header_and_trailer(files: list[Path],
                                                                     parsed: list[ParsedFile]) -> None:
    for path, result in zip(files, parsed, strict=True):
        physical_lines = path.read_bytes().split(b"\n")
        assert physical_lines[-1] == b""  # the last line ends with LF too
        assert result.trailer_count == result.line_count == len(physical_lines) - 1 == len(result.lines) + 2
        assert physical_lines[-2] == f"TRL~{result.trailer_count}".encode()


def test_files_are_windows_1252_with_lf_endings_and_hold_accented_names(files: list[Path],
                                                                          parsed: list[ParsedFile]) -> None:
    raw = files[0].read_bytes()
    assert b"\r" not in raw
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")  # it is not UTF-8...
    raw.decode("cp1252")  # ...it is Windows-1252
    accented = [
        name
        for line in parsed[0].lines
        if isinstance(line, Record) and line.layout is PERSON
        for name in (line.values["first_name"], line.values["last_name"])
        if isinstance(name, str) and not name.isascii()
    ]
    assert 4 <= len(accented) <= 30  # a minority: ~3% of 400 people
    for name in accented:
        assert name.encode("cp1252") in raw


def test_files_open_cleanly_and_every_line_parses_without_issues(parsed: list[ParsedFile]) -> None:
    # read_clean has asserted it line by line; check something was read from every file
    assert all(result.lines for result in parsed)
    assert len(parsed[0].lines) > 400 * 5


@pytest.mark.parametrize(
    ("vpd", "employees", "days", "first_sequence", "message"),
    [
        ("99", 10, 0, 1, "VPD"),
        ("9~9", 10, 0, 1, "VPD"),
        ("999", 0, 0, 1, "employees"),
        ("999", 10, -1, 1, "days"),
        ("999", 10, 0, 0, "8 digits"),
        ("999", 10, 1, 99_999_999, "8 digits"),
    ],
)
def test_bad_arguments_are_refused(tmp_path: Path, vpd: str, employees: int, days: int, first_sequence: int,
                                   message: str) -> None:
    with pytest.raises(ValueError, match=message):
        generate_files(vpd, employees, days, 1, tmp_path, first_sequence=first_sequence)
