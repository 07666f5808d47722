"""`esr watch DIR`: pick up each trust's files as they arrive and ingest them in ESR sequence order.

Layout of an inbox:

    DIR/                  files arrive here (by SFTP, a copy, ...)
    DIR/archive/          published files (and duplicates of published files, the reason beside them)
    DIR/rejected/         rejected files, each with `<name>.reason.txt` beside it

A file is picked up once its size and modification time have not changed for `settle` seconds (a
file still being written is never half-read). Files are ingested per trust in sequence order; a file
held for WRONG_SEQUENCE stays in the inbox (the missing file may still arrive) and is retried on each
pass; a file whose ingest failed (broker down, say) stays too and is retried with back-off. Every other
rejection moves the file to `rejected/` with the reason.

The planning functions are pure; `InboxWatcher` is the I/O shell around them.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from connectors.file_source.ingest import FileIngest, FileReport
from esr.format.header import ExtractType, FileName, FileRejected, RejectionCode, parse_file_name
from esr.observability import metrics

log = logging.getLogger(__name__)

ARCHIVE = "archive"
REJECTED = "rejected"


# -- pure planning ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Observation:
    size: int
    mtime_ns: int
    since: float  # monotonic time this (size, mtime) was first seen


def observe(
    previous: Mapping[str, Observation], listing: Mapping[str, tuple[int, int]], now: float
) -> dict[str, Observation]:
    """Fold a directory listing (name -> (size, mtime_ns)) into the observations; vanished files drop out."""
    observed: dict[str, Observation] = {}
    for name, (size, mtime_ns) in listing.items():
        before = previous.get(name)
        if before is not None and (before.size, before.mtime_ns) == (size, mtime_ns):
            observed[name] = before
        else:
            observed[name] = Observation(size, mtime_ns, now)
    return observed


def settled(observations: Mapping[str, Observation], now: float, settle: float) -> list[str]:
    return sorted(name for name, seen in observations.items() if now - seen.since >= settle)


@dataclass(frozen=True, slots=True)
class Planned:
    name: str
    file_name: FileName | None  # None: the name is not an ESR file name (ingest rejects it as WRONG_FORMAT)


def plan(names: Iterable[str]) -> list[Planned]:
    """Ingest order: per trust, by ESR sequence (a full file before a change file of the same sequence);
    names that are not ESR file names first, so they are moved out of the way."""
    planned: list[Planned] = []
    for name in names:
        try:
            planned.append(Planned(name, parse_file_name(name)))
        except FileRejected:
            planned.append(Planned(name, None))

    def order(item: Planned) -> tuple[int, str, int, int, str]:
        if item.file_name is None:
            return (0, "", 0, 0, item.name)
        parsed = item.file_name
        full_first = 0 if parsed.extract_type is ExtractType.FULL else 1
        return (1, parsed.vpd, parsed.sequence, full_first, item.name)

    return sorted(planned, key=order)


def overdue_message(
    vpd: str, frequency: str, last_extract: dt.date | None, today: dt.date, grace_days: int = 1
) -> str | None:
    """The alert for a trust whose next file is late, or None. Daily trusts expect a file every day,
    weekly trusts every 7 days; `grace_days` allows for ESR's own delays."""
    period = 7 if frequency == "weekly" else 1
    if last_extract is None:
        return None  # no file yet: nothing to be late against
    due = last_extract + dt.timedelta(days=period + grace_days)
    if today <= due:
        return None
    late = (today - last_extract).days
    return (
        f"trust {vpd} ({frequency}): no file since the extract of {last_extract.isoformat()} "
        f"({late} days); one was due by {due.isoformat()}"
    )


def retry_delay(failures: int, base: float = 5.0, cap: float = 300.0) -> float:
    return float(min(cap, base * 2 ** max(0, failures - 1)))


# -- the watcher ------------------------------------------------------------------------------------


@dataclass
class _Retry:
    failures: int = 0
    not_before: float = 0.0


@dataclass
class InboxWatcher:
    root: Path
    job: FileIngest
    settle: float = 5.0
    poll_interval: float = 2.0
    clock: Callable[[], float] = time.monotonic
    on_report: Callable[[FileReport], None] | None = None
    #: called once a minute with the overdue check (the CLI exports dead-letter counts with it)
    every_minute: Callable[[], None] | None = None
    _observations: dict[str, Observation] = field(default_factory=dict)
    _retries: dict[str, _Retry] = field(default_factory=dict)
    _held: set[str] = field(default_factory=set)
    _overdue_alerted: dict[str, dt.date] = field(default_factory=dict)
    _overdue_checked: float | None = None

    def __post_init__(self) -> None:
        for sub in (ARCHIVE, REJECTED):
            (self.root / sub).mkdir(parents=True, exist_ok=True)

    @property
    def failing(self) -> list[str]:
        """Files whose last ingest attempt failed and that wait for a retry."""
        return sorted(self._retries)

    def _listing(self) -> dict[str, tuple[int, int]]:
        listing: dict[str, tuple[int, int]] = {}
        for path in self.root.iterdir():
            if path.name.startswith(".") or path.name.endswith((".part", ".tmp", ".reason.txt")):
                continue  # hidden and partial uploads are not files yet
            try:
                if not path.is_file():
                    continue
                stat = path.stat()
            except FileNotFoundError:
                continue  # moved away between listing and stat
            listing[path.name] = (stat.st_size, stat.st_mtime_ns)
        return listing

    def poll_once(self) -> list[FileReport]:
        now = self.clock()
        self._observations = observe(self._observations, self._listing(), now)
        reports = []
        for item in plan(settled(self._observations, now, self.settle)):
            retry = self._retries.get(item.name)
            if retry is not None and now < retry.not_before:
                continue
            report = self._ingest(self.root / item.name)
            if report is not None:
                reports.append(report)
        return reports

    def _ingest(self, path: Path) -> FileReport | None:
        try:
            report = self.job.ingest(path)
        except Exception as exc:  # a failed ingest (broker or database down): keep the file and retry
            retry = self._retries.setdefault(path.name, _Retry())
            retry.failures += 1
            delay = retry_delay(retry.failures)
            retry.not_before = self.clock() + delay
            log.error("%s: ingest failed (%s: %s); retrying in %.0f s", path.name, type(exc).__name__, exc, delay)
            return None
        self._retries.pop(path.name, None)
        if self.on_report is not None:
            self.on_report(report)
        if report.status in ("published", "duplicate"):
            self._held.discard(path.name)
            self._move(path, ARCHIVE, reason=f"DUPLICATE: {report.message}\n" if report.status == "duplicate" else None)
        elif report.rejection_code is RejectionCode.WRONG_SEQUENCE:
            if path.name not in self._held:
                log.warning("%s held in the inbox: %s", path.name, report.message)
                self._held.add(path.name)
        elif report.status == "rejected":
            code = report.rejection_code.name if report.rejection_code else "REJECTED"
            self._move(path, REJECTED, reason=f"{code}: {report.message}\n")
        return report

    def _move(self, path: Path, sub: str, reason: str | None = None) -> Path:
        target = self.root / sub / path.name
        if target.exists():  # the same name again with other content: keep both
            target = target.with_name(f"{path.stem}.{int(time.time())}{path.suffix}")
        path.rename(target)
        self._observations.pop(path.name, None)
        if reason is not None:
            target.with_name(target.name + ".reason.txt").write_text(reason, encoding="utf-8")
        log.info("%s -> %s/", path.name, sub)
        return target

    def check_overdue(self, today: dt.date) -> list[str]:
        """Alert (log and metric) for each active trust whose next file is late; returns the alerts.
        A trust is alerted once per day."""
        last = self.job.ledger.last_published()
        alerts = []
        for trust in self.job.ledger.trusts():
            if not trust.active:
                continue
            extract_date, published_at = last.get(trust.vpd, (None, None))
            if published_at is not None:  # also right after a restart, before this process published anything
                metrics.LAST_IMPORT.labels(trust.vpd).set(published_at.timestamp())
            message = overdue_message(trust.vpd, trust.import_frequency, extract_date, today)
            metrics.IMPORT_OVERDUE.labels(trust.vpd).set(1 if message else 0)
            if message is None:
                self._overdue_alerted.pop(trust.vpd, None)
                continue
            alerts.append(message)
            if self._overdue_alerted.get(trust.vpd) != today:
                log.warning("missing file: %s", message)
                self._overdue_alerted[trust.vpd] = today
        return alerts

    def run(self, stop: threading.Event) -> None:
        log.info("watching %s (settle %.0f s)", self.root, self.settle)
        while not stop.is_set():
            self.poll_once()
            now = self.clock()
            if self._overdue_checked is None or now - self._overdue_checked >= 60:
                self.check_overdue(dt.date.today())
                if self.every_minute is not None:
                    self.every_minute()
                self._overdue_checked = now
            stop.wait(self.poll_interval)
