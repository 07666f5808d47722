"""The employee sink: `esr.mapped-changes` -> `esr.employee`, exactly once in the database.

The sink's pattern (connectors.sink.sink), for a topic of whole records:

- **Offsets** in `esr.sink_offset` (group `esr-sink-employee`), written in the transaction of the rows they
  produced, moved only from the offset this sink read them at (`Fenced` otherwise: it re-reads from what is
  stored). Partitions are assigned, not subscribed: one employee sink per database; the fencing keeps a
  second one harmless. Offsets stored for another incarnation of the topic start over from 0.
- **Rows**: a mapped change carries the whole record, so the last one of a key in a batch is the only one
  written (COPYed into a staging table of the session, then upserted by one statement). A row never goes
  back to an older template version (`esr remap` may have written a newer one while older changes were in
  flight). PERSON_DELETED leaves a soft-deleted row with `deleted_at` set and
  the mapped fields cleared (whether or not a record was written before): the row of a deleted employee
  is then the same whatever batches the stage saw its states in (the ESR history stays in esr.person and
  esr.change_event); a later mapped record of the person brings the row back. The fields the trust's NHS
  options render (username, home_address, display_name) are written and cleared with the mapped fields.
  The lifecycle columns (activated_at, archived_at) are never touched here.
- **Faults**: PostgreSQL unavailable -> the batch is dropped, the sink reconnects with back-off and seeks
  back to the stored offsets; an undecodable message or a record the database refuses (SQLSTATE 22/23)
  goes to `esr.dlq.sink` with the reason, and the rest of the batch is written.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import psycopg
from confluent_kafka import Consumer, KafkaError, Message, TopicPartition
from psycopg import sql
from psycopg.types.json import Jsonb

from connectors.sink.database import (
    STORE_OFFSET,
    Fenced,
    OffsetUpdate,
    StoredOffset,
    describe,
    is_refusal,
    restart_offsets,
    stored_offsets,
)
from esr.codec import Decoder, UndecodableMessage
from esr.kafka.producer import Publisher
from esr.kafka.reading import coordinates, end_offsets, topic_id
from esr.kafka.topics import DLQ_OFFSET, DLQ_PARTITION, DLQ_REASON, DLQ_SINK, DLQ_STAGE, DLQ_TOPIC, MAPPED_CHANGES
from esr.mapping.catalogue import STANDARD_FIELD_LIST, Kind

log = logging.getLogger(__name__)

EMPLOYEE_GROUP = "esr-sink-employee"
BATCH_SIZE = 5000  # messages a transaction at most
STANDARD_COLUMNS = tuple(f.name for f in STANDARD_FIELD_LIST)
NHS_COLUMNS = ("username", "home_address", "display_name")  # the mapped change's `nhs` map
#: the Python value of a mapped value's canonical text, per kind (text stays text); ValueError for a text
#: that is not one
_PARSE: dict[Kind, Callable[[str], Any]] = {
    Kind.DATE: dt.date.fromisoformat,
    Kind.DATETIME: dt.datetime.fromisoformat,
    Kind.INT: int,
    Kind.DECIMAL: Decimal,
}
#: (column, parser or None for text) of each standard column, in order
_STANDARD_PARSERS = tuple((f.name, _PARSE.get(f.kind)) for f in STANDARD_FIELD_LIST)


def udf_json(values: Mapping[str, str | None], kinds: Mapping[str, str]) -> dict[str, Any]:
    """The `udf` jsonb: whole numbers as JSON numbers, everything else as its canonical text."""
    out: dict[str, Any] = {}
    for name, text in values.items():
        out[name] = int(text) if text is not None and kinds.get(name) == Kind.INT.value else text
    return out


@dataclass(frozen=True, slots=True)
class EmployeeRow:
    vpd: str
    person_id: str
    deleted: bool
    template_version: int
    event_id: str
    standard: tuple[Any, ...] = ()
    nhs: tuple[str | None, ...] = (None,) * len(NHS_COLUMNS)
    udf: dict[str, Any] = field(default_factory=dict)
    problems: list[dict[str, Any]] = field(default_factory=list)


def employee_row(event: Mapping[str, Any]) -> EmployeeRow:
    """The row a decoded mapped change writes (ValueError for a value that is not of its field's kind)."""
    deleted = event["event_type"] == "PERSON_DELETED"
    standard = event.get("standard") or {}
    nhs = event.get("nhs") or {}
    return EmployeeRow(
        vpd=event["vpd"],
        person_id=event["person_id"],
        deleted=deleted,
        template_version=int(event["template_version"]),
        event_id=event["event_id"],
        standard=() if deleted else tuple([
            text if (text := standard.get(name)) is None or parse is None else parse(text)
            for name, parse in _STANDARD_PARSERS
        ]),
        nhs=tuple(None if deleted else nhs.get(name) for name in NHS_COLUMNS),
        udf={} if deleted else udf_json(event.get("udf") or {}, event.get("udf_kinds") or {}),
        problems=list(event.get("problems") or []),
    )


_COLUMNS = ("vpd", "person_id", *STANDARD_COLUMNS, *NHS_COLUMNS, "udf", "problems", "template_version", "last_event_id")
# The upserts of a batch go through a staging table: COPY the rows in, then one statement moves them all
# (emptying the table). A statement per row (executemany) cost about 5 times the client's CPU.
_STAGE = sql.Identifier("pg_temp", "employee_stage")
_CREATE_STAGE = sql.SQL("CREATE TEMP TABLE IF NOT EXISTS {} (LIKE esr.employee INCLUDING DEFAULTS)").format(_STAGE)
_COPY_STAGE = sql.SQL("COPY {} ({}) FROM STDIN").format(_STAGE, sql.SQL(", ").join(map(sql.Identifier, _COLUMNS)))
_UPSERT = sql.SQL(
    "WITH staged AS (DELETE FROM {stage} RETURNING {columns}) "
    "INSERT INTO esr.employee AS e ({columns}) SELECT {columns} FROM staged ON CONFLICT (vpd, person_id) DO UPDATE"
    " SET {updates}, updated_at = now(), deleted_at = NULL WHERE e.template_version <= EXCLUDED.template_version"
).format(
    stage=_STAGE,
    columns=sql.SQL(", ").join(map(sql.Identifier, _COLUMNS)),
    updates=sql.SQL(", ").join(
        sql.SQL("{c} = EXCLUDED.{c}").format(c=sql.Identifier(c)) for c in _COLUMNS[2:]
    ),
)
_DELETE = sql.SQL(
    "INSERT INTO esr.employee AS e (vpd, person_id, template_version, last_event_id, deleted_at)"
    " VALUES (%s, %s, %s, %s, now()) ON CONFLICT (vpd, person_id) DO UPDATE SET {cleared}, udf = '{{}}',"
    " problems = '[]', template_version = EXCLUDED.template_version, last_event_id = EXCLUDED.last_event_id,"
    " deleted_at = coalesce(e.deleted_at, now()), updated_at = now()"
    " WHERE e.template_version <= EXCLUDED.template_version"
).format(cleared=sql.SQL(", ").join(
    sql.SQL("{} = NULL").format(sql.Identifier(c)) for c in (*STANDARD_COLUMNS, *NHS_COLUMNS)
))


def write_rows(conn: psycopg.Connection[Any], rows: Sequence[EmployeeRow]) -> int:
    """Upsert / soft-delete `rows` (in the caller's transaction); the last row of a key wins."""
    last: dict[tuple[str, str], EmployeeRow] = {}
    for row in rows:
        last[(row.vpd, row.person_id)] = row
    upserts = [r for r in last.values() if not r.deleted]
    deletes = [r for r in last.values() if r.deleted]
    with conn.cursor() as cur:
        if upserts:  # (keys unique: the statement never updates a row twice)
            cur.execute(_CREATE_STAGE)
            with cur.copy(_COPY_STAGE) as copy:
                for r in upserts:
                    copy.write_row((r.vpd, r.person_id, *r.standard, *r.nhs, Jsonb(r.udf), Jsonb(r.problems),
                                    r.template_version, r.event_id))
            cur.execute(_UPSERT)
        if deletes:
            cur.executemany(_DELETE, [(r.vpd, r.person_id, r.template_version, r.event_id) for r in deletes])
    return len(last)


def store_offsets(conn: psycopg.Connection[Any], group: str, updates: Sequence[OffsetUpdate]) -> None:
    for update in updates:
        cursor = conn.execute(STORE_OFFSET, {
            "group": group, "topic": update.topic, "partition": update.partition,
            "next_offset": update.next_offset, "topic_id": update.topic_id, "expected": update.expected,
        })
        if cursor.rowcount != 1:
            raise Fenced(f"{update.topic}[{update.partition}]: the stored offset is no longer {update.expected}")


@dataclass
class EmployeeSinkStats:
    messages: int = 0
    rows: int = 0
    batches: int = 0
    dead_letters: int = 0
    outages: int = 0


class EmployeeSink:
    """Consume `esr.mapped-changes` into `esr.employee` (module doc). `run(stop)` until stopped."""

    def __init__(self, bootstrap_servers: str, database_url: str, *, group: str = EMPLOYEE_GROUP,
                 topic: str = MAPPED_CHANGES, batch_size: int = BATCH_SIZE,
                 kafka_overrides: Mapping[str, Any] | None = None,
                 backoff_initial: float = 0.5, backoff_max: float = 30.0) -> None:
        self.config = {"bootstrap.servers": bootstrap_servers, **(kafka_overrides or {})}
        self.database_url = database_url
        self.group = group
        self.topic = topic
        self.batch_size = batch_size
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.decoder = Decoder("mapped-change-event")
        self.stats = EmployeeSinkStats()
        self._consumer: Consumer | None = None
        self._conn: psycopg.Connection[Any] | None = None
        self._dlq: Publisher | None = None
        self._at: dict[int, int | None] = {}  # partition -> stored next offset (None: no row yet)
        self._topic_id: str | None = None
        self._partitions: list[int] = []

    # -- lifecycle ------------------------------------------------------------------------------------
    def start(self) -> None:
        consumer = Consumer({**self.config, "group.id": self.group, "enable.auto.commit": False,
                             "enable.partition.eof": False, "auto.offset.reset": "earliest"})
        metadata = consumer.list_topics(self.topic, timeout=10).topics.get(self.topic)
        if metadata is None or metadata.error is not None:
            consumer.close()
            raise RuntimeError(f"topic {self.topic} does not exist")
        self._consumer = consumer
        try:
            self._topic_id = topic_id(self.config, self.topic)
        except Exception as exc:  # an old broker without topic ids: no incarnation check
            log.info("employee sink: no topic id for %s (%s)", self.topic, exc)
        self._partitions = sorted(metadata.partitions)
        self._seek_stored()

    def close(self) -> None:
        if self._consumer is not None:
            self._consumer.close()
            self._consumer = None
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def run(self, stop: threading.Event) -> EmployeeSinkStats:
        if self._consumer is None:
            self.start()
        backoff = self.backoff_initial
        try:
            while not stop.is_set():
                try:
                    self.step()
                    backoff = self.backoff_initial
                except Fenced as exc:
                    log.warning("employee sink: %s; reading again from the stored offsets", exc)
                    self._reset_after_failure()
                except (psycopg.OperationalError, psycopg.InterfaceError, OSError) as exc:
                    self.stats.outages += 1
                    log.warning("employee sink: database unavailable (%s); retrying in %.1f s", describe(exc), backoff)
                    stop.wait(backoff)
                    backoff = min(backoff * 2, self.backoff_max)
                    self._reset_after_failure()
        finally:
            self.close()
        return self.stats

    def drain(self, partitions: int, timeout: float = 600.0) -> EmployeeSinkStats:
        """Run until the stored offsets reach the real end of every partition (TimeoutError after `timeout`)."""
        if self._consumer is None:
            self.start()
        deadline = time.monotonic() + timeout
        try:
            while not employee_sink_caught_up(self.config, self.database_url, partitions, self.group, self.topic):
                if time.monotonic() > deadline:
                    raise TimeoutError(f"the employee sink did not catch up with {self.topic} in {timeout:.0f} s")
                self.step(0.2)
        finally:
            self.close()
        return self.stats

    def _reset_after_failure(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        try:
            self._seek_stored()
        except (psycopg.Error, OSError) as exc:
            log.warning("employee sink: cannot read the stored offsets yet (%s)", describe(exc))
            self._at = {}

    def _seek_stored(self) -> None:
        assert self._consumer is not None
        stored = stored_offsets(self.database_url, self.group, self.topic)
        stale = [p for p, s in stored.items() if self._topic_id and s.topic_id and s.topic_id != self._topic_id]
        if stale:
            log.warning("employee sink: offsets of another incarnation of %s: partitions %s start over",
                        self.topic, stale)
            restart_offsets(self.database_url, self.group, self.topic, stale, self._topic_id or "")
            for partition in stale:
                stored[partition] = StoredOffset(0, self._topic_id)
        self._at = {p: (stored[p].next_offset if p in stored else None) for p in self._partitions}
        self._consumer.assign([TopicPartition(self.topic, p, self._at[p] or 0) for p in self._partitions])

    def _connection(self) -> psycopg.Connection[Any]:
        if self._conn is None or self._conn.closed or self._conn.broken:
            self._conn = psycopg.connect(self.database_url, connect_timeout=5, application_name="esr-sink-employee",
                                         keepalives=1, keepalives_idle=5, keepalives_interval=2, keepalives_count=3)
        return self._conn

    # -- one batch ------------------------------------------------------------------------------------
    def step(self, timeout: float = 0.5) -> int:
        """Consume a batch and write it with its offsets in one transaction; returns rows written."""
        if not self._at:
            self._seek_stored()
        assert self._consumer is not None
        messages = self._consumer.consume(self.batch_size, timeout)
        rows: list[EmployeeRow] = []
        refused: list[tuple[Message, str]] = []
        next_offsets: dict[int, int] = {}
        for message in messages:
            error = message.error()
            if error is not None:
                if error.code() == KafkaError._PARTITION_EOF:
                    continue
                raise RuntimeError(f"consuming {self.topic}: {error.str()}")
            partition, offset = coordinates(message)
            next_offsets[partition] = offset + 1
            try:
                event = self.decoder.decode(message.value() or b"")
                rows.append(employee_row(event))
            except (UndecodableMessage, ValueError, KeyError, TypeError) as exc:
                refused.append((message, f"{type(exc).__name__}: {exc}"))
        if not next_offsets:
            return 0
        updates = [
            OffsetUpdate(self.topic, partition, offset, self._at.get(partition), self._topic_id)
            for partition, offset in sorted(next_offsets.items())
        ]
        written = self._write(rows, updates, refused, {coordinates(m): m for m in messages})
        for update in updates:
            self._at[update.partition] = update.next_offset
        self.stats.messages += len(messages)
        self.stats.rows += written
        self.stats.batches += 1
        return written

    def _write(self, rows: list[EmployeeRow], updates: list[OffsetUpdate], refused: list[tuple[Message, str]],
               messages: Mapping[tuple[int, int], Message]) -> int:
        conn = self._connection()
        with conn.transaction():
            try:
                with conn.transaction():  # a savepoint: a refused batch is retried row by row
                    written = write_rows(conn, rows)
            except psycopg.Error as exc:
                if not is_refusal(exc):
                    raise
                written = 0
                for row in rows:
                    try:
                        with conn.transaction():
                            written += write_rows(conn, [row])
                    except psycopg.Error as row_exc:
                        if not is_refusal(row_exc):
                            raise
                        refused.append((self._message_of(row, messages), describe(row_exc)))
            store_offsets(conn, self.group, updates)
            if refused:
                self._dead_letter(refused)
        return written

    @staticmethod
    def _message_of(row: EmployeeRow, messages: Mapping[tuple[int, int], Message]) -> Message:
        for message in messages.values():
            if message.key() == f"{row.vpd}:{row.person_id}".encode():
                return message
        raise LookupError(f"no message for {row.vpd}:{row.person_id}")

    def _dead_letter(self, refused: list[tuple[Message, str]]) -> None:
        if self._dlq is None:
            self._dlq = Publisher({**self.config, "enable.idempotence": True, "acks": "all",
                                   "partitioner": "murmur2_random", "linger.ms": 5})
        for message, reason in refused:
            log.warning("employee sink: dead letter %s[%s]@%s: %s", message.topic(), message.partition(),
                        message.offset(), reason)
            self._dlq.send(DLQ_SINK, message.key(), message.value(), [
                *(message.headers() or []),
                (DLQ_STAGE, b"sink"),
                (DLQ_REASON, reason[:4000].encode()),
                (DLQ_TOPIC, str(message.topic()).encode()),
                (DLQ_PARTITION, str(message.partition()).encode()),
                (DLQ_OFFSET, str(message.offset()).encode()),
            ])
        self._dlq.flush(30)
        self.stats.dead_letters += len(refused)


def employee_sink_caught_up(config: Mapping[str, Any], database_url: str, partitions: int,
                            group: str = EMPLOYEE_GROUP, topic: str = MAPPED_CHANGES) -> bool:
    """The stored offsets have reached the real end of every partition of the topic."""
    stored = stored_offsets(database_url, group, topic)
    start = {p: stored[p].next_offset if p in stored else 0 for p in range(partitions)}
    return end_offsets(config, topic, start) == start
