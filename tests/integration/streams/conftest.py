"""Helpers of the stream-processor integration tests: publish generated files, run workers, read outputs."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Message, Producer

from connectors.file_source.ingest import FileIngest, IngestSettings
from connectors.file_source.ledger import Ledger
from esr.config import Settings
from esr.generate import generate_files
from esr.kafka.config import client_config, producer_config
from esr.kafka.producer import Publisher
from esr.kafka.topics import CONTROL, RECORDS
from esr.runtime.broker import EmbeddedBroker
from streams.app import STATS_FILE_ENV
from streams.topics import ensure_stream_topics
from streams.worker import WorkerProcess
from tests.kafka_helpers import consume_all

PARTITIONS = 4
VPD = "999"


@dataclass(frozen=True)
class Published:
    paths: list[Path]
    records: int  # record events on esr.records


def publish_files(bootstrap: str, database_url: str, paths: Sequence[Path], *, partitions: int = PARTITIONS) -> int:
    """Ingest `paths` in order with the real ingest job; the number of record events published."""
    settings = Settings(partitions=partitions)
    ensure_stream_topics(client_config(settings, bootstrap), partitions)
    records = 0
    with Ledger(database_url) as ledger:
        if ledger.trust(VPD) is None:
            ledger.add_trust(VPD, "Test NHS Trust")
        job = FileIngest(ledger, Publisher(producer_config(settings, bootstrap)), IngestSettings())
        for path in paths:
            report = job.ingest(path)
            assert report.status == "published", (path.name, report.status, report.message)
            records += report.record_count
    return records


@pytest.fixture(scope="session")
def small_files(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """A full file of 60 employees and two daily change files."""
    return generate_files(VPD, 60, 2, 5, tmp_path_factory.mktemp("esr-files"))


@pytest.fixture
def published(broker: EmbeddedBroker, database_url: str, small_files: list[Path]) -> Published:
    return Published(small_files, publish_files(broker.bootstrap_servers, database_url, small_files))


def copy_inputs(source: str, target: str, *, partitions: int = PARTITIONS) -> None:
    """Copy esr.records and esr.control partition by partition (same offsets order) to another broker."""
    ensure_stream_topics({"bootstrap.servers": target}, partitions)
    producer = Producer({"bootstrap.servers": target, "enable.idempotence": True, "linger.ms": 5})
    for topic in (RECORDS, CONTROL):
        for message in consume_all(source, topic, idle=1.0):
            partition = message.partition()
            assert partition is not None
            producer.produce(topic, message.value(), message.key(), partition, headers=message.headers())
    assert producer.flush(30) == 0


def stats_of(path: Path) -> dict[str, Any]:
    try:
        value = json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}
    assert isinstance(value, dict)
    return value


@contextmanager
def workers(bootstrap: str, data_dir: Path, count: int = 1, *, domain: str | None = None,
            partitions: int = PARTITIONS) -> Iterator[list[WorkerProcess]]:
    """`count` workers of one consumer group; stopped (SIGTERM) on exit."""
    with ExitStack() as stack:
        started = []
        for n in range(1, count + 1):
            worker = WorkerProcess(bootstrap, data_dir=data_dir, worker_id=f"w{n}", partitions=partitions,
                                   domain=domain, env={STATS_FILE_ENV: str(data_dir / f"w{n}.stats.json")})
            started.append(stack.enter_context(worker))
        yield started


def records_done(group: list[WorkerProcess]) -> int:
    return sum(stats_of(w.data_dir / f"{w.worker_id}.stats.json").get("records", 0) for w in group)


def wait_processed(group: list[WorkerProcess], records: int, timeout: float = 60.0) -> None:
    """Until the workers together have consumed `records` ingest records and their counters stop moving."""
    deadline = time.monotonic() + timeout
    last: tuple[Any, ...] = ()
    still_since = time.monotonic()
    while time.monotonic() < deadline:
        for worker in group:
            assert worker.alive(), f"worker {worker.worker_id} died:\n{worker.log_tail()}"
        snapshot = tuple(
            (s.get("records"), s.get("batches"), s.get("last_batch_done_at"))
            for s in (stats_of(w.data_dir / f"{w.worker_id}.stats.json") for w in group)
        )
        if snapshot != last:
            last, still_since = snapshot, time.monotonic()
        elif records_done(group) >= records and time.monotonic() - still_since > 1.5:
            return
        time.sleep(0.2)
    logs = "\n".join(f"--- {w.worker_id}\n{w.log_tail()}" for w in group)
    raise TimeoutError(f"workers consumed {records_done(group)} of {records} records in {timeout:.0f} s\n{logs}")


def messages(bootstrap: str, topic: str, idle: float = 1.5) -> list[Message]:
    return consume_all(bootstrap, topic, idle=idle)
