"""TEST DOUBLE of `streams.domain`: the same signatures, deliberately simple logic.

Used to measure the Faust shell (streams/) alone and to test it independently of the domain's semantics.
Not the product's change detection: every entity is compared as a whole payload, event types are generic,
the state is pickled, change events are JSON. Select it with `ESR_STREAMS_DOMAIN=tests.doubles.domain`.

What it keeps from the real contract: one call per key per batch with the records in offset order, a
deterministic `event_id` (file SHA-256, line number, entity, event type), nothing emitted for a re-sent
unchanged record, `None` state after a person delete, work addresses resolved through the ReferenceView,
changed location ids reported by reference batches.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import pickle
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class InputRecord:
    event: dict[str, Any]
    topic: str
    partition: int
    offset: int


@dataclass(frozen=True, slots=True)
class ChangeSource:
    file_name: str
    file_sha256: str
    sequence: int | None = None
    run_date: dt.datetime | None = None
    line_no: int | None = None
    topic: str | None = None
    partition: int | None = None
    offset: int | None = None

    @classmethod
    def of_event(cls, event: Mapping[str, Any], *, topic: str | None = None, partition: int | None = None,
                 offset: int | None = None) -> ChangeSource:
        source = event.get("source")
        if source is None:
            return cls(event["file_name"], event["file_sha256"], event.get("sequence"), event.get("run_date"),
                       None, topic, partition, offset)
        return cls(source["file_name"], source["file_sha256"], source["sequence"], source["run_date"],
                   source["line_no"], topic, partition, offset)


@dataclass
class EmployeeState:
    vpd: str
    person_id: str
    entities: dict[str, Any] = field(default_factory=dict)  # "<TYPE>:<id>" -> payload
    sequences: dict[str, int] = field(default_factory=dict)  # "<TYPE>:<id>" -> sequence of the last file with it
    work_addresses: dict[str, Any] = field(default_factory=dict)  # assignment id -> resolved location
    last_offset: int = -1


@dataclass
class EmployeeOutcome:
    state: EmployeeState | None
    changes: list[dict[str, Any]]
    tombstone: EmployeeState | None = None
    rejected: list[tuple[InputRecord, str]] = field(default_factory=list)


@dataclass
class ReferenceState:
    vpd: str
    entity_type: str
    entity_id: str
    payload: dict[str, Any] | None = None
    deleted: bool = False

    def current(self) -> dict[str, Any] | None:
        return self.payload


@dataclass
class ReferenceOutcome:
    state: ReferenceState | None
    changes: list[dict[str, Any]]
    changed_location_ids: set[str] = field(default_factory=set)
    changed_organisation_ids: set[str] = field(default_factory=set)
    previous: dict[str, Any] | None = None
    fanout_source: ChangeSource | None = None
    tombstone: ReferenceState | None = None
    rejected: list[tuple[InputRecord, str]] = field(default_factory=list)


def _change(source: ChangeSource, event_type: str, entity_type: str, entity_id: str, vpd: str,
            person_id: str | None, now_ms: int) -> dict[str, Any]:
    text = f"{source.file_sha256}:{source.line_no}:{entity_type}:{entity_id}:{event_type}"
    return {
        "event_id": hashlib.sha256(text.encode()).hexdigest()[:32],
        "event_type": event_type,
        "entity_type": entity_type,
        "entity_id": entity_id,
        "vpd": vpd,
        "person_id": person_id,
        "source": {"file_name": source.file_name, "line_no": source.line_no, "topic": source.topic,
                   "partition": source.partition, "offset": source.offset},
        "ts_ms": now_ms,
    }


def _source(record: InputRecord) -> ChangeSource:
    return ChangeSource.of_event(record.event, topic=record.topic, partition=record.partition, offset=record.offset)


def _work_address(vpd: str, payload: Mapping[str, Any], reference: Any) -> Any:
    location_id = payload.get("location_id")
    if location_id is None and payload.get("organisation_id"):
        organisation = reference.organisation(vpd, payload["organisation_id"])
        location_id = organisation.get("location_id") if organisation else None
    if location_id is None:
        return None
    location = reference.location(vpd, location_id)
    return (location_id, location.get("postcode") if location else None)


def apply_employee_batch(state: EmployeeState | None, records: Sequence[InputRecord], reference: Any, *,
                         now_ms: int) -> EmployeeOutcome:
    if state is not None:
        state = EmployeeState(state.vpd, state.person_id, dict(state.entities), dict(state.sequences),
                              dict(state.work_addresses), state.last_offset)
    outcome = EmployeeOutcome(state, [])
    for record in records:
        event = record.event
        if state is None:
            state = outcome.state = EmployeeState(vpd=event["vpd"], person_id=event["person_id"] or "")
        vpd, entity_type, entity_id = state.vpd, event["entity_type"], event["entity_id"]
        key = f"{entity_type}:{entity_id}"
        source = _source(record)
        if event["action"] == "DELETE":
            if entity_type == "PERSON":
                outcome.changes.append(_change(source, "PERSON_DELETED", entity_type, entity_id, vpd,
                                               state.person_id, now_ms))
                outcome.state, outcome.tombstone = None, None
                return outcome
            if state.entities.pop(key, None) is not None:
                outcome.changes.append(_change(source, f"{entity_type}_DELETED", entity_type, entity_id, vpd,
                                               state.person_id, now_ms))
        else:
            payload = event["payload"]
            old = state.entities.get(key)
            if old != payload:
                if entity_type == "PERSON":
                    kind = "NEW_STARTER" if old is None else "PERSON_UPDATED"
                else:
                    kind = f"{entity_type}_ADDED" if old is None else f"{entity_type}_CHANGED"
                state.entities[key] = payload
                outcome.changes.append(_change(source, kind, entity_type, entity_id, vpd, state.person_id, now_ms))
            state.sequences[key] = event["source"]["sequence"]
            if entity_type == "ASSIGNMENT":
                state.work_addresses[entity_id] = _work_address(vpd, payload, reference)
        state.last_offset = record.offset
    return outcome


def apply_reference_batch(state: ReferenceState | None, records: Sequence[InputRecord], *,
                          now_ms: int) -> ReferenceOutcome:
    outcome = ReferenceOutcome(state, [])
    for record in records:
        event = record.event
        current = outcome.state
        if current is None:
            current = ReferenceState(event["vpd"], event["entity_type"], event["entity_id"])
        new = None if event["action"] == "DELETE" else event["payload"]
        if new == current.payload:
            continue
        entity_type, entity_id = current.entity_type, current.entity_id
        kind = f"{entity_type}_{'ADDED' if current.payload is None else 'DELETED' if new is None else 'CHANGED'}"
        outcome.changes.append(_change(_source(record), kind, entity_type, entity_id, current.vpd, None, now_ms))
        if current.payload is not None:
            outcome.previous = current.payload
            if entity_type == "LOCATION":
                outcome.changed_location_ids.add(entity_id)
            elif entity_type == "ORGANISATION":
                outcome.changed_organisation_ids.add(entity_id)
            outcome.fanout_source = _source(record)
        outcome.state = ReferenceState(current.vpd, entity_type, entity_id, new, new is None)
    return outcome


def work_address_changes(state: EmployeeState, vpd: str, changed_location_ids: Collection[str],
                         changed_organisation_ids: Collection[str], reference: Any, *, source: ChangeSource,
                         now_ms: int, previous_locations: Mapping[str, Any] | None = None,  # noqa: ARG001
                         previous_organisations: Mapping[str, Any] | None = None,  # noqa: ARG001
                         ) -> list[dict[str, Any]]:
    changes = []
    for key, payload in state.entities.items():
        if not key.startswith("ASSIGNMENT:"):
            continue
        if payload.get("location_id") not in changed_location_ids and (
                payload.get("organisation_id") not in changed_organisation_ids):
            continue
        assignment_id = key.split(":", 1)[1]
        if _work_address(vpd, payload, reference) != state.work_addresses.get(assignment_id):
            changes.append(_change(source, "WORK_ADDRESS_CHANGED", "ASSIGNMENT", assignment_id, vpd,
                                   state.person_id, now_ms))
    return changes


def absent_from_full_file(state: EmployeeState, file_sha256: str, source: ChangeSource, *,  # noqa: ARG001
                          treat_as_delete: bool, now_ms: int) -> EmployeeOutcome:  # noqa: ARG001
    # The barrier comes after every record of the full file on this partition, possibly after records of later
    # files too: absent = last seen in a file older than this one.
    changes = [
        _change(source, "ABSENT_FROM_FULL_FILE", key.split(":", 1)[0], key.split(":", 1)[1], state.vpd,
                state.person_id, now_ms)
        for key, sequence in state.sequences.items()
        if sequence < (source.sequence or 0)
    ]
    return EmployeeOutcome(state, changes)


def encode_state(state: Any) -> bytes:
    return pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL)


def decode_state(data: bytes) -> Any:
    return pickle.loads(data)  # test double; reads only what it wrote itself


def encode_change(change: Mapping[str, Any]) -> bytes:
    return json.dumps(change, separators=(",", ":"), default=str).encode()


def decode_change(data: bytes) -> dict[str, Any]:
    value = json.loads(data)
    assert isinstance(value, dict)
    return value
