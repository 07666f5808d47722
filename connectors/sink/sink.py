"""The PostgreSQL sink: `esr.changes` -> the read model, exactly once in the database.

Offsets
    The database is the truth: the consumed offsets are written in the transaction of the data they
    produced (`esr.sink_offset`), and on partition assignment the sink seeks to them (a partition without a
    stored offset starts from the beginning). Kafka's committed offsets are written afterwards, only so that
    lag tools show something; they are never read. Each stored offset carries the topic id it was written
    for: one of another incarnation of the topic (the embedded broker loses its topics on a restart) is set
    back to 0 at assignment and the partition starts over (the events the rebuilt topic holds again are
    already held: nothing changes twice).

Batches
    Messages are gathered until `batch_size` or `batch_wait` seconds after the first one, decoded
    (`connectors.sink.fastread`) and planned (`connectors.sink.mapping`) in the consuming thread, then
    written in one transaction by a writer thread (`connectors.sink.database`) while the next batch is
    decoded: at most one batch in flight, handed over only once the one before has committed. Order per
    employee is kept: an employee's events are on one partition, a partition is read in order by one sink,
    and a batch writes what applying its events one at a time in ESR position order would.
    Several sinks may share the topic in one consumer group (partitions split between them).

Faults
    * PostgreSQL unavailable (connection refused or lost, server shutting down, any error that is not a
      refusal of the data): the batch is dropped from memory, every assigned partition is paused, and the
      sink reconnects with exponential back-off (logging each attempt). Once back, it seeks every partition
      to the offsets stored in the database and resumes: what was not committed is read again, nothing is
      lost, and what was committed is not written twice.
    * An event the database refuses (SQLSTATE 22/23), an event that does not map (a date that does not
      parse) and an undecodable message go to `esr.dlq.sink` with error headers; the rest of the batch is
      written, except the employee's later events: they wait behind it (`connectors.sink.parking`). Dead
      letters are flushed before the transaction commits.
    * The stored offset of a partition changed under us (another sink took it over, or an operator reset
      it): the transaction is rolled back and every partition re-read from its stored offset.

Caught up
    Tansu reports a wrong high watermark (DESIGN §7), so "caught up" is not "committed offset = high
    watermark". It is decided from what the consumer itself sees: every assigned partition has reached its
    end (librdkafka's partition-EOF event, which follows the last fetched message and is right on Tansu),
    nothing is buffered, everything consumed is committed, and this has held for `idle` seconds. A caller
    that knows more can also give target offsets per partition (e.g. the producer's last delivered offsets),
    which must be stored in `esr.sink_offset` too. Only the partitions assigned to this sink are covered: with
    several sinks in the group, wait on each or pass targets.

Metrics (`esr.observability.metrics`, served by `python -m connectors.sink` on ESR_METRICS_PORT)
    esr_sink_rows_total{table} (change_event included), esr_sink_latency_seconds (the worker's ts_ms of each
    change event inserted -> its commit), esr_consumer_lag{group,topic,partition}, esr_dead_letters_total
    {stage="sink"}, esr_sink_outages_total and esr_sink_database_up.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import sys
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import psycopg
from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    TopicPartition,
)

from connectors.sink.database import (
    Fenced,
    OffsetUpdate,
    SinkDatabase,
    StoredOffset,
    WriteResult,
    describe,
    restart_offsets,
    stored_offsets,
)
from connectors.sink.fastread import FastChangeReader
from connectors.sink.mapping import Consumed, Plan, Refusal, plan
from connectors.sink.parking import Parked, SinkParking
from esr.codec import UndecodableMessage
from esr.kafka.producer import DeliveryFailed, Publisher
from esr.kafka.reading import coordinates, topic_id
from esr.kafka.topics import (
    CHANGES,
    DLQ_EVENT_ID,
    DLQ_OFFSET,
    DLQ_PARTITION,
    DLQ_REASON,
    DLQ_SINK,
    DLQ_STAGE,
    DLQ_TOPIC,
)
from esr.observability import metrics
from esr.parking import PARKED_BEHIND

log = logging.getLogger(__name__)


DEFAULT_GROUP = "esr-sink"


@dataclass(frozen=True)
class SinkSettings:
    bootstrap_servers: str
    database_url: str
    group_id: str = DEFAULT_GROUP
    topic: str = CHANGES
    dlq_topic: str = DLQ_SINK
    batch_size: int = 10_000  # events a transaction at most: 10,000 wrote ~10% faster than 5,000 (bench.sink)
    batch_wait: float = 0.5  # seconds after the first message of a batch
    backoff_initial: float = 0.5
    backoff_max: float = 30.0
    # True: a writer thread writes a batch while the next is decoded (faster when a core is free; the two
    # threads contend for the GIL, so it costs ~15% more CPU). False: decode, plan, write, in turn.
    pipeline: bool = True
    kafka_overrides: Mapping[str, Any] = field(default_factory=dict)

    def consumer_config(self) -> dict[str, Any]:
        return {
            "bootstrap.servers": self.bootstrap_servers,
            "group.id": self.group_id,
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "auto.offset.reset": "earliest",
            "enable.partition.eof": True,
            "allow.auto.create.topics": False,
            "session.timeout.ms": 6000,  # Tansu: a join waits half of it (DESIGN §7)
            "heartbeat.interval.ms": 1000,
            "fetch.max.bytes": 64 * 1024 * 1024,
            "max.partition.fetch.bytes": 16 * 1024 * 1024,
            "queued.max.messages.kbytes": 256 * 1024,
            **self.kafka_overrides,
        }

    def producer_config(self) -> dict[str, Any]:
        return {
            "bootstrap.servers": self.bootstrap_servers,
            "enable.idempotence": True,
            "acks": "all",
            "partitioner": "murmur2_random",  # the project's placement (DESIGN §7)
            "linger.ms": 5,
            "message.timeout.ms": 30000,
            **self.kafka_overrides,
        }


@dataclass
class SinkStats:
    messages: int = 0  # consumed from the topic
    events: int = 0  # change events written (re-deliveries included)
    change_events: int = 0  # change_event rows inserted
    state_rows: int = 0  # current-state rows inserted or updated
    cascaded: int = 0
    dead_letters: int = 0
    batches: int = 0
    outages: int = 0
    rewinds: int = 0  # partitions sought back to their stored offsets
    decode_seconds: float = 0.0  # in the consuming thread
    plan_seconds: float = 0.0  # in the consuming thread
    db_seconds: float = 0.0  # in the writer thread (COPY, statements, dead letters, commit)
    first_message_at: float | None = None  # time.monotonic() of the first message taken
    last_commit_at: float | None = None  # time.monotonic() of the last batch committed

    @property
    def rows(self) -> int:
        return self.change_events + self.state_rows + self.cascaded


@dataclass
class _Partition:
    stored: int | None  # esr.sink_offset.next_offset as last read or committed by this sink (None: no row)
    submitted: int | None  # what it will be once the batch in flight commits (== stored when none is)
    consumed: int  # next offset after the last message taken into a batch (-1: none yet)
    ready: bool  # sought to the stored offset: its messages may be used
    eof: bool = False  # the last thing seen on it was its end


@dataclass
class _InFlight:
    future: Future[WriteResult]
    updates: list[OffsetUpdate]


class Sink:
    """Consumes `settings.topic` into PostgreSQL.

    Two threads: the caller's consumes, decodes and plans the next batch while a writer thread writes the
    previous one (PostgreSQL works on the other core meanwhile); at most one batch is in flight, and a
    batch is handed over only once the one before it has committed (its expected offsets follow from it).
    Only the caller's thread touches the consumer. `stop()` and `wait_until_caught_up()` may be called from
    any thread.
    """

    def __init__(self, settings: SinkSettings, *, decoder: Callable[[bytes], dict[str, Any]] | None = None) -> None:
        self.settings = settings
        self.stats = SinkStats()
        self._decode = decoder or FastChangeReader().decode
        self._db = SinkDatabase(settings.database_url, settings.group_id)  # the writer thread's
        self._writer: Executor = (
            ThreadPoolExecutor(max_workers=1, thread_name_prefix="esr-sink-writer") if settings.pipeline
            else _InlineExecutor()
        )
        self._in_flight: _InFlight | None = None
        self._consumer: Consumer | None = None
        self._dlq: Publisher | None = None
        self._partitions: dict[int, _Partition] = {}
        self._buffer: list[Message] = []
        self._buffer_since = 0.0
        self._outage_since: float | None = None
        self._next_attempt = 0.0
        self._backoff = settings.backoff_initial
        self._topic_id: str | None = None
        self._stop = threading.Event()
        self._caught_up = threading.Event()
        self._quiet_since: float | None = None
        self._generation = 0  # bumped whenever positions go back to the stored offsets
        self._lag_due = 0.0  # time.monotonic() of the next consumer-lag report

    # -- lifecycle --------------------------------------------------------------------------------------
    def start(self) -> None:
        if self._consumer is not None:
            return
        self._topic_id = self._lookup_topic_id()
        self._consumer = Consumer(self.settings.consumer_config())
        self._consumer.subscribe(
            [self.settings.topic], on_assign=self._on_assign, on_revoke=self._on_revoke, on_lost=self._on_revoke
        )
        log.info("sink: group %r on %s -> PostgreSQL, batches of %d / %.1f s", self.settings.group_id,
                 self.settings.topic, self.settings.batch_size, self.settings.batch_wait)

    def close(self) -> None:
        """Write what is buffered (if the database is there), leave the group, close everything."""
        try:
            if self._consumer is not None and self._buffer and self._outage_since is None:
                self._flush()
            self._settle(wait=True)
        finally:
            if self._consumer is not None:
                self._consumer.close()
                self._consumer = None
            self._writer.shutdown(wait=True)
            if self._dlq is not None:
                self._dlq.flush(10)
            self._db.close()

    def __enter__(self) -> Sink:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def stop(self) -> None:
        self._stop.set()

    # -- running ----------------------------------------------------------------------------------------
    def run(self, stop: threading.Event | None = None) -> SinkStats:
        """Until `stop()` (or `stop` is set)."""
        self.start()
        while not self._stop.is_set() and not (stop is not None and stop.is_set()):
            self.step()
        return self.stats

    def drain(self, *, idle: float = 1.0, timeout: float = 120.0,
              targets: Mapping[int, int] | None = None) -> SinkStats:
        """Run until caught up (module doc) for `idle` seconds; TimeoutError after `timeout` seconds.
        `targets`: partition -> offset that `esr.sink_offset` must have reached as well."""
        self.start()
        deadline = time.monotonic() + timeout
        while True:
            self.step(idle=idle)
            if self._caught_up.is_set() and self._targets_reached(targets):
                return self.stats
            if time.monotonic() > deadline:
                raise TimeoutError(f"the sink did not catch up within {timeout:.0f} s: {self.describe_progress()}")

    def wait_until_caught_up(self, timeout: float) -> bool:
        """For another thread while `run()` goes on: True once the sink is caught up."""
        return self._caught_up.wait(timeout)

    @property
    def caught_up(self) -> bool:
        return self._caught_up.is_set()

    def describe_progress(self) -> str:
        if self._outage_since is not None:
            return f"PostgreSQL unavailable for {time.monotonic() - self._outage_since:.0f} s"
        if not self._partitions:
            return "no partition assigned yet"
        parts = [
            f"[{p}] stored={s.stored} consumed={s.consumed} {'end' if s.eof else 'reading'}"
            f"{'' if s.ready else ' (waiting for offsets)'}"
            for p, s in sorted(self._partitions.items())
        ]
        in_flight = "a batch in flight; " if self._in_flight is not None else ""
        return f"{in_flight}{len(self._buffer)} buffered; " + ", ".join(parts)

    def step(self, idle: float = 1.0) -> None:
        """One turn of the loop: consume, maybe hand a batch over, maybe recover from an outage."""
        consumer = self._consumer
        assert consumer is not None, "start() first"
        self._settle(wait=False)
        if time.monotonic() >= self._lag_due:
            self._report_lag()
        if self._outage_since is not None:
            consumer.consume(1000, 0.1)  # serves rebalances; paused partitions return nothing we keep
            if time.monotonic() >= self._next_attempt:
                self._recover()
            return
        room = max(self.settings.batch_size - len(self._buffer), 1)
        wait = 0.1 if not self._buffer else max(0.0, self._buffer_since + self.settings.batch_wait - time.monotonic())
        for message in consumer.consume(min(room, 10000), min(wait, 0.1)):
            self._take(message)
        if self._buffer and (
            len(self._buffer) >= self.settings.batch_size
            or time.monotonic() - self._buffer_since >= self.settings.batch_wait
        ):
            self._flush()
        self._update_caught_up(idle)

    def _take(self, message: Message) -> None:
        error = message.error()
        partition, offset = coordinates(message)
        state = self._partitions.get(partition) if message.topic() == self.settings.topic else None
        if error is not None:
            if error.code() == KafkaError._PARTITION_EOF:
                if state is not None and state.ready and offset >= state.consumed:
                    state.eof = True
                return
            if error.fatal():
                raise KafkaException(error)
            log.warning("sink: consumer error: %s", error.str())
            return
        if state is None or not state.ready or offset < state.consumed:
            return  # fetched before a pause / seek: it will be read again from the stored offset
        if not self._buffer:
            self._buffer_since = time.monotonic()
            if self.stats.first_message_at is None:
                self.stats.first_message_at = self._buffer_since
        self._buffer.append(message)
        state.consumed = offset + 1
        state.eof = False
        self.stats.messages += 1

    def _update_caught_up(self, idle: float) -> None:
        quiet = (
            bool(self._partitions)
            and not self._buffer
            and self._in_flight is None
            and self._outage_since is None
            and all(s.ready and s.eof for s in self._partitions.values())
        )
        now = time.monotonic()
        if not quiet:
            self._quiet_since = None
            self._caught_up.clear()
        elif self._quiet_since is None:
            self._quiet_since = now
        elif now - self._quiet_since >= idle:
            self._caught_up.set()

    def _report_lag(self) -> None:
        """esr_consumer_lag per partition: messages not yet in the database. Once at a partition's end with
        everything committed it is 0; before, it is measured against the high watermark of the last fetch,
        which Tansu reports short (DESIGN §7): there it is a lower bound."""
        self._lag_due = time.monotonic() + 1.0
        consumer = self._consumer
        assert consumer is not None
        group, topic = self.settings.group_id, self.settings.topic
        for partition, state in self._partitions.items():
            done = state.stored if state.stored is not None else 0
            if state.ready and state.eof and state.consumed <= done:
                lag = 0
            else:
                _low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), cached=True)
                if high < 0:  # nothing fetched yet: unknown
                    continue
                lag = max(high - done, 0)
            metrics.CONSUMER_LAG.labels(group, topic, str(partition)).set(lag)

    def _targets_reached(self, targets: Mapping[int, int] | None) -> bool:
        if not targets:
            return True
        try:
            stored = stored_offsets(self.settings.database_url, self.settings.group_id, self.settings.topic)
        except (psycopg.Error, OSError):
            return False
        return all(target <= 0 or (p in stored and stored[p].next_offset >= target) for p, target in targets.items())

    # -- a batch ----------------------------------------------------------------------------------------
    def _flush(self) -> None:
        """Decode and plan the buffered messages, then hand them to the writer once the batch in flight
        has committed."""
        batch, self._buffer = self._buffer, []
        consumed: list[Consumed] = []
        undecodable: list[Refusal] = []
        messages: dict[tuple[int, int], Message] = {}
        last: dict[int, int] = {}
        topic = self.settings.topic
        decode = self._decode
        started = time.monotonic()
        for message in batch:
            partition, offset = coordinates(message)
            messages[(partition, offset)] = message
            last[partition] = offset
            value = message.value()
            try:
                if value is None:
                    raise UndecodableMessage("a tombstone (null value) is no change event")
                item = Consumed(decode(value), topic, partition, offset)
            except UndecodableMessage as exc:
                undecodable.append(Refusal(Consumed({}, topic, partition, offset), f"undecodable: {exc}"))
                continue
            consumed.append(item)
        planned = time.monotonic()
        batch_plan = plan(consumed)
        self.stats.decode_seconds += planned - started
        self.stats.plan_seconds += time.monotonic() - planned
        generation = self._generation
        self._settle(wait=True)
        if self._outage_since is not None or self._generation != generation:
            return  # the batch before failed (outage or fenced): this one is read again from the stored offsets
        updates = [
            OffsetUpdate(topic, partition, offset + 1, self._partitions[partition].submitted, self._topic_id)
            for partition, offset in last.items()
            if partition in self._partitions
        ]
        future = self._writer.submit(self._write, batch_plan, updates, undecodable, messages)
        for update in updates:
            self._partitions[update.partition].submitted = update.next_offset
        self._in_flight = _InFlight(future, updates)

    def _write(self, batch_plan: Plan, updates: list[OffsetUpdate], undecodable: list[Refusal],
               messages: Mapping[tuple[int, int], Message]) -> WriteResult:
        """In the writer thread."""

        def dead_letter(refused: list[Refusal]) -> None:
            if refused:
                self._dead_letter(refused, messages)

        started = time.monotonic()
        result = SinkParking(self.settings.group_id, self.settings.topic).write(  # connectors.sink.parking
            self._db, batch_plan, updates, dead_letter, undecodable, messages, self._topic_id)
        result.seconds = time.monotonic() - started
        result.committed_at = time.time()
        return result

    def _settle(self, *, wait: bool) -> None:
        """Take the result of the batch in flight (waiting for it if `wait`)."""
        in_flight = self._in_flight
        if in_flight is None or (not wait and not in_flight.future.done()):
            return
        self._in_flight = None
        try:
            result = in_flight.future.result()
        except Fenced as exc:
            log.error("sink: %s; re-reading from the stored offsets", exc)
            self._rewind(list(self._partitions))
            return
        except (psycopg.Error, OSError, DeliveryFailed) as exc:
            if isinstance(exc, DeliveryFailed):
                self._dlq = None  # a Publisher keeps its first error: start a fresh one
            self._enter_outage(exc)
            return
        for update in in_flight.updates:
            state = self._partitions.get(update.partition)
            if state is not None:
                state.stored = update.next_offset
        stats = self.stats
        stats.db_seconds += result.seconds
        stats.batches += 1
        stats.events += result.events
        stats.change_events += result.change_events
        stats.state_rows += result.state_rows
        stats.cascaded += result.cascaded
        stats.dead_letters += len(result.refused)
        stats.last_commit_at = time.monotonic()
        metrics.sink_committed(result.rows, result.event_times, result.committed_at, len(result.refused))
        self._commit_advisory(in_flight.updates)

    def _dead_letter(self, refused: list[Refusal], messages: Mapping[tuple[int, int], Message]) -> None:
        """In the writer thread, inside the batch's transaction: flushed before the offsets commit."""
        if self._dlq is None:
            self._dlq = Publisher(self.settings.producer_config())
        for refusal in refused:
            item = refusal.consumed
            message = messages[(item.partition, item.offset)]
            headers: list[tuple[str, Any]] = [
                *(message.headers() or []),
                (DLQ_STAGE, b"sink"),
                (DLQ_REASON, refusal.reason[:4000].encode()),
                (DLQ_TOPIC, item.topic.encode()),
                (DLQ_PARTITION, str(item.partition).encode()),
                (DLQ_OFFSET, str(item.offset).encode()),
            ]
            event_id = item.event.get("event_id")
            if event_id:
                headers.append((DLQ_EVENT_ID, str(event_id).encode()))
            if isinstance(refusal, Parked):
                headers.append((PARKED_BEHIND, str(refusal.behind).encode()))
            log.warning("sink: dead letter %s[%s]@%s: %s", item.topic, item.partition, item.offset, refusal.reason)
            self._dlq.send(self.settings.dlq_topic, message.key(), message.value(), headers)
        self._dlq.flush(30)

    def _commit_advisory(self, updates: list[OffsetUpdate]) -> None:
        if self._consumer is None or not updates:
            return
        try:
            self._consumer.commit(
                offsets=[TopicPartition(u.topic, u.partition, u.next_offset) for u in updates], asynchronous=True
            )
        except KafkaException as exc:  # advisory only: the database holds the offsets that count
            log.debug("sink: advisory offset commit failed: %s", exc)

    # -- outages and rewinds ----------------------------------------------------------------------------
    def _enter_outage(self, exc: BaseException) -> None:
        now = time.monotonic()
        first = self._outage_since is None
        if first:
            self._outage_since = now
            self._backoff = self.settings.backoff_initial
            self.stats.outages += 1
            metrics.SINK_OUTAGES.inc()
            metrics.SINK_DATABASE_UP.set(0)
            log.error(
                "sink: PostgreSQL unavailable (%s); pausing %d partition(s), %d buffered message(s) will be "
                "read again; retrying with back-off", describe(exc), len(self._partitions), len(self._buffer),
            )
        else:
            self._backoff = min(self._backoff * 2, self.settings.backoff_max)
            log.warning("sink: PostgreSQL still unavailable after %.1f s (%s); next attempt in %.1f s",
                        now - (self._outage_since or now), describe(exc), self._backoff)
        self._next_attempt = now + self._backoff
        self._generation += 1
        self._buffer = []
        self._db.close()  # the writer is idle: nothing is in flight once a result has been taken
        for state in self._partitions.values():
            state.ready = False
            state.eof = False
        self._caught_up.clear()
        if self._consumer is not None and self._partitions:
            self._consumer.pause([TopicPartition(self.settings.topic, p) for p in self._partitions])

    def _recover(self) -> None:
        if self._rewind(list(self._partitions)):
            assert self._outage_since is not None
            log.info("sink: PostgreSQL is back after %.1f s; resuming from the stored offsets",
                     time.monotonic() - self._outage_since)
            metrics.SINK_DATABASE_UP.set(1)
            self._outage_since = None

    def _rewind(self, partitions: list[int]) -> bool:
        """Seek `partitions` to their stored offsets and resume them; False (outage) if the database fails."""
        consumer = self._consumer
        assert consumer is not None
        try:
            stored = self._load_offsets(partitions)
        except (psycopg.Error, OSError) as exc:
            self._enter_outage(exc)
            return False
        self._generation += 1
        self._buffer = []
        tps = []
        for partition in partitions:
            state = self._partitions.get(partition)
            if state is None:
                continue
            offset = self._start_offset(stored.get(partition))
            state.stored = state.submitted = stored[partition].next_offset if partition in stored else None
            state.consumed = -1
            state.eof = False
            state.ready = True
            tp = TopicPartition(self.settings.topic, partition, offset)
            consumer.seek(tp)
            tps.append(tp)
            self.stats.rewinds += 1
        if tps:
            consumer.resume(tps)
        return True

    def _start_offset(self, stored: StoredOffset | None) -> int:
        return OFFSET_BEGINNING if stored is None else stored.next_offset

    def _load_offsets(self, partitions: list[int]) -> dict[int, StoredOffset]:
        """The stored offsets; those written for another incarnation of the topic (the embedded broker lost
        it on a restart) are set back to 0 first, so that neither this sink nor anyone reading the table
        takes yesterday's offsets for today's topic."""
        url, group, topic = self.settings.database_url, self.settings.group_id, self.settings.topic
        stored = stored_offsets(url, group, topic)
        current = self._topic_id
        if current is None:
            return stored
        stale = [p for p in partitions if p in stored and stored[p].topic_id and stored[p].topic_id != current]
        if stale:
            log.warning(
                "sink: %s has stored offsets for another incarnation of the topic (id %s, now %s) on partition(s) "
                "%s: starting them from the beginning", topic, stored[stale[0]].topic_id, current,
                ", ".join(map(str, stale)),
            )
            restart_offsets(url, group, topic, stale, current)
            for partition in stale:
                stored[partition] = StoredOffset(0, current)
        return stored

    # -- rebalance callbacks (run inside consume(), in the caller's thread) -----------------------------
    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._settle(wait=True)
        failure: BaseException | None = None
        try:
            stored = self._load_offsets([tp.partition for tp in partitions if tp.topic == self.settings.topic])
        except (psycopg.Error, OSError) as exc:
            stored, failure = {}, exc
        for tp in partitions:
            if failure is not None:
                self._partitions[tp.partition] = _Partition(None, None, -1, ready=False)
            else:
                found = stored.get(tp.partition)
                tp.offset = self._start_offset(found)
                at = found.next_offset if found else None
                self._partitions[tp.partition] = _Partition(at, at, -1, ready=True)
        consumer.assign(partitions)
        log.info("sink: assigned %s", ", ".join(
            f"{tp.topic}[{tp.partition}]@{'beginning' if tp.offset == OFFSET_BEGINNING else tp.offset}"
            for tp in partitions) or "nothing")
        if failure is not None:
            self._enter_outage(failure)

    def _on_revoke(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._settle(wait=True)  # what is in flight commits before another sink reads the stored offsets
        revoked = {tp.partition for tp in partitions if tp.topic == self.settings.topic}
        self._buffer = [m for m in self._buffer if coordinates(m)[0] not in revoked]
        for partition in revoked:
            self._partitions.pop(partition, None)
            with contextlib.suppress(KeyError):  # never reported
                metrics.CONSUMER_LAG.remove(self.settings.group_id, self.settings.topic, str(partition))
        log.info("sink: revoked %s", ", ".join(f"[{p}]" for p in sorted(revoked)) or "nothing")

    def _lookup_topic_id(self) -> str | None:
        try:
            config = {"bootstrap.servers": self.settings.bootstrap_servers, **self.settings.kafka_overrides}
            return topic_id(config, self.settings.topic)
        except Exception as exc:  # an old broker without topic ids: no incarnation check
            log.info("sink: no topic id for %s (%s); stored offsets are trusted as they are", self.settings.topic, exc)
            return None


class _InlineExecutor(Executor):
    """Runs each submitted call at once, in the caller's thread (SinkSettings.pipeline = False)."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        future: Future[Any] = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as exc:
            future.set_exception(exc)
        return future


def tune_process() -> None:
    """Set the collector and the GIL of a process whose main work is a sink (once, at start-up; both are
    process-wide, hence not done by `Sink` itself).

    * A young-generation collection every 10,000 allocations of container objects instead of 700, older ones
      rarely: an event makes ~8 of them (decoded dicts, rows, plan entries) and a batch lives until written,
      so with the defaults the collector ran ~100 times per batch and traversed every live batch again and
      again as they aged, ~10 us of CPU per event (a quarter of the process's). Batches make no reference
      cycles: reference counting frees them.
    * A thread asking for the GIL gets it after 0.5 ms instead of 5 ms: the writer thread needs it after each
      of the ~17 round trips of a batch while the consuming thread decodes, and PostgreSQL waits meanwhile.
    """
    gc.set_threshold(10_000, 50, 100)
    sys.setswitchinterval(0.0005)


def new_group_id(prefix: str = DEFAULT_GROUP) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"
