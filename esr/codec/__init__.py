"""Avro events of the ESR topics: schemas, framing, builders, encoder and decoder.

Typical producer:  `Encoder("record-event").encode(record_event(line, provenance, line_no))`.
Typical consumer:  `Decoder("record-event").decode(message.value())` -> dict, or `UndecodableMessage`.
"""

from esr.codec.events import (
    PAYLOAD_TYPES,
    Action,
    ControlEvent,
    ControlEventType,
    Provenance,
    RecordEvent,
    control_event,
    record_event,
)
from esr.codec.framing import UndecodableMessage, content_type, fingerprint
from esr.codec.reader import TextRecord
from esr.codec.schemas import (
    CHANGE_EVENT,
    CONTROL_EVENT,
    RECORD_EVENT,
    SUBJECTS,
    ChangeEventType,
    ChangeOp,
    Subject,
)
from esr.codec.serde import Decoder, Encoder, Registry

__all__ = [
    "CHANGE_EVENT",
    "CONTROL_EVENT",
    "PAYLOAD_TYPES",
    "RECORD_EVENT",
    "SUBJECTS",
    "Action",
    "ChangeEventType",
    "ChangeOp",
    "ControlEvent",
    "ControlEventType",
    "Decoder",
    "Encoder",
    "Provenance",
    "RecordEvent",
    "Registry",
    "Subject",
    "TextRecord",
    "UndecodableMessage",
    "content_type",
    "control_event",
    "fingerprint",
    "record_event",
]
