"""End to end: a generated full file from `esr ingest` to a caught-up read model, against a direct baseline.

    python -m bench.pipeline [--employees 50000] [--seed 1]

  (a) pipeline   the `esr run` pipeline (esr.pipeline.Pipeline: embedded Tansu, the stream worker and the
                 mapping stage in child processes, the sinks in threads) on a freshly migrated database: ingest
                 the full file, then wait until the worker, the mapping stage and the sinks have caught up.
  (b) latency    the next day's change file: seconds from `ingest` returning to the database holding every
                 change of it.
  (c) baseline   the same full file parsed (esr.format) and its records mapped by the sink's own pure code to
                 the same rows, COPYed into the same tables of another fresh database: no Kafka, no Avro, no
                 state, no diff.

For both files, where the time goes, stage by stage, on one clock (seconds from the start of `ingest`): the
ingest call; the worker from its first to its last change event of the file (the events' ts_ms, stamped
when the worker makes them); the sink from its first to its last transaction holding them (recorded_at, the
transaction's start); the stages overlap. Then what the sink spent its time on (its own counters).

PostgreSQL: ESR_DATABASE_URL, else an embedded server; scratch databases are dropped afterwards.
"""

from __future__ import annotations

import argparse
import dataclasses
import shutil
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from bench.sink import BENCH_DIR, PARTITIONS, VPD, _admin_url, _database, _drop, copy_rows, create_event, plan_rows
from connectors.file_source.ledger import Ledger
from connectors.sink import SinkStats
from connectors.sink.sink import tune_process
from esr.config import Settings
from esr.format.lines import Record
from esr.format.reader import EsrFile
from esr.generate import generate_files
from esr.pipeline import Pipeline


def _events_of_file(path: Path) -> Iterator[dict[str, Any]]:
    """The create event of each record of the file (what the sink writes for a full file)."""
    with EsrFile(path) as esr_file:
        scan = esr_file.open()
        for line_no, parsed in esr_file.records():
            if isinstance(parsed, Record):
                yield create_event(parsed.layout, parsed.values, sha=scan.sha256, line_no=line_no,
                                   file_name=path.name, run_date=esr_file.header.run_date)[1]


def baseline(url: str, path: Path) -> tuple[int, float]:
    """Parse, map and COPY; (rows, seconds)."""
    started = time.perf_counter()
    rows = copy_rows(url, plan_rows(_events_of_file(path)))
    return rows, time.perf_counter() - started


def _database_clock(url: str) -> Any:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT clock_timestamp()").fetchone()
    assert row is not None
    return row[0]


@dataclass(frozen=True)
class Stages:
    """Seconds from the start of `ingest` (module doc)."""

    records: int
    events: int
    ingest: float  # the call returned
    worker: tuple[float, float]  # its first and last change event of the file
    sink: tuple[float, float]  # the first and last transaction that wrote them began
    caught_up: float  # Pipeline.wait_until_caught_up returned
    sink_stats: SinkStats  # what the sink did meanwhile

    def report(self, title: str) -> None:
        s = self.sink_stats
        print(f"    {title}: {self.records:,} records -> {self.events:,} change events; seconds from the start of "
              f"ingest (the stages overlap):")
        print(f"      ingest   0.0 -> {self.ingest:6.1f}")
        print(f"      worker {self.worker[0]:5.1f} -> {self.worker[1]:6.1f}   first to last change event made")
        print(f"      sink   {self.sink[0]:5.1f} -> {self.sink[1]:6.1f}   first to last transaction writing them")
        print(f"      caught up at {self.caught_up:.1f} (the pipeline's own check: worker, mapping, sinks)")
        print(f"      the sink: {s.messages:,} messages in {s.batches} batches; consuming thread decode "
              f"{s.decode_seconds:.1f} s + plan {s.plan_seconds:.1f} s, writer thread {s.db_seconds:.1f} s; "
              f"it ended {self.sink[1] - self.worker[1]:.1f} s after the worker's last event")


def _delta(after: SinkStats, before: SinkStats) -> SinkStats:
    fields = ("messages", "events", "change_events", "state_rows", "cascaded", "dead_letters", "batches",
              "outages", "rewinds", "decode_seconds", "plan_seconds", "db_seconds")
    return SinkStats(**{name: getattr(after, name) - getattr(before, name) for name in fields})


def timed_file(pipeline: Pipeline, url: str, path: Path) -> Stages:
    """Ingest `path`, wait until caught up, and place each stage on the clock of the database."""
    assert pipeline.sink is not None
    before = dataclasses.replace(pipeline.sink.stats)
    started = _database_clock(url)
    [report] = pipeline.ingest([path])
    ingested = _database_clock(url)
    pipeline.wait_until_caught_up(timeout=1800)
    caught_up = _database_clock(url)
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT count(*), min(event_ts), max(event_ts), min(recorded_at), max(recorded_at) FROM esr.change_event "
            "WHERE file_name = %s", (path.name,)
        ).fetchone()
    assert row is not None
    events, *stamps = row

    def at(when: Any) -> float:
        return (when - started).total_seconds() if when is not None else float("nan")

    return Stages(report.record_count, events, at(ingested), (at(stamps[0]), at(stamps[1])),
                  (at(stamps[2]), at(stamps[3])), at(caught_up), _delta(pipeline.sink.stats, before))


def _count(url: str, table: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute(sql.SQL("SELECT count(*) FROM esr.{}").format(sql.Identifier(table))).fetchone()
    assert row is not None
    return int(row[0])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--employees", type=int, default=50_000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)

    files_dir = BENCH_DIR / f"pipeline-{args.employees}-{args.seed}"
    if not files_dir.exists():
        generate_files(VPD, args.employees, 1, args.seed, files_dir)
    full, change = sorted(files_dir.glob("*.DAT"), key=lambda p: p.name.split("_")[-1])
    records = sum(1 for _ in full.open("rb")) - 2
    print(f"full file {full.name}: {records:,} records ({args.employees:,} employees); change file {change.name}")

    admin_url = _admin_url()
    tag = uuid.uuid4().hex[:6]
    pipeline_db, baseline_db = f"esr_bench_pipeline_{tag}", f"esr_bench_direct_{tag}"
    data_dir = BENCH_DIR / f"pipeline-run-{tag}"
    try:
        url = _database(admin_url, pipeline_db)
        with Ledger(url) as ledger:
            ledger.add_trust(VPD, "Benchmark NHS Trust")
        settings = Settings(data_dir=data_dir, bootstrap_servers=None, partitions=PARTITIONS)
        tune_process()  # as `esr run` does: this process runs the ingest job and both sinks
        with Pipeline.open(settings, url, echo=lambda _: None) as pipeline:
            stages = timed_file(pipeline, url, full)
            total = stages.caught_up
            events = _count(url, "change_event")
            print(f"(a) pipeline: {stages.records:,} records -> {events:,} change events in the database "
                  f"in {total:.1f} s ({stages.records / total:,.0f} records/s end to end)")
            stages.report("full file")

            stages = timed_file(pipeline, url, change)
            latency = stages.sink[1] - stages.ingest
            print(f"(b) change file: {stages.records:,} records -> {stages.events:,} change events, the last "
                  f"in PostgreSQL {latency:.2f} s after ingest returned (target: a 5,000-record file within 3 s)")
            stages.report("change file")
        direct_url = _database(admin_url, baseline_db)
        rows, seconds = baseline(direct_url, full)
        print(f"(c) direct baseline (parse + map + COPY, no Kafka): {rows:,} rows in {seconds:.1f} s")
        print(f"pipeline / baseline: {total / seconds:.1f}x the time (target: full file caught up in <= 60 s)")
    finally:
        _drop(admin_url, pipeline_db)
        _drop(admin_url, baseline_db)
        shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
