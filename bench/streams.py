"""Stream-processor throughput: the real worker against a bare Faust counting agent, in one run.

    .venv/bin/python -m bench.streams [--employees 40000] [--partitions 6] [--domain MODULE] [--profile]

1. generates a full ESR file (about 7.9 records per employee: 40,000 employees ≈ 316,000 records) and
   publishes it with the ingest job to a fresh embedded broker (PostgreSQL for the ledger: ESR_DATABASE_URL,
   else the embedded server; a scratch database is created and dropped);
2. (a) runs a bare Faust agent that only counts `take_events` batches over esr.records, with the same
   Faust tuning as the worker;
3. (b) runs the real worker (`python -m streams worker`) and reads its counters (ESR_STREAMS_STATS_FILE);
4. prints records/s for both, change events/s for the worker, and their ratio.

Completion is detected by counting records (Tansu's high watermarks are wrong), and rates are measured from
the first batch to the last batch acknowledged, so group joins and start-up are not counted. Each Faust
process is pinned to one CPU (`--cpu`), so "per core" means it; the broker runs where the OS puts it.
The domain is `streams.domain` if it can be imported, else the shell's test double `tests.doubles.domain`
(said in the output). `--profile` runs the worker under cProfile and prints where its time went.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import pstats
import re
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

from esr.config import Settings
from esr.kafka.config import client_config, producer_config
from esr.runtime.broker import EmbeddedBroker
from streams.app import STATS_FILE_ENV, Tuning
from streams.topics import ensure_stream_topics
from streams.worker import WorkerProcess, faust_worker

TARGET_RATE = 10_000.0
TARGET_RATIO = 0.80
VPD = "999"


# -- the counting agent (runs in its own process: `python -m bench.streams count ...`) -----------------


def run_counting_agent(bootstrap: str, partitions: int, expected: int, out: Path, data_dir: Path,
                       profile: Path | None = None, fast_drain: bool = False) -> None:
    import cProfile

    import faust

    from streams.app import faust_settings

    settings = Settings(data_dir=data_dir, partitions=partitions)
    tuning = Tuning.from_env()
    # a group of its own each time: another run's committed offsets must not shorten this one
    app_id = f"esr-bench-count-{'fast' if fast_drain else 'stock'}-{uuid.uuid4().hex[:8]}"
    app = faust.App(app_id, **faust_settings(settings, bootstrap, worker_id="count", tuning=tuning,
                                                        fast_drain=fast_drain))
    topic = app.topic("esr.records", key_type=bytes, value_type=bytes, key_serializer="raw",
                      value_serializer="raw", partitions=partitions)
    state: dict[str, Any] = {"events": 0, "batches": 0, "first_batch_at": None, "last_batch_done_at": None,
                             "first_batch_cpu": None, "last_batch_done_cpu": None}
    profiler = cProfile.Profile() if profile is not None else None

    @app.agent(topic)
    async def count(stream: Any) -> None:
        async for events in stream.take_events(tuning.batch_size, tuning.batch_within):
            now = time.time()
            if state["first_batch_at"] is None:
                state["first_batch_at"] = now
                state["first_batch_cpu"] = time.process_time()
                if profiler is not None:
                    profiler.enable()
            state["events"] += len(events)
            state["batches"] += 1
            state["last_batch_done_at"] = now
            state["last_batch_done_cpu"] = time.process_time()
            if state["events"] >= expected:
                out.write_text(json.dumps(state))
                if profiler is not None:
                    profiler.disable()
                    profiler.dump_stats(str(profile))
                os._exit(0)  # measured; nothing to commit or clean up

    faust_worker(app, "warning").execute_from_commandline()


# -- the run ------------------------------------------------------------------------------------------


@contextlib.contextmanager
def ledger_database(settings: Settings, data_dir: Path) -> Iterator[str]:
    """A scratch, migrated database on ESR_DATABASE_URL's server (dropped after), else the embedded one."""
    import psycopg
    from psycopg import sql

    from esr.db.migrate import upgrade
    from esr.runtime.database import embedded_database_url

    if not settings.database_url:
        url = embedded_database_url(data_dir)
        upgrade(url)
        yield url
        return
    name = f"esr_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    info = psycopg.conninfo.conninfo_to_dict(settings.database_url)
    info["dbname"] = name
    url = psycopg.conninfo.make_conninfo(**info)  # type: ignore[arg-type]
    try:
        upgrade(url)
        yield url
    finally:
        with psycopg.connect(settings.database_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def publish(settings: Settings, bootstrap: str, database_url: str, path: Path) -> tuple[int, float]:
    from connectors.file_source.ingest import FileIngest, IngestSettings
    from connectors.file_source.ledger import Ledger
    from esr.kafka.producer import Publisher

    ensure_stream_topics(client_config(settings, bootstrap), settings.partitions, settings.replication_factor)
    with Ledger(database_url) as ledger:
        ledger.add_trust(VPD, "Bench Trust")
        job = FileIngest(ledger, Publisher(producer_config(settings, bootstrap)), IngestSettings())
        report = job.ingest(path)
    if report.status != "published":
        raise SystemExit(f"ingest failed: {report.status} {report.message}")
    return report.record_count, report.seconds


def pin(pid: int, cpu: int | None) -> None:
    if cpu is not None and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(pid, {cpu})


def thread_cpu(pid: int) -> dict[str, float]:
    """CPU seconds by thread name of a running process (Linux /proc), for "where does the time go"."""
    ticks = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    result: dict[str, float] = {}
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            stat = (task / "stat").read_text()
        except OSError:
            continue
        name = stat[stat.index("(") + 1:stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2:].split()
        result[name] = result.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / ticks
    return result


def process_cpu(pid: int | None) -> float:
    """CPU seconds (user + system) a process has used so far (Linux /proc), 0 if unknown."""
    if pid is None:
        return 0.0
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat[stat.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        value = json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    assert isinstance(value, dict)
    return value


def measure_counting(bootstrap: str, partitions: int, expected: int, work: Path, cpu: int | None,
                     timeout: float, profile: Path | None = None, *, fast_drain: bool = False) -> dict[str, Any]:
    name = "count-fast" if fast_drain else "count"
    out = work / f"{name}.json"
    log_path = work / f"{name}.log"
    with open(log_path, "wb") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-m", "bench.streams", "count", "--bootstrap", bootstrap, "--partitions",
             str(partitions), "--expected", str(expected), "--out", str(out), "--data-dir", str(work),
             *(["--profile-out", str(profile)] if profile else []), *(["--fast-drain"] if fast_drain else [])],
            stdout=log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )
    pin(process.pid, cpu)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        raise SystemExit(f"counting agent did not finish in {timeout:.0f} s; see {log_path}") from None
    result = _read_json(out)
    if result is None:
        raise SystemExit(f"counting agent exited {process.returncode} without a result; see {log_path}")
    return result


def measure_worker(bootstrap: str, partitions: int, expected: int, work: Path, cpu: int | None, timeout: float,
                   domain: str, profile: Path | None, sample: Path | None = None) -> dict[str, Any]:
    stats_path = work / "worker-stats.json"
    env = {STATS_FILE_ENV: str(stats_path)}
    worker = WorkerProcess(bootstrap, data_dir=work / "worker", worker_id="bench", partitions=partitions,
                           domain=domain, env=env, loglevel="warning")
    if profile is not None:
        worker.python_args = ["-m", "cProfile", "-o", str(profile)]
    with worker:
        pin(worker.pid, cpu)
        sampler = None
        if sample is not None:
            sampler = subprocess.Popen(
                [str(Path(sys.executable).parent / "py-spy"), "record", "--pid", str(worker.pid), "--format", "raw",
                 "--output", str(sample), "--rate", "250", "--nonblocking"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while True:
            stats = _read_json(stats_path)
            if stats and stats["records"] >= expected and stats["last_batch_done_at"]:
                break
            if not worker.alive():
                raise SystemExit(f"worker exited {worker.returncode}:\n{worker.log_tail()}")
            if time.monotonic() > deadline:
                raise SystemExit(f"worker consumed {stats and stats['records']} of {expected} records in "
                                 f"{timeout:.0f} s:\n{worker.log_tail()}")
            time.sleep(0.2)
        time.sleep(0.5)  # let the stats settle (forwarded messages after the last ingest record)
        stats = _read_json(stats_path) or stats
        if sampler is not None:
            sampler.send_signal(signal.SIGINT)
            sampler.wait(30)
        stats["threads"] = thread_cpu(worker.pid)
    return stats


def print_samples(path: Path, limit: int = 25) -> None:
    """Summarise py-spy's collapsed stacks: where the worker's main thread spent its time."""
    own: dict[str, int] = {}
    inclusive: dict[str, int] = {}
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        count = int(count_text)
        # "func (file:line)" -> "func (file)": one entry per function, not per line
        frames = [re.sub(r":\d+\)$", ")", frame) for frame in stack.split(";")[1:]]  # first entry: the thread
        if not frames or "select (selectors.py" in frames[-1] or "epoll" in frames[-1]:
            continue  # idle in the event loop
        total += count
        own[frames[-1]] = own.get(frames[-1], 0) + count
        for frame in set(frames):
            inclusive[frame] = inclusive.get(frame, 0) + count
    print(f"\n-- worker, sampled (py-spy, busy samples: {total}) --")
    print("own time:")
    for frame, count in sorted(own.items(), key=lambda item: -item[1])[:limit]:
        print(f"  {100 * count / total:5.1f}%  {frame}")
    print("inclusive time:")
    for frame, count in sorted(inclusive.items(), key=lambda item: -item[1])[:limit * 2]:
        print(f"  {100 * count / total:5.1f}%  {frame}")


def print_profile(path: Path, title: str, limit: int = 30) -> None:
    stats = pstats.Stats(str(path))
    print(f"\n-- {title} profile: functions by own time (tottime) --")
    stats.sort_stats("tottime").print_stats(limit)
    print("-- by cumulative time --")
    stats.sort_stats("cumulative").print_stats(limit)


def default_domain() -> str:
    try:
        import streams.domain as real

        if hasattr(real, "apply_employee_batch"):
            return "streams.domain"
    except ImportError:
        pass
    return "tests.doubles.domain"


def _rates(count: int, stats: dict[str, Any]) -> tuple[float, float]:
    """(per wall-clock second, per CPU second of the process: all its threads) from first to last batch."""
    wall = stats["last_batch_done_at"] - stats["first_batch_at"]
    cpu = stats["last_batch_done_cpu"] - stats["first_batch_cpu"]
    return count / wall if wall > 0 else float("inf"), count / cpu if cpu > 0 else float("inf")


def run(args: argparse.Namespace) -> int:
    settings = Settings()
    settings = replace(settings, partitions=args.partitions or settings.partitions)
    domain = args.domain or default_domain()
    tuning = Tuning.from_env()
    best: dict[str, tuple[float, float]] = {}
    changes_per_record = 0.0

    def keep(name: str, rates: tuple[float, float]) -> None:
        old = best.get(name, (0.0, 0.0))
        best[name] = (max(old[0], rates[0]), max(old[1], rates[1]))

    with tempfile.TemporaryDirectory(prefix="bench-streams-") as tmp:
        work_root = Path(tmp)
        from esr.generate import generate_files

        started = time.monotonic()
        (path,) = generate_files(VPD, args.employees, 0, args.seed, work_root / "files")
        print(f"generated {path.name} ({args.employees:,} employees) in {time.monotonic() - started:.1f} s")
        print(f"domain: {domain}; faust tuning: {tuning}; "
              f"{'pinned to CPU ' + str(args.cpu) if args.cpu is not None else 'not pinned'}")
        for round_no in range(1, args.rounds + 1):
            work = work_root / f"round-{round_no}"
            work.mkdir()
            last = round_no == args.rounds
            with EmbeddedBroker.create(work / "broker") as broker, ledger_database(settings, work) as db_url:
                bootstrap = broker.bootstrap_servers
                records, seconds = publish(settings, bootstrap, db_url, path)
                print(f"round {round_no}: published {records:,} records to {settings.partitions} partitions in "
                      f"{seconds:.1f} s ({records / seconds:,.0f}/s)")
                count_profile = work / "count.prof" if args.profile and last else None
                load_before_count = os.getloadavg()[0]
                count = measure_counting(bootstrap, settings.partitions, records, work, args.cpu, args.timeout,
                                         count_profile)
                count_rates = _rates(count["events"], count)
                keep("count", count_rates)
                fast = measure_counting(bootstrap, settings.partitions, records, work, args.cpu, args.timeout,
                                        fast_drain=True)
                fast_rates = _rates(fast["events"], fast)
                keep("fast", fast_rates)
                profile = work / "worker.prof" if args.profile and last else None
                sample = work / "worker.samples" if args.sample and last else None
                broker_cpu = process_cpu(broker.pid)
                load_before_worker = os.getloadavg()[0]
                worker_started = time.monotonic()
                stats = measure_worker(bootstrap, settings.partitions, records, work, args.cpu, args.timeout,
                                       domain, profile, sample)
                worker_rates = _rates(stats["records"], stats)
                broker_cpu = process_cpu(broker.pid) - broker_cpu
                broker_share = broker_cpu / (time.monotonic() - worker_started)
                keep("worker", worker_rates)
                changes_per_record = stats["changes"] / stats["records"]
                print(f"  (a) counting agent, stock Faust consumer: {count_rates[0]:,.0f} events/s "
                      f"({count_rates[1]:,.0f} per CPU second)")
                print(f"      counting agent, FastDrainConsumer:     {fast_rates[0]:,.0f} events/s "
                      f"({fast_rates[1]:,.0f} per CPU second)")
                print(f"  (b) worker: {stats['records']:,} records -> {stats['changes']:,} change events, "
                      f"{stats['forwarded']:,} reference records forwarded, {stats['dead_letters']} dead letters, "
                      f"{stats['batches']} batches: {worker_rates[0]:,.0f} records/s "
                      f"({worker_rates[1]:,.0f} per CPU second), {worker_rates[0] * changes_per_record:,.0f} "
                      f"change events/s; waited {stats['settle_seconds']:.1f} s for output acknowledgements")
                threads = ", ".join(f"{name} {seconds:.1f}" for name, seconds in
                                    sorted(stats["threads"].items(), key=lambda item: -item[1]))
                print(f"      worker CPU seconds by thread (whole run, start-up included): {threads}; "
                      f"the broker used {broker_cpu:.1f} CPU s meanwhile ({broker_share:.0%} of a core)")
                print(f"      machine load (1-minute average) as (a) / (b) started: {load_before_count:.1f} / "
                      f"{load_before_worker:.1f} on {os.cpu_count()} CPUs (a busy machine lowers the wall-clock "
                      "rates most; compare the ratios, measured in the same round)")
                if count_profile is not None and count_profile.exists():
                    print_profile(count_profile, "counting agent")
                if profile is not None and profile.exists():
                    print_profile(profile, "worker")
                if sample is not None and sample.exists():
                    print_samples(sample)
    best_worker, stock, best_fast = best["worker"], best["count"], best["fast"]
    print(f"\nbest of {args.rounds} round(s)        per second (wall)   per CPU second")
    print(f"  counting agent (stock)      {stock[0]:>12,.0f}   {stock[1]:>14,.0f}")
    print(f"  counting agent (fast drain) {best_fast[0]:>12,.0f}   {best_fast[1]:>14,.0f}")
    print(f"  worker records              {best_worker[0]:>12,.0f}   {best_worker[1]:>14,.0f}")
    print(f"  worker change events        {best_worker[0] * changes_per_record:>12,.0f}   "
          f"{best_worker[1] * changes_per_record:>14,.0f}")
    print(f"  ratio worker / stock counting agent: {best_worker[0] / stock[0]:.2f} (wall), "
          f"{best_worker[1] / stock[1]:.2f} (CPU)")
    print(f"  ratio worker / fast-drain counting agent: {best_worker[0] / best_fast[0]:.2f} (wall), "
          f"{best_worker[1] / best_fast[1]:.2f} (CPU)")
    ok = best_worker[0] >= TARGET_RATE and best_worker[0] / stock[0] >= TARGET_RATIO
    print(f"target (>= {TARGET_RATE:,.0f} records/s and >= {TARGET_RATIO:.0%} of the counting agent, wall clock): "
          f"{'met' if ok else 'NOT met'}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.streams", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command")
    count = sub.add_parser("count", help="(internal) the counting agent")
    count.add_argument("--bootstrap", required=True)
    count.add_argument("--partitions", type=int, required=True)
    count.add_argument("--expected", type=int, required=True)
    count.add_argument("--out", type=Path, required=True)
    count.add_argument("--data-dir", type=Path, required=True)
    count.add_argument("--profile-out", type=Path, default=None)
    count.add_argument("--fast-drain", action="store_true")
    parser.add_argument("--employees", type=int, default=40_000)
    parser.add_argument("--partitions", type=int, default=None, help="default: ESR_PARTITIONS or 6")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--domain", default=None, help="domain module (default: streams.domain, else the double)")
    parser.add_argument("--cpu", type=int, default=-1, help="pin each Faust process to this CPU (-1: no pinning)")
    parser.add_argument("--rounds", type=int, default=3, help="best of this many rounds (fresh broker each)")
    parser.add_argument("--timeout", type=float, default=300.0)
    parser.add_argument("--profile", action="store_true", help="run the worker under cProfile")
    parser.add_argument("--sample", action="store_true", help="sample the worker with py-spy (if installed)")
    args = parser.parse_args(argv)
    if args.command == "count":
        run_counting_agent(args.bootstrap, args.partitions, args.expected, args.out, args.data_dir, args.profile_out,
                           args.fast_drain)
        return 0
    if args.cpu is not None and args.cpu < 0:
        args.cpu = None
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
