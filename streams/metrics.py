"""The stream worker's Prometheus metrics, served on `ESR_METRICS_PORT` (declared in `esr.observability.metrics`).

- `esr_change_events_total{event_type}` and `esr_dead_letters_total{stage}`: counted as the worker's output
  producer sends them (`MeteredOutput`, used only when metrics are on: a dict increment per message then,
  nothing otherwise), so a record whose outputs a replay mutes counts nothing;
- `esr_worker_records_consumed_total`, `esr_worker_batches_total`: from the processor's own counters;
- `esr_consumer_lag{group, topic, partition}`: the worker group's committed offset on each partition of
  `esr.records` against the partition's real end (`group_lag`).

`WorkerMetrics.collect` moves the counts into Prometheus (a Faust timer, in the agent's event loop, like the
sends it reads); `measure_lag` runs in an executor every `lag_interval` seconds, as it waits on the broker.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from confluent_kafka import Consumer, TopicPartition

from esr.kafka.reading import committed_offsets, end_offsets
from esr.kafka.topics import CHANGES, DLQ_STAGE, RECORDS
from esr.observability.metrics import CHANGE_EVENTS, CONSUMER_LAG, DEAD_LETTERS, WORKER_BATCHES, WORKER_RECORDS
from streams.agents import EVENT_TYPE_HEADER, EmployeesProcessor
from streams.output import Output

log = logging.getLogger(__name__)

DLQ_PREFIX = "esr.dlq."


def _header(headers: Any, name: str) -> str | None:
    for key, value in reversed(headers or ()):  # the agents append their own headers last
        if key == name:
            return value.decode(errors="replace") if isinstance(value, bytes) else str(value)
    return None


class MeteredOutput(Output):
    """The output producer, counting change events by type and dead letters by stage as it sends them."""

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__(config)
        self.changes: dict[str, int] = {}
        self.dead_letters: dict[str, int] = {}

    def send(self, topic: str, key: bytes | None, value: bytes | None, partition: int | None = None,
             headers: Any = None) -> None:
        super().send(topic, key, value, partition, headers)
        if topic == CHANGES:
            event_type = _header(headers, EVENT_TYPE_HEADER) or "unknown"
            self.changes[event_type] = self.changes.get(event_type, 0) + 1
        elif topic.startswith(DLQ_PREFIX):
            stage = _header(headers, DLQ_STAGE) or topic[len(DLQ_PREFIX):]
            self.dead_letters[stage] = self.dead_letters.get(stage, 0) + 1

    def take(self) -> tuple[dict[str, int], dict[str, int]]:
        """The counts since the last call (change events by type, dead letters by stage)."""
        taken = self.changes, self.dead_letters
        self.changes, self.dead_letters = {}, {}
        return taken


def group_lag(config: Mapping[str, Any], group: str, topic: str, partitions: int) -> dict[int, int]:
    """Per partition: messages after `group`'s committed offset. The end is found by reading from the high
    watermark - 1 to the end-of-partition event: on Kafka that is the last message; on Tansu, whose high
    watermark is the first offset of the last batch + 1 (DESIGN §7), it is that whole last batch."""
    committed = committed_offsets(config, group, topic, partitions)
    consumer = Consumer({**config, "group.id": f"{group}-lag", "enable.auto.commit": False})
    try:
        highs = {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in committed}
    finally:
        consumer.close()
    start = {p: max(committed[p], highs[p] - 1, 0) for p in committed}
    ends = end_offsets(config, topic, start)
    return {p: max(ends[p] - committed[p], 0) for p in committed}


class WorkerMetrics:
    def __init__(self, processor: EmployeesProcessor, output: MeteredOutput, client_config: Mapping[str, Any], *,
                 group: str, partitions: int) -> None:
        self.processor = processor
        self.output = output
        self.client_config = dict(client_config)
        self.group = group
        self.partitions = partitions
        self._records = 0
        self._batches = 0

    def collect(self) -> None:
        """Counters since the last call into Prometheus (call it from the agent's event loop)."""
        stats = self.processor.stats
        WORKER_RECORDS.inc(stats.records - self._records)
        WORKER_BATCHES.inc(stats.batches - self._batches)
        self._records, self._batches = stats.records, stats.batches
        changes, dead_letters = self.output.take()
        for event_type, count in changes.items():
            CHANGE_EVENTS.labels(event_type).inc(count)
        for stage, count in dead_letters.items():
            DEAD_LETTERS.labels(stage).inc(count)

    def measure_lag(self) -> None:
        """The group's lag on every partition of esr.records into Prometheus (blocks on the broker)."""
        for partition, lag in group_lag(self.client_config, self.group, RECORDS, self.partitions).items():
            CONSUMER_LAG.labels(self.group, RECORDS, str(partition)).set(lag)
