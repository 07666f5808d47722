"""Read generated files back through the real reader, insisting that every line is clean."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from esr.format.header import Header
from esr.format.lines import Delete, Record
from esr.format.reader import EsrFile


@dataclass(frozen=True)
class ParsedFile:
    path: Path
    header: Header
    line_count: int
    trailer_count: int
    lines: list[Record | Delete]


def read_clean(path: Path) -> ParsedFile:
    """Open `path` with `EsrFile`: no warnings, and every data line a Record or Delete without issues."""
    with EsrFile(path) as esr_file:
        scan = esr_file.open()
        assert scan.warnings == [], scan.warnings
        assert scan.trailer_count is not None
        lines: list[Record | Delete] = []
        for number, parsed in esr_file.records():
            assert isinstance(parsed, Record | Delete), f"{path.name} line {number}: {parsed}"
            assert parsed.issues == [], f"{path.name} line {number}: {[str(i) for i in parsed.issues]}"
            assert parsed.extra_fields == [], f"{path.name} line {number}: extra fields"
            lines.append(parsed)
        return ParsedFile(path, esr_file.header, scan.line_count, scan.trailer_count, lines)
