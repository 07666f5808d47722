"""The stream processor end to end on the embedded broker: ingest job -> worker(s) -> esr.changes."""

from __future__ import annotations

import time
import uuid
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Message, Producer
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from esr.codec import Decoder
from esr.kafka.topics import CHANGES, DLQ_OFFSET, DLQ_PARTITION, DLQ_PROCESS, DLQ_REASON, DLQ_TOPIC, EMPLOYEES, RECORDS
from esr.runtime.broker import EmbeddedBroker
from streams.app import STATS_FILE_ENV
from streams.partitioner import partition_for
from streams.worker import WorkerProcess
from tests.integration.streams.conftest import (
    PARTITIONS,
    Published,
    copy_inputs,
    messages,
    publish_files,
    stats_of,
    wait_processed,
    workers,
)

pytestmark = pytest.mark.integration

PERSON_RECORDS = {"PRA", "PRD", "ASA", "ASD", "PHA", "PHD", "ADA", "ADD", "VHA", "VHD", "COA", "COD"}


def test_keys_are_placed_like_librdkafka_murmur2_random(broker: EmbeddedBroker) -> None:
    """The Faust producer's partitioner and the ingest job's must put every key on the same partition."""
    topic = f"placement-{uuid.uuid4().hex[:6]}"

    admin = AdminClient({"bootstrap.servers": broker.bootstrap_servers})  # kept alive until the topic exists
    for future in admin.create_topics([NewTopic(topic, num_partitions=6, replication_factor=1)]).values():
        future.result()
    producer = Producer({"bootstrap.servers": broker.bootstrap_servers, "partitioner": "murmur2_random"})
    keys = [f"999:{n}".encode() for n in range(300)] + [f"999:LOCATION:{n}".encode() for n in range(50)]
    for key in keys:
        producer.produce(topic, b"x", key)
    assert producer.flush(20) == 0
    placed = {m.key(): m.partition() for m in messages(broker.bootstrap_servers, topic, idle=1.0)}
    assert len(placed) == len(keys)
    assert {key: partition_for(key, 6) for key in keys} == placed


def headers_of(message: Message) -> dict[str, bytes]:
    raw = message.headers() or []
    items = raw.items() if isinstance(raw, dict) else raw
    return {name: value for name, value in items if isinstance(value, bytes)}


Change = tuple[bytes, int, dict[str, Any], dict[str, bytes]]


def _changes(bootstrap: str) -> list[Change]:
    """esr.changes decoded: (key, partition, event, headers)."""
    decoder = Decoder("change-event")
    out: list[Change] = []
    for message in messages(bootstrap, CHANGES):
        key, partition, value = message.key(), message.partition(), message.value()
        assert key is not None
        assert partition is not None
        assert value is not None
        out.append((key, partition, decoder.decode(value), headers_of(message)))
    return out


def test_worker_turns_files_into_decodable_ordered_change_events(
        broker: EmbeddedBroker, published: Published, tmp_path: Path) -> None:
    bootstrap = broker.bootstrap_servers
    with workers(bootstrap, tmp_path / "workers") as group:
        wait_processed(group, published.records)
        changes = _changes(bootstrap)
        states = messages(bootstrap, EMPLOYEES)
        dead = messages(bootstrap, DLQ_PROCESS, idle=0.5)
    assert not dead, [dict(m.headers() or []) for m in dead]
    types = Counter(event["event_type"] for _, _, event, _ in changes)
    assert types["NEW_STARTER"] >= 60, types  # every employee of the full file (and new starters after it)
    assert types["ASSIGNMENT_STARTED"] >= 60, types
    assert len({event["event_id"] for _, _, event, _ in changes}) == len(changes), "event ids repeat"
    by_key: dict[bytes, list[dict[str, object]]] = defaultdict(list)
    for key, partition, event, headers in changes:
        assert headers["esr.event_type"].decode() == event["event_type"]
        assert headers["content-type"].startswith(b"application/avro")
        if event["person_id"] is not None:
            assert key == f"{event['vpd']}:{event['person_id']}".encode()
            assert partition == partition_for(key, PARTITIONS)
        by_key[key].append(event)
    # per key, the events caused by the key's own records come in the order of those records
    for key, events in by_key.items():
        own = [e["source"] for e in events if e["source"]["record_code"] in PERSON_RECORDS]  # type: ignore[index]
        offsets = [source["offset"] for source in own]  # type: ignore[index]
        assert offsets == sorted(offsets), (key, offsets)
    # esr.employees: the latest state of every employee key that got events
    latest = {m.key(): m.value() for m in states}
    person_keys = {key for key, events in by_key.items() if any(e["person_id"] for e in events)}
    assert person_keys <= set(latest)
    deleted = {key for key, events in by_key.items() if events[-1]["event_type"] == "PERSON_DELETED"}
    assert all(latest[key] is None for key in deleted)
    assert all(latest[key] is not None for key in person_keys - deleted)


def test_two_workers_emit_the_same_event_ids_as_one(
        broker: EmbeddedBroker, published: Published, tmp_path: Path) -> None:
    bootstrap = broker.bootstrap_servers
    with workers(bootstrap, tmp_path / "one") as group:
        wait_processed(group, published.records)
        one = {event["event_id"] for _, _, event, _ in _changes(bootstrap)}
    with EmbeddedBroker.create(tmp_path / "broker-2") as second:
        copy_inputs(bootstrap, second.bootstrap_servers)
        with workers(second.bootstrap_servers, tmp_path / "two", count=2) as pair:
            wait_processed(pair, published.records, timeout=90)
            two = {event["event_id"] for _, _, event, _ in _changes(second.bootstrap_servers)}
            shares = [w.data_dir / f"{w.worker_id}.stats.json" for w in pair]
    assert all(path.exists() for path in shares), "both workers must have processed partitions"
    assert one, "no events"
    assert two == one, (len(one - two), len(two - one))


def test_undecodable_record_goes_to_the_dead_letter_queue_and_the_rest_is_processed(
        broker: EmbeddedBroker, database_url: str, small_files: list[Path], tmp_path: Path) -> None:
    bootstrap = broker.bootstrap_servers
    records = publish_files(bootstrap, database_url, small_files[:1])
    producer = Producer({"bootstrap.servers": bootstrap, "partitioner": "murmur2_random"})
    producer.produce(RECORDS, b"\x00not avro", b"999:12345678")
    producer.produce(RECORDS, b"\xc3\x01" + b"\x00" * 12, b"999:87654321")  # single-object frame, unknown schema
    assert producer.flush(10) == 0
    with workers(bootstrap, tmp_path / "workers") as group:
        wait_processed(group, records + 2)
        dead = messages(bootstrap, DLQ_PROCESS)
        changes = messages(bootstrap, CHANGES)
    assert len(dead) == 2
    for message in dead:
        headers = headers_of(message)
        key = message.key()
        assert key is not None
        assert headers[DLQ_TOPIC] == RECORDS.encode()
        assert int(headers[DLQ_PARTITION]) == partition_for(key, PARTITIONS)
        assert int(headers[DLQ_OFFSET]) >= 0
        assert b"undecodable" in headers[DLQ_REASON]
    assert len(changes) > records / 2


def test_a_restarted_worker_recovers_its_tables_from_the_changelogs(
        broker: EmbeddedBroker, database_url: str, small_files: list[Path], tmp_path: Path) -> None:
    """Tansu under-reports high watermarks; the recovered state must still be complete: after a restart,
    re-sent records of known employees must not look like new starters."""
    bootstrap = broker.bootstrap_servers
    full = publish_files(bootstrap, database_url, small_files[:1])
    with workers(bootstrap, tmp_path / "first") as group:
        wait_processed(group, full)
    first = _changes(bootstrap)
    first_ids = {event["event_id"] for _, _, event, _ in first}
    known = {event["person_id"] for _, _, event, _ in first if event["event_type"] == "NEW_STARTER"}
    changes = publish_files(bootstrap, database_url, small_files[1:])
    with workers(bootstrap, tmp_path / "second") as group:
        wait_processed(group, changes)
        log = group[0].log_text()
    assert "Recovery complete" in log
    later = [event for _, _, event, _ in _changes(bootstrap) if event["event_id"] not in first_ids]
    assert later, "the change files made no events"
    again = [event["person_id"] for event in later if event["event_type"] == "NEW_STARTER"
             and event["person_id"] in known]
    assert not again, f"known employees seen as new starters after the restart: {again}"


def test_a_worker_killed_mid_file_loses_no_change_event(
        broker: EmbeddedBroker, database_url: str, tmp_path: Path) -> None:
    """SIGKILL in the middle of a file (no commit, no flush), restart: the set of event ids is exactly the one
    of an uninterrupted run. Redelivered duplicates are allowed (at-least-once; the sink ignores a known
    event_id), lost or new ids are not."""
    from esr.generate import generate_files

    paths = generate_files("999", 400, 1, 9, tmp_path / "files")
    total = publish_files(broker.bootstrap_servers, database_url, paths)
    with workers(broker.bootstrap_servers, tmp_path / "reference") as group:
        wait_processed(group, total)
    expected = {event["event_id"] for _, _, event, _ in _changes(broker.bootstrap_servers)}

    with EmbeddedBroker.create(tmp_path / "broker-2") as second:
        bootstrap = second.bootstrap_servers
        copy_inputs(broker.bootstrap_servers, bootstrap)
        slow = {"ESR_STREAMS_BATCH_SIZE": "40", "ESR_STREAMS_BATCH_WITHIN": "0.05"}
        data_dir = tmp_path / "crash"
        victim = WorkerProcess(bootstrap, data_dir=data_dir, worker_id="victim", partitions=PARTITIONS,
                               env={**slow, STATS_FILE_ENV: str(data_dir / "victim.stats.json")})
        with victim:
            deadline = time.monotonic() + 60
            while stats_of(data_dir / "victim.stats.json").get("records", 0) < total // 4:
                assert victim.alive(), victim.log_tail()
                assert time.monotonic() < deadline, victim.log_tail()
                time.sleep(0.02)
            victim.kill()
        killed_at = stats_of(data_dir / "victim.stats.json").get("records", 0)
        with workers(bootstrap, tmp_path / "restart") as group:
            # it resumes from the last committed offsets, which may be anywhere before the kill: wait for the
            # expected ids (or the deadline), then let it run a little longer to see anything unexpected
            deadline = time.monotonic() + 60
            delivered: list[str] = []
            while time.monotonic() < deadline and not expected <= set(delivered):
                wait_processed(group, 1)
                delivered = [event["event_id"] for _, _, event, _ in _changes(bootstrap)]
            wait_processed(group, 1)
            delivered = [event["event_id"] for _, _, event, _ in _changes(bootstrap)]
    assert killed_at < total, "the worker finished before it was killed: nothing was tested"
    lost, unexpected = expected - set(delivered), set(delivered) - expected
    assert not lost, f"{len(lost)} event ids lost ({len(unexpected)} unexpected)"
    assert not unexpected, f"{len(unexpected)} unexpected event ids"
