"""The ingest ledger in PostgreSQL: trusts, one row per file received, the lines that were not clean,
and the entity -> person index that lets a delete row be keyed by its person."""

from __future__ import annotations

import datetime as dt
import json
import queue
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.rows import class_row

from esr.profiles import ImportFrequency, NhsOptions, TrustProfile, nhs_options_from_dict

PUBLISHED_STATUSES = ("published", "completed")
_TRUST_LOCK_NAMESPACE = 0x45535202


@dataclass(frozen=True)
class Trust:
    vpd: str
    name: str
    interface_version: int
    import_frequency: str
    last_sequence: int | None
    active: bool


@dataclass(frozen=True)
class ImportFile:
    sha256: str
    vpd: str | None
    file_name: str
    sequence: int | None
    status: str
    rejection_code: str | None
    record_count: int | None
    message: str | None
    received_at: dt.datetime
    completed_at: dt.datetime | None


@dataclass(frozen=True)
class LineError:
    line_no: int
    record_code: str | None
    severity: str  # quarantined | warning | skipped
    field: str | None
    reason: str
    raw_line: str | None


@dataclass(frozen=True)
class FileFacts:
    """What is known of a file when its ledger row is written (any of it may be unknown on rejection)."""

    sha256: str
    file_name: str
    vpd: str | None
    sequence: int | None
    extract_type: str | None
    extract_date: dt.date | None
    run_date: dt.datetime | None
    line_count: int | None
    size_bytes: int | None


class TrustExists(Exception):
    pass


ProfileListener = Callable[[TrustProfile], None]

_PROFILE_COLUMNS = "vpd, name, interface_version, import_frequency, inbox_path, last_sequence, active, nhs_options"


def _profile(row: tuple[Any, ...]) -> TrustProfile:
    vpd, name, version, frequency, inbox, sequence, active, options = row
    return TrustProfile(
        vpd=vpd, name=name, interface_version=version, import_frequency=ImportFrequency(frequency),
        inbox_path=inbox, last_sequence=sequence or 0, active=active,
        nhs_options=NhsOptions() if options is None else nhs_options_from_dict(options, strict=False),
    )


class Ledger:
    """All ledger SQL lives here. One connection, autocommit; each write is its own statement or
    transaction so a crash leaves the ledger describing what really happened.

    `on_profile_change` is called with a trust's whole profile once it is added or changed (committed):
    `esr.kafka.profiles.ProfilePublisher` puts it on `esr.trust-profiles` for the stream workers.
    """

    def __init__(self, url: str, *, on_profile_change: ProfileListener | None = None) -> None:
        self.url = url
        self.conn = psycopg.connect(url, autocommit=True)
        self.on_profile_change = on_profile_change

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # Trusts -------------------------------------------------------------------------------------

    def add_trust(
        self, vpd: str, name: str, *, interface_version: int = 2, import_frequency: str = "daily"
    ) -> Trust:
        try:
            with self.conn.cursor(row_factory=class_row(Trust)) as cur:
                cur.execute(
                    "INSERT INTO esr.trust (vpd, name, interface_version, import_frequency)"
                    " VALUES (%s, %s, %s, %s)"
                    " RETURNING vpd, name, interface_version, import_frequency, last_sequence, active",
                    (vpd, name, interface_version, import_frequency),
                )
                row = cur.fetchone()
        except psycopg.errors.UniqueViolation:
            raise TrustExists(f"trust {vpd} is already registered") from None
        assert row is not None
        self._profile_changed(vpd)
        return row

    def trust(self, vpd: str) -> Trust | None:
        with self.conn.cursor(row_factory=class_row(Trust)) as cur:
            cur.execute(
                "SELECT vpd, name, interface_version, import_frequency, last_sequence, active"
                " FROM esr.trust WHERE vpd = %s",
                (vpd,),
            )
            return cur.fetchone()

    def trusts(self) -> list[Trust]:
        with self.conn.cursor(row_factory=class_row(Trust)) as cur:
            cur.execute(
                "SELECT vpd, name, interface_version, import_frequency, last_sequence, active"
                " FROM esr.trust ORDER BY vpd"
            )
            return cur.fetchall()

    def trust_profile(self, vpd: str) -> tuple[str | None, dict[str, Any] | None] | None:
        """The trust's inbox path and stored NHS options (None: the defaults), or None for no such trust."""
        row = self.conn.execute("SELECT inbox_path, nhs_options FROM esr.trust WHERE vpd = %s", (vpd,)).fetchone()
        return None if row is None else (row[0], row[1])

    def profile(self, vpd: str) -> TrustProfile | None:
        """The trust's whole profile (NHS options read leniently: keys a newer program added are skipped)."""
        row = self.conn.execute(f"SELECT {_PROFILE_COLUMNS} FROM esr.trust WHERE vpd = %s".encode(), (vpd,)).fetchone()
        return None if row is None else _profile(row)

    def profiles(self) -> list[TrustProfile]:
        rows = self.conn.execute(f"SELECT {_PROFILE_COLUMNS} FROM esr.trust ORDER BY vpd".encode()).fetchall()
        return [_profile(row) for row in rows]

    def _profile_changed(self, vpd: str) -> None:
        if self.on_profile_change is None:
            return
        profile = self.profile(vpd)
        if profile is not None:
            self.on_profile_change(profile)

    def update_trust(self, vpd: str, **columns: Any) -> None:
        """Set profile columns (name, import_frequency, inbox_path, active, nhs_options as a dict)."""
        allowed = {"name", "import_frequency", "inbox_path", "active", "nhs_options"}
        unknown = set(columns) - allowed
        if unknown:
            raise ValueError(f"not a trust profile column: {', '.join(sorted(unknown))}")
        if not columns:
            return
        values = {k: json.dumps(v) if k == "nhs_options" else v for k, v in columns.items()}
        assignments = ", ".join(f"{name} = %({name})s" for name in values)
        with self.conn.transaction():
            self.conn.execute(
                f"UPDATE esr.trust SET {assignments}, updated_at = now() WHERE vpd = %(vpd)s".encode(),
                {**values, "vpd": vpd},
            )
        self._profile_changed(vpd)

    @contextmanager
    def trust_lock(self, vpd: str) -> Iterator[None]:
        """Serialise ingests of one trust (sequence checks and updates must not interleave)."""
        with psycopg.connect(self.url, autocommit=True) as lock_conn:
            lock_conn.execute("SELECT pg_advisory_lock(%s, hashtext(%s))", (_TRUST_LOCK_NAMESPACE, vpd))
            try:
                yield
            finally:
                lock_conn.execute("SELECT pg_advisory_unlock(%s, hashtext(%s))", (_TRUST_LOCK_NAMESPACE, vpd))

    # Files --------------------------------------------------------------------------------------

    def import_file(self, sha256: str) -> ImportFile | None:
        with self.conn.cursor(row_factory=class_row(ImportFile)) as cur:
            cur.execute(
                "SELECT sha256, vpd, file_name, sequence, status, rejection_code, record_count, message,"
                " received_at, completed_at FROM esr.import_file WHERE sha256 = %s",
                (sha256,),
            )
            return cur.fetchone()

    def import_files(self, vpd: str | None = None, limit: int = 100) -> list[ImportFile]:
        with self.conn.cursor(row_factory=class_row(ImportFile)) as cur:
            cur.execute(
                "SELECT sha256, vpd, file_name, sequence, status, rejection_code, record_count, message,"
                " received_at, completed_at FROM esr.import_file"
                " WHERE %(vpd)s::text IS NULL OR vpd = %(vpd)s ORDER BY received_at DESC LIMIT %(limit)s",
                {"vpd": vpd, "limit": limit},
            )
            return cur.fetchall()

    def last_published(self) -> dict[str, tuple[dt.date | None, dt.datetime]]:
        """Per trust: the extract date and completion time of its latest published file."""
        rows = self.conn.execute(
            "SELECT DISTINCT ON (vpd) vpd, extract_date, coalesce(completed_at, received_at)"
            " FROM esr.import_file WHERE status = ANY(%s) AND vpd IS NOT NULL"
            " ORDER BY vpd, extract_date DESC NULLS LAST, received_at DESC",
            (list(PUBLISHED_STATUSES),),
        ).fetchall()
        return {vpd: (extract_date, at) for vpd, extract_date, at in rows}

    def _upsert_file(self, facts: FileFacts, status: str, **columns: Any) -> None:
        names = [
            "sha256", "file_name", "vpd", "sequence", "extract_type", "extract_date", "run_date",
            "line_count", "size_bytes", "status", *columns,
        ]
        values = [
            facts.sha256, facts.file_name, facts.vpd, facts.sequence, facts.extract_type, facts.extract_date,
            facts.run_date, facts.line_count, facts.size_bytes, status, *columns.values(),
        ]
        updates = ", ".join(f"{n} = EXCLUDED.{n}" for n in names[1:])
        query = (
            f"INSERT INTO esr.import_file ({', '.join(names)}) VALUES ({', '.join(['%s'] * len(names))})"
            f" ON CONFLICT (sha256) DO UPDATE SET {updates},"
            " attempts = esr.import_file.attempts + 1, received_at = now(), completed_at = NULL"
        )
        self.conn.execute(query.encode(), values)

    def record_received(self, facts: FileFacts, *, forced: bool) -> None:
        """A file passed its checks and is about to be published; forget any earlier attempt's lines."""
        with self.conn.transaction():
            self._upsert_file(
                facts, "received", forced=forced, rejection_code=None, message=None, record_count=None,
                error_count=None, warning_count=None, unknown_count=None, counts_by_code=None,
            )
            self.conn.execute("DELETE FROM esr.import_line_error WHERE sha256 = %s", (facts.sha256,))

    def record_rejected(self, facts: FileFacts, code: str, message: str) -> None:
        with self.conn.transaction():
            self._upsert_file(facts, "rejected", rejection_code=code, message=message, forced=False)
            self.conn.execute("DELETE FROM esr.import_line_error WHERE sha256 = %s", (facts.sha256,))
            self.conn.execute(
                "UPDATE esr.import_file SET completed_at = now() WHERE sha256 = %s", (facts.sha256,)
            )

    def record_failed(self, sha256: str, message: str) -> None:
        self.conn.execute(
            "UPDATE esr.import_file SET status = 'failed', message = %s, completed_at = now() WHERE sha256 = %s",
            (message, sha256),
        )

    def record_published(
        self,
        sha256: str,
        vpd: str,
        sequence: int,
        *,
        record_count: int,
        error_count: int,
        warning_count: int,
        unknown_count: int,
        counts_by_code: dict[str, int],
        message: str | None,
    ) -> None:
        """Close the file and move the trust's sequence on, in one transaction."""
        with self.conn.transaction():
            self.conn.execute(
                "UPDATE esr.import_file SET status = 'published', record_count = %s, error_count = %s,"
                " warning_count = %s, unknown_count = %s, counts_by_code = %s, message = %s,"
                " completed_at = now() WHERE sha256 = %s",
                (record_count, error_count, warning_count, unknown_count, json.dumps(counts_by_code), message,
                 sha256),
            )
            self.conn.execute(
                "UPDATE esr.trust SET last_sequence = GREATEST(COALESCE(last_sequence, %s), %s),"
                " updated_at = now() WHERE vpd = %s",
                (sequence, sequence, vpd),
            )

    def add_line_errors(self, sha256: str, errors: Sequence[LineError]) -> None:
        if not errors:
            return
        with self.conn.transaction(), self.conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO esr.import_line_error"
                " (sha256, line_no, record_code, severity, field, reason, raw_line)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s)"
                " ON CONFLICT (sha256, line_no) DO UPDATE SET record_code = EXCLUDED.record_code,"
                " severity = EXCLUDED.severity, field = EXCLUDED.field, reason = EXCLUDED.reason,"
                " raw_line = EXCLUDED.raw_line",
                [(sha256, e.line_no, e.record_code, e.severity, e.field, e.reason, e.raw_line) for e in errors],
            )

    def line_errors(self, sha256: str) -> list[LineError]:
        with self.conn.cursor(row_factory=class_row(LineError)) as cur:
            cur.execute(
                "SELECT line_no, record_code, severity, field, reason, raw_line FROM esr.import_line_error"
                " WHERE sha256 = %s ORDER BY line_no",
                (sha256,),
            )
            return cur.fetchall()


# (vpd, entity type) -> entity id -> person id: no tuple per row to allocate (and for the GC to track).
_Owners = dict[tuple[str, str], dict[str, str]]


class OwnerIndex:
    """entity (vpd, type, id) -> owning person id, written in batches as A rows stream past.

    In a dry run the new owners go to a temporary table instead, so validation sees the same
    resolutions as a real ingest without writing anything that lasts.

    Given `url` (and not a dry run), full batches are written by a background thread on a connection of
    its own, so the database indexes one batch while the job parses the next instead of the job waiting
    for it. Nothing else changes: `owner` sees every row added so far (waiting batches included),
    `flush` returns once every row is committed, and a failed write is raised from the next call. Call
    `close` when done: it lets the batches already handed over finish and drops rows not yet flushed.
    """

    _BATCH = 5000

    def __init__(self, conn: psycopg.Connection, *, dry_run: bool, url: str | None = None) -> None:
        self.conn = conn
        self.dry_run = dry_run
        self._pending: _Owners = {}
        self._count = 0  # rows in _pending
        if dry_run:
            conn.execute(
                "CREATE TEMPORARY TABLE IF NOT EXISTS entity_owner_dry_run"
                " (LIKE esr.entity_owner INCLUDING ALL)"
            )
            conn.execute("TRUNCATE entity_owner_dry_run")
        self._table = "entity_owner_dry_run" if dry_run else "esr.entity_owner"
        self._writer = _OwnerWriter(url, self._table) if url is not None and not dry_run else None

    def add(self, vpd: str, entity_type: str, entity_id: str, person_id: str) -> None:
        group = self._pending.get((vpd, entity_type))
        if group is None:
            group = self._pending[vpd, entity_type] = {}
        size = len(group)
        group[entity_id] = person_id
        self._count += len(group) - size
        if self._count >= self._BATCH:
            if self._writer is None:
                self.flush()
            else:
                self._hand_over()

    def _hand_over(self) -> None:
        assert self._writer is not None
        self._writer.submit(self._pending)
        self._pending = {}
        self._count = 0

    def flush(self) -> None:
        if self._writer is not None:
            if self._pending:
                self._hand_over()
            self._writer.wait()
            return
        if not self._pending:
            return
        _write_owners(self.conn, self._table, self._pending)
        self._pending.clear()
        self._count = 0

    def close(self) -> None:
        """Stop the background writer, if any, once the batches handed to it are written."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def owner(self, vpd: str, entity_type: str, entity_id: str) -> str | None:
        pending = _find(self._pending, vpd, entity_type, entity_id)
        if pending is not None:
            return pending
        if self._writer is not None:
            pending = self._writer.find(vpd, entity_type, entity_id)
            if pending is not None:
                return pending
        query = "SELECT person_id FROM esr.entity_owner WHERE vpd = %s AND entity_type = %s AND entity_id = %s"
        params: tuple[str, ...] = (vpd, entity_type, entity_id)
        if self.dry_run:
            query = (
                "SELECT person_id FROM entity_owner_dry_run WHERE vpd = %s AND entity_type = %s"
                " AND entity_id = %s UNION ALL " + query
            )
            params = params * 2
        row = self.conn.execute(query.encode(), params).fetchone()
        return None if row is None else str(row[0])


def _find(owners: _Owners, vpd: str, entity_type: str, entity_id: str) -> str | None:
    group = owners.get((vpd, entity_type))
    return None if group is None else group.get(entity_id)


def _write_owners(conn: psycopg.Connection, table: str, owners: _Owners) -> None:
    """Upsert `owners` in one transaction: COPY into a staging table, then one INSERT ... ON CONFLICT."""
    rows: Iterable[tuple[str, str, str, str]] = (
        (vpd, entity_type, entity_id, person_id)
        for (vpd, entity_type), group in owners.items()
        for entity_id, person_id in group.items()
    )
    with conn.transaction(), conn.cursor() as cur:
        cur.execute("CREATE TEMPORARY TABLE IF NOT EXISTS entity_owner_stage (LIKE esr.entity_owner)")
        cur.execute("TRUNCATE entity_owner_stage")
        with cur.copy("COPY entity_owner_stage (vpd, entity_type, entity_id, person_id) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        # An owner that did not change is left alone (no new row version): re-ingests stay cheap.
        cur.execute(
            f"INSERT INTO {table} AS existing SELECT * FROM entity_owner_stage"
            " ON CONFLICT (vpd, entity_type, entity_id) DO UPDATE SET person_id = EXCLUDED.person_id"
            " WHERE existing.person_id IS DISTINCT FROM EXCLUDED.person_id".encode()
        )


class _OwnerWriter:
    """One thread writing owner batches in order on its own connection; at most two batches waiting."""

    def __init__(self, url: str, table: str) -> None:
        self._url = url
        self._table = table
        self._queue: queue.Queue[_Owners | None] = queue.Queue(maxsize=1)
        self._waiting: list[_Owners] = []  # submitted, not yet committed; oldest first
        self._lock = threading.Lock()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="owner-index-writer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        conn: psycopg.Connection | None = None
        try:
            while (batch := self._queue.get()) is not None:
                try:
                    if self._error is None:
                        if conn is None:
                            conn = psycopg.connect(self._url, autocommit=True)
                        _write_owners(conn, self._table, batch)
                except BaseException as exc:
                    self._error = exc
                finally:
                    with self._lock:
                        self._waiting.remove(batch)
                    self._queue.task_done()
        finally:
            self._queue.task_done()  # the None that stopped the loop
            if conn is not None:
                conn.close()

    def _raise_if_failed(self) -> None:
        if self._error is not None:
            raise self._error

    def submit(self, batch: _Owners) -> None:
        self._raise_if_failed()
        with self._lock:
            self._waiting.append(batch)
        self._queue.put(batch)

    def find(self, vpd: str, entity_type: str, entity_id: str) -> str | None:
        with self._lock:
            for batch in reversed(self._waiting):
                found = _find(batch, vpd, entity_type, entity_id)
                if found is not None:
                    return found
        return None

    def wait(self) -> None:
        """Until every submitted batch is committed; raises the first failure."""
        self._queue.join()
        self._raise_if_failed()

    def close(self) -> None:
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()
