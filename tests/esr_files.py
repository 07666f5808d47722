"""Build small ESR files for tests: header and trailer computed, body lines given."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

SAMPLE = Path(__file__).parent / "data" / "GO_999_EXP_GOC_20240301_00000042.DAT"


def file_name(vpd: str, sequence: int, extract: str = "C", date: dt.date = dt.date(2024, 3, 1)) -> str:
    return f"GO_{vpd}_EXP_GO{extract}_{date:%Y%m%d}_{sequence:08d}.DAT"


def write_esr_file(
    directory: Path,
    body: list[str],
    *,
    vpd: str = "999",
    sequence: int = 1,
    extract: str = "C",
    date: dt.date = dt.date(2024, 3, 1),
    trailer_count: int | None = None,
    newline: str = "\n",
    encoding: str = "cp1252",
) -> Path:
    name = file_name(vpd, sequence, extract, date)
    previous = date - dt.timedelta(days=1)
    header = f"HDR~{name}~{date:%Y%m%d} 071503~{vpd}~{previous:%Y%m%d} 000000~{date:%Y%m%d} 000000~01"
    count = len(body) + 2 if trailer_count is None else trailer_count
    lines = [header, *body, f"TRL~{count}"]
    path = directory / name
    path.write_bytes((newline.join(lines) + newline).encode(encoding))
    return path


def sample_body() -> list[str]:
    """The data lines of the format reference's §6 example."""
    lines = SAMPLE.read_text(encoding="cp1252").splitlines()
    return lines[1:-1]
