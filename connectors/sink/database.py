"""The PostgreSQL half of the sink: one transaction per batch with the data and the consumed offsets.

A batch, in one transaction:
1. look up, in one round trip, which of its event ids `change_event` already holds (an event already held
   writes nothing) and, per table, which of its keys already have a row (one index probe per id and key);
2. per table, the rows of new keys are COPYed straight into the table; the others are COPYed into a
   temporary staging table and upserted: `INSERT .. SELECT .. ON CONFLICT DO UPDATE .. WHERE <guard>`, so a
   row only moves forward in (src_sequence, src_line_no);
3. soft deletes (tombstones under the same guard, and PERSON_DELETED cascades), in position order;
4. the change_event rows not yet held, COPYed straight into `change_event` (with the rows of step 2 when
   the batch has no upserts and no deletes: no guard reads `change_event` in between);
5. the consumed offsets into `esr.sink_offset` (one round trip), fenced: each row must still hold the
   offset this sink last read or wrote for the partition, otherwise another consumer has taken it over and
   the batch is rolled back (`Fenced`);
6. the caller's `before_commit` (dead letters are published and flushed there), then COMMIT (durable: the
   server's synchronous_commit).

Straight in: once a look-up finds nothing (a full file: every key and event is new), the next batches skip
it and COPY everything straight in (steps 2 and 4 without staging or savepoints), which is what the look-up
would have decided; the primary keys check it. If one of them is there after all (a change file follows, or
events are delivered again), the COPY fails on the unique key, the transaction is rolled back and the batch
is written again after the look-up; batches look up again until a look-up finds nothing.

A value the database refuses (SQLSTATE class 22 data exception or 23 integrity violation) fails the whole
statement: the transaction is rolled back and the batch written again in halves under savepoints until the
refused events are isolated; they are returned (for the dead-letter topic) and everything else is written.
Any other error (connection lost, server shutting down, ...) propagates: the caller backs off and retries,
nothing is written.

The straight COPYs (steps 2 and 4) are what makes a full file fast: no staging and no conflict handling for
rows that cannot conflict. Should another writer insert one of those keys between the look-up and the
COPY (two sinks of a group both given a trust's reference entity), the COPY fails on the unique key under a
savepoint and the rows take the upsert path (`INSERT .. ON CONFLICT`) instead: same result.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import errors, postgres, pq, sql
from psycopg.adapt import Dumper

from connectors.sink.mapping import (
    CHANGE_EVENT_COLUMNS,
    GUARD_COLUMNS,
    PERSON_CHILD_TABLES,
    TABLES,
    Cascade,
    Consumed,
    JsonText,
    Plan,
    Refusal,
    TableSpec,
    Tombstone,
    plan,
)

log = logging.getLogger(__name__)

APPLICATION_NAME = "esr-sink"


class Fenced(RuntimeError):
    """The stored offset of a partition is not what this sink expected: someone else wrote it."""


def is_refusal(exc: BaseException) -> bool:
    """A refusal of the data itself (retrying cannot help), as opposed to the database being unavailable."""
    if isinstance(exc, psycopg.DataError | psycopg.IntegrityError):
        return True
    sqlstate = getattr(exc, "sqlstate", None)
    return isinstance(sqlstate, str) and sqlstate[:2] in ("22", "23")


def describe(exc: BaseException) -> str:
    sqlstate = getattr(exc, "sqlstate", None)
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return f"{type(exc).__name__} ({sqlstate}): {text}" if sqlstate else f"{type(exc).__name__}: {text}"


@dataclass
class WriteResult:
    events: int = 0  # change events in the batch (refused ones excluded)
    change_events: int = 0  # change_event rows inserted (re-deliveries excluded)
    state_rows: int = 0  # state rows inserted or updated (guarded no-ops excluded)
    cascaded: int = 0  # rows soft-deleted by PERSON_DELETED cascades
    rows: Counter[str] = field(default_factory=Counter)  # all of the above by table ("change_event" included)
    event_times: list[dt.datetime] = field(default_factory=list)  # event_ts of the change_event rows inserted
    refused: list[Refusal] = field(default_factory=list)
    isolations: int = 0  # applies retried in halves because of a refusal
    seconds: float = 0.0
    committed_at: float = 0.0  # time.time() once committed (set by the caller)


def _ident(*names: str) -> sql.Composable:
    return sql.SQL(", ").join(sql.Identifier(n) for n in names)


def _stage_name(table: str) -> sql.Identifier:
    return sql.Identifier(f"sink_stage_{table}")


_GUARD = sql.SQL("(t.src_sequence, t.src_line_no) <= (EXCLUDED.src_sequence, EXCLUDED.src_line_no)")
_NOT_HELD = sql.SQL("NOT EXISTS (SELECT 1 FROM esr.change_event c WHERE c.event_id = {})")


def _upsert_sql(spec: TableSpec) -> sql.Composed:
    columns = spec.columns
    updates = sql.SQL(", ").join(
        sql.SQL("{0} = EXCLUDED.{0}").format(sql.Identifier(c)) for c in columns[2:]
    )
    return sql.SQL(
        "INSERT INTO esr.{table} AS t ({cols}) SELECT {cols} FROM pg_temp.{stage} s WHERE {not_held} "
        "ON CONFLICT (vpd, {key}) DO UPDATE SET {updates}, deleted_at = NULL, updated_at = now() WHERE {guard}"
    ).format(
        table=sql.Identifier(spec.name), cols=_ident(*columns), stage=_stage_name(spec.name),
        not_held=_NOT_HELD.format(sql.SQL("s.last_event_id")), key=sql.Identifier(spec.key_column),
        updates=updates, guard=_GUARD,
    )


def _tombstone_sql(spec: TableSpec) -> sql.Composed:
    person = ("person_id",) if spec.person_index is not None else ()
    columns = ("vpd", spec.key_column, *person, *GUARD_COLUMNS, "deleted_at")
    updates = sql.SQL(", ").join(sql.SQL("{0} = EXCLUDED.{0}").format(sql.Identifier(c)) for c in GUARD_COLUMNS)
    return sql.SQL(
        "INSERT INTO esr.{table} AS t ({cols}) VALUES ({params}) ON CONFLICT (vpd, {key}) DO UPDATE SET {updates}, "
        "deleted_at = COALESCE(t.deleted_at, EXCLUDED.deleted_at), updated_at = now() "
        "WHERE {guard} AND {not_held}"
    ).format(
        table=sql.Identifier(spec.name), cols=_ident(*columns),
        params=sql.SQL(", ").join([sql.Placeholder()] * len(columns)),
        key=sql.Identifier(spec.key_column), updates=updates, guard=_GUARD,
        not_held=_NOT_HELD.format(sql.SQL("EXCLUDED.last_event_id")),
    )


def _cascade_sql(spec: TableSpec) -> sql.Composed:
    return sql.SQL(
        "UPDATE esr.{table} SET deleted_at = COALESCE(deleted_at, %(deleted_at)s), "
        "src_sequence = %(sequence)s, src_line_no = %(line_no)s, src_file_name = %(file_name)s, "
        "src_file_sha256 = %(file_sha256)s, src_run_date = %(run_date)s, last_event_id = %(event_id)s, "
        "last_event_type = %(event_type)s, updated_at = now() "
        "WHERE vpd = %(vpd)s AND person_id = %(person_id)s "
        "AND (src_sequence, src_line_no) < (%(sequence)s, %(line_no)s)"
    ).format(table=sql.Identifier(spec.name))


def _existing_sql(spec: TableSpec) -> sql.Composed:
    """(table, vpd, key) of the rows the table holds among the keys given as two arrays (binary parameters:
    psycopg dumps a list of thousands of str five times faster so). A lateral probe of the primary key per
    key, whatever the statistics say: a join could hash the whole table every batch."""
    return sql.SQL(
        "SELECT {name}, k.vpd, k.id FROM unnest(%b::text[], %b::text[]) AS k(vpd, id) CROSS JOIN LATERAL "
        "(SELECT 1 FROM esr.{table} t WHERE t.vpd = k.vpd AND t.{key} = k.id LIMIT 1) AS found"
    ).format(name=sql.Literal(spec.name), table=sql.Identifier(spec.name), key=sql.Identifier(spec.key_column))


# (NULL, NULL, event_id) of the events change_event holds among the ids given: a probe of the primary key per
# id, as in _existing_sql (`event_id = ANY(..)` was planned as a scan of the whole table once it had grown)
_HELD = sql.SQL(
    "SELECT NULL, NULL, k.id FROM unnest(%b::text[]) AS k(id) CROSS JOIN LATERAL "
    "(SELECT 1 FROM esr.change_event c WHERE c.event_id = k.id LIMIT 1) AS found"
)
_UNION = sql.SQL(" UNION ALL ")
_LAST_EVENT_ID = -2  # where a state row holds last_event_id (GUARD_COLUMNS end with it and last_event_type)
_EVENT_TS = CHANGE_EVENT_COLUMNS.index("event_ts")


@dataclass
class _Applied:
    change_events: int  # change_event rows inserted
    state: Counter[str]  # state rows written, by table
    cascaded: Counter[str]  # rows cascaded, by table
    events: Sequence[tuple[Any, ...]]  # the change_event rows that were not held

_INSERT_CHANGE_EVENTS = sql.SQL(
    "INSERT INTO esr.change_event ({cols}) SELECT {cols} FROM pg_temp.sink_stage_change_event "
    "ON CONFLICT (event_id) DO NOTHING"
).format(cols=_ident(*CHANGE_EVENT_COLUMNS))

STORE_OFFSET = """
INSERT INTO esr.sink_offset AS o (consumer_group, topic, partition, next_offset, topic_id)
VALUES (%(group)s, %(topic)s, %(partition)s, %(next_offset)s, %(topic_id)s)
ON CONFLICT (consumer_group, topic, partition) DO UPDATE
   SET next_offset = EXCLUDED.next_offset, topic_id = EXCLUDED.topic_id, updated_at = now()
 WHERE o.next_offset IS NOT DISTINCT FROM %(expected)s
"""
_STORE_OFFSETS = STORE_OFFSET + "RETURNING o.topic, o.partition"  # for every partition of a batch at once


class _Refused(Exception):
    """Applying a batch in one go met a refusal (`error`); its transaction is rolled back."""

    def __init__(self, error: Exception) -> None:
        super().__init__(str(error))
        self.error = error


@dataclass(frozen=True, slots=True)
class StoredOffset:
    next_offset: int
    topic_id: str | None


@dataclass(frozen=True, slots=True)
class OffsetUpdate:
    """Move a partition's stored offset from `expected` (None: no row yet) to `next_offset`."""

    topic: str
    partition: int
    next_offset: int
    expected: int | None
    topic_id: str | None = None


class SinkDatabase:
    """One connection, its staging tables and the statements of every table. Not thread-safe."""

    def __init__(self, url: str, group: str, *, connect_timeout: int = 5) -> None:
        self.url = url
        self.group = group
        self.connect_timeout = connect_timeout
        self._conn: psycopg.Connection[Any] | None = None
        self._columns = {spec.name: spec.columns for spec in TABLES}
        self._columns["change_event"] = CHANGE_EVENT_COLUMNS
        self._copy = {
            name: sql.SQL("COPY pg_temp.{} ({}) FROM STDIN (FORMAT BINARY)").format(_stage_name(name), _ident(*columns))
            for name, columns in self._columns.items()
        }
        self._copy_straight = {
            name: sql.SQL("COPY esr.{} ({}) FROM STDIN (FORMAT BINARY)").format(sql.Identifier(name), _ident(*columns))
            for name, columns in self._columns.items()
        }
        self._existing = {spec.name: _existing_sql(spec) for spec in TABLES}
        self._types: dict[str, list[int]] = {}  # staged columns' type oids, for binary COPY
        self._upsert = {spec.name: _upsert_sql(spec) for spec in TABLES}
        self._tombstone = {spec.name: _tombstone_sql(spec) for spec in TABLES}
        self._cascade = [_cascade_sql(spec) for spec in PERSON_CHILD_TABLES]
        self._straight = False  # the last look-up found nothing: the next batch goes straight in (module doc)

    # -- connection -------------------------------------------------------------------------------------
    @property
    def connected(self) -> bool:
        return self._conn is not None and not self._conn.closed and not self._conn.broken

    def connect(self) -> psycopg.Connection[Any]:
        """The connection, in autocommit: a statement outside `transaction()` is a round trip of its own."""
        if self._conn is not None and self.connected:
            return self._conn
        self.close()
        conn = psycopg.connect(
            self.url,
            autocommit=True,
            application_name=APPLICATION_NAME,
            connect_timeout=self.connect_timeout,
            # a dead peer is noticed in seconds, not after the kernel's two hours
            keepalives=1, keepalives_idle=5, keepalives_interval=2, keepalives_count=3,
        )
        # `changes` arrives as JSON text: dump it as jsonb as it is (binary jsonb = version 1 + the text)
        conn.adapters.register_dumper(JsonText, _JsonTextDumper)
        try:
            with conn.transaction():
                # batches of a few thousand keys: index probes, never parallel workers started for each statement
                conn.execute("SET max_parallel_workers_per_gather = 0")
                for name, columns in self._columns.items():
                    conn.execute(sql.SQL(
                        "CREATE TEMP TABLE IF NOT EXISTS {} (LIKE esr.{} INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
                    ).format(_stage_name(name), sql.Identifier(name)))
                    oids: dict[str, int] = dict(conn.execute(
                        "SELECT attname, atttypid::int FROM pg_attribute WHERE attrelid = %s::regclass AND attnum > 0",
                        (f"esr.{name}",),
                    ).fetchall())
                    self._types[name] = [oids[column] for column in columns]
        except BaseException:
            conn.close()
            raise
        self._conn = conn
        return conn

    def close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            finally:
                self._conn = None

    # -- a batch ----------------------------------------------------------------------------------------
    def write(
        self,
        batch: Plan | Sequence[Consumed],
        offsets: Iterable[OffsetUpdate],
        before_commit: Callable[[list[Refusal]], None] | None = None,
        refused: Sequence[Refusal] = (),
    ) -> WriteResult:
        """Write `batch` (its plan, or the events to plan) and move `offsets`, in one transaction (module
        doc). `refused`: events refused before they got here (undecodable), handed to `before_commit` with
        the mapping's and the database's refusals."""
        conn = self.connect()
        batch_plan = batch if isinstance(batch, Plan) else plan(batch)
        offsets = list(offsets)
        look_up = not self._straight
        refusal: Exception | None = None
        while True:
            try:
                return self._write(conn, batch_plan, offsets, before_commit, refused, look_up, refusal)
            except _Refused as exc:
                if not look_up and isinstance(exc.error, errors.UniqueViolation):
                    log.info("a key or event of the batch is there already (%s); looking up what is held",
                             describe(exc.error))
                    self._straight = False
                    look_up = True
                else:
                    log.info("a batch of %d events was refused (%s); isolating the refused events",
                             len(batch_plan.consumed), describe(exc.error))
                    refusal = exc.error

    def _write(self, conn: psycopg.Connection[Any], batch_plan: Plan, offsets: Sequence[OffsetUpdate],
               before_commit: Callable[[list[Refusal]], None] | None, refused: Sequence[Refusal], look_up: bool,
               refusal: Exception | None) -> WriteResult:
        """One transaction of `write`: the batch in one go (`_Refused` if it meets a refusal), or, given the
        refusal it met, in halves."""
        result = WriteResult()
        with conn.transaction():
            if refusal is None:
                try:
                    applied = self._apply(conn, batch_plan, look_up=look_up)
                except Exception as exc:
                    if not is_refusal(exc) or conn.broken:
                        raise
                    raise _Refused(exc) from exc
                _count(result, batch_plan, applied)
            else:
                self._isolate(conn, batch_plan, result, refusal)
            self._store_offsets(conn, offsets)
            result.refused[:0] = refused
            if before_commit is not None:
                before_commit(result.refused)
        return result

    def _store_offsets(self, conn: psycopg.Connection[Any], offsets: Sequence[OffsetUpdate]) -> None:
        """Every partition's STORE_OFFSET in one round trip (a pipeline); `Fenced` if one did not move."""
        if not offsets:
            return
        cursor = conn.cursor()
        cursor.executemany(_STORE_OFFSETS, [{
            "group": self.group, "topic": update.topic, "partition": update.partition,
            "next_offset": update.next_offset, "topic_id": update.topic_id, "expected": update.expected,
        } for update in offsets], returning=True)
        moved = set(cursor.fetchall())
        while cursor.nextset():
            moved.update(cursor.fetchall())
        for update in offsets:
            if (update.topic, update.partition) not in moved:
                raise Fenced(
                    f"{update.topic}[{update.partition}]: the stored offset is no longer {update.expected}; "
                    f"another sink in group {self.group!r} has written it"
                )

    def _isolate(self, conn: psycopg.Connection[Any], batch_plan: Plan, result: WriteResult,
                 refusal: Exception | None = None) -> None:
        """Apply `batch_plan` under a savepoint; on a refusal (`refusal`: the one applying it has met already),
        apply its halves in turn until the refused events stand alone."""
        batch = batch_plan.consumed
        if refusal is None:
            try:
                with conn.transaction():  # a savepoint
                    applied = self._apply(conn, batch_plan, look_up=True, clear=True)
            except Exception as exc:
                if not is_refusal(exc) or conn.broken:
                    raise
                refusal = exc
            else:
                _count(result, batch_plan, applied)
                return
        unmappable = {id(r.consumed) for r in batch_plan.refused}
        mapped = [c for c in batch if id(c) not in unmappable]
        if len(mapped) <= 1:
            result.refused.extend(batch_plan.refused)
            if mapped:
                result.refused.append(Refusal(mapped[0], f"refused by PostgreSQL: {describe(refusal)}"))
                log.warning("PostgreSQL refused %s[%s]@%s: %s", mapped[0].topic, mapped[0].partition,
                            mapped[0].offset, describe(refusal))
            return
        result.isolations += 1
        middle = len(batch) // 2
        self._isolate(conn, plan(batch[:middle]), result)
        self._isolate(conn, plan(batch[middle:]), result)

    def _apply(self, conn: psycopg.Connection[Any], batch_plan: Plan, *, look_up: bool,
               clear: bool = False) -> _Applied:
        """Write the plan's rows. `look_up` False: straight in, no savepoint, the unique keys raising if
        anything is there (module doc). `clear`: empty the staging tables after (a later apply in the same
        transaction must not see these rows again)."""
        cursor = conn.cursor()
        held, existing = self._look_up(cursor, batch_plan) if look_up else (set(), {})
        state: Counter[str] = Counter()
        new: dict[str, Sequence[tuple[Any, ...]]] = {}  # rows of keys no row has yet, by table
        upserted: dict[str, Sequence[tuple[Any, ...]]] = {}
        for name, planned in batch_plan.upserts.items():
            rows = [row for row in planned if row[_LAST_EVENT_ID] not in held] if held else planned
            there = existing.get(name)
            if there:
                new[name] = [row for row in rows if (row[0], row[1]) not in there]
                upserted[name] = [row for row in rows if (row[0], row[1]) in there]
            else:
                new[name] = rows
        events = [row for row in batch_plan.change_events if row[0] not in held] if held else batch_plan.change_events
        straight = {name: rows for name, rows in new.items() if rows}
        if events and not batch_plan.deletes and not any(upserted.values()):
            straight["change_event"] = events  # no guard reads change_event in between: with the rows
        inserted: int | None = None  # change_event rows, once inserted
        if straight:
            if self._copy_straight_in(conn, cursor, straight, savepoint=look_up):
                state.update({name: len(rows) for name, rows in new.items()})
                if "change_event" in straight:
                    inserted = len(events)
            else:
                upserted = {name: [*new.get(name, ()), *upserted.get(name, ())] for name in batch_plan.upserts}
        if look_up:
            self._straight = not held and not existing and not upserted
        staged: list[str] = []
        for name, pending in upserted.items():
            if pending:
                self._copy_rows(cursor, self._copy[name], name, pending)
                staged.append(name)
                cursor.execute(self._upsert[name])
                state[name] += max(cursor.rowcount, 0)
        cascaded: Counter[str] = Counter()
        for run in _runs(batch_plan.deletes):  # in position order; a run of one kind in one round trip
            head = run[0]
            if isinstance(head, Tombstone):
                cursor.executemany(self._tombstone[head.table.name], [_tombstone_params(t) for t in run])
                state[head.table.name] += max(cursor.rowcount, 0)
            else:
                params = [_cascade_params(c) for c in run]
                for spec, statement in zip(PERSON_CHILD_TABLES, self._cascade, strict=True):
                    cursor.executemany(statement, params)
                    cascaded[spec.name] += max(cursor.rowcount, 0)
        # after the upserts and deletes: their guards must not see this batch's own events as already held
        if inserted is None and events:
            if "change_event" not in straight and self._copy_straight_in(
                    conn, cursor, {"change_event": events}, savepoint=look_up):
                inserted = len(events)
            else:
                self._copy_rows(cursor, self._copy["change_event"], "change_event", events)
                staged.append("change_event")
                cursor.execute(_INSERT_CHANGE_EVENTS)
                inserted = max(cursor.rowcount, 0)
        if clear:
            for name in staged:
                cursor.execute(sql.SQL("TRUNCATE pg_temp.{}").format(_stage_name(name)))
        return _Applied(inserted or 0, +state, +cascaded, events)

    def _look_up(self, cursor: psycopg.Cursor[Any],
                 batch_plan: Plan) -> tuple[set[str], dict[str, set[tuple[str, str]]]]:
        """In one round trip: the batch's event ids that change_event holds, and by table the keys
        (vpd, id) of its rows that already have a row."""
        parts: list[sql.Composable] = []
        params: list[list[str]] = []
        if batch_plan.change_events:
            parts.append(_HELD)
            params.append([row[0] for row in batch_plan.change_events])
        for name, rows in batch_plan.upserts.items():
            parts.append(self._existing[name])
            params += [[row[0] for row in rows], [row[1] for row in rows]]
        held: set[str] = set()
        existing: dict[str, set[tuple[str, str]]] = {}
        if parts:
            cursor.execute(_UNION.join(parts), params)
            for table, vpd, key in cursor.fetchall():
                if table is None:
                    held.add(key)
                else:
                    existing.setdefault(table, set()).add((vpd, key))
        return held, existing

    def _copy_straight_in(self, conn: psycopg.Connection[Any], cursor: psycopg.Cursor[Any],
                          tables: Mapping[str, Sequence[tuple[Any, ...]]], *, savepoint: bool) -> bool:
        """COPY rows of keys not held yet straight into their tables. `savepoint`: under one, False (nothing
        written) if another writer inserted one of them since the look-up (module doc); else a unique key
        already there raises."""
        if not savepoint:
            for name, rows in tables.items():
                self._copy_rows(cursor, self._copy_straight[name], name, rows)
            return True
        try:
            with conn.transaction():  # a savepoint
                for name, rows in tables.items():
                    self._copy_rows(cursor, self._copy_straight[name], name, rows)
        except errors.UniqueViolation as exc:
            log.info("a key was inserted by another writer since the look-up (%s); upserting instead", describe(exc))
            return False
        return True

    def _copy_rows(self, cursor: psycopg.Cursor[Any], statement: sql.Composed, name: str,
                   rows: Sequence[tuple[Any, ...]]) -> None:
        with cursor.copy(statement) as copy:
            copy.set_types(self._types[name])
            write_row = copy.write_row
            for row in rows:
                write_row(row)


def _count(result: WriteResult, batch_plan: Plan, applied: _Applied) -> None:
    """Add what applying `batch_plan` wrote to `result`."""
    result.refused.extend(batch_plan.refused)
    result.events += len(batch_plan.change_events)
    result.change_events += applied.change_events
    result.state_rows += applied.state.total()
    result.cascaded += applied.cascaded.total()
    result.rows.update(applied.state)
    result.rows.update(applied.cascaded)
    if applied.change_events:
        result.rows["change_event"] += applied.change_events
        result.event_times.extend(t for row in applied.events if (t := row[_EVENT_TS]) is not None)


class _JsonTextDumper(Dumper):
    """Binary jsonb from JSON text; registered for the jsonb oid, so binary COPY uses it for any str."""

    oid = postgres.types["jsonb"].oid
    format = pq.Format.BINARY

    def dump(self, obj: str) -> bytes:
        return b"\x01" + obj.encode()


def _runs(deletes: Sequence[Tombstone | Cascade]) -> Iterator[list[Any]]:
    """Consecutive deletes of the same statement (tombstones of one table, or cascades)."""
    run: list[Any] = []
    kind: str | None = None
    for delete in deletes:
        this = delete.table.name if isinstance(delete, Tombstone) else "*cascade"
        if run and this != kind:
            yield run
            run = []
        kind = this
        run.append(delete)
    if run:
        yield run


def _tombstone_params(tombstone: Tombstone) -> tuple[Any, ...]:
    person = (tombstone.person_id,) if tombstone.table.person_index is not None else ()
    return (tombstone.vpd, tombstone.entity_id, *person, *tombstone.provenance.values(), tombstone.deleted_at)


def _cascade_params(cascade: Cascade) -> Mapping[str, Any]:
    provenance = cascade.provenance
    return {
        "vpd": cascade.vpd, "person_id": cascade.person_id, "deleted_at": cascade.deleted_at,
        "sequence": provenance.position[0], "line_no": provenance.position[1], "file_name": provenance.file_name,
        "file_sha256": provenance.file_sha256, "run_date": provenance.run_date, "event_id": provenance.event_id,
        "event_type": provenance.event_type,
    }


def stored_offsets(url: str, group: str, topic: str, *, connect_timeout: int = 5) -> dict[int, StoredOffset]:
    """The group's stored offsets of `topic`, by partition (a connection of its own: the writer's may be
    in the middle of a batch)."""
    with psycopg.connect(url, connect_timeout=connect_timeout, application_name=APPLICATION_NAME) as conn:
        rows = conn.execute(
            "SELECT partition, next_offset, topic_id FROM esr.sink_offset WHERE consumer_group = %s AND topic = %s",
            (group, topic),
        ).fetchall()
    return {partition: StoredOffset(offset, topic_id) for partition, offset, topic_id in rows}


def restart_offsets(url: str, group: str, topic: str, partitions: Sequence[int], topic_id: str) -> int:
    """Set the stored offsets of `partitions` to 0 for a new incarnation `topic_id` of the topic."""
    with psycopg.connect(url, application_name=APPLICATION_NAME) as conn, conn.transaction():
        cursor = conn.execute(
            "UPDATE esr.sink_offset SET next_offset = 0, topic_id = %s, updated_at = now() "
            "WHERE consumer_group = %s AND topic = %s AND partition = ANY(%s) AND topic_id IS DISTINCT FROM %s",
            (topic_id, group, topic, list(partitions), topic_id),
        )
        return max(cursor.rowcount, 0)


def reset_offsets(url: str, group: str, topic: str, to: int | None = None) -> int:
    """Re-deliver: forget (to=None) or set the group's stored offsets of `topic`; the sink must be stopped.
    Returns the number of partitions touched."""
    with psycopg.connect(url) as conn, conn.transaction():
        if to is None:
            cursor = conn.execute(
                "DELETE FROM esr.sink_offset WHERE consumer_group = %s AND topic = %s", (group, topic)
            )
        else:
            cursor = conn.execute(
                "UPDATE esr.sink_offset SET next_offset = %s, updated_at = now() "
                "WHERE consumer_group = %s AND topic = %s",
                (to, group, topic),
            )
        return max(cursor.rowcount, 0)
