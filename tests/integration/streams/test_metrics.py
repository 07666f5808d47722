"""The worker's Prometheus endpoint (ESR_METRICS_PORT) and the consumer lag it reports, on the real broker."""

from __future__ import annotations

import time
import urllib.request
import uuid
from collections import Counter
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]
from prometheus_client.parser import text_string_to_metric_families

from esr.kafka.topics import RECORDS
from esr.runtime.broker import EmbeddedBroker, free_port
from streams.app import APP_ID, STATS_FILE_ENV
from streams.metrics import group_lag
from streams.worker import WorkerProcess
from tests.integration.streams.conftest import PARTITIONS, Published, wait_processed
from tests.integration.streams.test_worker import _changes

pytestmark = pytest.mark.integration

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(port: int) -> Samples:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


def test_lag_is_counted_to_the_real_end_not_to_the_reported_high_watermark(broker: EmbeddedBroker) -> None:
    bootstrap = broker.bootstrap_servers
    topic, group = f"lag-{uuid.uuid4().hex[:6]}", f"group-{uuid.uuid4().hex[:6]}"
    admin = AdminClient({"bootstrap.servers": bootstrap})  # kept alive until the topic exists
    for future in admin.create_topics([NewTopic(topic, num_partitions=2, replication_factor=1)]).values():
        future.result()
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 50})  # a few large batches
    for n in range(100):
        producer.produce(topic, b"x", partition=0)
        if n < 3:
            producer.produce(topic, b"y", partition=1)
    assert producer.flush(20) == 0
    committer = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False})
    committer.commit(offsets=[TopicPartition(topic, 0, 10)], asynchronous=False)
    committer.close()
    assert group_lag({"bootstrap.servers": bootstrap}, group, topic, 2) == {0: 90, 1: 3}


def test_the_worker_serves_events_by_type_records_dead_letters_batches_and_lag(
        broker: EmbeddedBroker, published: Published, tmp_path: Path) -> None:
    bootstrap = broker.bootstrap_servers
    producer = Producer({"bootstrap.servers": bootstrap, "partitioner": "murmur2_random"})
    producer.produce(RECORDS, b"\x00not avro", b"999:12345678")
    producer.produce(RECORDS, b"\x00not avro either", b"999:87654321")
    assert producer.flush(10) == 0
    port = free_port()
    data_dir = tmp_path / "worker"
    worker = WorkerProcess(bootstrap, data_dir=data_dir, worker_id="w1", partitions=PARTITIONS, env={
        "ESR_METRICS_PORT": str(port), "ESR_STREAMS_LAG_INTERVAL": "1", STATS_FILE_ENV: str(data_dir / "w1.stats.json"),
    })
    with worker:
        wait_processed([worker], published.records + 2)
        expected = Counter(event["event_type"] for _, _, event, _ in _changes(bootstrap))
        deadline = time.monotonic() + 30
        while True:  # counters are collected every second, offsets committed every few
            samples = scrape(port)
            lags = {dict(labels)["partition"]: value for (name, labels), value in samples.items()
                    if name == "esr_consumer_lag" and dict(labels)["group"] == APP_ID}
            changes = {dict(labels)["event_type"]: value for (name, labels), value in samples.items()
                       if name == "esr_change_events_total"}
            if (len(lags) == PARTITIONS and not any(lags.values()) and changes == expected) \
                    or time.monotonic() > deadline:
                break
            time.sleep(0.5)
    assert changes == expected
    assert samples["esr_worker_records_consumed_total", ()] == published.records + 2
    assert samples["esr_dead_letters_total", (("stage", "process"),)] == 2
    assert samples["esr_worker_batches_total", ()] >= 1
    assert lags == {str(p): 0 for p in range(PARTITIONS)}
    assert {dict(labels)["topic"] for (name, labels) in samples if name == "esr_consumer_lag"} == {RECORDS}
