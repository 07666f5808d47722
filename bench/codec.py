"""Codec throughput on one core: build + encode and decode of Person and Assignment record events, then
the three hot paths of the pipeline with the native codec and with the pure-Python one (`esr.codec.native`).

    python -m bench.codec [--count 50000] [--repeat 3] [--employees 1000]

Records are ESR lines made from generated-like values (most fields filled, some blank) and parsed by the
format layer, so their values are exactly what the ingest job hands to the codec. Change events are what
the stream domain makes of a generated full file of `--employees` employees. CPU time, best of `--repeat`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import tempfile
import time
from collections.abc import Callable, Iterable
from decimal import Decimal
from pathlib import Path
from typing import Any

from connectors.sink.fastread import FastChangeReader
from esr.codec import native
from esr.codec.events import PAYLOAD_TYPES, Provenance, RecordEvent, record_event
from esr.codec.serde import Decoder, Encoder
from esr.format.header import ExtractType
from esr.format.layouts import ASSIGNMENT, PERSON, Field, FieldType, Layout
from esr.format.lines import Record, format_record, parse_fields
from esr.format.values import Value

PROVENANCE = Provenance(
    vpd="999",
    file_name="GO_999_EXP_GOF_20240301_00000001.DAT",
    file_sha256="ab" * 32,
    sequence=1,
    extract_type=ExtractType.FULL,
    extract_date=dt.date(2024, 3, 1),
    run_date=dt.datetime(2024, 3, 1),
    previous_run_date=dt.datetime(2024, 2, 29),
)
_WORDS = ["Jones", "Smith", "Nurse", "Ward 7", "Band 5", "Full Time", "Active Assignment", "Employee", "Y", "N"]


def _value(f: Field, i: int, rng: random.Random, key: str) -> Value:
    if f.type is FieldType.ID:
        return str(600000 + i) if f.name in (key, "person_id") else str(rng.randrange(10**6, 10**7))
    if not f.mandatory and rng.random() < 0.3:
        return None
    match f.type:
        case FieldType.DATE:
            return dt.date(2000, 1, 1) + dt.timedelta(days=rng.randrange(9000))
        case FieldType.TIMESTAMP:
            return dt.datetime(2024, 2, 29, 10, 10, rng.randrange(60))
        case FieldType.INT:
            return rng.randrange(10**6)
        case FieldType.DECIMAL:
            return Decimal(rng.randrange(10**4)).scaleb(-f.scale) if f.scale else Decimal(rng.randrange(10**4))
        case _:
            text = rng.choice(_WORDS)
            return text[: f.max_length] if f.max_length else text


def records(layout: Layout, count: int, seed: int = 1) -> list[Record]:
    rng = random.Random(seed)
    result = []
    for i in range(count):
        values = {f.name: _value(f, i, rng, layout.key_field) for f in layout.data_fields}
        parsed = parse_fields(format_record(layout, values).split("~"))
        assert isinstance(parsed, Record), parsed
        result.append(parsed)
    return result


def best_rate(work: Callable[[], object], count: int, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.process_time()
        work()
        best = min(best, time.process_time() - start)
    return count / best


def _consume(items: Iterable[object]) -> None:
    for _ in items:
        pass


def measure(layout: Layout, encoder: Encoder, decoder: Decoder, count: int, repeat: int) -> str:
    recs = records(layout, count)
    now = dt.datetime.now(dt.UTC)
    events: list[RecordEvent] = [record_event(r, PROVENANCE, n, ingested_at=now) for n, r in enumerate(recs, 2)]
    frames = [encoder.encode(e) for e in events]
    encode = encoder.encode

    def build() -> None:
        _consume(record_event(r, PROVENANCE, n, ingested_at=now) for n, r in enumerate(recs, 2))

    def build_encode() -> None:
        _consume(encode(record_event(r, PROVENANCE, n, ingested_at=now)) for n, r in enumerate(recs, 2))

    rates = [
        best_rate(build, count, repeat),
        best_rate(lambda: _consume(map(encode, events)), count, repeat),
        best_rate(build_encode, count, repeat),
        best_rate(lambda: _consume(map(decoder.decode, frames)), count, repeat),
    ]
    name = f"{layout.avro_name} ({len(layout.data_fields)} fields)"
    size = sum(map(len, frames)) // len(frames)
    return f"{name:<24}" + "".join(f"{rate:>11,.0f}" for rate in rates) + f"{size:>7}"


def change_events(employees: int) -> list[dict[str, Any]]:
    """The change events of a generated full file, as the stream domain makes them."""
    from bench.domain import batches, record_events
    from esr.generate import generate_files
    from streams.domain import NoReference, apply_employee_batch

    with tempfile.TemporaryDirectory() as tmp:
        events = record_events(generate_files("999", employees, 0, 1, Path(tmp)))
    changes: list[dict[str, Any]] = []
    for batch in batches(events, 2000):
        for records_of_one in batch.values():
            changes += apply_employee_batch(None, records_of_one, NoReference(), now_ms=1).changes
    return changes


def micros(work: Callable[[Any], object], items: list[Any], repeat: int) -> float:
    """CPU µs per item of `work`, best of `repeat`."""
    return 1e6 / best_rate(lambda: _consume(map(work, items)), len(items), repeat)


def hot_paths(count: int, repeat: int, employees: int) -> None:
    """The worker's record-event decoding (text records) and change-event encoding, and the sink's
    change-event reading, natively and in Python: µs of CPU an event."""
    now = dt.datetime.now(dt.UTC)
    persons = [record_event(r, PROVENANCE, n, ingested_at=now) for n, r in enumerate(records(PERSON, count), 2)]
    changes = change_events(employees)
    rows: dict[str, list[float]] = {}
    previous = os.environ.get(native.ENVIRONMENT_VARIABLE)
    for use_native in (True, False):  # read when the Encoders and Decoders compile their schemas
        os.environ[native.ENVIRONMENT_VARIABLE] = "1" if use_native else "0"
        frames = list(map(Encoder("record-event").encode, persons))
        records_decoder = Decoder("record-event", text_records=PAYLOAD_TYPES)
        encode_change = Encoder("change-event").encode
        encoded = list(map(encode_change, changes))
        paths: list[tuple[str, Callable[[Any], object], list[Any]]] = [
            ("worker: decode record-event (Person, text)", records_decoder.decode, frames),
            ("worker: encode change-event", encode_change, changes),
            ("sink: FastChangeReader.decode", FastChangeReader().decode, encoded),
            ("generic: decode change-event", Decoder("change-event").decode, encoded),
        ]
        for name, work, items in paths:
            rows.setdefault(name, []).append(micros(work, items, repeat))
    if previous is None:
        del os.environ[native.ENVIRONMENT_VARIABLE]
    else:
        os.environ[native.ENVIRONMENT_VARIABLE] = previous
    print(f"\nhot paths, µs of CPU an event ({len(persons):,} Person events, {len(changes):,} change events)")
    print(f"{'':<44}{'native':>9}{'Python':>9}{'speed-up':>10}")
    for name, (fast, slow) in rows.items():
        print(f"{name:<44}{fast:>9.2f}{slow:>9.2f}{slow / fast:>9.1f}x")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.codec", description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--employees", type=int, default=1000, help="of the file whose change events are timed")
    args = parser.parse_args(argv)
    encoder, decoder = Encoder("record-event"), Decoder("record-event")
    print(f"record-event, events/s on one core ({'native' if native.enabled() else 'pure-Python'} codec), "
          f"best of {args.repeat} x {args.count:,}")
    print(f"{'':<24}{'build':>11}{'encode':>11}{'build+enc':>11}{'decode':>11}{'bytes':>7}")
    for layout in (PERSON, ASSIGNMENT):
        print(measure(layout, encoder, decoder, args.count, args.repeat))
    if native.module is not None:
        hot_paths(args.count, args.repeat, args.employees)


if __name__ == "__main__":
    main()
