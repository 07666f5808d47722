"""The worker's output producer: librdkafka (confluent-kafka), not the Faust producer.

Every change event, employee state, forwarded message and dead letter goes through here; only the table
changelogs go through Faust's (aiokafka) producer, because Faust's tables write them. librdkafka does the
batching, compression and network work in C threads, so a send costs the agent ~2 µs instead of ~15 µs of
Python in aiokafka's accumulator (measured with `python -m bench.streams --sample`).

Delivery is tracked per input batch: `send` enqueues and counts; `seal()` closes the batch and returns a
future that resolves when the broker has acknowledged every message of that batch, or fails with
`DeliveryFailed` if one could not be delivered. A poller thread serves librdkafka's delivery reports, so
the agent can go on with the next batch while the previous one's outputs are in flight, and acks a batch's
input events only when its future resolves: an input offset is never committed for an output that was
lost. The producer is idempotent (no duplicates or reordering from retries; it works on Tansu, unlike
aiokafka's) and places keys with murmur2_random, like the ingest job (`esr.kafka.config.producer_config`).
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from confluent_kafka import KafkaError, Message, Producer

from esr.kafka.producer import DeliveryFailed


class _Batch:
    """The messages sent for one input batch; counts delivery reports (in the poller thread)."""

    __slots__ = ("delivered", "error", "failed", "future", "lock", "loop", "sealed", "sent")

    def __init__(self, loop: asyncio.AbstractEventLoop | None) -> None:
        self.sent = 0
        self.delivered = 0
        self.failed = 0
        self.error: KafkaError | None = None
        self.sealed = False
        self.lock = threading.Lock()
        self.loop = loop
        self.future: asyncio.Future[None] | None = None

    def on_delivery(self, error: KafkaError | None, _message: Message) -> None:
        with self.lock:
            self.delivered += 1
            if error is not None:
                self.failed += 1
                if self.error is None:
                    self.error = error
            done = self.sealed and self.delivered == self.sent
        if done:
            self._resolve_threadsafe()

    def _resolve_threadsafe(self) -> None:
        assert self.loop is not None
        self.loop.call_soon_threadsafe(self._resolve)

    def _resolve(self) -> None:
        future = self.future
        if future is None or future.done():
            return
        if self.error is not None:
            future.set_exception(DeliveryFailed(
                f"{self.failed} output message(s) could not be delivered; first error: {self.error.str()}"))
        else:
            future.set_result(None)


class Output:
    def __init__(self, config: dict[str, Any]) -> None:
        self._producer = Producer(config)
        self._batch = _Batch(None)
        self._stop = threading.Event()
        self._poller: threading.Thread | None = None
        self.sent = 0

    def _poll(self) -> None:
        producer, stop = self._producer, self._stop
        while not stop.is_set():
            producer.poll(0.05)

    def send(self, topic: str, key: bytes | None, value: bytes | None, partition: int | None = None,
             headers: Any = None) -> None:
        """Enqueue one message (`headers`: a list of (name, bytes) pairs, as confluent-kafka takes them)."""
        producer = self._producer
        on_delivery = self._batch.on_delivery
        while True:
            try:
                if partition is None:
                    producer.produce(topic, value, key, headers=headers, on_delivery=on_delivery)
                else:
                    producer.produce(topic, value, key, partition, headers=headers, on_delivery=on_delivery)
                break
            except BufferError:
                producer.poll(0.05)  # local queue full: serve delivery reports until there is room
        self._batch.sent += 1  # the poller reads it under the lock only after the batch is sealed
        self.sent += 1

    def seal(self) -> asyncio.Future[None]:
        """Close the current batch: a future resolved when all its messages are acknowledged."""
        loop = asyncio.get_running_loop()
        if self._poller is None:
            self._poller = threading.Thread(target=self._poll, name="esr-output-poller", daemon=True)
            self._poller.start()
        batch, self._batch = self._batch, _Batch(loop)
        future: asyncio.Future[None] = loop.create_future()
        with batch.lock:
            batch.loop = loop
            batch.future = future
            batch.sealed = True
            done = batch.delivered == batch.sent
        if done:
            batch._resolve()
        return future

    async def flush(self) -> None:
        """Seal the current batch and wait for it."""
        await self.seal()

    def close(self, timeout: float = 30.0) -> None:
        self._stop.set()
        if self._poller is not None:
            self._poller.join(timeout)
        self._producer.flush(timeout)
