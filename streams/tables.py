"""Faust tables written from `take_events` batches, and table recovery that is right on Tansu.

Writing a table from a batch
----------------------------
A Faust table write (`table[key] = value`) sends the new value to the changelog partition of *the event
being processed*: `Collection.partition_for_key` reads `faust.streams.current_event()`, a task-local
ContextVar that `Stream.__aiter__` sets for every event it yields. Inside `stream.take_events()` the agent
runs in a different place than the per-event iteration (a passive background consumer fills the buffer),
so there is no current event and Faust raises "Cannot modify table key from outside of stream iteration".
(`use_partitioner=True` would let the producer hash the key instead, but it crashes in aiokafka's
partitioner because the producer has no metadata for the changelog topic, and it would bypass the same
event lookup that the RocksDB store also makes to pick its per-partition database.)

`BatchTable.put(event, key, value)` restores the state Faust expects: for the duration of the write it sets
Faust's current-event ContextVar to *the event the key came from* (a ContextVar set and reset, nothing
global), so the store write, the changelog partition and (with a RocksDB store) the per-partition database
all follow that event's partition, exactly as in per-event iteration. A key's events all come from one
partition of `esr.records` (the partition of its key), so "the event it came from" is well defined; writes
triggered by a forwarded message (a reference broadcast or a full-file barrier, see `streams.agents`) use
that message, which is on the partition whose state is updated. A plain `table[key] = value` outside of
`put` still fails loudly, as in Faust.

The changelog message itself is sent through the worker's output producer (`streams.output.Output`,
librdkafka) rather than Faust's producer buffer: one producer for everything a batch writes, whose delivery
is confirmed per batch before Faust may ack the batch's input, and no per-message FutureMessage/aiokafka
cost. Faust still owns the changelog topic for recovery and standbys.

Recovery on Tansu
-----------------
Faust recovers a table by reading its changelog up to the high watermark. Tansu reports the high watermark
as *first offset of the last record batch + 1*, so every message after the first one of the last batch
was silently left out of the recovered table (DESIGN §7). Setting the producer's batch size to 1 hides it
at a heavy cost: every message of every topic becomes a batch of its own. `TrueEndRecovery` instead
corrects the high watermarks it is given: it fetches from `highwater - 1` (the last batch's first offset on
Tansu, the last message on Kafka) and takes the offset of the last message returned + 1. A fetch always
returns whole batches, so this is the true end on Tansu and exactly the high watermark on Kafka.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
import weakref
from collections.abc import Iterable, Mapping
from typing import Any

import faust
from confluent_kafka import Consumer, KafkaError, TopicPartition
from faust.streams import _current_event, current_event  # _current_event: the ContextVar behind current_event()
from faust.tables import TableManager
from faust.tables.recovery import Recovery
from faust.types import TP, EventT

log = logging.getLogger(__name__)


class BatchTable(faust.Table[bytes, bytes]):
    """A Table whose writes name the event they belong to, and whose changelog goes through the worker's
    output producer (see the module docstring)."""

    #: set by the app: the producer (`streams.output.Output`) that also carries the batch's other outputs
    output: Any = None

    def __post_init__(self) -> None:
        super().__post_init__()
        # key -> changelog partition, for the keys of this worker (written here or recovered)
        self._partition_of: dict[bytes, int] = {}

    def _changelog_partition(self) -> int:
        event = current_event()
        if event is None:
            raise TypeError(f"table {self.name} is written with put(event, key, value), not table[key] = value")
        partition: int = event.message.partition
        return partition

    def on_key_set(self, key: Any, value: Any) -> None:
        if self.output is None:
            super().on_key_set(key, value)
            return
        self.output.send(self.changelog_topic_name, key, value, self._changelog_partition())
        self._sensor_on_set(self, key, value)

    def on_key_del(self, key: Any) -> None:
        if self.output is None:
            super().on_key_del(key)
            return
        self.output.send(self.changelog_topic_name, key, None, self._changelog_partition())
        self._sensor_on_del(self, key)

    def put(self, event: EventT[Any], key: bytes, value: bytes | None) -> None:
        """`table[key] = value` (None: delete the key, a tombstone in the changelog) on behalf of `event`."""
        token = _current_event.set(weakref.ref(event))
        try:
            if value is not None:
                self[key] = value
                self._partition_of[key] = event.message.partition
            elif key in self:
                del self[key]
                self._partition_of.pop(key, None)
        finally:
            _current_event.reset(token)

    def apply_changelog_batch(self, batch: Iterable[EventT[Any]]) -> None:
        events = list(batch)
        partition_of = self._partition_of
        for event in events:
            message = event.message
            key = message.key
            if key is None:
                continue
            if message.value is None:
                partition_of.pop(key, None)
            else:
                partition_of[key] = message.partition
        super().apply_changelog_batch(events)

    def keys_in_partition(self, partition: int, prefix: bytes = b"") -> list[bytes]:
        """The keys of one changelog partition held here (optionally only those starting with `prefix`)."""
        data = self.data
        return [
            key for key, owner in self._partition_of.items()
            if owner == partition and key.startswith(prefix) and key in data
        ]


# -- recovery --------------------------------------------------------------------------------------


def probe_last_offsets(client_config: Mapping[str, Any], start: Mapping[TP, int], timeout: float = 10.0) -> dict[
        TP, int]:
    """For each partition, fetch from `start[tp]` and return the offset of the last message the broker sends.

    Partitions that return nothing within `timeout` (e.g. the offset holds a transaction marker) are left out.
    """
    if not start:
        return {}
    consumer = Consumer({
        **client_config,
        "group.id": f"esr-streams-probe-{uuid.uuid4().hex}",
        "enable.auto.commit": False,
        "enable.partition.eof": True,
        "auto.offset.reset": "latest",
    })
    try:
        consumer.assign([TopicPartition(tp.topic, tp.partition, offset) for tp, offset in start.items()])
        last: dict[TP, int] = {}
        at_eof: set[TP] = set()
        deadline = time.monotonic() + timeout
        while len(at_eof) < len(start) and time.monotonic() < deadline:
            for message in consumer.consume(10_000, 0.2):
                topic, partition, offset = message.topic(), message.partition(), message.offset()
                assert topic is not None
                assert partition is not None
                assert offset is not None
                tp = TP(topic, partition)
                error = message.error()
                if error is not None:
                    if error.code() == KafkaError._PARTITION_EOF:
                        at_eof.add(tp)
                        continue
                    raise RuntimeError(f"probing the end of {tp}: {error}")
                last[tp] = max(last.get(tp, -1), offset)
        return last
    finally:
        consumer.close()


def true_end_recovery(client_config: Mapping[str, Any]) -> type[Recovery]:
    class TrueEndRecovery(Recovery):
        async def _build_highwaters(self, consumer: Any, tps: set[TP], destination: Any, title: str) -> None:
            await super()._build_highwaters(consumer, tps, destination, title)
            # Faust stores highwater - 1 ("the last offset to read"); probe from there.
            start = {tp: offset for tp, offset in destination.items() if tp in tps and offset >= 0}
            loop = asyncio.get_running_loop()
            last = await loop.run_in_executor(None, probe_last_offsets, client_config, start)
            corrected = {tp: offset for tp, offset in last.items() if offset > destination[tp]}
            if corrected:
                log.info("%s changelog ends beyond the reported high watermark (Tansu): %s", title,
                         ", ".join(f"{tp.topic}[{tp.partition}] {destination[tp] + 1}->{end + 1}"
                                   for tp, end in sorted(corrected.items())))
                for tp, last_offset in corrected.items():
                    destination[tp] = last_offset  # a Counter: update() would add, not replace

    return TrueEndRecovery


def table_manager_class(client_config: Mapping[str, Any]) -> type[TableManager]:
    """A TableManager whose recovery reads changelogs to their true end (see the module docstring)."""
    recovery_class = true_end_recovery(dict(client_config))

    class EsrTableManager(TableManager):
        @property
        def recovery(self) -> Recovery:
            if self._recovery is None:
                self._recovery = recovery_class(self.app, self, beacon=self.beacon, loop=self.loop)
            return self._recovery

    return EsrTableManager

