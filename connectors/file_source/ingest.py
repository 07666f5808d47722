"""The file-ingest job: one ESR file in, every record out on `esr.records`, the file accounted for.

Order of work for one file (DESIGN §2, §3):
1. scan and check the file itself (name, header, trailer, count) — nothing is published for a rejected file;
2. same SHA-256 already published → a no-op that says so;
3. known, active trust (VPD_NOT_FOUND otherwise) and sequence = last or last+1 (WRONG_SEQUENCE otherwise,
   held until an operator forces it);
4. FILE_STARTED, then every data line: a record event, a quarantined line or a skipped unknown code;
5. flush (any delivery failure fails the file loudly), then the ledger row and FILE_COMPLETED.

A dry run (`esr validate`) does all of it but publish and write: it reads the ledger for the trust and
sequence checks and reports what a real ingest would do.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from connectors.file_source.ledger import PUBLISHED_STATUSES, FileFacts, ImportFile, Ledger, LineError, OwnerIndex
from esr.codec import Encoder, Provenance, Registry, control_event
from esr.codec.events import RecordEventWriter
from esr.format.header import FileRejected, RejectionCode
from esr.format.layouts import LAYOUTS, EntityType
from esr.format.lines import Delete, Quarantined, Record, Unknown
from esr.format.reader import EsrFile, FileScan, display_text
from esr.kafka.producer import Publisher
from esr.kafka.topics import BROADCAST, CONTROL, FORWARDED, FORWARDED_REFERENCE, RECORDS
from streams.partitioner import partition_for

log = logging.getLogger(__name__)

_RAW_LINE_LIMIT = 4000
_ERROR_BATCH = 1000

Progress = Callable[[int, int], None]  # (lines done, lines in all)

# Record code -> (entity type, is the person record itself, key field, owner field): what keys and routes a row.
_ENTITY: dict[str, tuple[str, bool, str, str | None]] = {
    layout.code: (layout.entity.value, layout.entity is EntityType.PERSON, layout.key_field, layout.owner_field)
    for layout in LAYOUTS
}


@dataclass
class FileReport:
    """The outcome of one file, for the CLI summary and the tests."""

    path: Path
    status: str  # published | rejected | duplicate | failed | valid (dry run)
    file_name: str
    sha256: str | None = None
    vpd: str | None = None
    sequence: int | None = None
    extract_type: str | None = None
    rejection_code: RejectionCode | None = None
    message: str | None = None
    line_count: int = 0
    record_count: int = 0
    quarantined_count: int = 0
    warning_count: int = 0
    unknown_count: int = 0
    counts_by_code: dict[str, int] = field(default_factory=dict)
    file_warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.status in ("published", "duplicate", "valid")


@dataclass
class IngestSettings:
    force: bool = False
    strict_count: bool = True
    dry_run: bool = False


def _facts(path: Path, scan: FileScan | None) -> FileFacts:
    name = scan.file_name if scan else None
    header = scan.header if scan else None
    return FileFacts(
        sha256=scan.sha256 if scan else "",
        file_name=path.name,
        vpd=header.vpd if header else (name.vpd if name else None),
        sequence=name.sequence if name else None,
        extract_type=name.extract_type.value if name else None,
        extract_date=name.extract_date if name else None,
        run_date=header.run_date if header else None,
        line_count=scan.line_count if scan else None,
        size_bytes=scan.size if scan else None,
    )


def _valid_report(path: Path, esr_file: EsrFile) -> FileReport:
    """The report of a file that passed its own checks (name, header, trailer)."""
    scan = esr_file.scan
    return FileReport(
        path=path,
        status="valid",
        file_name=path.name,
        sha256=scan.sha256,
        vpd=esr_file.header.vpd,
        sequence=esr_file.file_name.sequence,
        extract_type=esr_file.file_name.extract_type.value,
        line_count=scan.line_count,
        file_warnings=list(scan.warnings),
    )


def _duplicate(report: FileReport, previous: ImportFile) -> FileReport:
    report.status = "duplicate"
    report.message = (
        f"already ingested as {previous.file_name} on {previous.received_at:%Y-%m-%d %H:%M} "
        f"({previous.status}, {previous.record_count} records); nothing done"
    )
    return report


def _raw_text(raw: str | None) -> str | None:
    if raw is None:
        return None
    text = raw.replace("\x00", "\\x00")
    return text if len(text) <= _RAW_LINE_LIMIT else text[:_RAW_LINE_LIMIT] + "…(cut)"


class FileIngest:
    """Ingests files one at a time with one ledger, the two event encoders and (unless dry) one publisher.

    `registry` switches the framing from Avro single-object encoding to the Confluent wire format.
    """

    def __init__(
        self,
        ledger: Ledger,
        publisher: Publisher | None,
        settings: IngestSettings | None = None,
        *,
        registry: Registry | None = None,
    ) -> None:
        self.ledger = ledger
        self.record_encoder = Encoder("record-event", registry=registry)
        self.control_encoder = Encoder("control-event", registry=registry)
        self.publisher = publisher
        self.settings = settings or IngestSettings()
        if publisher is None and not self.settings.dry_run:
            raise ValueError("a publisher is needed unless this is a dry run")

    # -- checks --------------------------------------------------------------------------------

    def _check_trust_and_sequence(self, esr_file: EsrFile) -> None:
        vpd = esr_file.header.vpd
        trust = self.ledger.trust(vpd)
        if trust is None:
            raise FileRejected(
                RejectionCode.VPD_NOT_FOUND, f"no trust is registered for VPD {vpd} (esr trust add --vpd {vpd})"
            )
        if not trust.active:
            raise FileRejected(RejectionCode.VPD_NOT_FOUND, f"trust {vpd} ({trust.name}) is archived")
        sequence = esr_file.file_name.sequence
        last = trust.last_sequence
        if last is None or sequence in (last, last + 1) or self.settings.force:
            return
        raise FileRejected(
            RejectionCode.WRONG_SEQUENCE,
            f"sequence {sequence} is neither the trust's last sequence {last} nor the next ({last + 1}); "
            "the file is held: ingest it again with --force to accept it",
        )

    def _published(self, sha256: str) -> ImportFile | None:
        """The ledger's row of this content if it has been published already (a duplicate), else None."""
        previous = self.ledger.import_file(sha256)
        return previous if previous is not None and previous.status in PUBLISHED_STATUSES else None

    # -- the job -------------------------------------------------------------------------------

    def ingest(self, path: Path, progress: Progress | None = None) -> FileReport:
        started = time.monotonic()
        report = self._ingest(path, progress)
        report.seconds = time.monotonic() - started
        return report

    def _ingest(self, path: Path, progress: Progress | None) -> FileReport:
        with EsrFile(path, strict_count=self.settings.strict_count) as esr_file:
            try:
                scan = esr_file.open()
            except FileRejected as rejection:
                scan_or_none = esr_file.scanned
                previous = None if scan_or_none is None else self._published(scan_or_none.sha256)
                if scan_or_none is not None and previous is not None:
                    # the content of a published file under another name (the header names the original):
                    # a duplicate, not a rejection, which would overwrite the published file's ledger row
                    return _duplicate(FileReport(
                        path=path, status="valid", file_name=path.name, sha256=scan_or_none.sha256,
                        vpd=previous.vpd, sequence=previous.sequence, line_count=scan_or_none.line_count,
                    ), previous)
                return self._rejected(path, scan_or_none, rejection)
            report = _valid_report(path, esr_file)
            previous = self._published(scan.sha256)
            if previous is not None:
                return _duplicate(report, previous)
            with self.ledger.trust_lock(report.vpd or ""):
                try:
                    self._check_trust_and_sequence(esr_file)
                except FileRejected as rejection:
                    return self._rejected(path, scan, rejection)
                return self._publish(esr_file, report, progress)

    def _rejected(self, path: Path, scan: FileScan | None, rejection: FileRejected) -> FileReport:
        facts = _facts(path, scan)
        report = FileReport(
            path=path,
            status="rejected",
            file_name=path.name,
            sha256=scan.sha256 if scan else None,
            vpd=facts.vpd,
            sequence=facts.sequence,
            extract_type=facts.extract_type,
            rejection_code=rejection.code,
            message=rejection.message,
            line_count=scan.line_count if scan else 0,
        )
        log.warning("%s rejected: %s", path.name, rejection)
        if self.settings.dry_run or scan is None:
            return report  # no content hash (unreadable file): nothing to key a ledger row on
        self.ledger.record_rejected(facts, rejection.code.name, rejection.message)
        if self.publisher is not None:
            self._control("FILE_REJECTED", facts, report)
            self.publisher.flush()
        return report

    def _control(self, event_type: str, facts: FileFacts, report: FileReport) -> None:
        assert self.publisher is not None
        event = control_event(
            event_type=event_type,
            vpd=facts.vpd or "",
            file_name=facts.file_name,
            file_sha256=facts.sha256,
            sequence=facts.sequence,
            extract_type=facts.extract_type,
            run_date=facts.run_date,
            line_count=report.line_count,
            record_count=report.record_count,
            quarantined_count=report.quarantined_count,
            warning_count=report.warning_count,
            unknown_count=report.unknown_count,
            counts_by_code=report.counts_by_code,
            rejection_code=report.rejection_code.name if report.rejection_code else None,
            message=report.message,
        )
        self.publisher.send(
            CONTROL, (facts.vpd or "").encode(), self.control_encoder.encode(event),
            [*self.control_encoder.headers, ("esr.event_type", event_type.encode())],
        )

    def republish(self, path: Path) -> FileReport:
        """Publish an already published file again, exactly as it was published: the same record events
        and control events, no checks and nothing written to the ledger. A fresh embedded broker has lost
        every topic, and this is how the stream state is rebuilt from the archived files (`esr.pipeline`).

        A delete that was quarantined the first time (no owner known then) stays out, even if a later
        file has since made its owner known.
        """
        with EsrFile(path, strict_count=self.settings.strict_count) as esr_file:
            scan = esr_file.open()
            if self._published(scan.sha256) is None:
                raise ValueError(f"{path.name}: only a published file can be published again")
            left_out = frozenset(
                error.line_no for error in self.ledger.line_errors(scan.sha256) if error.severity != "warning"
            )
            return self._publish(esr_file, _valid_report(path, esr_file), None, left_out=left_out)

    @staticmethod
    def _reference_sender(publisher: Publisher, headers: list[tuple[str, bytes]]) -> Callable[[bytes, bytes], None]:
        """Sends a reference record (location, organisation, position) to its own partition and a copy to
        every other partition of esr.records, all in file order: the employees on every partition then see
        it at the same place in their log on every run, however fast the worker is (esr.kafka.topics)."""
        home_headers = [*headers, (BROADCAST, b"1")]
        copy_headers = [*headers, (FORWARDED, FORWARDED_REFERENCE)]
        partition_count: list[int] = []  # looked up at the first reference record

        def send(key: bytes, value: bytes) -> None:
            if not partition_count:
                partition_count.append(publisher.partition_count(RECORDS))
            partitions = partition_count[0]
            home = partition_for(key, partitions)
            publisher.send(RECORDS, key, value, home_headers, partition=home)
            for partition in range(partitions):
                if partition != home:
                    publisher.send(RECORDS, key, value, copy_headers, partition=partition)

        return send

    def _publish(
        self,
        esr_file: EsrFile,
        report: FileReport,
        progress: Progress | None,
        *,
        left_out: frozenset[int] | None = None,
    ) -> FileReport:
        """Publish every data line. `left_out` (republish) lists the lines the first ingest did not publish;
        the ledger is then left alone."""
        scan = esr_file.scan
        facts = _facts(esr_file.path, scan)
        vpd = esr_file.header.vpd
        provenance = Provenance.from_scan(scan)
        ingested_at = datetime.now(UTC)
        dry = self.settings.dry_run
        write_ledger = not dry and left_out is None
        if write_ledger:
            self.ledger.record_received(facts, forced=self.settings.force)
        if not dry:
            self._control("FILE_STARTED", facts, report)
        owners = OwnerIndex(self.ledger.conn, dry_run=not write_ledger, url=self.ledger.url)
        errors: list[LineError] = []
        counts: Counter[str] = Counter()
        publisher = self.publisher
        # A dry run builds no event: it only reports what a real ingest would do.
        writer = None if publisher is None else RecordEventWriter(self.record_encoder, provenance, ingested_at)
        encode = None if writer is None else writer.encode
        # Clean add/update lines (nearly all of them) come straight as (code, entity id, person id, payload):
        # the same as parsing them into a Record without issues and encoding that.
        clean_line = None if writer is None else writer.clean_line
        headers = self.record_encoder.headers
        total = scan.line_count
        key_prefix = f"{vpd}:"
        records = 0
        send_reference = None if publisher is None else self._reference_sender(publisher, headers)

        def flush_errors() -> None:
            if write_ledger:
                self.ledger.add_line_errors(scan.sha256, errors)
            errors.clear()

        def add_error(error: LineError) -> None:
            errors.append(error)
            if len(errors) >= _ERROR_BATCH:
                flush_errors()

        try:
            done = 0
            for line_no, raw, parsed in esr_file.lines(clean_line) if clean_line else esr_file.lines():
                done += 1
                if progress is not None and done % 2000 == 0:
                    progress(done, total)
                if type(parsed) is tuple:  # a clean line (see above)
                    assert writer is not None
                    assert publisher is not None
                    code, entity_id, person_id, _payload = parsed
                    entity, is_person, _key_field, _owner_field = _ENTITY[code]
                    if person_id is None:
                        key = f"{key_prefix}{entity}:{entity_id}"
                    else:
                        if not is_person:
                            owners.add(vpd, entity, entity_id, person_id)
                        key = key_prefix + person_id
                    counts[code] += 1
                    records += 1
                    if person_id is None:
                        assert send_reference is not None
                        send_reference(key.encode(), writer.encode_clean(parsed, line_no))
                    else:
                        publisher.send(RECORDS, key.encode(), writer.encode_clean(parsed, line_no), headers)
                    continue
                if isinstance(parsed, Record):
                    code = parsed.layout.code
                    entity, is_person, key_field, owner_field = _ENTITY[code]
                    # Record.entity_id and .person_id, read directly (the properties when they would refuse)
                    values = parsed.values
                    value = values[key_field]
                    entity_id = value if isinstance(value, str) else parsed.entity_id
                    if owner_field is None:
                        person_id = None
                    else:
                        value = values[owner_field]
                        person_id = value if isinstance(value, str) else parsed.person_id
                    if person_id is None:
                        key = f"{key_prefix}{entity}:{entity_id}"
                    else:
                        if not is_person:
                            owners.add(vpd, entity, entity_id, person_id)
                        key = key_prefix + person_id
                elif isinstance(parsed, Delete):
                    layout = parsed.layout
                    code = layout.delete_code
                    if layout.entity is EntityType.PERSON:
                        person_id = parsed.entity_id
                    elif layout.person_scoped:
                        person_id = owners.owner(vpd, layout.entity.value, parsed.entity_id)
                        if person_id is None or (left_out is not None and line_no in left_out):
                            report.quarantined_count += 1
                            add_error(LineError(
                                line_no, code, "quarantined", layout.key_field,
                                f"{code} deletes {layout.entity.value.lower()} {parsed.entity_id}, which no "
                                "file of this trust has added: no person to route it to",
                                _raw_text(display_text(raw)),
                            ))
                            continue
                    else:
                        person_id = None
                    key = (
                        f"{vpd}:{person_id}" if person_id is not None
                        else f"{vpd}:{layout.entity.value}:{parsed.entity_id}"
                    )
                elif isinstance(parsed, Quarantined):
                    report.quarantined_count += 1
                    add_error(LineError(line_no, parsed.code or None, "quarantined", parsed.field,
                                        parsed.reason, _raw_text(display_text(raw))))
                    continue
                else:
                    assert isinstance(parsed, Unknown)
                    report.unknown_count += 1
                    counts[parsed.code] += 1
                    add_error(LineError(line_no, parsed.code, "skipped", None,
                                        f"unknown record code {parsed.code}: skipped",
                                        _raw_text(display_text(raw))))
                    continue
                if parsed.issues:
                    report.warning_count += 1
                    add_error(LineError(
                        line_no, code, "warning", parsed.issues[0].field,
                        "; ".join(str(issue) for issue in parsed.issues), _raw_text(display_text(raw)),
                    ))
                counts[code] += 1
                records += 1
                if encode is not None:
                    assert publisher is not None
                    assert send_reference is not None
                    if person_id is None:
                        send_reference(key.encode(), encode(parsed, line_no, person_id))
                    else:
                        publisher.send(RECORDS, key.encode(), encode(parsed, line_no, person_id), headers)
            report.record_count = records
            owners.flush()
            flush_errors()
            if progress is not None:
                progress(total, total)
            report.counts_by_code = dict(sorted(counts.items()))
            if dry:
                return report
            assert publisher is not None
            publisher.flush()
        except Exception as exc:
            report.record_count = records
            if write_ledger:
                self.ledger.record_failed(scan.sha256, f"{type(exc).__name__}: {exc}")
            report.status = "failed"
            report.message = f"{type(exc).__name__}: {exc}"
            log.exception("%s failed", esr_file.path.name)
            raise
        finally:
            owners.close()
        message = "; ".join(report.file_warnings) or None
        if write_ledger:
            self.ledger.record_published(
                scan.sha256, vpd, esr_file.file_name.sequence,
                record_count=report.record_count, error_count=report.quarantined_count,
                warning_count=report.warning_count, unknown_count=report.unknown_count,
                counts_by_code=report.counts_by_code, message=message,
            )
        report.status = "published"
        report.message = message
        self._control("FILE_COMPLETED", facts, report)
        publisher.flush()
        return report
