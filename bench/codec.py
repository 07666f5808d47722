"""Codec throughput on one core: build + encode and decode of Person and Assignment record events.

    python -m bench.codec [--count 50000] [--repeat 3]

Records are ESR lines made from generated-like values (most fields filled, some blank) and parsed by the
format layer, so their values are exactly what the ingest job hands to the codec. Best of `--repeat`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import time
from collections.abc import Callable, Iterable
from decimal import Decimal

from esr.codec.events import Provenance, RecordEvent, record_event
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
        start = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - start)
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


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.codec", description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    encoder, decoder = Encoder("record-event"), Decoder("record-event")
    print(f"record-event, events/s on one core, best of {args.repeat} x {args.count:,}")
    print(f"{'':<24}{'build':>11}{'encode':>11}{'build+enc':>11}{'decode':>11}{'bytes':>7}")
    for layout in (PERSON, ASSIGNMENT):
        print(measure(layout, encoder, decoder, args.count, args.repeat))


if __name__ == "__main__":
    main()
