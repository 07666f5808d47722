"""CPU cost of the mapping stage (and of the employee sink) per employee, without Kafka.

    .venv/bin/python -m bench.mapping [--employees 20000] [--partitions 6] [--poll 2000] [--fetch 400]
                                      [--repeat 3] [--seed 1] [--gc on|off|A,B,C] [--database] [--profile]

1. Generates a full file (`esr.generate`) and drives the pure domain over it as the worker does (records in
   file order, `--batch` records a batch, one `apply_employee_batch` per key and batch), keeping what the
   worker publishes: each key's snapshot after each batch on `esr.employees` (`DomainPort.employee_value`:
   the exact bytes) and each reference entity's state in every partition's replica
   (`esr.streams.references-changelog`, key ``<vpd>:<TYPE>:<id>@<partition>``).
2. Feeds those messages to the stage's own code (`StageReader.apply_batch`, `MappingDirectory.drain`) as its
   consumer would see them: the reference replicas first (they lead the file), then `esr.employees`, the
   partitions of each interleaved in fetches of `--fetch` messages, in polls of `--poll` messages; after each
   poll the directory is drained, as `MappingStage.step` does once bootstrapped.
3. Times, in CPU seconds of this process, per part:

   decode   applying the poll's messages to the directory (JSON snapshots -> rows, reference states);
   map      `drain`: mapping the dirty employees and building the mapped change events;
   encode   the events as Avro (`Encoder("mapped-change-event")`), what the stage produces;
   sink     the employee sink's side: decoding each event and planning its row (`employee_row`);
   write    (`--database`) the sink's `write_rows`, batches of its size in a transaction each, into a fresh
            scratch database (ESR_DATABASE_URL, else the embedded server): this process's CPU and its
            PostgreSQL backend's (from /proc: the server must run on this machine).

Each part is given in µs per employee of the file, best of `--repeat` runs. The collector is on at Python's
thresholds, as the stage runs today: its full collections walk the whole directory, and land in whichever
part allocates when they fall due (mostly decode and map). `--gc off` shows the code alone, `--gc 50000,20,100`
the worker's tuning (`streams.worker.tune_gc`). `--profile` runs decode + map + encode once more under cProfile.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import os
import pstats
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from confluent_kafka import Message

from bench.domain import file_events
from bench.sink import _admin_url, _database, _drop
from connectors.sink.employee import BATCH_SIZE, employee_row, write_rows
from esr.codec import Decoder, Encoder
from esr.generate import generate_files
from esr.kafka.topics import EMPLOYEES
from streams.domain import NoReference
from streams.mapping import REFERENCE_TYPES
from streams.mapping_stage import MAPPED_SUBJECT, StageReader, new_directory
from streams.partitioner import partition_for
from streams.port import DomainPort, load_domain
from streams.topics import REFERENCES_CHANGELOG

VPD = "999"


def _key(event: dict[str, Any]) -> str:
    if event["entity_type"] in REFERENCE_TYPES:
        return f"{event['vpd']}:{event['entity_type']}:{event['entity_id']}"
    return f"{event['vpd']}:{event['person_id']}"


Partitions = list[list[tuple[bytes, bytes | None]]]  # per partition, its (key, value) messages in order


def worker_output(events: list[dict[str, Any]], domain: DomainPort, *, partitions: int, batch: int
                  ) -> tuple[Partitions, Partitions]:
    """(reference replica changelog, esr.employees), per partition: what the worker publishes."""
    reference = NoReference()
    states: dict[str, Any] = {}
    employees: Partitions = [[] for _ in range(partitions)]
    offset = 0
    for start in range(0, len(events), batch):
        grouped: dict[str, list[Any]] = defaultdict(list)
        for event in events[start:start + batch]:
            grouped[_key(event)].append(domain.input_record(event, "esr.records", 0, offset))
            offset += 1
        for key, records in grouped.items():
            if records[0].event["entity_type"] in REFERENCE_TYPES:
                outcome = domain.apply_reference_batch(states.get(key), records, now_ms=1)
                states[key] = outcome.state
                continue
            outcome = domain.apply_employee_batch(states.get(key), records, reference, now_ms=1)
            states[key] = outcome.state
            value = None if outcome.state is None else domain.employee_value(outcome.state)
            employees[partition_for(key.encode(), partitions)].append((key.encode(), value))
    references: Partitions = [[(f"{key}@{partition}".encode(), domain.encode_reference_state(state))
                   for key, state in states.items() if state is not None and key.count(":") == 2]
                  for partition in range(partitions)]
    return references, employees


def _fetched(topic: str, partitions: Partitions, fetch: int) -> Iterator[Message]:
    """The messages of a topic's partitions as a consumer gets them: `fetch` of each partition in turn."""
    for start in range(0, max(map(len, partitions)), fetch):
        for partition, messages in enumerate(partitions):
            for offset in range(start, min(start + fetch, len(messages))):
                key, value = messages[offset]
                yield Message(topic=topic, partition=partition, offset=offset, key=key, value=value)


def stage_polls(references: Partitions, employees: Partitions, *, poll: int, fetch: int) -> list[list[Message]]:
    """The messages in the order the stage's consumer hands them over (the reference replicas, which lead
    the file, first), cut into polls."""
    stream = [*_fetched(REFERENCES_CHANGELOG, references, fetch), *_fetched(EMPLOYEES, employees, fetch)]
    return [stream[start:start + poll] for start in range(0, len(stream), poll)]


@dataclass
class Run:
    """CPU seconds per part of one run, and what it did."""

    decode: float = 0.0
    map: float = 0.0
    encode: float = 0.0
    sink: float = 0.0
    events: int = 0
    values: list[bytes] = field(default_factory=list)


def run(polls: list[list[Message]], domain: DomainPort, *, sink: bool = True) -> Run:
    """The stage over the polls (module doc), with the sink's decoding and planning unless `sink` is false."""
    directory = new_directory()
    reader = StageReader(directory, domain)
    encoder, decoder = Encoder(MAPPED_SUBJECT), Decoder(MAPPED_SUBJECT)
    clock = time.process_time
    result = Run()
    gc.collect()
    for number, messages in enumerate(polls):
        started = clock()
        reader.apply_batch(messages)
        decoded = clock()
        events = directory.drain(number) if directory.pending else []
        mapped = clock()
        values = [encoder.encode(event) for event in events]
        encoded = clock()
        if sink:
            for value in values:
                employee_row(decoder.decode(value))
        planned = clock()
        result.decode += decoded - started
        result.map += mapped - decoded
        result.encode += encoded - mapped
        result.sink += planned - encoded
        result.events += len(events)
        result.values.extend(values)
    assert reader.skipped == 0, f"{reader.skipped} messages skipped"
    return result


def _backend_cpu(pid: int) -> float:
    """CPU seconds (user + system) of a PostgreSQL backend so far, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def write(admin_url: str, values: list[bytes], batch: int) -> tuple[float, float, int]:
    """The employee sink's writes of the events into a fresh scratch database, `batch` events a transaction
    (decoded and planned as the sink does, not timed): (client CPU s, backend CPU s, rows)."""
    decoder = Decoder(MAPPED_SUBJECT)
    batches = [[employee_row(decoder.decode(value)) for value in values[start:start + batch]]
               for start in range(0, len(values), batch)]
    name = f"esr_bench_mapping_{uuid.uuid4().hex[:8]}"
    url = _database(admin_url, name)
    try:
        with psycopg.connect(url) as conn:
            row = conn.execute("SELECT pg_backend_pid()").fetchone()
            assert row is not None
            conn.commit()
            backend, client = _backend_cpu(row[0]), time.process_time()
            for rows in batches:
                with conn.transaction():
                    write_rows(conn, rows)
            client, backend = time.process_time() - client, _backend_cpu(row[0]) - backend
            count = conn.execute("SELECT count(*) FROM esr.employee").fetchone()
    finally:
        _drop(admin_url, name)
    return client, backend, count[0] if count else 0


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.mapping", description=__doc__.split("\n")[0])
    parser.add_argument("--employees", type=int, default=20_000)
    parser.add_argument("--partitions", type=int, default=6)
    parser.add_argument("--batch", type=int, default=2000, help="records per worker batch")
    parser.add_argument("--poll", type=int, default=2000, help="messages per stage poll")
    parser.add_argument("--fetch", type=int, default=400, help="messages of one partition in a row")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--gc", default="on", metavar="on|off|A,B,C",
                        help="the collector: on at Python's thresholds (as the stage runs), off, or these thresholds")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--database", action="store_true",
                        help="also time the employee sink's writes (ESR_DATABASE_URL, else the embedded server)")
    args = parser.parse_args(argv)

    domain = load_domain()
    with tempfile.TemporaryDirectory() as tmp:
        full = generate_files(VPD, args.employees, 0, args.seed, Path(tmp))[0]
        events = list(file_events([full]))
    references, employees = worker_output(events, domain, partitions=args.partitions, batch=args.batch)
    polls = stage_polls(references, employees, poll=args.poll, fetch=args.fetch)
    snapshots = [value for messages in employees for _, value in messages if value is not None]
    replicas = sum(map(len, references))
    print(f"{args.employees:,} employees, {len(events):,} records: {len(snapshots):,} employee snapshots "
          f"(mean {sum(map(len, snapshots)) / len(snapshots):,.0f} bytes), {replicas:,} reference replica "
          f"messages, {len(polls)} polls of {args.poll}")

    if args.gc == "off":
        gc.disable()
    elif args.gc != "on":
        gc.set_threshold(*(int(part) for part in args.gc.split(",")))
    runs = [run(polls, domain) for _ in range(args.repeat)]
    best = {part: min(getattr(r, part) for r in runs) for part in ("decode", "map", "encode", "sink")}
    per = 1e6 / args.employees
    sizes = [len(value) for value in runs[0].values]
    print(f"{runs[0].events:,} mapped change events (mean {sum(sizes) / max(len(sizes), 1):,.0f} bytes); "
          f"CPU µs per employee, best of {args.repeat}:")
    for part, seconds in best.items():
        print(f"  {part:<8}{seconds * per:8.1f}")
    stage = best["decode"] + best["map"] + best["encode"]
    print(f"  {'stage':<8}{stage * per:8.1f}   (decode + map + encode: {stage:.2f} CPU-s)")

    if args.database:
        client, backend, rows = write(_admin_url(), runs[0].values, BATCH_SIZE)
        print(f"  {'write':<8}{client * per:8.1f}   client, {backend * per:.1f} PostgreSQL backend "
              f"({rows:,} rows, write_rows in batches as the sink's)")

    if args.profile:
        profiler = cProfile.Profile()
        profiler.enable()
        run(polls, domain, sink=False)
        profiler.disable()
        pstats.Stats(profiler).sort_stats("tottime").print_stats(30)


if __name__ == "__main__":
    main()
