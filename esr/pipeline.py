"""`esr run`: the whole pipeline in one command — broker, stream worker, sink, ingest, wait, summary.

    with Pipeline.open(settings) as pipeline:       # broker up (embedded unless configured), database
        pipeline.rebuild_state()                     # a fresh broker: replay the archived files first
        reports = pipeline.ingest(paths)
        pipeline.wait_until_caught_up()              # the database holds every change of those files
        summary = pipeline.summary(reports)

Caught up (Tansu's high watermark is wrong, DESIGN §7, so no watermark is trusted here):
1. the worker: its committed offset on every partition of `esr.records` equals the topic's real end,
   found by reading each partition from that offset to librdkafka's end-of-partition event;
2. the mapping stage (a child process too, `streams.mapping_stage.MappingProcess`): the positions it last
   wrote to its status file say it has mapped and published everything up to the real end of
   `esr.employees` and of the worker's reference replicas;
3. the sink: its offsets stored in PostgreSQL (in the same transactions as the data) have reached the
   real end of every partition of `esr.changes`, found the same way once the worker is caught up;
4. the employee sink (a thread, `connectors.sink.employee`): the same for `esr.mapped-changes`.

State across runs. The embedded broker keeps nothing, so on a fresh broker the worker's tables are
empty. Before it ingests anything new, `rebuild_state` publishes again every file the ledger holds as
published, from the archive (`<data dir>/archive`, where `esr run` keeps a copy of each file it
publishes), in the order they were first ingested. The worker then rebuilds exactly the state it had and
emits exactly the events it emitted then (event ids are deterministic), which the sink already holds and
ignores. The next new file is diffed against that state: it yields exactly the events an uninterrupted
pipeline would have emitted, and no one becomes a new starter twice.

Trust profiles. Every trust's profile is published to `esr.trust-profiles` before the worker starts (a
fresh broker has none); `esr trust add|set` publish a change while it runs. A replayed full file is
reconciled with the trust's profile as it is now (`full_file_absence`), not as it was then.
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from connectors.file_source.ingest import FileIngest, FileReport, IngestSettings
from connectors.file_source.ledger import Ledger
from connectors.sink.database import reset_offsets
from connectors.sink.employee import EMPLOYEE_GROUP, EmployeeSink, employee_sink_caught_up
from connectors.sink.sink import DEFAULT_GROUP, Sink, SinkSettings
from esr.config import Settings
from esr.kafka.config import client_config, producer_config
from esr.kafka.producer import Publisher
from esr.kafka.profiles import publish_profiles
from esr.kafka.reading import TopicReadError, committed_offsets, end_offsets
from esr.kafka.topics import CHANGES, MAPPED_CHANGES, RECORDS, ensure_topics
from esr.mapping.store import latest_versions
from esr.runtime.broker import EmbeddedBroker
from streams.app import APP_ID
from streams.mapping_stage import MappingProcess, publish_templates
from streams.topics import ensure_stream_topics
from streams.worker import WorkerProcess

log = logging.getLogger(__name__)

READ_MODEL_TABLES = (
    "person", "assignment", "home_address", "phone", "vehicle", "costing",
    "location", "organisation", "position", "change_event", "employee",
)


class PipelineError(RuntimeError):
    pass


@dataclass
class Summary:
    files: list[FileReport]
    events_by_type: dict[str, int]
    rows_by_table: dict[str, int]
    seconds: float
    stages: dict[str, float] = field(default_factory=dict)


@dataclass
class Pipeline:
    settings: Settings
    bootstrap_servers: str
    database_url: str
    stack: ExitStack
    echo: Callable[[str], None] = print
    worker: WorkerProcess | None = None
    sink: Sink | None = None
    fresh_broker: bool = False
    stages: dict[str, float] = field(default_factory=dict)
    _sink_thread: threading.Thread | None = None
    _sink_stop: threading.Event = field(default_factory=threading.Event)
    _sink_error: BaseException | None = None
    _publisher: Publisher | None = None
    mapping: MappingProcess | None = None
    employee_sink: EmployeeSink | None = None
    _threads: list[threading.Thread] = field(default_factory=list)
    _thread_errors: dict[str, BaseException] = field(default_factory=dict)

    @classmethod
    @contextmanager
    def open(cls, settings: Settings, database_url: str, echo: Callable[[str], None] = print) -> Iterator[Pipeline]:
        with ExitStack() as stack:
            bootstrap = settings.bootstrap_servers
            if not bootstrap:
                embedded = stack.enter_context(EmbeddedBroker.create(settings.data_dir))
                bootstrap = embedded.bootstrap_servers
                echo(f"embedded broker (Tansu, memory only) on {bootstrap}")
            settings = dataclasses.replace(settings, bootstrap_servers=bootstrap)
            pipeline = cls(settings, bootstrap, database_url, stack, echo)
            try:  # a start that fails half-way stops what it had started (child processes included)
                pipeline._start()
                yield pipeline
            finally:
                pipeline._stop()

    @property
    def archive_dir(self) -> Path:
        return self.settings.data_dir / "archive"

    def _client(self) -> dict[str, Any]:
        return client_config(self.settings, self.bootstrap_servers)

    def _reader(self) -> dict[str, Any]:
        """For the catch-up checks' short-lived readers: at the end of a partition the broker holds each fetch
        for `fetch.wait.max.ms` before librdkafka reports the end (0.6 s a check at the default 500 ms, 0.2 s
        at 10 ms, measured; a wait makes five checks)."""
        return {**self._client(), "fetch.wait.max.ms": 10}

    def _start(self) -> None:
        created = ensure_topics(self._client(), self.settings.partitions, self.settings.replication_factor)
        ensure_stream_topics(self._client(), self.settings.partitions, self.settings.replication_factor)
        self.fresh_broker = RECORDS in created
        if self.fresh_broker:
            # offsets stored against yesterday's topics mean nothing on a new broker
            reset_offsets(self.database_url, DEFAULT_GROUP, CHANGES)
            reset_offsets(self.database_url, EMPLOYEE_GROUP, MAPPED_CHANGES)
        with Ledger(self.database_url) as ledger:  # the worker reads them before its first batch
            publish_profiles(producer_config(self.settings, self.bootstrap_servers), ledger.profiles())
        started = time.monotonic()
        self.worker = WorkerProcess(
            self.bootstrap_servers, data_dir=self.settings.data_dir / "worker", partitions=self.settings.partitions
        ).start()
        self.worker.wait_ready(timeout=120)
        self.stages["worker start"] = time.monotonic() - started
        self.sink = Sink(SinkSettings(
            bootstrap_servers=self.bootstrap_servers,
            database_url=self.database_url,
            kafka_overrides=self.settings.kafka_overrides,
        ))
        self._sink_thread = threading.Thread(target=self._run_sink, name="esr-sink", daemon=True)
        self._sink_thread.start()
        self._start_mapping()

    def _start_mapping(self) -> None:
        """The mapping stage (told every trust's saved template first) in a child process: as a thread of this
        one it competed with the sink for the GIL, and the sink ended a 50,000-employee full file 17 s after
        the worker instead of 2 s (bench.pipeline). The employee sink, a thread."""
        with psycopg.connect(self.database_url) as conn:
            publish_templates(self._client(), latest_versions(conn))
        self.mapping = MappingProcess(self.bootstrap_servers, data_dir=self.settings.data_dir / "mapping").start()
        self.employee_sink = EmployeeSink(self.bootstrap_servers, self.database_url,
                                          kafka_overrides=self.settings.kafka_overrides)
        thread = threading.Thread(target=self._run_thread, args=("employee sink", self.employee_sink.run),
                                  name="esr-employee-sink", daemon=True)
        thread.start()
        self._threads.append(thread)

    def _run_thread(self, name: str, target: Callable[[threading.Event], Any]) -> None:
        try:
            target(self._sink_stop)
        except BaseException as exc:
            self._thread_errors[name] = exc
            log.exception("the %s stopped", name)

    def _run_sink(self) -> None:
        assert self.sink is not None
        try:
            self.sink.run(self._sink_stop)
        except BaseException as exc:
            self._sink_error = exc
            log.exception("the sink stopped")

    def _stop(self) -> None:
        self._publisher = None  # before the broker goes: a live producer would keep reconnecting to it
        self._sink_stop.set()
        if self._sink_thread is not None:
            self._sink_thread.join(60)
        for thread in self._threads:
            thread.join(60)
        if self.sink is not None:
            self.sink.close()
        if self.mapping is not None:
            self.mapping.stop()
        if self.worker is not None:
            self.worker.stop()

    # -- ingest ---------------------------------------------------------------------------------------

    @contextmanager
    def _job(self, *, force: bool = False) -> Iterator[FileIngest]:
        if self._publisher is None:
            self._publisher = Publisher(producer_config(self.settings, self.bootstrap_servers))
        with Ledger(self.database_url) as ledger:
            yield FileIngest(ledger, self._publisher, IngestSettings(force=force))

    def _archived(self, vpd: str, sha256: str, file_name: str) -> Path:
        """Where the archive keeps a file: by trust and content, under its own name (which the checks need)."""
        return self.archive_dir / vpd / sha256[:16] / file_name

    def _archive(self, report: FileReport) -> None:
        if report.status != "published" or report.sha256 is None or report.vpd is None:
            return
        target = self._archived(report.vpd, report.sha256, report.file_name)
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(report.path, target)

    def ingest(
        self, paths: Sequence[Path], *, on_report: Callable[[FileReport], None] | None = None, force: bool = False
    ) -> list[FileReport]:
        started = time.monotonic()
        reports = []
        with self._job(force=force) as job:
            for path in paths:
                report = job.ingest(path)
                self._archive(report)
                reports.append(report)
                if on_report is not None:
                    on_report(report)
        self.stages["ingest"] = self.stages.get("ingest", 0.0) + time.monotonic() - started
        return reports

    def rebuild_state(self) -> int:
        """On a fresh broker, republish every published file of the ledger from the archive (module doc).
        Returns the number of files replayed."""
        if not self.fresh_broker:
            return 0
        with psycopg.connect(self.database_url) as conn:
            rows = conn.execute(
                "SELECT sha256, vpd, file_name FROM esr.import_file WHERE status IN ('published', 'completed')"
                " ORDER BY completed_at, received_at"
            ).fetchall()
        if not rows:
            return 0
        started = time.monotonic()
        missing: list[Path] = []
        paths: list[Path] = []
        for sha256, vpd, file_name in rows:
            path = self._archived(vpd, sha256, file_name)
            (paths if path.exists() else missing).append(path)
        if missing:
            raise PipelineError(
                f"the broker is new and {len(missing)} published file(s) are not in the archive "
                f"({', '.join(p.name for p in missing[:3])}...): the stream state cannot be rebuilt. "
                f"Put copies in {self.archive_dir}/<vpd>/<first 16 of the SHA-256>/<name>, or use a persistent Kafka."
            )
        self.echo(f"fresh broker: rebuilding the stream state from {len(paths)} archived file(s)")
        with self._job() as job:
            for path in paths:
                job.republish(path)
        self.wait_until_caught_up()
        self.stages["rebuild state"] = time.monotonic() - started
        return len(paths)

    # -- waiting --------------------------------------------------------------------------------------

    def _worker_caught_up(self) -> bool:
        partitions = self.settings.partitions
        committed = committed_offsets(self._reader(), APP_ID, RECORDS, partitions)
        return end_offsets(self._reader(), RECORDS, committed) == committed

    def _sink_caught_up(self) -> bool:
        with psycopg.connect(self.database_url) as conn:
            stored: dict[int, int] = dict(conn.execute(
                "SELECT partition, next_offset FROM esr.sink_offset WHERE consumer_group = %s AND topic = %s",
                (DEFAULT_GROUP, CHANGES),
            ).fetchall())
        start = {p: int(stored.get(p, 0)) for p in range(self.settings.partitions)}
        return end_offsets(self._reader(), CHANGES, start) == start

    def _mapping_caught_up(self) -> bool:
        return self.mapping is None or self.mapping.caught_up(self._reader())

    def _employee_sink_caught_up(self) -> bool:
        return employee_sink_caught_up(self._reader(), self.database_url, self.settings.partitions)

    def wait_until_caught_up(self, timeout: float = 900.0) -> None:
        started = time.monotonic()
        deadline = started + timeout
        for name, check in (("worker", self._worker_caught_up), ("mapping stage", self._mapping_caught_up),
                            ("sink", self._sink_caught_up), ("employee sink", self._employee_sink_caught_up)):
            while not self._check(check):
                self._raise_if_broken()
                if time.monotonic() > deadline:
                    raise PipelineError(f"the {name} did not catch up within {timeout:.0f} s")
                time.sleep(0.5)
            self.stages[f"{name} catch-up"] = self.stages.get(f"{name} catch-up", 0.0) + (
                time.monotonic() - started
            )

    @staticmethod
    def _check(check: Callable[[], bool]) -> bool:
        try:
            return check()
        except TopicReadError as exc:
            raise PipelineError(str(exc)) from None

    def _raise_if_broken(self) -> None:
        if self.worker is not None and not self.worker.alive():
            raise PipelineError(f"the stream worker exited; its log:\n{self.worker.log_tail()}")
        if self.mapping is not None and not self.mapping.alive():
            raise PipelineError(f"the mapping stage exited; its log:\n{self.mapping.log_tail()}")
        if self._sink_error is not None:
            raise PipelineError(f"the sink stopped: {self._sink_error}")
        for name, error in self._thread_errors.items():
            raise PipelineError(f"the {name} stopped: {error}")

    # -- summary --------------------------------------------------------------------------------------

    def summary(self, reports: list[FileReport], seconds: float, since: Any) -> Summary:
        with psycopg.connect(self.database_url) as conn:
            events: dict[str, int] = dict(conn.execute(
                "SELECT event_type, count(*) FROM esr.change_event WHERE recorded_at >= %s"
                " GROUP BY event_type ORDER BY event_type",
                (since,),
            ).fetchall())
            rows = {
                table: conn.execute(f"SELECT count(*) FROM esr.{table}").fetchone()[0]  # type: ignore[index]
                for table in READ_MODEL_TABLES
            }
        return Summary(reports, events, rows, seconds, dict(self.stages))
