"""PostgreSQL sink throughput: generated change events on esr.changes -> the read model.

    python -m bench.sink [--employees 40000] [--batch-size 10000] [--sinks 1] [--no-pipeline] [--no-tune]
                         [--seed 1] [--skip-redelivery]

The events are what a full file makes: one create event (NEW_STARTER, ASSIGNMENT_STARTED, HOME_ADDRESS_ADDED,
..., LOCATION_ADDED) per record of a generated full file (`esr.generate`, about 7.7 records per employee:
40,000 employees = 307,000 events), `after` = the record's values as canonical text, `changes` = every field.
They are encoded with `Encoder("change-event")` and produced to a fresh embedded broker (Tansu), then:

  (a) sink        `Sink.drain()` into a freshly migrated database, in a process tuned as `python -m
                  connectors.sink` tunes its own (`tune_process`; `--no-tune`: CPython's defaults): decode,
                  plan, COPY the rows straight in (the first batch, and any after a batch that met rows or
                  events already there, looks up the keys and event ids held first: guarded upserts for
                  those), the offsets, one transaction per batch.
                  Timed from the first message taken to the last batch committed (the group join, ~3 s on
                  Tansu, and the idle check that ends a drain are reported apart);
  (b) redelivery  the same topic again under another group id: every event is already held, nothing changes;
  (c) baseline    the same rows (mapped by the same pure code, not timed) COPYed straight into the same
                  empty tables of another fresh database: no Kafka, no Avro, no staging, no upsert.

rows/s counts the rows written: one change_event row per event plus one current-state row per entity
(events/s is given too). `--sinks N` runs N sink processes in one consumer group (the partitions split).
The machine is shared: the CPU each part used per event (sink process, its PostgreSQL backend, the broker)
is printed too, with the throughput it would allow on otherwise idle cores (an upper bound).
PostgreSQL: ESR_DATABASE_URL, else an embedded server; scratch databases are dropped afterwards.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import multiprocessing
import os
import shutil
import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

BENCH_DIR = Path("var/bench")
VPD = "999"
PARTITIONS = 6
_SPAWN = multiprocessing.get_context("spawn")
_NAMESPACE = uuid.UUID("5b0f6a0e-3c1e-5d7a-9a57-e5a0c0de0001")
CREATED = {
    "PERSON": "NEW_STARTER", "ASSIGNMENT": "ASSIGNMENT_STARTED", "ADDRESS": "HOME_ADDRESS_ADDED",
    "PHONE": "PHONE_ADDED", "VEHICLE": "VEHICLE_ADDED", "COSTING": "COSTING_ADDED",
    "LOCATION": "LOCATION_ADDED", "ORGANISATION": "ORGANISATION_ADDED", "POSITION": "POSITION_ADDED",
}


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    if isinstance(value, Decimal):
        return format(value, "f")
    return str(value)


def create_event(layout: Any, values: dict[str, Any], *, sha: str, line_no: int, file_name: str,
                 run_date: dt.datetime) -> tuple[bytes, dict[str, Any]]:
    """(key, the create event a full-file record makes): `after` = its values as canonical text."""
    after = {k: _text(v) for k, v in values.items() if v is not None}
    entity_type = layout.entity.value
    entity_id = after[layout.key_field]
    person_id = after.get("person_id") if layout.person_scoped else None
    event_type = CREATED[entity_type]
    key = f"{VPD}:{person_id}" if person_id else f"{VPD}:{entity_type}:{entity_id}"
    return key.encode(), {
        "event_id": str(uuid.uuid5(_NAMESPACE, f"{sha}:{line_no}:{entity_type}:{entity_id}:{event_type}")),
        "event_type": event_type,
        "op": "c",
        "entity_type": entity_type,
        "entity_id": entity_id,
        "vpd": VPD,
        "person_id": person_id,
        "employee_number": after.get("employee_number"),
        "changes": [{"field": k, "old": None, "new": v} for k, v in after.items()],
        "before": None,
        "after": after,
        "effective_date": None,
        "source": {
            "file_name": file_name, "file_sha256": sha, "sequence": 1, "extract_type": "F", "run_date": run_date,
            "record_code": layout.code, "line_no": line_no, "topic": "esr.records", "partition": 0,
            "offset": line_no,
        },
        "ts_ms": 1_767_600_000_000,
    }


def generated_events(employees: int, seed: int) -> Iterator[tuple[bytes, dict[str, Any]]]:
    """(key, change event) for every record of a generated full file, in file order."""
    from esr.generate.records import RecordRow
    from esr.generate.simulation import TrustSimulation

    simulation = TrustSimulation(VPD, employees, seed)
    sha = hashlib.sha256(f"bench {employees} {seed}".encode()).hexdigest()
    run_date = dt.datetime.combine(simulation.trust.start, dt.time(7, 15))
    name = f"GO_{VPD}_EXP_GOF_{simulation.trust.start:%Y%m%d}_00000001.DAT"
    for line_no, line in enumerate(simulation.full_file_records(), start=2):
        assert isinstance(line, RecordRow)
        yield create_event(line.layout, line.values, sha=sha, line_no=line_no, file_name=name, run_date=run_date)


# -- databases -------------------------------------------------------------------------------------------

def _admin_url() -> str:
    from esr.runtime.database import resolve_database_url

    return resolve_database_url(os.environ.get("ESR_DATABASE_URL") or None, BENCH_DIR)


def _database(admin_url: str, name: str) -> str:
    from esr.db.migrate import upgrade

    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    info = psycopg.conninfo.conninfo_to_dict(admin_url)
    info["dbname"] = name
    url = psycopg.conninfo.make_conninfo(**info)  # type: ignore[arg-type]
    upgrade(url)
    return url


def _drop(admin_url: str, name: str) -> None:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def _rows(url: str) -> dict[str, int]:
    from connectors.sink.mapping import TABLES

    with psycopg.connect(url) as conn:
        counts = {}
        for name in (*(spec.name for spec in TABLES), "change_event"):
            row = conn.execute(sql.SQL("SELECT count(*) FROM esr.{}").format(sql.Identifier(name))).fetchone()
            counts[name] = row[0] if row else 0
        return counts


# -- (a) and (b): the sink --------------------------------------------------------------------------------

@dataclass(frozen=True)
class SinkRun:
    events: int
    rows: int  # change_event rows inserted + state rows written
    seconds: float  # first message taken -> last batch committed
    wall: float  # start() -> caught up (group join and idle check included)
    decode: float
    plan: float
    db: float
    batches: int
    cpu: float  # CPU seconds of the sink's process (all its threads, librdkafka's included)
    backend_cpu: float | None  # CPU seconds of its PostgreSQL backend (None: not on this machine)


def _sink(bootstrap: str, url: str, group: str, batch_size: int, pipeline: bool, tune: bool,
          barrier: Any = None) -> SinkRun:
    from connectors.sink import Sink, SinkSettings
    from connectors.sink.sink import tune_process

    if tune:
        tune_process()  # as `python -m connectors.sink` does
    settings = SinkSettings(bootstrap, url, group_id=group, batch_size=batch_size, batch_wait=0.2, pipeline=pipeline)
    if barrier is not None:
        barrier.wait()
    started = time.monotonic()
    cpu = time.process_time()
    with Sink(settings) as sink:
        stats = sink.drain(idle=0.5, timeout=900)
        wall = time.monotonic() - started
        backend = _backend_cpu(url)  # while the sink's connection is open
    cpu = time.process_time() - cpu
    first = stats.first_message_at or started
    last = stats.last_commit_at or first
    return SinkRun(stats.events, stats.rows, last - first, wall, stats.decode_seconds, stats.plan_seconds,
                   stats.db_seconds, stats.batches, cpu, backend)


def _process_cpu(pid: int) -> float | None:
    """utime + stime of a process on this machine, in seconds (None if it cannot be read)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _backend_cpu(url: str) -> float | None:
    """CPU seconds of the sink's writer backend (its connection lives as long as the sink)."""
    from connectors.sink.database import APPLICATION_NAME

    with psycopg.connect(url) as conn:
        pids = [row[0] for row in conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND application_name = %s",
            (APPLICATION_NAME,)).fetchall()]
    found = [_process_cpu(pid) for pid in pids]
    return sum(c for c in found if c is not None) if found and None not in found else None


def _sink_child(queue: Any, *args: Any) -> None:
    try:
        queue.put(_sink(*args))
    except BaseException as exc:
        queue.put(exc)
        raise


def _sinks(bootstrap: str, url: str, group: str, batch_size: int, count: int, pipeline: bool,
           tune: bool) -> list[SinkRun]:
    """`count` sinks of one group; more than one: each in a process of its own, started together."""
    if count == 1:
        return [_sink(bootstrap, url, group, batch_size, pipeline, tune)]
    barrier = _SPAWN.Barrier(count)
    queues = [_SPAWN.Queue() for _ in range(count)]
    processes = [_SPAWN.Process(target=_sink_child,
                                args=(queue, bootstrap, url, group, batch_size, pipeline, tune, barrier),
                                daemon=True)
                 for queue in queues]
    for process in processes:
        process.start()
    runs = []
    for queue, process in zip(queues, processes, strict=True):
        outcome = queue.get()
        process.join()
        if isinstance(outcome, BaseException):
            raise RuntimeError(f"sink process failed: {outcome!r}") from outcome
        runs.append(outcome)
    return runs


# -- (c): the baseline ------------------------------------------------------------------------------------

Tables = dict[str, tuple[tuple[str, ...], list[tuple[Any, ...]]]]


def plan_rows(events: Iterable[dict[str, Any]]) -> Tables:
    """The rows the sink would write for these events (its own pure planning), by table."""
    from connectors.sink.mapping import BY_NAME, CHANGE_EVENT_COLUMNS, Consumed, plan

    batch = plan([Consumed(event, "esr.changes", 0, i) for i, event in enumerate(events)])
    tables: Tables = {"change_event": (CHANGE_EVENT_COLUMNS, batch.change_events)}
    for name, upserts in batch.upserts.items():
        tables[name] = (BY_NAME[name].columns, upserts)
    return tables


def copy_rows(url: str, tables: Tables) -> int:
    """COPY the rows straight into the (empty) tables in one transaction; the number of rows."""
    from connectors.sink.database import SinkDatabase

    database = SinkDatabase(url, "baseline")
    conn = database.connect()  # for its binary COPY types (jsonb text dumper)
    rows = 0
    with conn.transaction(), conn.cursor() as cursor:
        for name, (columns, values) in tables.items():
            statement = sql.SQL("COPY esr.{} ({}) FROM STDIN (FORMAT BINARY)").format(
                sql.Identifier(name), sql.SQL(", ").join(map(sql.Identifier, columns)))
            with cursor.copy(statement) as copy:
                copy.set_types(database._types[name])
                for row in values:
                    copy.write_row(row)
            rows += len(values)
    database.close()
    return rows


def _baseline(url: str, employees: int, seed: int) -> tuple[int, float]:
    """COPY the rows the sink would write straight into the tables; (rows, seconds of COPY)."""
    tables = plan_rows(event for _key, event in generated_events(employees, seed))
    started = time.perf_counter()
    rows = copy_rows(url, tables)
    return rows, time.perf_counter() - started


# -- main -------------------------------------------------------------------------------------------------

def _produce(bootstrap: str, employees: int, seed: int) -> tuple[int, float, float]:
    """(events, seconds to generate+encode, seconds to produce)."""
    from esr.codec import Encoder
    from esr.kafka.producer import Publisher
    from esr.kafka.topics import CHANGES

    encoder = Encoder("change-event")
    started = time.perf_counter()
    encoded = [(key, encoder.encode(event)) for key, event in generated_events(employees, seed)]
    generated = time.perf_counter() - started
    publisher = Publisher({"bootstrap.servers": bootstrap, "partitioner": "murmur2_random", "linger.ms": 50,
                           "batch.num.messages": 10000, "compression.type": "lz4",
                           "queue.buffering.max.messages": 500000, "queue.buffering.max.kbytes": 1048576})
    started = time.perf_counter()
    headers = encoder.headers
    for key, value in encoded:
        publisher.send(CHANGES, key, value, headers)
    publisher.flush()
    return len(encoded), generated, time.perf_counter() - started


def _report(title: str, runs: list[SinkRun], broker_cpu: float | None = None) -> float:
    events = sum(r.events for r in runs)
    rows = sum(r.rows for r in runs)
    seconds = max(r.seconds for r in runs)
    wall = max(r.wall for r in runs)
    rate = rows / seconds if seconds else 0.0
    print(f"{title}: {events:,} events, {rows:,} rows in {seconds:.2f} s = {rate:,.0f} rows/s "
          f"({events / seconds if seconds else 0:,.0f} events/s); {wall:.1f} s with the group join and the idle "
          f"check; {sum(r.batches for r in runs)} batches")
    for i, r in enumerate(runs):
        print(f"    sink {i + 1}: consuming thread decode {r.decode:.2f} s + plan {r.plan:.2f} s; "
              f"writer thread (COPY, upserts, commit) {r.db:.2f} s; process CPU {r.cpu:.2f} s "
              f"({r.cpu / r.wall:.0%} of a core over {r.wall:.1f} s)")
    backends = [r.backend_cpu for r in runs]
    if events and None not in backends and broker_cpu is not None:
        sink_us = sum(r.cpu for r in runs) / events * 1e6
        pg_us = sum(b for b in backends if b is not None) / events * 1e6
        broker_us = broker_cpu / events * 1e6
        total = sink_us + pg_us + broker_us
        bound = (os.cpu_count() or 1) / total * 1e6
        in_rows = f" = {bound * rows / events:,.0f} rows/s" if rows else ""
        print(f"    CPU per event: sink process {sink_us:.1f} us + PostgreSQL backend {pg_us:.1f} us + broker "
              f"{broker_us:.1f} us = {total:.1f} us -> on {os.cpu_count()} otherwise idle cores at most "
              f"{bound:,.0f} events/s{in_rows}")
    return rate


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.sink", description=__doc__.split("\n")[0])
    parser.add_argument("--employees", type=int, default=40000)
    parser.add_argument("--batch-size", type=int, default=10_000)
    parser.add_argument("--sinks", type=int, default=1, help="sink processes in the consumer group")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--skip-redelivery", action="store_true")
    parser.add_argument("--no-pipeline", dest="pipeline", action="store_false",
                        help="decode, plan and write in turn (SinkSettings.pipeline=False)")
    parser.add_argument("--no-tune", dest="tune", action="store_false",
                        help="keep CPython's collector and GIL switch settings (python -m connectors.sink sets "
                             "them: connectors.sink.sink.tune_process)")
    args = parser.parse_args(argv)

    from esr.kafka.topics import ensure_topics
    from esr.runtime.broker import EmbeddedBroker

    admin_url = _admin_url()
    tag = uuid.uuid4().hex[:6]
    sink_db, baseline_db = f"esr_bench_sink_{tag}", f"esr_bench_copy_{tag}"
    directory = BENCH_DIR / f"sink-broker-{os.getpid()}"
    print(f"sink benchmark: {args.employees:,} employees' full file as change events, {PARTITIONS} partitions, "
          f"batches of {args.batch_size}, {args.sinks} sink process(es), "
          f"{'writer thread' if args.pipeline else 'no writer thread'}, "
          f"{'process tuned as python -m connectors.sink' if args.tune else 'CPython defaults'}, "
          f"{os.cpu_count()} CPU(s)", flush=True)
    try:
        with EmbeddedBroker.create(directory) as broker:
            ensure_topics({"bootstrap.servers": broker.bootstrap_servers}, PARTITIONS)
            events, generated, produced = _produce(broker.bootstrap_servers, args.employees, args.seed)
            print(f"  {events:,} events generated and encoded in {generated:.1f} s, produced in {produced:.1f} s",
                  flush=True)
            url = _database(admin_url, sink_db)
            broker_pid = broker.process.pid if broker.process is not None else 0
            before = _process_cpu(broker_pid)
            runs = _sinks(broker.bootstrap_servers, url, "bench-sink", args.batch_size, args.sinks, args.pipeline,
                          args.tune)
            after = _process_cpu(broker_pid)
            broker_cpu = after - before if after is not None and before is not None else None
            print(f"  load average during the run: {os.getloadavg()[0]:.2f} (other work on the machine slows it)")
            rate = _report("(a) sink", runs, broker_cpu)
            counts = _rows(url)
            print(f"    tables: {', '.join(f'{k} {v:,}' for k, v in counts.items())}")
            if counts["change_event"] != events:
                raise SystemExit(f"change_event holds {counts['change_event']:,} rows for {events:,} events")
            if not args.skip_redelivery:
                before = _process_cpu(broker_pid)
                again = _sinks(broker.bootstrap_servers, url, "bench-sink-redelivery", args.batch_size, args.sinks,
                               args.pipeline, args.tune)
                after = _process_cpu(broker_pid)
                _report("(b) redelivery (every event already held)", again,
                        after - before if after is not None and before is not None else None)
                if _rows(url) != counts:
                    raise SystemExit("the redelivery changed the tables")
                print("    tables unchanged")
        copy_url = _database(admin_url, baseline_db)
        rows, seconds = _baseline(copy_url, args.employees, args.seed)
        baseline = rows / seconds
        print(f"(c) direct COPY baseline: {rows:,} rows in {seconds:.2f} s = {baseline:,.0f} rows/s")
        print(f"sink / baseline: {rate / baseline:.2f} (target: sink >= 50,000 rows/s: "
              f"{'met' if rate >= 50_000 else 'NOT met'})")
    finally:
        shutil.rmtree(directory, ignore_errors=True)
        _drop(admin_url, sink_db)
        _drop(admin_url, baseline_db)


if __name__ == "__main__":
    main()
