"""Build ESR files byte by byte for the reader tests and the malformed-file corpus."""

from __future__ import annotations

from pathlib import Path

import pytest

from esr.format.header import FileRejected, RejectionCode
from esr.format.lines import ParsedLine
from esr.format.reader import DEFAULT_MAX_LINE_BYTES, EsrFile, FileScan

SAMPLE = Path(__file__).parents[2] / "data" / "GO_999_EXP_GOC_20240301_00000042.DAT"
NAME = SAMPLE.name
SAMPLE_LINES: list[str] = SAMPLE.read_text(encoding="ascii").splitlines()
HEADER: str = SAMPLE_LINES[0]
BODY: list[str] = SAMPLE_LINES[1:-1]  # LCA ORA POA PRA ASA PHA ADA VHA COA ASD


def file_bytes(
    body: list[str] | None = None,
    *,
    header: str = HEADER,
    count: int | None = None,
    newline: str = "\n",
    final_newline: bool = True,
    encoding: str = "cp1252",
) -> bytes:
    """HDR, body, `TRL~<count>` (all lines by default) as bytes."""
    lines = [header, *(BODY if body is None else body)]
    lines.append(f"TRL~{len(lines) + 1 if count is None else count}")
    text = newline.join(lines) + (newline if final_newline else "")
    return text.encode(encoding)


def join(lines: list[bytes], newline: bytes = b"\n") -> bytes:
    """Raw lines (any bytes) into a file, each ended by `newline`."""
    return b"".join(line + newline for line in lines)


def byte_lines(body: list[bytes], *, count: int | None = None) -> list[bytes]:
    """HDR, raw body lines and a TRL counting all of them."""
    total = len(body) + 2 if count is None else count
    return [HEADER.encode(), *body, f"TRL~{total}".encode()]


def write(directory: Path, content: bytes, name: str = NAME) -> Path:
    path = directory / name
    path.write_bytes(content)
    return path


Parsed = list[tuple[int, ParsedLine]]


def read(
    path: Path, *, strict_count: bool = True, max_line_bytes: int = DEFAULT_MAX_LINE_BYTES
) -> tuple[FileScan, Parsed]:
    """Open, check and parse a whole file: its scan and (line number, parsed line) for every data line."""
    with EsrFile(path, strict_count=strict_count, max_line_bytes=max_line_bytes) as esr:
        scan = esr.open()
        return scan, list(esr.records())


def rejection(path: Path, *, max_line_bytes: int = DEFAULT_MAX_LINE_BYTES) -> FileRejected:
    """The FileRejected that open() (or reading the records) raises for `path`."""
    with EsrFile(path, max_line_bytes=max_line_bytes) as esr:
        try:
            esr.open()
            for _ in esr.records():
                pass
        except FileRejected as rejected:
            return rejected
    pytest.fail(f"{path.name} was accepted")


def assert_rejected(path: Path, code: RejectionCode, *fragments: str) -> FileRejected:
    """`path` is rejected with `code`, and the message holds every fragment."""
    rejected = rejection(path)
    assert rejected.code is code, rejected
    for fragment in fragments:
        assert fragment in rejected.message, rejected
    return rejected
