"""The project's Prometheus metrics. Each long-running process (watch, worker, sink) serves its own
`/metrics` on `ESR_METRICS_PORT` (unset: no endpoint); names follow Prometheus conventions.

Labels never carry personal data: trust VPD, record code, event type, stage, table, topic, partition.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Iterable, Mapping

from prometheus_client import Counter, Gauge, Histogram, start_http_server

log = logging.getLogger(__name__)

FILES = Counter("esr_files", "ESR files by outcome.", ["vpd", "status"])
RECORDS = Counter("esr_records_published", "Record events published by the ingest job.", ["vpd", "record_code"])
LINE_ISSUES = Counter(
    "esr_line_issues", "Lines quarantined, published with warnings, or skipped.", ["vpd", "severity"]
)
LAST_IMPORT = Gauge(
    "esr_last_successful_import_timestamp_seconds", "When the trust's latest file was published.", ["vpd"]
)
IMPORT_OVERDUE = Gauge("esr_import_overdue", "1 when the trust's next file is late, else 0.", ["vpd"])
CHANGE_EVENTS = Counter("esr_change_events", "Change events emitted by the worker.", ["event_type"])
WORKER_RECORDS = Counter("esr_worker_records_consumed", "Ingest records the stream worker consumed "
                         "(forwarded copies of reference records not included).")
WORKER_BATCHES = Counter("esr_worker_batches", "Batches the stream worker processed.")
DEAD_LETTERS = Counter("esr_dead_letters", "Messages this process sent to a dead-letter topic.", ["stage"])
DLQ_SIZE = Gauge("esr_dlq_messages", "Messages waiting in a dead-letter topic.", ["stage"])
CONSUMER_LAG = Gauge("esr_consumer_lag", "Messages not yet consumed.", ["group", "topic", "partition"])
SINK_ROWS = Counter("esr_sink_rows", "Rows written by the sink.", ["table"])
SINK_LATENCY = Histogram(
    "esr_sink_latency_seconds",
    "From change-event creation to its commit in PostgreSQL.",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 3, 5, 10, 30, 60, 300),
)
SINK_OUTAGES = Counter("esr_sink_outages", "Times the sink lost PostgreSQL (it pauses, backs off and resumes).")
SINK_DATABASE_UP = Gauge("esr_sink_database_up", "1 while the sink reaches PostgreSQL, 0 during an outage.")


def sink_committed(rows: Mapping[str, int], event_times: Iterable[dt.datetime], committed_at: float,
                   dead_letters: int) -> None:
    """Record one batch the sink committed: rows by table, the latency of each change event it inserted
    (event_ts, the worker's ts_ms, to `committed_at`, a time.time()), dead letters sent."""
    for table, count in rows.items():
        SINK_ROWS.labels(table).inc(count)
    observe = SINK_LATENCY.observe
    for created in event_times:
        observe(max(committed_at - created.timestamp(), 0.0))
    if dead_letters:
        DEAD_LETTERS.labels("sink").inc(dead_letters)
    SINK_DATABASE_UP.set(1)


def dead_letters_open(counts: Mapping[str, int]) -> None:
    """Record how many dead letters each stage still has open (neither replayed nor discarded)."""
    for stage, count in counts.items():
        DLQ_SIZE.labels(stage).set(count)


def serve(port: int | None, addr: str = "127.0.0.1") -> None:
    """Start the /metrics endpoint in a background thread (no-op when port is None)."""
    if port is None:
        return
    start_http_server(port, addr=addr)
    log.info("metrics on http://%s:%d/metrics", addr, port)


def file_outcome(
    vpd: str | None,
    status: str,
    *,
    counts_by_code: dict[str, int] | None = None,
    quarantined: int = 0,
    warnings: int = 0,
    skipped: int = 0,
    completed_at: float | None = None,
) -> None:
    """Record one ingested file's outcome."""
    trust = vpd or "unknown"
    FILES.labels(trust, status).inc()
    if status != "published":
        return
    for code, count in (counts_by_code or {}).items():
        RECORDS.labels(trust, code).inc(count)
    for severity, count in (("quarantined", quarantined), ("warning", warnings), ("skipped", skipped)):
        if count:
            LINE_ISSUES.labels(trust, severity).inc(count)
    LAST_IMPORT.labels(trust).set(completed_at if completed_at is not None else time.time())
