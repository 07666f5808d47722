"""File name, header (HDR) and trailer (TRL) of an ESR Outbound v2 file. Pure functions, no I/O."""

from __future__ import annotations

import datetime as dt
import enum
import re
from dataclasses import dataclass

from esr.format.layouts import DELIMITER, HEADER_CODE, HEADER_FIELD_COUNT, TRAILER_CODE, TRAILER_FIELD_COUNT
from esr.format.values import parse_date, parse_timestamp


class ExtractType(enum.Enum):
    FULL = "F"
    CHANGES = "C"


class RejectionCode(enum.IntEnum):
    """File-level rejection codes of the Assure consumer (format reference §4.6)."""

    NO_HEADER = 1
    NO_TRAILER = 2
    RECORD_COUNT = 3
    WRONG_FORMAT = 4
    BYTE_COUNT = 5
    VPD_NOT_FOUND = 6
    WRONG_SEQUENCE = 7
    FILE_NOT_AVAILABLE = 8


class FileRejected(Exception):
    def __init__(self, code: RejectionCode, message: str) -> None:
        super().__init__(f"{code.name}: {message}")
        self.code = code
        self.message = message


_FILE_NAME = re.compile(
    r"GO_(?P<vpd>[0-9A-Za-z]{3})_EXP_GO(?P<type>[FC])_(?P<date>[0-9]{8})_(?P<seq>[0-9]{8})\.DAT", re.ASCII
)


def _digits(text: str) -> bool:
    return text.isascii() and text.isdigit()  # str.isdigit alone accepts "²" and other scripts' digits


@dataclass(frozen=True, slots=True)
class FileName:
    name: str
    vpd: str
    extract_type: ExtractType
    extract_date: dt.date
    sequence: int


def parse_file_name(name: str) -> FileName:
    """`GO_<VPD>_EXP_GO{F|C}_<YYYYMMDD>_<NNNNNNNN>.DAT` (§1.2); anything else is WRONG_FORMAT."""
    match = _FILE_NAME.fullmatch(name)  # not match(): "$" would allow a trailing newline
    if match is None:
        raise FileRejected(
            RejectionCode.WRONG_FORMAT,
            f"file name {name!r} is not GO_<VPD>_EXP_GO<F|C>_<YYYYMMDD>_<8-digit sequence>.DAT",
        )
    try:
        extract_date = parse_date(match["date"])
    except ValueError as exc:
        raise FileRejected(RejectionCode.WRONG_FORMAT, f"file name {name!r}: extract date {exc}") from None
    if extract_date is None:
        raise FileRejected(RejectionCode.WRONG_FORMAT, f"file name {name!r} has no extract date")
    return FileName(name, match["vpd"], ExtractType(match["type"]), extract_date, int(match["seq"]))


@dataclass(frozen=True, slots=True)
class Header:
    file_name: str
    created_at: dt.datetime
    vpd: str
    previous_run_date: dt.datetime | None
    run_date: dt.datetime
    interface_version: str


def parse_header(line: str, file_name: FileName) -> Header:
    """Check the HDR line against the file it came in (§1.4)."""
    if not line.startswith(HEADER_CODE):
        raise FileRejected(RejectionCode.NO_HEADER, f"line 1 is not a {HEADER_CODE} record: {line[:40]!r}")
    if len(line) < 4 or line[3] != DELIMITER:
        raise FileRejected(
            RejectionCode.WRONG_FORMAT, f"line 1: the field delimiter is not '{DELIMITER}' (wrong delimiter)"
        )
    fields = line.split(DELIMITER)
    if len(fields) < HEADER_FIELD_COUNT:
        raise FileRejected(
            RejectionCode.NO_HEADER,
            f"line 1: {HEADER_CODE} needs {HEADER_FIELD_COUNT} fields, it has {len(fields)}",
        )
    name, created, vpd, previous, run, version = fields[1:HEADER_FIELD_COUNT]
    if name.upper() != file_name.name.upper():
        raise FileRejected(
            RejectionCode.WRONG_FORMAT, f"line 1 field file_name: header names {name!r}, the file is {file_name.name!r}"
        )
    if vpd != file_name.vpd:
        raise FileRejected(
            RejectionCode.WRONG_FORMAT,
            f"line 1 field vpd: header VPD {vpd!r} differs from file name VPD {file_name.vpd!r}",
        )
    try:
        created_at = _required_timestamp(created, "file creation timestamp")
        previous_run_date = _optional_timestamp(previous, "previous run date")
        run_date = _required_timestamp(run, "run date")
    except ValueError as exc:
        raise FileRejected(RejectionCode.WRONG_FORMAT, f"line 1: {exc}") from None
    if len(version) != 2 or not _digits(version):
        raise FileRejected(
            RejectionCode.WRONG_FORMAT, f"line 1 field interface_version: {version!r} is not a 2-digit version"
        )
    return Header(name, created_at, vpd, previous_run_date, run_date, version)


def _optional_timestamp(text: str, what: str) -> dt.datetime | None:
    try:
        return parse_timestamp(text)
    except ValueError as exc:
        raise ValueError(f"field {what}: {exc}") from None


def _required_timestamp(text: str, what: str) -> dt.datetime:
    value = _optional_timestamp(text, what)
    if value is None:
        raise ValueError(f"field {what} is empty")
    return value


def parse_trailer(line: str, line_no: int) -> int:
    """The TRL count (§1.5): exactly `TRL~<count>`."""
    fields = line.split(DELIMITER)
    if fields[0] != TRAILER_CODE:
        raise FileRejected(
            RejectionCode.NO_TRAILER, f"last line (line {line_no}) is not a {TRAILER_CODE} record: {line[:40]!r}"
        )
    if len(fields) != TRAILER_FIELD_COUNT or not _digits(fields[1].strip()):
        raise FileRejected(
            RejectionCode.NO_TRAILER, f"line {line_no}: invalid trailer {line[:40]!r} (expected TRL~<count>)"
        )
    return int(fields[1])


def check_record_count(declared: int, total_lines: int, strict: bool = True) -> str | None:
    """Q2: the consumer counts every non-blank line including HDR and TRL; data lines only is also seen.

    Returns a warning for the accepted "data lines" form, raises RECORD_COUNT otherwise (unless not strict).
    """
    if declared == total_lines:
        return None
    if declared == total_lines - 2:
        return f"trailer count {declared} counts data lines only (the file has {total_lines} lines in all)"
    message = (
        f"trailer count {declared} matches neither the {total_lines} lines of the file "
        f"nor its {total_lines - 2} data lines"
    )
    if strict:
        raise FileRejected(RejectionCode.RECORD_COUNT, message)
    return message
