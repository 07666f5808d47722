"""The agents: per-employee state over `esr.records`, reference data, full-file barriers.

Employees agent (one agent over `esr.records`, batches from `stream.take_events`)
    A batch is split by input partition, each partition's events into runs of ingest records and runs of
    forwarded messages (below), processed in log order: the result depends only on the order of each
    partition, never on how messages happened to be batched. Inside a run of records they are grouped
    by key (offset order kept), and per key the table is read once, the domain called once, the table
    written once (`BatchTable.put`, which names the event so Faust writes the right changelog partition),
    the change events sent to `esr.changes` and the full state to `esr.employees` (None = tombstone).
    An undecodable message, a message without a usable key, or a domain exception for one key sends that
    key's input messages to `esr.dlq.process` with error headers, and the batch goes on. Anything else
    (a failed send, a table error) is fatal: the process exits before Faust can ack the batch, so the
    batch is consumed again after the restart (at-least-once; outputs are deterministic and idempotent).
    Every send of the batch, changelog included, is awaited before the batch is acked.

Reference data: a replica per partition, fed by a broadcast
    Reference records (LCA/ORA/POA, key "<vpd>:<TYPE>:<id>") land on one partition (the owner), but the
    employees that point at a location live on every partition. The owner applies the record to its own
    replica of the entity (table `references`, key "<vpd>:<TYPE>:<id>@<partition>") in its log order, emits
    the reference's change events, and *forwards* the record, unchanged, to every other partition of
    `esr.records` (header `esr.forwarded: reference`, plus where it came from). Each of those applies it, in
    its own log order, to its own replica, and emits nothing of the reference's own. A partition's
    ReferenceView reads only its replicas. Wherever a reference record moved an address, the partition calls
    `work_address_changes` for each of its employees of that trust whose work address can go through it
    (WORK_ADDRESS_CHANGED where needed; `streams.places` indexes them, so the rest are never decoded).
    Why not a GlobalTable: its copy on each worker is fed asynchronously from the changelog, so whether an
    employee record saw a new location would depend on timing and differ between one and two workers; with
    a replica per partition it is a function of that partition's log (and a replay reproduces it).

Full-file barrier (control)
    `esr.control` has one partition, so one worker's control agent sees a FILE_COMPLETED. For a full (F)
    file it forwards the control event to every partition of `esr.records` (header `esr.forwarded:
    full-file-completed`). Because the ingest job has flushed every record of the file before it publishes
    FILE_COMPLETED, the forwarded copy lands after all of the file's records in every partition: when the
    employees agent reaches it, it has applied the whole file there, and calls `absent_from_full_file` for
    every employee of that trust on that partition. (A separate fan-out topic would not give this order.)

Forwarded messages stay in `esr.records`; any other consumer of that topic must skip messages carrying the
`esr.forwarded` header.
"""

from __future__ import annotations

import asyncio
import logging
import time
import traceback
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from esr.codec import PAYLOAD_TYPES, Decoder, UndecodableMessage
from esr.kafka.topics import (
    BROADCAST,
    CHANGES,
    CONTROL,
    DLQ_ERROR,
    DLQ_OFFSET,
    DLQ_PARTITION,
    DLQ_PROCESS,
    DLQ_REASON,
    DLQ_STAGE,
    DLQ_TOPIC,
    EMPLOYEES,
    FORWARDED,
    FORWARDED_FULL_FILE,
    FORWARDED_REFERENCE,
    ORIGIN_OFFSET,
    ORIGIN_PARTITION,
    RECORDS,
)
from esr.parking import PARKED_BEHIND, Origin, parked_reason
from streams.output import Output
from streams.parking import WorkerParking
from streams.partitioner import partition_for
from streams.places import WorkPlaces
from streams.port import DomainPort
from streams.replay import ReplayFence
from streams.tables import BatchTable

log = logging.getLogger(__name__)

REFERENCE_TYPES = frozenset({"LOCATION", "ORGANISATION", "POSITION"})


EVENT_TYPE_HEADER = "esr.event_type"

Headers = list[tuple[str, bytes]]

#: yield to the event loop every this many keys in long scans (heartbeats, fetches)
_SCAN_YIELD = 500


@dataclass
class Stats:
    batches: int = 0
    records: int = 0  # ingest records consumed (forwarded copies not included)
    forwarded: int = 0
    changes: int = 0
    dead_letters: int = 0
    settle_seconds: float = 0.0  # time the agent waited for the broker to acknowledge earlier batches' outputs
    first_batch_at: float | None = None  # wall clock when the first batch arrived
    last_batch_done_at: float | None = None  # wall clock when the last batch was acknowledged by the broker
    first_batch_cpu: float | None = None  # process CPU time (all threads) at those two moments
    last_batch_done_cpu: float | None = None


def _header(event: Any, name: str) -> bytes | None:
    headers = event.message.headers
    if not headers:
        return None
    items = headers.items() if isinstance(headers, Mapping) else headers
    for key, value in items:
        if key == name:
            return value if isinstance(value, bytes) else str(value).encode()
    return None


def _headers(event: Any) -> Headers:
    headers = event.message.headers
    if not headers:
        return []
    items = headers.items() if isinstance(headers, Mapping) else headers
    return [(key, value if isinstance(value, bytes) else str(value).encode()) for key, value in items]


class ReplicaView:
    """ReferenceView over one partition's replicas, decoded once per batch."""

    __slots__ = ("_cache", "_data", "_decode", "_entry", "_suffix")

    def __init__(self, table: BatchTable, partition: int, domain: DomainPort) -> None:
        self._data = table.data
        self._suffix = f"@{partition}"
        self._decode = domain.decode_reference_state
        self._entry = domain.reference_entry
        self._cache: dict[bytes, Mapping[str, Any] | None] = {}

    def _get(self, vpd: str, kind: str, entity_id: str) -> Mapping[str, Any] | None:
        key = f"{vpd}:{kind}:{entity_id}{self._suffix}".encode()
        try:
            return self._cache[key]
        except KeyError:
            pass
        raw = self._data.get(key)
        found = None if raw is None else self._entry(self._decode(raw))
        self._cache[key] = found
        return found

    def forget(self, key: bytes) -> None:
        self._cache.pop(key, None)

    def location(self, vpd: str, location_id: str) -> Mapping[str, Any] | None:
        return self._get(vpd, "LOCATION", location_id)

    def organisation(self, vpd: str, organisation_id: str) -> Mapping[str, Any] | None:
        return self._get(vpd, "ORGANISATION", organisation_id)

    def position(self, vpd: str, position_id: str) -> Mapping[str, Any] | None:
        return self._get(vpd, "POSITION", position_id)


@dataclass
class _Keyed:
    """The records of one key in a run: the Faust events (for writes and dead letters) and the domain inputs."""

    events: list[Any] = field(default_factory=list)
    inputs: list[Any] = field(default_factory=list)


class EmployeesProcessor:
    """The work of the employees agent on one batch of events (see the module docstring).

    Faust-independent apart from the events it is given and the tables, so it is exercised directly by
    the tests as well as by the agent.
    """

    def __init__(
        self,
        domain: DomainPort,
        employees: BatchTable,
        references: BatchTable,
        output: Output,
        partitions: int,
        *,
        clock: Callable[[], float] = time.time,
        absence_is_delete: Callable[[str], bool] = lambda _vpd: False,
    ) -> None:
        self.domain = domain
        self.employees = employees
        self.references = references
        self.output = output
        self.partitions = partitions
        self.clock = clock
        # payloads as canonical text, the domain's values (esr.codec.reader: no typed value built to be rendered)
        self.records_decoder = Decoder("record-event", text_records=PAYLOAD_TYPES)
        self.control_decoder = Decoder("control-event")
        self.stats = Stats()
        self._views: dict[int, ReplicaView] = {}
        self._change_headers = list(domain.change_headers)
        self._change_headers_by_type: dict[Any, Headers] = {}  # `emit`'s headers, per event type
        self._employee_headers = list(domain.employee_headers)
        #: per trust: does a full file's absence delete (True) or only report (False)? (trust profiles, issue 5)
        self.absence_is_delete = absence_is_delete
        #: per partition: location / organisation id -> employee keys, for `_work_addresses` (streams.places)
        self.places = WorkPlaces(employees, domain)
        #: per partition: employee key -> the full file that wrote all of it (`domain.complete_in_file`), noted
        #: at each write: that file's barrier skips the key without decoding it (`_full_file_completed`)
        self._complete_in: dict[int, dict[bytes, str]] = {}
        #: `esr replay`'s plan, read when the worker starts (`streams.replay`); None: no replay in force
        self.fence: ReplayFence | None = None
        self._muted: frozenset[str] = frozenset()  # topics not sent for the records being processed
        #: parked employee keys (streams.parking); None: dead letters park nothing
        self.parking: WorkerParking | None = None

    def forget_partitions(self) -> None:
        """Drop what is remembered about the table's partitions: on every revocation and assignment, since
        changelog recovery and standby replicas write the table behind the agent's back."""
        self.places.invalidate()
        self._complete_in.clear()

    def owner_partition(self, key: bytes) -> int:
        """The esr.records partition a key's own records are on (the ingest job places keys with murmur2)."""
        return partition_for(key, self.partitions)

    # -- output -------------------------------------------------------------------------------

    def send(self, topic: str, key: bytes | None, value: bytes | None, partition: int | None,
             headers: Headers | None = None) -> None:
        if topic in self._muted:  # a replayed record's output already sent the first time (streams.replay)
            return
        self.output.send(topic, key, value, partition, headers)

    def seal(self) -> asyncio.Future[Any]:
        """Close the current batch's outputs: a future resolved when the broker acknowledged all of them
        (table changelogs included: `BatchTable` sends them through the same producer)."""
        return self.output.seal()

    async def settle(self) -> None:
        """Wait until every message sent for the current batch is acknowledged."""
        await self.seal()

    def dead_letter(self, event: Any, reason: str, exc: BaseException | None = None, *,
                    behind: Origin | None = None) -> None:
        """Send `event` to esr.dlq.process. An ingest record of an employee key parks the key (`esr.parking`):
        the first one is its blocker, later ones wait behind it (`behind`: known already)."""
        message = event.message
        if behind is None and self.parking is not None:
            behind = self.parking.dead_lettered(event)
        if behind is not None:
            reason = parked_reason(behind)
        headers = [
            *_headers(event),
            (DLQ_STAGE, b"process"),
            (DLQ_REASON, reason.encode()),
            (DLQ_TOPIC, str(message.topic).encode()),
            (DLQ_PARTITION, str(message.partition).encode()),
            (DLQ_OFFSET, str(message.offset).encode()),
        ]
        if behind is not None:
            headers.append((PARKED_BEHIND, str(behind).encode()))
        if exc is not None:
            detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
            headers.append((DLQ_ERROR, detail[:4000].encode()))
        log.warning("dead letter %s[%s]@%s: %s", message.topic, message.partition, message.offset, reason)
        self.stats.dead_letters += 1
        self.send(DLQ_PROCESS, message.key, message.value, None, headers)

    def emit(self, changes: Iterable[Mapping[str, Any]], fallback_key: bytes, partition: int) -> None:
        encode, send = self.domain.encode_change, self.send
        by_type = self._change_headers_by_type
        count = 0
        for change in changes:
            vpd, person_id = change.get("vpd"), change.get("person_id")
            key = f"{vpd}:{person_id}".encode() if person_id is not None else fallback_key
            event_type = change.get("event_type")
            headers = by_type.get(event_type)
            if headers is None:  # one list per event type, shared by its sends (the producer only reads it)
                headers = by_type[event_type] = [*self._change_headers, (EVENT_TYPE_HEADER, str(event_type).encode())]
            # The key's input partition: the same murmur2 placement, as esr.changes has the same partition
            # count (ensure_topics); a different key (a reference's own events) is placed by the partitioner.
            send(CHANGES, key, encode(change), partition if key == fallback_key else None, headers)
            count += 1
        self.stats.changes += count

    def store_employee(self, event: Any, key: bytes, state: Any, tombstone: Any = None) -> None:
        """Write the table once (a deleted employee keeps its tombstone state there if the domain gives one,
        so that a replay of the delete re-emits the same events) and the full state to esr.employees."""
        domain = self.domain
        kept = state if state is not None else tombstone
        partition = event.message.partition
        self.employees.put(event, key, None if kept is None else domain.encode_state(kept))
        self.places.stored(partition, key, state)
        if domain.complete_in_file is not None:
            complete = self._complete_in.setdefault(partition, {})
            sha = None if state is None else domain.complete_in_file(state)
            if sha is None:
                complete.pop(key, None)
            else:
                complete[key] = sha
        value = None if state is None else domain.employee_value(state)
        self.send(EMPLOYEES, key, value, partition, self._employee_headers)

    def reject(self, outcome: Any, keyed: _Keyed, again: Callable[[Sequence[Any]], Any] | None = None) -> Any:
        """Dead-letter the records the domain refused (not applied; the rest of the key's records were) and
        return the outcome to keep. With parking and `again` (the domain call on fewer records), the key's
        records after the first refused one are not applied either: the key is applied again up to it, and
        they are dead-lettered behind it, as later batches' records are (`esr.parking`)."""
        rejected = getattr(outcome, "rejected", None)
        if not rejected:
            return outcome
        reasons = {id(record): reason for record, reason in rejected}
        if again is None or self.parking is None:
            events = {id(record): event for record, event in zip(keyed.inputs, keyed.events, strict=True)}
            for record, reason in rejected:
                self.dead_letter(events[id(record)], f"rejected by the domain: {reason}")
            return outcome
        cut = next(index for index, record in enumerate(keyed.inputs) if id(record) in reasons)
        held = keyed.inputs[cut:]
        if any(id(record) not in reasons for record in held):
            outcome = again(keyed.inputs[:cut])
        for record, event in zip(held, keyed.events[cut:], strict=True):
            reason = reasons.get(id(record))
            self.dead_letter(event, "not applied: after a refused record of its key" if reason is None
                             else f"rejected by the domain: {reason}")
        return outcome

    # -- a batch ------------------------------------------------------------------------------

    def view(self, partition: int) -> ReplicaView:
        view = self._views.get(partition)
        if view is None:
            view = self._views[partition] = ReplicaView(self.references, partition, self.domain)
        return view

    async def process_fenced(self, events: Sequence[Any]) -> None:
        """`process`, with the records below the replay fence processed with their outputs muted."""
        if self.fence is None:
            await self.process(events)
            return
        for muted, segment in self.fence.split(events):
            self._muted = muted
            try:
                await self.process(segment)
            finally:
                self._muted = frozenset()

    async def process(self, events: Sequence[Any]) -> None:
        """Process one batch: table writes done, outputs sent (not yet acknowledged: see `seal`)."""
        now = self.clock()
        if self.stats.first_batch_at is None:
            self.stats.first_batch_at = now
            self.stats.first_batch_cpu = time.process_time()
        now_ms = int(now * 1000)
        self._views = {}
        by_partition: dict[int, list[Any]] = {}
        for event in events:
            by_partition.setdefault(event.message.partition, []).append(event)
        for partition, partition_events in by_partition.items():
            run: list[Any] = []
            run_forwarded = False
            for event in partition_events:
                forwarded = _header(event, FORWARDED) is not None
                if run and forwarded != run_forwarded:
                    await self._run(partition, run, run_forwarded, now_ms)
                    run = []
                run.append(event)
                run_forwarded = forwarded
            if run:
                await self._run(partition, run, run_forwarded, now_ms)
        self.stats.batches += 1

    async def _run(self, partition: int, events: list[Any], forwarded: bool, now_ms: int) -> None:
        if forwarded:
            await self._forwarded_run(partition, events, now_ms)
        else:
            await self._records_run(partition, events, now_ms)

    # -- ingest records -------------------------------------------------------------------------

    async def _records_run(self, partition: int, events: list[Any], now_ms: int) -> None:
        decode = self.records_decoder.decode
        make_input = self.domain.input_record
        employees: dict[bytes, _Keyed] = {}
        references: dict[bytes, _Keyed] = {}
        for event in events:
            message = event.message
            key = message.key
            self.stats.records += 1
            if not key:
                self.dead_letter(event, "record without a key")
                continue
            try:
                record = decode(message.value)
            except UndecodableMessage as exc:
                self.dead_letter(event, "undecodable record event", exc)
                continue
            parts = key.split(b":")
            # Employees and references are each applied per key, but one group never overtakes the other:
            # at each switch the group gathered so far is applied first, so an employee record after a location
            # record sees the new location whatever the batch boundaries were (a replay must match).
            if len(parts) == 3 and parts[1].decode() in REFERENCE_TYPES:
                if _header(event, BROADCAST) is None:  # the ingest job has already copied it everywhere
                    self.forward(event, FORWARDED_REFERENCE)
                if employees:
                    await self._apply_employees(partition, employees, now_ms)
                    employees = {}
                group = references
            elif len(parts) == 2:
                if self.parking is not None and self.parking.holds(event, key, self.dead_letter):
                    continue  # waits behind a dead letter of its key, or a discarded one's marker (esr.parking)
                if references:
                    await self._apply_references(partition, references, now_ms, owner=True)
                    references = {}
                group = employees
            else:
                self.dead_letter(event, f"unexpected key {key!r}: neither <vpd>:<person_id> nor a reference")
                continue
            keyed = group.get(key)
            if keyed is None:
                keyed = group[key] = _Keyed()
            keyed.events.append(event)
            keyed.inputs.append(make_input(record, message.topic, partition, message.offset))
        if references:  # the owner's replica, in this partition's order (its events are emitted from here)
            await self._apply_references(partition, references, now_ms, owner=True)
        if employees:
            await self._apply_employees(partition, employees, now_ms)

    def forward(self, event: Any, kind: bytes) -> None:
        """Send a copy of `event` to every other partition of esr.records, marked as forwarded."""
        message = event.message
        headers = [
            *_headers(event),
            (FORWARDED, kind),
            (ORIGIN_PARTITION, str(message.partition).encode()),
            (ORIGIN_OFFSET, str(message.offset).encode()),
        ]
        for target in range(self.partitions):
            if target != message.partition:
                self.send(RECORDS, message.key, message.value, target, headers)
        self.stats.forwarded += 1

    async def _apply_employees(self, partition: int, employees: dict[bytes, _Keyed], now_ms: int) -> None:
        apply = self.domain.apply_employee_batch
        decode_state = self.domain.decode_state
        data = self.employees.data
        view = self.view(partition)
        for key, keyed in employees.items():
            raw = data.get(key)
            try:
                state = None if raw is None else decode_state(raw)
                outcome = apply(state, keyed.inputs, view, now_ms=now_ms)
            except Exception as exc:
                log.exception("domain failed for %s", key.decode(errors="replace"))
                for event in keyed.events:
                    self.dead_letter(event, f"domain error for key {key.decode(errors='replace')}", exc)
                continue
            outcome = self.reject(outcome, keyed, partial(apply, state, reference=view, now_ms=now_ms))
            self.store_employee(keyed.events[-1], key, outcome.state, getattr(outcome, "tombstone", None))
            self.emit(outcome.changes, key, partition)

    # -- forwarded messages ---------------------------------------------------------------------

    async def _forwarded_run(self, partition: int, events: list[Any], now_ms: int) -> None:
        references: dict[bytes, _Keyed] = {}
        for event in events:
            kind = _header(event, FORWARDED)
            if kind == FORWARDED_FULL_FILE:
                if references:
                    await self._apply_references(partition, references, now_ms, owner=False)
                    references = {}
                await self._full_file_completed(partition, event, now_ms)
                continue
            if kind != FORWARDED_REFERENCE:
                self.dead_letter(event, f"unknown forwarded message kind {kind!r}")
                continue
            try:
                record = self.records_decoder.decode(event.message.value)
                origin_offset_header = _header(event, ORIGIN_OFFSET)
                if origin_offset_header is None:  # a copy written by the ingest job: its own place is its origin
                    origin_partition, origin_offset = partition, event.message.offset
                else:
                    origin_partition = int(_header(event, ORIGIN_PARTITION) or b"")
                    origin_offset = int(origin_offset_header)
            except (UndecodableMessage, ValueError) as exc:
                self.dead_letter(event, "undecodable forwarded reference record", exc)
                continue
            key = event.message.key
            keyed = references.get(key)
            if keyed is None:
                keyed = references[key] = _Keyed()
            keyed.events.append(event)
            keyed.inputs.append(self.domain.input_record(record, RECORDS, origin_partition, origin_offset))
        if references:
            await self._apply_references(partition, references, now_ms, owner=False)

    async def _apply_references(self, partition: int, references: dict[bytes, _Keyed], now_ms: int, *,
                                owner: bool) -> None:
        """Apply reference records to this partition's replicas. The owner (the partition the records were
        ingested on, applying them in its own log order) also reports refusals and emits the reference's
        change events; every partition fans changed addresses out to its own employees."""
        domain = self.domain
        data = self.references.data
        view = self.view(partition)
        suffix = f"@{partition}".encode()
        fanouts: list[tuple[Any, Any]] = []  # (outcome whose address moved, the event that carried it)
        for key, keyed in references.items():
            replica_key = key + suffix
            raw = data.get(replica_key)
            try:
                state = None if raw is None else domain.decode_reference_state(raw)
                outcome = domain.apply_reference_batch(state, keyed.inputs, now_ms=now_ms)
            except Exception as exc:
                log.exception("domain failed for reference %s", key.decode(errors="replace"))
                for event in keyed.events:
                    self.dead_letter(event, f"domain error for reference {key.decode(errors='replace')}", exc)
                continue
            if owner:
                outcome = self.reject(outcome, keyed)
            self.store_reference(keyed.events[-1], replica_key, outcome, view)
            if owner:
                self.emit(outcome.changes, key, partition)
            if outcome.changed_location_ids or outcome.changed_organisation_ids:
                fanouts.append((outcome, keyed.events[-1]))
        if fanouts:
            await self._work_addresses(partition, fanouts, now_ms)

    def store_reference(self, event: Any, replica_key: bytes, outcome: Any, view: ReplicaView) -> None:
        kept = outcome.state if outcome.state is not None else getattr(outcome, "tombstone", None)
        self.references.put(event, replica_key, None if kept is None else self.domain.encode_reference_state(kept))
        view.forget(replica_key)

    async def _work_addresses(self, partition: int, fanouts: list[tuple[Any, Any]], now_ms: int) -> None:
        """WORK_ADDRESS_CHANGED for this partition's employees whose work address goes through a location or
        organisation that moved. The events do not change the employee state (the domain resolves work
        addresses from the reference data at read time), so nothing is written. Only the employees the
        index (`streams.places`) says can go through a moved entity are decoded, in key order; the domain
        decides for each, so the events are those of a scan of every employee of the trust."""
        domain = self.domain
        view = self.view(partition)
        data = self.employees.data
        by_vpd: dict[str, list[tuple[Any, Any]]] = {}
        for outcome, event in fanouts:
            by_vpd.setdefault(event.message.key.split(b":", 1)[0].decode(), []).append((outcome, event))
        for vpd, moved in by_vpd.items():
            moved_locations = set().union(*(outcome.changed_location_ids for outcome, _ in moved))
            moved_organisations = set().union(*(outcome.changed_organisation_ids for outcome, _ in moved))
            candidates = await self.places.candidates(partition, vpd, moved_locations, moved_organisations, view)
            for index, key in enumerate(candidates):
                if index % _SCAN_YIELD == _SCAN_YIELD - 1:
                    await asyncio.sleep(0)
                raw = data.get(key)
                if raw is None:
                    continue
                state = domain.decode_state(raw)
                for outcome, event in moved:
                    locations, organisations = outcome.changed_location_ids, outcome.changed_organisation_ids
                    try:
                        changes = domain.work_address_changes(
                            state, vpd, locations, organisations, view, source=outcome.fanout_source,
                            now_ms=now_ms,
                            previous_locations=dict.fromkeys(locations, outcome.previous),
                            previous_organisations=dict.fromkeys(organisations, outcome.previous),
                        )
                    except Exception as exc:
                        log.exception("work address changes failed for %s", key.decode(errors="replace"))
                        self.dead_letter(event, f"domain error (work addresses) for key {key.decode()}", exc)
                        continue
                    self.emit(changes, key, partition)

    async def _full_file_completed(self, partition: int, event: Any, now_ms: int) -> None:
        """The barrier after a full file: report (or delete) what the file did not contain, on this partition."""
        domain = self.domain
        try:
            completed = self.control_decoder.decode(event.message.value)
            origin = (int(_header(event, ORIGIN_PARTITION) or b""), int(_header(event, ORIGIN_OFFSET) or b""))
        except (UndecodableMessage, ValueError) as exc:
            self.dead_letter(event, "undecodable forwarded control event", exc)
            return
        vpd, sha = completed["vpd"], completed["file_sha256"]
        source = domain.change_source(completed, CONTROL, *origin)
        treat_as_delete = self.absence_is_delete(vpd)
        prefix = f"{vpd}:".encode()
        # reference replicas first (a deleted location must be gone before the employees are looked at)
        fanouts: list[tuple[Any, Any]] = []
        reference_absent = domain.reference_absent_from_full_file
        view = self.view(partition)
        if reference_absent is not None:
            ref_data = self.references.data
            for replica_key in self.references.keys_in_partition(partition, prefix):
                raw = ref_data.get(replica_key)
                if raw is None:
                    continue
                key = replica_key.rsplit(b"@", 1)[0]
                try:
                    outcome = reference_absent(domain.decode_reference_state(raw), sha, source,
                                               treat_as_delete=treat_as_delete, now_ms=now_ms)
                except Exception as exc:
                    log.exception("reference_absent_from_full_file failed for %s", key.decode(errors="replace"))
                    self.dead_letter(event, f"domain error (full file) for reference {key.decode()}", exc)
                    continue
                if not outcome.changes and outcome.state is not None:
                    continue
                self.store_reference(event, replica_key, outcome, view)
                if self.owner_partition(key) == partition:
                    self.emit(outcome.changes, key, partition)
                if outcome.changed_location_ids or outcome.changed_organisation_ids:
                    fanouts.append((outcome, event))
        if fanouts:
            await self._work_addresses(partition, fanouts, now_ms)
        data = self.employees.data
        complete = self._complete_in.get(partition, {})
        for index, key in enumerate(self.employees.keys_in_partition(partition, prefix)):
            if index % _SCAN_YIELD == _SCAN_YIELD - 1:
                await asyncio.sleep(0)
            if complete.get(key) == sha:
                continue  # written in full by this very file: nothing absent (domain.complete_in_file)
            raw = data.get(key)
            if raw is None:
                continue
            try:
                outcome = domain.absent_from_full_file(domain.decode_state(raw), sha, source,
                                                       treat_as_delete=treat_as_delete, now_ms=now_ms)
            except Exception as exc:
                log.exception("absent_from_full_file failed for %s", key.decode(errors="replace"))
                self.dead_letter(event, f"domain error (full file) for key {key.decode()}", exc)
                continue
            # Only employees with something absent are written: rewriting every state of the trust (and
            # re-publishing it on esr.employees) for a reconciliation marker would cost a full file's worth
            # of output; without the marker a replayed barrier re-emits the same event ids.
            if outcome.changes or outcome.state is None:
                self.store_employee(event, key, outcome.state, getattr(outcome, "tombstone", None))
                self.emit(outcome.changes, key, partition)
        log.info("full file %s of trust %s reconciled on partition %d", completed["file_name"], vpd, partition)


class BatchPipeline:
    """Runs the processor over `take_events` batches with the outputs of up to `depth` batches in flight.

    Faust acks a batch's events as soon as the agent asks for the next batch. To ack them only once their
    outputs are acknowledged by the broker, each event's message gets one more reference before the batch
    is handed back (`Message.incref`), and that reference is released (`Event.ack`, which then makes Faust
    mark the offset committable) when the batch's outputs are settled. Meanwhile the next batch is
    processed. The domain's replay journal covers the few batches a crash can leave uncommitted.
    """

    def __init__(self, processor: EmployeesProcessor, *, depth: int = 2,
                 on_fatal: Callable[[BaseException], None]) -> None:
        self.processor = processor
        self.depth = depth
        self.on_fatal = on_fatal
        self._in_flight: list[asyncio.Future[Any]] = []

    async def run_batch(self, events: Sequence[Any]) -> None:
        for event in events:
            event.message.incref()
        await self.processor.process_fenced(events)
        settled = self.processor.seal()
        batch = list(events)
        stats = self.processor.stats

        def done(future: asyncio.Future[Any]) -> None:
            if future.cancelled():
                return
            exc = future.exception()
            if exc is not None:
                self.on_fatal(exc)
                return
            for event in batch:
                event.ack()
            stats.last_batch_done_at = self.processor.clock()
            stats.last_batch_done_cpu = time.process_time()

        settled.add_done_callback(done)
        in_flight = self._in_flight = [future for future in self._in_flight if not future.done()]
        in_flight.append(settled)
        if len(in_flight) > self.depth:
            waiting = time.monotonic()
            await asyncio.shield(in_flight[0])
            stats.settle_seconds += time.monotonic() - waiting


class ControlForwarder:
    """The control agent's work: forward a full file's FILE_COMPLETED to every partition of esr.records."""

    def __init__(self, output: Output, partitions: int) -> None:
        self.output = output
        self.partitions = partitions
        self.decoder = Decoder("control-event")

    async def process(self, event: Any) -> bool:
        """Forward `event` if it completes a full file; True if it did."""
        message = event.message
        try:
            control = self.decoder.decode(message.value)
        except UndecodableMessage as exc:
            log.warning("undecodable control event at %s[%s]@%s: %s", message.topic, message.partition,
                        message.offset, exc)
            self.output.send(DLQ_PROCESS, message.key, message.value, None, [
                *_headers(event),
                (DLQ_STAGE, b"process"), (DLQ_REASON, b"undecodable control event"),
                (DLQ_TOPIC, str(message.topic).encode()), (DLQ_PARTITION, str(message.partition).encode()),
                (DLQ_OFFSET, str(message.offset).encode()), (DLQ_ERROR, str(exc)[:4000].encode()),
            ])
            await self.output.flush()
            return False
        if control["event_type"] != "FILE_COMPLETED" or control["extract_type"] != "F":
            return False
        headers = [
            *_headers(event),
            (FORWARDED, FORWARDED_FULL_FILE),
            (ORIGIN_PARTITION, str(message.partition).encode()),
            (ORIGIN_OFFSET, str(message.offset).encode()),
        ]
        key = f"{control['vpd']}:FILE_COMPLETED".encode()
        for target in range(self.partitions):
            self.output.send(RECORDS, key, message.value, target, headers)
        await self.output.flush()
        log.info("full file %s of trust %s completed: barrier forwarded to %d partitions",
                 control["file_name"], control["vpd"], self.partitions)
        return True
