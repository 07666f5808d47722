"""Change events (DESIGN §4): deterministic ids, the envelope, and what caused them.

Every dict built here encodes with `Encoder("change-event")` as is.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from esr.codec.schemas import ChangeEventType, ChangeOp
from streams.domain.model import InputRecord, Values, diff

ChangeEvent = dict[str, Any]

# The namespace of event ids: uuid5(namespace, "<file sha256>:<line>:<entity type>:<entity id>:<event type>").
EVENT_ID_NAMESPACE = uuid.UUID("5b0f6a0e-3c1e-5d7a-9a57-e5a0c0de0001")
# The first 16 bytes of the SHA-1 as a big-endian int: byte 6's high nibble becomes the version (5), byte 8's
# two high bits the RFC 4122 variant (10).
_UUID_KEEP = ~((0xF0 << 72) | (0xC0 << 56)) & ((1 << 128) - 1)
_UUID_SET = (0x50 << 72) | (0x80 << 56)


def uuid5_of(namespace: uuid.UUID) -> Callable[[str], str]:
    """`name -> str(uuid.uuid5(namespace, name))`, computed without the `uuid` module's overhead (a third of
    its time: event ids are made for every change)."""
    of_namespace = hashlib.sha1(namespace.bytes, usedforsecurity=False)

    def uuid5(name: str) -> str:
        hasher = of_namespace.copy()
        hasher.update(name.encode())
        text = "%032x" % (int.from_bytes(hasher.digest()[:16]) & _UUID_KEEP | _UUID_SET)
        return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"

    return uuid5


_event_uuid = uuid5_of(EVENT_ID_NAMESPACE)

CREATE = ChangeOp.CREATE.value
UPDATE = ChangeOp.UPDATE.value
DELETE = ChangeOp.DELETE.value
REPLAY = ChangeOp.REPLAY.value

T = ChangeEventType  # short alias for the tables below

NEW_STARTER = T.NEW_STARTER.value
LEAVER = T.LEAVER.value
PERSON_UPDATED = T.PERSON_UPDATED.value
SURNAME_CHANGED = T.SURNAME_CHANGED.value
NAME_CHANGED = T.NAME_CHANGED.value
PERSON_DELETED = T.PERSON_DELETED.value
WORK_ADDRESS_CHANGED = T.WORK_ADDRESS_CHANGED.value
PRIMARY_ASSIGNMENT_CHANGED = T.PRIMARY_ASSIGNMENT_CHANGED.value
ABSENT_FROM_FULL_FILE = T.ABSENT_FROM_FULL_FILE.value


@dataclass(frozen=True, slots=True)
class EventNames:
    """The event types of one entity type: created, changed, ended (None: no end event), deleted."""

    created: str
    changed: str
    ended: str | None
    deleted: str


NAMES: dict[str, EventNames] = {
    "PERSON": EventNames(T.NEW_STARTER.value, T.PERSON_UPDATED.value, None, T.PERSON_DELETED.value),
    "ASSIGNMENT": EventNames(T.ASSIGNMENT_STARTED.value, T.ASSIGNMENT_CHANGED.value, T.ASSIGNMENT_ENDED.value,
                             T.ASSIGNMENT_DELETED.value),
    "ADDRESS": EventNames(T.HOME_ADDRESS_ADDED.value, T.HOME_ADDRESS_CHANGED.value, T.HOME_ADDRESS_ENDED.value,
                          T.HOME_ADDRESS_DELETED.value),
    "PHONE": EventNames(T.PHONE_ADDED.value, T.PHONE_CHANGED.value, T.PHONE_ENDED.value, T.PHONE_DELETED.value),
    "VEHICLE": EventNames(T.VEHICLE_ADDED.value, T.VEHICLE_CHANGED.value, T.VEHICLE_ENDED.value,
                          T.VEHICLE_DELETED.value),
    "COSTING": EventNames(T.COSTING_ADDED.value, T.COSTING_CHANGED.value, T.COSTING_ENDED.value,
                          T.COSTING_DELETED.value),
    "LOCATION": EventNames(T.LOCATION_ADDED.value, T.LOCATION_CHANGED.value, None, T.LOCATION_DELETED.value),
    "ORGANISATION": EventNames(T.ORGANISATION_ADDED.value, T.ORGANISATION_CHANGED.value, None,
                               T.ORGANISATION_DELETED.value),
    "POSITION": EventNames(T.POSITION_ADDED.value, T.POSITION_CHANGED.value, None, T.POSITION_DELETED.value),
}


def event_id(file_sha256: str, line_no: int | None, entity_type: str, entity_id: str, event_type: str) -> str:
    """Deterministic: the same file line, entity and event type give the same id on every replay.

    A name-based UUID (version 5): `str(uuid.uuid5(EVENT_ID_NAMESPACE, name))` (`uuid5_of`).

    `line_no` is None for events no single line causes (ABSENT_FROM_FULL_FILE and absence deletes, which
    are caused by the file as a whole).
    """
    line = "" if line_no is None else line_no
    return _event_uuid(f"{file_sha256}:{line}:{entity_type}:{entity_id}:{event_type}")


@dataclass(frozen=True, slots=True)
class ChangeSource:
    """What caused a change: the ESR file and line (if any), and the input message (if any)."""

    file_name: str
    file_sha256: str
    sequence: int | None = None
    extract_type: str | None = None
    run_date: dt.datetime | None = None
    record_code: str | None = None
    line_no: int | None = None
    topic: str | None = None
    partition: int | None = None
    offset: int | None = None

    @classmethod
    def of_record(cls, record: InputRecord) -> ChangeSource:
        """The source of a record event's changes."""
        return cls.of_event(record.event, topic=record.topic, partition=record.partition, offset=record.offset)

    @classmethod
    def of_event(cls, event: Mapping[str, Any], *, topic: str | None = None, partition: int | None = None,
                 offset: int | None = None) -> ChangeSource:
        """From a record event, or from a control event (FILE_COMPLETED: no record code, no line)."""
        source = event.get("source")
        if source is None:  # a control event carries the file fields at top level
            return cls(event["file_name"], event["file_sha256"], event.get("sequence"), event.get("extract_type"),
                       event.get("run_date"), None, None, topic, partition, offset)
        return cls(source["file_name"], source["file_sha256"], source["sequence"], source["extract_type"],
                   source["run_date"], event["record_code"], source["line_no"], topic, partition, offset)

    def as_dict(self) -> dict[str, Any]:
        return {
            "file_name": self.file_name,
            "file_sha256": self.file_sha256,
            "sequence": self.sequence,
            "extract_type": self.extract_type,
            "run_date": self.run_date,
            "record_code": self.record_code,
            "line_no": self.line_no,
            "topic": self.topic,
            "partition": self.partition,
            "offset": self.offset,
        }


def record_source(record: InputRecord) -> dict[str, Any]:
    """`ChangeSource.of_record(record).as_dict()`, built directly (once per record that emits)."""
    event = record.event
    source = event["source"]
    return {
        "file_name": source["file_name"],
        "file_sha256": source["file_sha256"],
        "sequence": source["sequence"],
        "extract_type": source["extract_type"],
        "run_date": source["run_date"],
        "record_code": event["record_code"],
        "line_no": source["line_no"],
        "topic": record.topic,
        "partition": record.partition,
        "offset": record.offset,
    }


def change_event(
    event_type: str,
    op: str,
    entity_type: str,
    entity_id: str,
    *,
    vpd: str,
    person_id: str | None,
    employee_number: str | None,
    before: Values | None,
    after: Values | None,
    effective_date: dt.date | None,
    source: dict[str, Any],
    ts_ms: int,
    changes: list[dict[str, str | None]] | None = None,
) -> ChangeEvent:
    """One change event; `changes` defaults to the diff of `before` and `after`."""
    return {
        "event_id": event_id(source["file_sha256"], source["line_no"], entity_type, entity_id, event_type),
        "event_type": event_type,
        "op": op,
        "entity_type": entity_type,
        "entity_id": entity_id,
        "vpd": vpd,
        "person_id": person_id,
        "employee_number": employee_number,
        "changes": diff(before, after) if changes is None else changes,
        "before": before,
        "after": after,
        "effective_date": effective_date,
        "source": source,
        "ts_ms": ts_ms,
    }
