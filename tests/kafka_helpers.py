"""Reading a topic back in tests. Tansu's high watermark is wrong (DESIGN §7), so we read until we have
what we expect or the topic has been quiet for a while, never until the watermark."""

from __future__ import annotations

import time
import uuid

from confluent_kafka import Consumer, Message, TopicPartition


def consume_all(bootstrap: str, topic: str, *, expected: int | None = None, idle: float = 2.0) -> list[Message]:
    consumer = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": f"test-{uuid.uuid4().hex}",
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
    })
    try:
        metadata = consumer.list_topics(topic, timeout=10).topics[topic]
        consumer.assign([TopicPartition(topic, p, 0) for p in metadata.partitions])
        messages: list[Message] = []
        last = time.monotonic()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            batch = consumer.consume(1000, 0.2)
            for message in batch:
                error = message.error()
                if error is not None:
                    raise RuntimeError(f"consume error: {error}")
                messages.append(message)
            if batch:
                last = time.monotonic()
            if expected is not None and len(messages) >= expected:
                # keep reading briefly: more than expected is a failure the caller must see
                if time.monotonic() - last > 0.5:
                    break
            elif time.monotonic() - last > idle:
                break
        return messages
    finally:
        consumer.close()
