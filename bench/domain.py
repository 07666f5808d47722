"""Cost of the stream processor's pure domain logic per record, without Kafka or Faust.

    .venv/bin/python -m bench.domain [--employees 5000] [--days 5] [--batch 2000]

Generates a full file and change files, turns them into decoded record events (as the employees agent
receives them), groups each batch of `--batch` records by key as the shell does, and times
`apply_employee_batch` alone, then with the state's `decode_state` / `encode_state` around it (one of each
per key per batch, as a table read and write). Times are CPU times of this process (the figure is what
one core spends, whatever else the machine runs).

Garbage collection matters here: a table holding tens of thousands of decoded states as Python objects
makes every full collection walk all of them (about 7 µs a record more in the first run below on 3,000
employees, growing with the table); a table of encoded bytes does not. The first line is measured with the
collector off to show the domain logic alone; the second keeps it on, with a table of bytes.
"""

from __future__ import annotations

import argparse
import gc
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from esr.codec.events import Provenance, record_event
from esr.codec.serde import Decoder, Encoder
from esr.format.lines import Delete, Record
from esr.format.reader import EsrFile
from esr.generate import generate_files
from streams.domain import (
    EmployeeState,
    InputRecord,
    NoReference,
    apply_employee_batch,
    decode_state,
    encode_state,
)


def file_events(paths: list[Path]) -> Iterator[dict[str, Any]]:
    """Every record of the files as the worker receives it (a decoded record event), in file order; a child
    row's delete carries its person id from the records seen so far, as the ingest job resolves it."""
    encoder, decoder = Encoder("record-event"), Decoder("record-event")
    owners: dict[tuple[str, str], str] = {}
    for path in paths:
        with EsrFile(path) as esr_file:
            provenance = Provenance.from_scan(esr_file.open())
            for line_no, line in esr_file.records():
                assert isinstance(line, Record | Delete)
                person_id = None
                if isinstance(line, Record):
                    if line.person_id is not None:
                        owners[line.layout.entity.value, line.entity_id] = line.person_id
                elif line.layout.entity.value == "PERSON":
                    person_id = line.entity_id
                elif line.layout.person_scoped:
                    person_id = owners[line.layout.entity.value, line.entity_id]
                yield decoder.decode(encoder.encode(record_event(line, provenance, line_no, person_id)))


def record_events(paths: list[Path]) -> list[dict[str, Any]]:
    """The person-scoped record events of the files (`file_events`)."""
    return [event for event in file_events(paths) if event["person_id"] is not None]


def batches(events: list[dict[str, Any]], size: int) -> list[dict[str, list[InputRecord]]]:
    out = []
    for start in range(0, len(events), size):
        grouped: dict[str, list[InputRecord]] = defaultdict(list)
        for offset, event in enumerate(events[start:start + size], start):
            grouped[f"{event['vpd']}:{event['person_id']}"].append(InputRecord(event, "esr.records", 0, offset))
        out.append(grouped)
    return out


def run(grouped: list[dict[str, list[InputRecord]]], *, encoded: bool) -> tuple[float, int, int]:
    """Process every batch; (CPU seconds, events emitted, bytes in the table at the end)."""
    reference = NoReference()
    table: dict[str, Any] = {}
    events = 0
    size = 0
    gc.collect()
    collecting = gc.isenabled()
    if not encoded:
        gc.disable()
    started = time.process_time()
    for batch in grouped:
        for key, records in batch.items():
            value = table.get(key)
            state: EmployeeState | None = decode_state(value) if encoded and value is not None else value
            outcome = apply_employee_batch(state, records, reference, now_ms=1)
            events += len(outcome.changes)
            if encoded:
                table[key] = None if outcome.state is None else encode_state(outcome.state)
            else:
                table[key] = outcome.state
    elapsed = time.process_time() - started
    if collecting:
        gc.enable()
    if encoded:
        size = sum(len(v) for v in table.values() if v is not None)
    return elapsed, events, size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--employees", type=int, default=5000)
    parser.add_argument("--days", type=int, default=5)
    parser.add_argument("--batch", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        events = record_events(generate_files("999", args.employees, args.days, args.seed, Path(tmp)))
    grouped = batches(events, args.batch)
    keys = sum(len(batch) for batch in grouped)
    print(f"{len(events)} person-scoped records, {keys} (key, batch) calls, batches of {args.batch}")
    for encoded in (False, True):
        elapsed, emitted, size = min((run(grouped, encoded=encoded) for _ in range(3)), key=lambda r: r[0])
        what = "apply + decode/encode state" if encoded else "apply_employee_batch (no GC)"
        table = f", table {size / 1e6:.1f} MB" if encoded else ""
        print(f"{what:28}: {elapsed / len(events) * 1e6:6.1f} µs/record  {len(events) / elapsed:9.0f} records/s  "
              f"{emitted} events{table}")


if __name__ == "__main__":
    main()
