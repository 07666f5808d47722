"""ESR files on disk: names (§1.2), HDR (§1.4), data lines, TRL (§1.5), in Windows-1252 with LF endings."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from esr.format.layouts import DELIMITER, HEADER_CODE, TRAILER_CODE
from esr.format.values import format_value
from esr.generate.records import GeneratedLine, format_line
from esr.generate.simulation import DEFAULT_START, TrustSimulation
from esr.generate.trust import seeded_rng

ENCODING = "cp1252"
INTERFACE_VERSION = "01"
NO_PREVIOUS_RUN = "00000000 000000"  # a full file's previous run date (S2)
MAX_SEQUENCE = 99_999_999
_WRITE_BATCH = 4096


def file_name(vpd: str, full: bool, date: dt.date, sequence: int) -> str:
    return f"GO_{vpd}_EXP_GO{'F' if full else 'C'}_{date:%Y%m%d}_{sequence:08d}.DAT"


@dataclass(frozen=True, slots=True)
class FileHeader:
    file_name: str
    created_at: dt.datetime
    vpd: str
    previous_run: dt.datetime | None  # None for a full file
    run: dt.datetime

    def line(self) -> str:
        previous = NO_PREVIOUS_RUN if self.previous_run is None else format_value(self.previous_run)
        return DELIMITER.join((HEADER_CODE, self.file_name, format_value(self.created_at), self.vpd, previous,
                               format_value(self.run), INTERFACE_VERSION))


def file_header(vpd: str, seed: int, full: bool, date: dt.date, sequence: int) -> FileHeader:
    """A daily extract covering the previous midnight to this one, created a little after 07:00 (§4.2)."""
    rng = seeded_rng(seed, vpd, "created", date)
    midnight = dt.datetime(date.year, date.month, date.day)
    created = midnight + dt.timedelta(hours=7, minutes=rng.randint(10, 29), seconds=rng.randrange(60))
    previous = None if full else midnight - dt.timedelta(days=1)
    return FileHeader(file_name(vpd, full, date, sequence), created, vpd, previous, midnight)


def write_esr_file(directory: Path, header: FileHeader, lines: Iterable[GeneratedLine]) -> Path:
    """Stream `lines` into `directory/<header.file_name>`; the trailer counts every line, HDR and TRL too (Q2)."""
    path = directory / header.file_name
    count = 1
    with path.open("w", encoding=ENCODING, newline="\n") as out:
        out.write(header.line() + "\n")
        batch: list[str] = []
        for line in lines:
            batch.append(format_line(line))
            if len(batch) == _WRITE_BATCH:
                out.write("\n".join(batch) + "\n")
                count += len(batch)
                batch.clear()
        if batch:
            out.write("\n".join(batch) + "\n")
            count += len(batch)
        out.write(f"{TRAILER_CODE}{DELIMITER}{count + 1}\n")
    return path


def generate_files(vpd: str, employees: int, days: int, seed: int, out_dir: Path, *,
                   start: dt.date = DEFAULT_START, first_sequence: int = 1) -> list[Path]:
    """A full file for `start`, then `days` daily change files; the sequence goes up by one per file.

    The same arguments always give byte-identical files.
    """
    if days < 0:
        raise ValueError(f"days must not be negative, not {days}")
    if not 0 < first_sequence <= MAX_SEQUENCE - days:
        raise ValueError(f"sequences {first_sequence}..{first_sequence + days} do not fit in 8 digits")
    simulation = TrustSimulation(vpd, employees, seed, start)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [write_esr_file(out_dir, file_header(vpd, seed, True, start, first_sequence),
                            simulation.full_file_records())]
    for day in range(1, days + 1):
        header = file_header(vpd, seed, False, simulation.file_date(day), first_sequence + day)
        paths.append(write_esr_file(out_dir, header, simulation.change_file_records(day)))
    return paths
