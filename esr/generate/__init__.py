"""Seeded synthetic ESR Outbound v2 files: a full file, then daily change files (see `generate_files`)."""

from esr.generate.files import FileHeader, file_header, file_name, generate_files, write_esr_file
from esr.generate.records import DeleteRow, GeneratedLine, RecordRow, Row, format_line
from esr.generate.simulation import DEFAULT_START, TrustSimulation

__all__ = [
    "DEFAULT_START",
    "DeleteRow",
    "FileHeader",
    "GeneratedLine",
    "RecordRow",
    "Row",
    "TrustSimulation",
    "file_header",
    "file_name",
    "format_line",
    "generate_files",
    "write_esr_file",
]
