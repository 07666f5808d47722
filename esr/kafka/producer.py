"""A thin, loud wrapper around confluent-kafka's producer.

Back-pressure: when librdkafka's local queue is full, `produce` raises BufferError; we serve delivery
reports (poll) until there is room instead of buffering without bound. Any delivery failure fails the
job: the first error is raised from the next `send` or from `flush`.
"""

from __future__ import annotations

from typing import Any

from confluent_kafka import KafkaError, KafkaException, Message, Producer


class DeliveryFailed(RuntimeError):
    pass


class Publisher:
    def __init__(self, config: dict[str, Any]) -> None:
        self._producer = Producer(config)
        self._error: KafkaError | None = None
        self._failed = 0
        self.delivered = 0
        self._since_poll = 0

    def _on_delivery(self, error: KafkaError | None, _message: Message) -> None:
        if error is not None:
            self._failed += 1
            if self._error is None:
                self._error = error
        else:
            self.delivered += 1

    def _raise_if_failed(self) -> None:
        if self._error is not None:
            raise DeliveryFailed(
                f"{self._failed} message(s) could not be delivered; first error: {self._error.str()}"
            )

    def send(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        headers: list[tuple[str, Any]] | None = None,  # Any: header values are bytes or str
        partition: int | None = None,  # None: placed by the key (murmur2_random)
    ) -> None:
        extra: dict[str, Any] = {} if partition is None else {"partition": partition}
        while True:
            try:
                self._producer.produce(
                    topic, value=value, key=key, headers=headers, on_delivery=self._on_delivery, **extra
                )
                break
            except BufferError:
                self._producer.poll(0.05)
                self._raise_if_failed()
        self._since_poll += 1
        if self._since_poll >= 1000:
            self._since_poll = 0
            self._producer.poll(0)
            self._raise_if_failed()

    def partition_count(self, topic: str) -> int:
        try:
            metadata = self._producer.list_topics(topic, timeout=10).topics.get(topic)
        except KafkaException as exc:
            raise DeliveryFailed(f"no metadata for {topic}: {exc}") from exc
        if metadata is None or metadata.error is not None or not metadata.partitions:
            raise DeliveryFailed(f"topic {topic} does not exist (esr topics creates it)")
        return len(metadata.partitions)

    def flush(self, timeout: float = 120.0) -> None:
        remaining = self._producer.flush(timeout)
        self._raise_if_failed()
        if remaining:
            raise DeliveryFailed(f"{remaining} message(s) still undelivered after {timeout:.0f} s")
