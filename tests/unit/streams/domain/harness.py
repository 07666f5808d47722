"""A stand-in for the Faust shell: record events from ESR files, partitioned and batched as the shell would
see them, run through the domain functions with tables of encoded states."""

from __future__ import annotations

import datetime as dt
import zlib
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from esr.codec.events import Provenance, record_event
from esr.codec.serde import Decoder, Encoder
from esr.format.lines import Delete, Record
from esr.format.reader import EsrFile
from streams.domain import (
    ChangeSource,
    EmployeeState,
    InputRecord,
    ReferenceState,
    StateReferenceView,
    absent_from_full_file,
    apply_employee_batch,
    apply_reference_batch,
    decode_reference_state,
    decode_state,
    encode_reference_state,
    encode_state,
    work_address_changes,
)

TOPIC = "esr.records"
INGESTED = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


@dataclass
class ParsedFile:
    provenance: Provenance
    events: list[dict[str, Any]]  # decoded record events, in file order


def read_files(paths: Iterable[Path]) -> list[ParsedFile]:
    """Record events of `paths` as the ingest job publishes them (child delete owners resolved from the
    records seen so far) and as `Decoder("record-event")` returns them."""
    encoder, decoder = Encoder("record-event"), Decoder("record-event")
    owners: dict[tuple[str, str], str] = {}
    files: list[ParsedFile] = []
    for path in paths:
        with EsrFile(path) as esr_file:
            provenance = Provenance.from_scan(esr_file.open())
            events = []
            for line_no, line in esr_file.records():
                assert isinstance(line, Record | Delete), line
                person_id: str | None = None
                if isinstance(line, Record):
                    if line.person_id is not None:
                        owners[line.layout.entity.value, line.entity_id] = line.person_id
                elif line.layout.entity.value == "PERSON":
                    person_id = line.entity_id
                elif line.layout.person_scoped:
                    person_id = owners[line.layout.entity.value, line.entity_id]
                event = record_event(line, provenance, line_no, person_id, ingested_at=INGESTED)
                events.append(decoder.decode(encoder.encode(event)))
        files.append(ParsedFile(provenance, events))
    return files


REFERENCE = frozenset({"LOCATION", "ORGANISATION", "POSITION"})


def key_of(event: dict[str, Any]) -> str:
    if event["entity_type"] in REFERENCE:
        return f"{event['vpd']}:{event['entity_type']}:{event['entity_id']}"
    return f"{event['vpd']}:{event['person_id']}"


@dataclass
class Shell:
    """Tables of encoded states and the change events sent, fed file by file, batch by batch."""

    partitions: int = 4
    batch_size: int = 500
    treat_absence_as_delete: bool = False
    keep_tombstones: bool = True  # keep a deleted key's tombstone state (replays of deletes stay exact)
    employees: dict[str, bytes] = field(default_factory=dict)
    references: dict[str, bytes] = field(default_factory=dict)
    sent: list[dict[str, Any]] = field(default_factory=list)
    offsets: list[int] = field(default_factory=list)
    now_ms: int = 1_700_000_000_000

    def __post_init__(self) -> None:
        self.offsets = [0] * self.partitions

    def reference_state(self, key: str) -> ReferenceState | None:
        data = self.references.get(key)
        return None if data is None else decode_reference_state(data)

    def employee_state(self, key: str) -> EmployeeState | None:
        data = self.employees.get(key)
        return None if data is None else decode_state(data)

    def publish(self, events: list[dict[str, Any]]) -> list[InputRecord]:
        """Place events on partitions (by key) and give them offsets, in order."""
        records = []
        for event in events:
            key = key_of(event)
            partition = zlib.crc32(key.encode()) % self.partitions
            records.append(InputRecord(event, TOPIC, partition, self.offsets[partition]))
            self.offsets[partition] += 1
        return records

    def feed(self, parsed: ParsedFile) -> None:
        records = self.publish(parsed.events)
        # the reference agent first (in reality its partitions are read alongside the employees')
        for batch in _batches([r for r in records if r.event["entity_type"] in REFERENCE], self.batch_size):
            self.reference_batch(batch)
        for batch in _batches([r for r in records if r.event["entity_type"] not in REFERENCE], self.batch_size):
            self.employee_batch(batch)
        if parsed.provenance.extract_type.value == "F":
            self.end_of_full_file(parsed.provenance)

    def reference_batch(self, batch: list[InputRecord]) -> None:
        view = StateReferenceView(self.reference_state)
        for key, records in _by_key(batch).items():
            outcome = apply_reference_batch(self.reference_state(key), records, now_ms=self.now_ms)
            assert not outcome.rejected, outcome.rejected
            kept = outcome.state or (outcome.tombstone if self.keep_tombstones else None)
            if kept is None:
                self.references.pop(key, None)
            else:
                self.references[key] = encode_reference_state(kept)
            self.sent.extend(outcome.changes)
            if outcome.changed_location_ids or outcome.changed_organisation_ids:
                assert outcome.fanout_source is not None
                previous = {outcome.state.entity_id if outcome.state else key.rsplit(":", 1)[1]: outcome.previous}
                is_location = bool(outcome.changed_location_ids)
                for employee_key in sorted(self.employees):
                    state = self.employee_state(employee_key)
                    assert state is not None
                    self.sent.extend(work_address_changes(
                        state, state.vpd, outcome.changed_location_ids, outcome.changed_organisation_ids, view,
                        source=outcome.fanout_source, now_ms=self.now_ms,
                        previous_locations=previous if is_location else None,
                        previous_organisations=None if is_location else previous,
                    ))

    def employee_batch(self, batch: list[InputRecord]) -> None:
        view = StateReferenceView(self.reference_state)
        for key, records in _by_key(batch).items():
            outcome = apply_employee_batch(self.employee_state(key), records, view, now_ms=self.now_ms)
            assert not outcome.rejected, outcome.rejected
            self._store_employee(key, outcome.state, outcome.tombstone)
            self.sent.extend(outcome.changes)

    def end_of_full_file(self, provenance: Provenance) -> None:
        source = ChangeSource(provenance.file_name, provenance.file_sha256, provenance.sequence,
                              provenance.extract_type.value, provenance.run_date)
        for key in sorted(self.employees):
            state = self.employee_state(key)
            assert state is not None
            outcome = absent_from_full_file(state, provenance.file_sha256, source,
                                            treat_as_delete=self.treat_absence_as_delete, now_ms=self.now_ms)
            self._store_employee(key, outcome.state, outcome.tombstone)
            self.sent.extend(outcome.changes)

    def _store_employee(self, key: str, state: EmployeeState | None, tombstone: EmployeeState | None) -> None:
        if state is not None:
            self.employees[key] = encode_state(state)
        elif tombstone is not None and self.keep_tombstones:
            self.employees[key] = encode_state(tombstone)
        else:
            self.employees.pop(key, None)

    def counts(self) -> Counter[str]:
        return Counter(event["event_type"] for event in self.sent)


def _batches(records: list[InputRecord], size: int) -> Iterator[list[InputRecord]]:
    """Batches as a consumer sees them: partition by partition interleaved, up to `size` records each."""
    by_partition: dict[int, list[InputRecord]] = defaultdict(list)
    for record in records:
        by_partition[record.partition].append(record)
    for partition in sorted(by_partition):
        items = by_partition[partition]
        for start in range(0, len(items), size):
            yield items[start:start + size]


def _by_key(batch: list[InputRecord]) -> dict[str, list[InputRecord]]:
    grouped: dict[str, list[InputRecord]] = defaultdict(list)
    for record in batch:
        grouped[key_of(record.event)].append(record)
    return grouped
