"""File-ingest throughput: parse, parse+encode, parse+encode+produce on one core, and the job on two cores.

    python -m bench.ingest [--employees 66000] [--repeat 1] [--seed 1] [--stages parse,encode,produce,scale]

On a generated full file (about 7.6 records per employee: 66,000 employees = 503,000 records), cached
under `var/bench/` by its parameters so reruns skip generation. Every measurement runs in a fresh process
(so caches and memory start cold and peak RSS is that stage's own):

  (a) parse          `EsrFile.open()` (hash, count, header, trailer) + `EsrFile.lines()`
  (b) parse+encode   (a) + `record_event` + `Encoder("record-event").encode`; and the same bytes made as the
                     job makes them: `RecordEventWriter`, clean lines read straight into their payload
  (c) +produce       the real `FileIngest.ingest` into a fresh embedded broker (Tansu), the ledger on
                     PostgreSQL (ESR_DATABASE_URL, else an embedded server) in a scratch database: one
                     process, the job on one thread (librdkafka's threads, the owner index writer, the
                     broker and PostgreSQL run beside it, on the other core when it is free)
  (d) two cores      two trusts' full files ingested at once by two processes (same broker, same database):
                     aggregate records/s, and the ratio to (c)

records/s counts the records published (data lines that became events) per wall-clock second; best of
`--repeat`. CPU s: the measuring process's CPU time, all its threads (librdkafka's, the owner index
writer's); job s: the CPU time of the thread that runs the job, i.e. the one core it needs; per job s:
records per second of that thread's CPU, what the job does with a core to itself (on a shared machine the
wall-clock rate is lower when other processes take turns on the core). RSS: peak resident MiB of the
measuring process (librdkafka's send queue included); it does not grow with the file size.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import queue
import resource
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

BENCH_DIR = Path("var/bench")
DATABASE = "esr_bench_ingest"
_SPAWN = multiprocessing.get_context("spawn")


@dataclass(frozen=True)
class Result:
    records: int
    seconds: float
    peak_rss_kib: int
    cpu_seconds: float = 0.0  # the measuring process's, its threads included (librdkafka's)
    thread_seconds: float = 0.0  # the job's own thread: what "one core" runs (the others: librdkafka, ...)
    started: float = 0.0  # time.time() when the timed work began (two-process runs)
    ended: float = 0.0

    @property
    def rate(self) -> float:
        return self.records / self.seconds


def _peak_rss_kib() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux


# -- the generated file ------------------------------------------------------------------------------


def _generate(vpd: str, employees: int, seed: int, out_dir: str) -> Result:
    from esr.generate import generate_files

    started = time.perf_counter()
    paths = generate_files(vpd, employees, 0, seed, Path(out_dir))
    assert len(paths) == 1
    return Result(0, time.perf_counter() - started, _peak_rss_kib())


def bench_file(vpd: str, employees: int, seed: int) -> Path:
    """The full file of `vpd` with `employees` employees, generated once (in a child process) and cached."""
    directory = BENCH_DIR / f"{vpd}-e{employees}-s{seed}"
    found = sorted(directory.glob("GO_*.DAT")) if directory.is_dir() else []
    if found:
        return found[0]
    partial = directory.with_name(directory.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    print(f"generating a full file for VPD {vpd}, {employees:,} employees, seed {seed} ...", flush=True)
    result = _in_child(_generate, vpd, employees, seed, str(partial))
    partial.rename(directory)
    path = sorted(directory.glob("GO_*.DAT"))[0]
    print(f"  {path} ({path.stat().st_size / 1e6:,.0f} MB) in {result.seconds:.0f} s", flush=True)
    return path


# -- child processes ---------------------------------------------------------------------------------


def _child_main(results_queue: Any, work: Callable[..., Result], args: tuple[Any, ...]) -> None:
    try:
        results_queue.put(work(*args))
    except BaseException as exc:
        results_queue.put(exc)
        raise


def _in_child(work: Callable[..., Result], *args: Any) -> Result:
    return _in_children([(work, args)])[0]


def _in_children(jobs: list[tuple[Callable[..., Result], tuple[Any, ...]]]) -> list[Result]:
    """Run each job in its own fresh (spawned) process, at the same time; their results in order."""
    queues = [_SPAWN.Queue() for _ in jobs]
    processes = [
        _SPAWN.Process(target=_child_main, args=(results_queue, work, args), daemon=True)
        for results_queue, (work, args) in zip(queues, jobs, strict=True)
    ]
    for process in processes:
        process.start()
    results = []
    for results_queue, process in zip(queues, processes, strict=True):
        while True:
            try:
                outcome = results_queue.get(timeout=1)
                break
            except queue.Empty:
                if not process.is_alive():
                    raise RuntimeError(f"benchmark process died (exit code {process.exitcode})") from None
        process.join()
        if isinstance(outcome, BaseException):
            raise RuntimeError(f"benchmark process failed: {outcome!r}") from outcome
        results.append(outcome)
    return results


# -- (a) and (b): no broker, no database -------------------------------------------------------------


def _parse(path: str, encode: str | None) -> Result:
    """`encode`: None (parse only), "event" (record_event + Encoder.encode) or "writer" (as the job: clean lines
    straight to their payload, the others parsed, then RecordEventWriter)."""
    from esr.codec import Encoder, Provenance, record_event
    from esr.codec.events import RecordEventWriter
    from esr.format.lines import Delete, Record
    from esr.format.reader import EsrFile

    encoder = Encoder("record-event")
    now = datetime.now(UTC)
    records = 0
    cpu, thread = time.process_time(), time.thread_time()
    started = time.perf_counter()
    with EsrFile(Path(path)) as esr_file:
        scan = esr_file.open()
        provenance = Provenance.from_scan(scan)
        writer = RecordEventWriter(encoder, provenance, now)
        if encode == "writer":  # as the job does it: clean lines straight to their payload
            assert writer.clean_line is not None
            for line_no, _raw, parsed in esr_file.lines(writer.clean_line):
                if type(parsed) is tuple:
                    records += 1
                    writer.encode_clean(parsed, line_no)
                elif isinstance(parsed, Record | Delete):
                    records += 1
                    writer.encode(parsed, line_no)
        else:
            for line_no, _raw, parsed in esr_file.lines():
                if isinstance(parsed, Record | Delete):
                    records += 1
                    if encode == "event":
                        encoder.encode(record_event(parsed, provenance, line_no, ingested_at=now))
    seconds = time.perf_counter() - started
    return Result(records, seconds, _peak_rss_kib(), time.process_time() - cpu, time.thread_time() - thread)


# -- (c) and (d): the real job -----------------------------------------------------------------------


def _admin_url() -> str:
    from esr.runtime.database import resolve_database_url

    return resolve_database_url(os.environ.get("ESR_DATABASE_URL") or None, BENCH_DIR)


def fresh_database(admin_url: str, vpds: list[str]) -> str:
    """The scratch database with a fresh ledger: created once, its `esr` schema dropped and migrated again
    per run (not DROP DATABASE, which waits for every session of the server to acknowledge it), trusts
    registered."""
    from connectors.file_source.ledger import Ledger
    from esr.db.migrate import upgrade

    with psycopg.connect(admin_url, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE,)).fetchone():
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(DATABASE)))
    info = psycopg.conninfo.conninfo_to_dict(admin_url)
    info["dbname"] = DATABASE
    url = psycopg.conninfo.make_conninfo(**info)  # type: ignore[arg-type]
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SET statement_timeout = '60s'")  # fail, never hang (a session left behind, say)
        conn.execute("DROP SCHEMA IF EXISTS esr CASCADE")
    upgrade(url)
    with Ledger(url) as ledger:
        for vpd in vpds:
            ledger.add_trust(vpd, f"Bench trust {vpd}")
    return url


def _ingest(path: str, database_url: str, bootstrap: str, barrier: Any = None) -> Result:
    from connectors.file_source.ingest import FileIngest
    from connectors.file_source.ledger import Ledger
    from esr.config import Settings
    from esr.kafka.config import producer_config
    from esr.kafka.producer import Publisher

    publisher = Publisher(producer_config(Settings(), bootstrap))
    with Ledger(database_url) as ledger:
        job = FileIngest(ledger, publisher)
        if barrier is not None:
            barrier.wait()
        wall = time.time()
        cpu, thread = time.process_time(), time.thread_time()
        report = job.ingest(Path(path))
        cpu, thread = time.process_time() - cpu, time.thread_time() - thread
        ended = time.time()
    if report.status != "published":
        raise RuntimeError(f"{path}: {report.status}: {report.message}")
    return Result(report.record_count, report.seconds, _peak_rss_kib(), cpu, thread, wall, ended)


def _with_broker(work: Callable[[str], list[Result]], run: int) -> list[Result]:
    from esr.config import Settings
    from esr.kafka.config import client_config
    from esr.kafka.topics import ensure_topics
    from esr.runtime.broker import EmbeddedBroker

    directory = BENCH_DIR / f"broker-{os.getpid()}-{run}"
    try:
        with EmbeddedBroker.create(directory) as broker:
            settings = Settings()
            ensure_topics(client_config(settings, broker.bootstrap_servers), settings.partitions)
            return work(broker.bootstrap_servers)
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def produce(path: Path, admin_url: str, vpd: str, run: int) -> Result:
    url = fresh_database(admin_url, [vpd])
    return _with_broker(lambda bootstrap: [_in_child(_ingest, str(path), url, bootstrap)], run)[0]


def two_trusts(paths: list[tuple[str, Path]], admin_url: str, run: int) -> list[Result]:
    url = fresh_database(admin_url, [vpd for vpd, _ in paths])
    barrier = _SPAWN.Barrier(len(paths))
    return _with_broker(
        lambda bootstrap: _in_children([(_ingest, (str(p), url, bootstrap, barrier)) for _, p in paths]), run
    )


# -- report ------------------------------------------------------------------------------------------


def _best(results: list[Result]) -> Result:
    return max(results, key=lambda r: r.rate)


def _line(name: str, result: Result, extra: str = "") -> str:
    return (
        f"{name:<34}{result.rate:>11,.0f}{result.records:>10,}{result.seconds:>8.2f}{result.cpu_seconds:>7.2f}"
        f"{result.thread_seconds:>7.2f}{result.records / result.thread_seconds:>11,.0f}"
        f"{result.peak_rss_kib / 1024:>6,.0f}{extra}"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.ingest", description=__doc__.split("\n")[0])
    parser.add_argument("--employees", type=int, default=66_000, help="employees in the generated file")
    parser.add_argument("--repeat", type=int, default=1, help="best of this many runs per stage")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--vpd", default="999")
    parser.add_argument("--second-vpd", default="998", help="the other trust of the two-core run")
    parser.add_argument(
        "--stages", default="parse,encode,produce,scale",
        help="comma-separated subset of parse,encode,produce,scale",
    )
    args = parser.parse_args(argv)
    stages = set(args.stages.split(","))
    unknown = stages - {"parse", "encode", "produce", "scale"}
    if unknown:
        parser.error(f"unknown stage(s): {', '.join(sorted(unknown))}")

    BENCH_DIR.mkdir(parents=True, exist_ok=True)
    path = bench_file(args.vpd, args.employees, args.seed)
    second = bench_file(args.second_vpd, args.employees, args.seed) if "scale" in stages else None
    cpus = len(os.sched_getaffinity(0))
    print(
        f"\n{path.name}: {path.stat().st_size / 1e6:,.0f} MB; Python {sys.version.split()[0]}, {cpus} CPU(s); "
        f"best of {args.repeat}"
    )
    print(f"{'':<34}{'records/s':>11}{'records':>10}{'wall s':>8}{'CPU s':>7}{'job s':>7}{'per job s':>11}{'RSS':>6}")

    one_core: Result | None = None
    if "parse" in stages:
        print(_line("(a) parse", _best([_in_child(_parse, str(path), None) for _ in range(args.repeat)])),
              flush=True)
    if "encode" in stages:
        for name, how in (("(b) parse+record_event+encode", "event"), ("    the same, as the job does it", "writer")):
            print(_line(name, _best([_in_child(_parse, str(path), how) for _ in range(args.repeat)])), flush=True)
    if stages & {"produce", "scale"}:
        admin_url = _admin_url()
        if "produce" in stages:
            one_core = _best([produce(path, admin_url, args.vpd, run) for run in range(args.repeat)])
            print(_line("(c) parse+encode+produce, 1 core", one_core), flush=True)
        if "scale" in stages:
            assert second is not None
            best: list[Result] | None = None
            best_rate = 0.0
            for run in range(args.repeat):
                results = two_trusts([(args.vpd, path), (args.second_vpd, second)], admin_url, run)
                wall = max(r.ended for r in results) - min(r.started for r in results)
                rate = sum(r.records for r in results) / wall
                if rate > best_rate:
                    best, best_rate = results, rate
            assert best is not None
            wall = sum(r.records for r in best) / best_rate
            total = Result(
                sum(r.records for r in best), wall, max(r.peak_rss_kib for r in best),
                sum(r.cpu_seconds for r in best), sum(r.thread_seconds for r in best),
            )
            ratio = f"   x{best_rate / one_core.rate:.2f} of (c)" if one_core is not None else ""
            print(_line("(d) 2 trusts at once, 2 processes", total, ratio))
            for (vpd, _), result in zip([(args.vpd, path), (args.second_vpd, second)], best, strict=True):
                print(_line(f"      trust {vpd}", result))
        if one_core is not None:
            print(
                f"\n(c) target >= 60,000 records/s on one core: {'met' if one_core.rate >= 60_000 else 'NOT met'} "
                f"({one_core.rate:,.0f}/s wall-clock, {one_core.records / one_core.thread_seconds:,.0f}/s of the "
                "job thread's CPU)"
            )


if __name__ == "__main__":
    main()
