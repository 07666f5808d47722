"""Reading a topic to its real end, for tools (pipeline catch-up checks, the dead-letter commands).

The embedded broker's high watermark is wrong (DESIGN §7), so the end of a partition is where librdkafka's
end-of-partition event says it is, never the watermark.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator, Mapping
from typing import Any

from confluent_kafka import Consumer, KafkaError, Message, TopicCollection, TopicPartition
from confluent_kafka.admin import AdminClient


class TopicReadError(RuntimeError):
    pass


def read_to_end(
    config: Mapping[str, Any], topic: str, start: Mapping[int, int] | None = None, *, timeout: float = 60.0
) -> Iterator[Message]:
    """Every message from `start` (partition -> offset; None: every partition from its beginning) until each
    partition has reported its end after its last message. Assigned, not subscribed: no group is joined."""
    consumer = Consumer({
        **config,
        "group.id": f"esr-reader-{uuid.uuid4().hex}",
        "enable.auto.commit": False,
        "enable.partition.eof": True,
    })
    try:
        if start is None:
            metadata = consumer.list_topics(topic, timeout=10).topics.get(topic)
            if metadata is None or metadata.error is not None:
                raise TopicReadError(f"topic {topic} does not exist")
            start = dict.fromkeys(metadata.partitions, 0)
        consumer.assign([TopicPartition(topic, p, offset) for p, offset in start.items()])
        pending = set(start)
        deadline = time.monotonic() + timeout
        while pending:
            if time.monotonic() > deadline:
                raise TopicReadError(f"{topic}: no end-of-partition from partitions {sorted(pending)}")
            for message in consumer.consume(1000, 0.2):
                partition = message.partition()
                assert partition is not None
                error = message.error()
                if error is not None:
                    if error.code() == KafkaError._PARTITION_EOF:
                        pending.discard(partition)
                        continue
                    raise TopicReadError(f"{topic}[{partition}]: {error}")
                pending.add(partition)  # more may follow: wait for the end after this message
                yield message
    finally:
        consumer.close()


def committed_offsets(config: Mapping[str, Any], group: str, topic: str, partitions: int) -> dict[int, int]:
    """A group's committed offsets (0 where it has none), read without joining the group."""
    consumer = Consumer({**config, "group.id": group, "enable.auto.commit": False})
    try:
        committed = consumer.committed([TopicPartition(topic, p) for p in range(partitions)], timeout=10)
        return {tp.partition: max(tp.offset, 0) for tp in committed}
    finally:
        consumer.close()


def end_offsets(config: Mapping[str, Any], topic: str, start: Mapping[int, int]) -> dict[int, int]:
    """The real end of each partition, read from `start` (partition -> offset)."""
    ends = dict(start)
    for message in read_to_end(config, topic, start):
        partition, offset = message.partition(), message.offset()
        assert partition is not None
        assert offset is not None
        ends[partition] = offset + 1
    return ends


def topic_id(config: Mapping[str, Any], topic: str) -> str | None:
    """The topic's id (it changes when a topic is re-created, as on every start of the embedded broker)."""
    admin = AdminClient(dict(config))  # kept until the result is in: a dropped client cancels its requests
    described = admin.describe_topics(TopicCollection([topic]), request_timeout=10)[topic].result()
    found = getattr(described, "topic_id", None)
    return str(found) if found is not None else None


def coordinates(message: Message) -> tuple[int, int]:
    """(partition, offset) of a consumed message; -1 for what librdkafka leaves unset (a client-level error)."""
    partition, offset = message.partition(), message.offset()
    return (-1 if partition is None else partition, -1 if offset is None else offset)
