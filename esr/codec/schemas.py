"""The Avro schemas of the ESR topics: generated from the record layouts, committed as versioned files.

`generate(subject)` is a pure function of `esr.format.layouts` (and the enums below). The committed files
`schemas/<subject>/v<N>.avsc` are what producers write with and what decoders look fingerprints up in;
`check_latest` (run by the tests) fails when a layout change has not been written as a new version;
`python -m esr.codec write` writes it (see `esr.codec.__main__`).
"""

from __future__ import annotations

import enum
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from esr.codec.compat import Compatibility, incompatibilities
from esr.format.header import ExtractType
from esr.format.layouts import LAYOUTS, EntityType, Field, FieldType, Layout
from schemas import SCHEMA_DIR

Schema = dict[str, Any]

NAMESPACE = "nhs.esr"


class Action(enum.Enum):
    UPSERT = "UPSERT"
    DELETE = "DELETE"


class ControlEventType(enum.Enum):
    UNKNOWN = "UNKNOWN"  # what a reader sees for a symbol added after its schema version
    FILE_STARTED = "FILE_STARTED"
    FILE_COMPLETED = "FILE_COMPLETED"
    FILE_REJECTED = "FILE_REJECTED"


class ChangeEventType(enum.Enum):
    """The business change a change event reports (DESIGN §4); UNKNOWN is what an older reader sees."""

    UNKNOWN = "UNKNOWN"
    NEW_STARTER = "NEW_STARTER"
    LEAVER = "LEAVER"
    PERSON_UPDATED = "PERSON_UPDATED"
    SURNAME_CHANGED = "SURNAME_CHANGED"
    NAME_CHANGED = "NAME_CHANGED"
    PERSON_DELETED = "PERSON_DELETED"
    HOME_ADDRESS_ADDED = "HOME_ADDRESS_ADDED"
    HOME_ADDRESS_CHANGED = "HOME_ADDRESS_CHANGED"
    HOME_ADDRESS_ENDED = "HOME_ADDRESS_ENDED"
    HOME_ADDRESS_DELETED = "HOME_ADDRESS_DELETED"
    WORK_ADDRESS_CHANGED = "WORK_ADDRESS_CHANGED"
    ASSIGNMENT_STARTED = "ASSIGNMENT_STARTED"
    ASSIGNMENT_CHANGED = "ASSIGNMENT_CHANGED"
    ASSIGNMENT_ENDED = "ASSIGNMENT_ENDED"
    ASSIGNMENT_DELETED = "ASSIGNMENT_DELETED"
    PRIMARY_ASSIGNMENT_CHANGED = "PRIMARY_ASSIGNMENT_CHANGED"
    PHONE_ADDED = "PHONE_ADDED"
    PHONE_CHANGED = "PHONE_CHANGED"
    PHONE_ENDED = "PHONE_ENDED"
    PHONE_DELETED = "PHONE_DELETED"
    VEHICLE_ADDED = "VEHICLE_ADDED"
    VEHICLE_CHANGED = "VEHICLE_CHANGED"
    VEHICLE_ENDED = "VEHICLE_ENDED"
    VEHICLE_DELETED = "VEHICLE_DELETED"
    COSTING_ADDED = "COSTING_ADDED"
    COSTING_CHANGED = "COSTING_CHANGED"
    COSTING_ENDED = "COSTING_ENDED"
    COSTING_DELETED = "COSTING_DELETED"
    LOCATION_ADDED = "LOCATION_ADDED"
    LOCATION_CHANGED = "LOCATION_CHANGED"
    LOCATION_DELETED = "LOCATION_DELETED"
    ORGANISATION_ADDED = "ORGANISATION_ADDED"
    ORGANISATION_CHANGED = "ORGANISATION_CHANGED"
    ORGANISATION_DELETED = "ORGANISATION_DELETED"
    POSITION_ADDED = "POSITION_ADDED"
    POSITION_CHANGED = "POSITION_CHANGED"
    POSITION_DELETED = "POSITION_DELETED"
    ABSENT_FROM_FULL_FILE = "ABSENT_FROM_FULL_FILE"


class ChangeOp(enum.Enum):
    """Debezium-style operation of a change event."""

    CREATE = "c"
    UPDATE = "u"
    DELETE = "d"
    REPLAY = "r"  # re-emitted by a replay (or a rebuild): the same event_id may have been delivered before


def fullname(name: str) -> str:
    return f"{NAMESPACE}.{name}"


_NULL_DEFAULT = {"default": None}
_DATE = {"type": "int", "logicalType": "date"}
_LOCAL_TS = {"type": "long", "logicalType": "local-timestamp-millis"}
_UTC_TS = {"type": "long", "logicalType": "timestamp-millis"}


def _value_type(f: Field) -> Any:
    match f.type:
        case FieldType.ID | FieldType.TEXT:
            return "string"
        case FieldType.DATE:
            return _DATE
        case FieldType.TIMESTAMP:
            return _LOCAL_TS
        case FieldType.INT:
            return "long"
        case FieldType.DECIMAL:
            return {"type": "bytes", "logicalType": "decimal", "precision": f.precision, "scale": f.scale}


def payload_schema(layout: Layout) -> Schema:
    """One record type per layout: its data fields, all nullable except the entity key and the owner."""
    fields: list[Schema] = []
    for f in layout.data_fields:
        if f.name in (layout.key_field, layout.owner_field):
            fields.append({"name": f.name, "type": "string"})
        else:
            fields.append({"name": f.name, "type": ["null", _value_type(f)], **_NULL_DEFAULT})
    return {
        "type": "record",
        "name": layout.avro_name,
        "doc": f"ESR {layout.code} record (deleted by {layout.delete_code}).",
        "fields": fields,
    }


def _enum(name: str, symbols: list[str], default: str | None = None) -> Schema:
    schema: Schema = {"type": "enum", "name": name, "symbols": symbols}
    if default is not None:
        schema["default"] = default
    return schema


# Enum defaults: only ControlEventType gets one. EntityType, Action and ExtractType have no symbol that
# could stand for "something newer"; record-event is BACKWARD_TRANSITIVE, so consumers upgrade first.
def _extract_type() -> Schema:
    return _enum("ExtractType", [e.value for e in ExtractType])


def record_event_schema() -> Schema:
    source = {
        "type": "record",
        "name": "Source",
        "doc": "Where the record came from: the ESR file and line.",
        "fields": [
            {"name": "file_name", "type": "string"},
            {"name": "file_sha256", "type": "string"},
            {"name": "line_no", "type": "long"},
            {"name": "sequence", "type": "long"},
            {"name": "extract_type", "type": _extract_type()},
            {"name": "extract_date", "type": _DATE},
            {"name": "run_date", "type": _LOCAL_TS},
            {"name": "previous_run_date", "type": ["null", _LOCAL_TS], **_NULL_DEFAULT},
        ],
    }
    issue = {
        "type": "record",
        "name": "FieldIssue",
        "fields": [
            {"name": "field", "type": "string"},
            {"name": "raw", "type": "string"},
            {"name": "message", "type": "string"},
        ],
    }
    return {
        "type": "record",
        "name": "RecordEvent",
        "namespace": NAMESPACE,
        "doc": "One ESR data line (add/update or delete) as published to esr.records.",
        "fields": [
            {"name": "record_id", "type": "string", "doc": "<file_sha256>:<line_no>"},
            {"name": "vpd", "type": "string"},
            {"name": "record_code", "type": "string"},
            {"name": "entity_type", "type": _enum("EntityType", [e.value for e in EntityType])},
            {"name": "action", "type": _enum("Action", [a.value for a in Action])},
            {"name": "entity_id", "type": "string"},
            {"name": "person_id", "type": ["null", "string"], **_NULL_DEFAULT},
            {
                "name": "payload",
                "type": ["null", *(payload_schema(layout) for layout in LAYOUTS)],
                **_NULL_DEFAULT,
            },
            {"name": "extra_fields", "type": {"type": "array", "items": "string"}, "default": []},
            {"name": "issues", "type": {"type": "array", "items": issue}, "default": []},
            {"name": "source", "type": source},
            {"name": "ingested_at", "type": _UTC_TS},
        ],
    }


def control_event_schema() -> Schema:
    """Every field has a default: the subject is FULL_TRANSITIVE (fields may come and go)."""
    return {
        "type": "record",
        "name": "ControlEvent",
        "namespace": NAMESPACE,
        "doc": "File lifecycle event on esr.control.",
        "fields": [
            {
                "name": "event_type",
                "type": _enum("ControlEventType", [t.value for t in ControlEventType], "UNKNOWN"),
                "default": "UNKNOWN",
            },
            {"name": "vpd", "type": "string", "default": ""},
            {"name": "file_name", "type": "string", "default": ""},
            {"name": "file_sha256", "type": "string", "default": ""},
            {"name": "sequence", "type": ["null", "long"], **_NULL_DEFAULT},
            {"name": "extract_type", "type": ["null", _extract_type()], **_NULL_DEFAULT},
            {"name": "run_date", "type": ["null", _LOCAL_TS], **_NULL_DEFAULT},
            {"name": "line_count", "type": "long", "default": 0},
            {"name": "record_count", "type": "long", "default": 0, "doc": "record events published"},
            {"name": "quarantined_count", "type": "long", "default": 0},
            {"name": "warning_count", "type": "long", "default": 0},
            {"name": "unknown_count", "type": "long", "default": 0},
            {"name": "counts_by_code", "type": {"type": "map", "values": "long"}, "default": {}},
            {"name": "rejection_code", "type": ["null", "string"], **_NULL_DEFAULT},
            {"name": "message", "type": ["null", "string"], **_NULL_DEFAULT},
            {"name": "ts", "type": _UTC_TS, "default": 0},
        ],
    }


def change_event_schema() -> Schema:
    """The change event envelope of DESIGN §4, on esr.changes (FULL_TRANSITIVE: downstream readers upgrade
    on their own schedule). Values in `changes`, `before` and `after` are canonical text: ISO dates
    (`2024-03-01`) and timestamps (`2024-03-01T07:15:03`), decimals as plain digits with their scale
    (`37.50000`); `before` / `after` hold only the non-null fields. Enums have an UNKNOWN default so a
    symbol added later reads as UNKNOWN in an older reader instead of failing it."""
    change = {
        "type": "record",
        "name": "FieldChange",
        "fields": [
            {"name": "field", "type": "string"},
            {"name": "old", "type": ["null", "string"], **_NULL_DEFAULT},
            {"name": "new", "type": ["null", "string"], **_NULL_DEFAULT},
        ],
    }
    source = {
        "type": "record",
        "name": "ChangeSource",
        "doc": "What caused the change: the ESR file and line, and the input message.",
        "fields": [
            {"name": "file_name", "type": "string", "default": ""},
            {"name": "file_sha256", "type": "string", "default": ""},
            {"name": "sequence", "type": ["null", "long"], **_NULL_DEFAULT},
            {"name": "extract_type", "type": ["null", _extract_type()], **_NULL_DEFAULT},
            {"name": "run_date", "type": ["null", _LOCAL_TS], **_NULL_DEFAULT},
            {"name": "record_code", "type": ["null", "string"], **_NULL_DEFAULT},
            {"name": "line_no", "type": ["null", "long"], **_NULL_DEFAULT, "doc": "null: not caused by one line"},
            {"name": "topic", "type": ["null", "string"], **_NULL_DEFAULT},
            {"name": "partition", "type": ["null", "int"], **_NULL_DEFAULT},
            {"name": "offset", "type": ["null", "long"], **_NULL_DEFAULT},
        ],
    }
    values = ["null", {"type": "map", "values": ["null", "string"]}]
    entity_types = ["UNKNOWN", *(e.value for e in EntityType)]
    return {
        "type": "record",
        "name": "ChangeEvent",
        "namespace": NAMESPACE,
        "doc": "One business change of an ESR entity, as published to esr.changes.",
        "fields": [
            {"name": "event_id", "type": "string", "doc": "deterministic: identical on every replay"},
            {
                "name": "event_type",
                "type": _enum("ChangeEventType", [t.value for t in ChangeEventType], "UNKNOWN"),
                "default": "UNKNOWN",
            },
            {"name": "op", "type": _enum("ChangeOp", [o.value for o in ChangeOp], "u"), "default": "u"},
            {
                "name": "entity_type",
                "type": _enum("ChangeEntityType", entity_types, "UNKNOWN"),
                "default": "UNKNOWN",
            },
            {"name": "entity_id", "type": "string"},
            {"name": "vpd", "type": "string"},
            {"name": "person_id", "type": ["null", "string"], **_NULL_DEFAULT},
            {"name": "employee_number", "type": ["null", "string"], **_NULL_DEFAULT},
            {"name": "changes", "type": {"type": "array", "items": change}, "default": []},
            {"name": "before", "type": values, **_NULL_DEFAULT},
            {"name": "after", "type": values, **_NULL_DEFAULT},
            {"name": "effective_date", "type": ["null", _DATE], **_NULL_DEFAULT},
            {"name": "source", "type": source},
            {"name": "ts_ms", "type": "long", "default": 0, "doc": "processing time, ms since the epoch (UTC)"},
        ],
    }


class MappedChangeType(enum.Enum):
    """What a mapped change reports; UNKNOWN is what an older reader sees for a newer symbol."""

    UNKNOWN = "UNKNOWN"
    EMPLOYEE_MAPPED = "EMPLOYEE_MAPPED"  # the employee's mapped record is new or different
    PERSON_DELETED = "PERSON_DELETED"  # the employee is gone (esr.employees tombstone): soft delete


def mapped_change_event_schema() -> Schema:
    """An employee expressed in the trust's target fields (DESIGN §2, `esr.mapped-changes`), key
    "<vpd>:<person_id>": the whole mapped record (every standard field, every UDF of the template), not a
    diff, so a reader needs no earlier event; `changes` says what differs from the record emitted before.
    Values are canonical text (ISO dates, plain decimals); `udf_kinds` gives each UDF's kind."""
    change = {
        "type": "record",
        "name": "MappedFieldChange",
        "fields": [
            {"name": "field", "type": "string"},
            {"name": "old", "type": ["null", "string"], **_NULL_DEFAULT},
            {"name": "new", "type": ["null", "string"], **_NULL_DEFAULT},
        ],
    }
    problem = {
        "type": "record",
        "name": "MappingProblem",
        "fields": [{"name": "target", "type": "string"}, {"name": "message", "type": "string"}],
    }
    source = {
        "type": "record",
        "name": "MappedSource",
        "doc": "The esr.employees message (the employee's state) the record was mapped from.",
        "fields": [
            {"name": "topic", "type": ["null", "string"], **_NULL_DEFAULT},
            {"name": "partition", "type": ["null", "int"], **_NULL_DEFAULT},
            {"name": "offset", "type": ["null", "long"], **_NULL_DEFAULT},
        ],
    }
    return {
        "type": "record",
        "name": "MappedChangeEvent",
        "namespace": NAMESPACE,
        "doc": "An employee's record in the trust's mapping, as published to esr.mapped-changes.",
        "fields": [
            {"name": "event_id", "type": "string", "doc": "deterministic: the same record gives the same id"},
            {
                "name": "event_type",
                "type": _enum("MappedChangeType", [t.value for t in MappedChangeType], "UNKNOWN"),
                "default": "UNKNOWN",
            },
            {"name": "op", "type": _enum("ChangeOp", [o.value for o in ChangeOp], "u"), "default": "u"},
            {"name": "vpd", "type": "string"},
            {"name": "person_id", "type": "string"},
            {"name": "template_version", "type": "int", "doc": "0: the default template"},
            {"name": "standard", "type": {"type": "map", "values": ["null", "string"]}, "default": {}},
            {"name": "udf", "type": {"type": "map", "values": ["null", "string"]}, "default": {}},
            {"name": "udf_kinds", "type": {"type": "map", "values": "string"}, "default": {},
             "doc": "each UDF's kind (text, date, datetime, int, decimal): how to read its text"},
            {"name": "nhs", "type": {"type": "map", "values": ["null", "string"]}, "default": {},
             "doc": "the fields the trust's NHS options render: username, home_address, display_name"},
            {"name": "changes", "type": {"type": "array", "items": change}, "default": []},
            {"name": "problems", "type": {"type": "array", "items": problem}, "default": []},
            {"name": "source", "type": source},
            {"name": "ts_ms", "type": "long", "default": 0, "doc": "processing time, ms since the epoch (UTC)"},
        ],
    }


@dataclass(frozen=True, slots=True)
class Subject:
    name: str  # directory under schemas/
    topic: str
    compatibility: Compatibility
    generate: Callable[[], Schema]

    @property
    def registry_subject(self) -> str:
        """Confluent TopicNameStrategy."""
        return f"{self.topic}-value"

    @property
    def directory(self) -> Path:
        return SCHEMA_DIR / self.name


RECORD_EVENT = Subject("record-event", "esr.records", Compatibility.BACKWARD_TRANSITIVE, record_event_schema)
CONTROL_EVENT = Subject("control-event", "esr.control", Compatibility.FULL_TRANSITIVE, control_event_schema)
CHANGE_EVENT = Subject("change-event", "esr.changes", Compatibility.FULL_TRANSITIVE, change_event_schema)
MAPPED_CHANGE_EVENT = Subject(
    "mapped-change-event", "esr.mapped-changes", Compatibility.FULL_TRANSITIVE, mapped_change_event_schema
)
SUBJECTS: dict[str, Subject] = {
    s.name: s for s in (RECORD_EVENT, CONTROL_EVENT, CHANGE_EVENT, MAPPED_CHANGE_EVENT)
}

_VERSION_FILE = re.compile(r"^v([1-9][0-9]*)\.avsc$")


def subject(name: str) -> Subject:
    try:
        return SUBJECTS[name]
    except KeyError:
        raise KeyError(f"unknown schema subject {name!r} (known: {', '.join(SUBJECTS)})") from None


def generate(name: str) -> Schema:
    return subject(name).generate()


def version_paths(name: str) -> list[Path]:
    """`v1.avsc` .. `vN.avsc` of a subject, in order; a gap in the numbering is an error."""
    directory = subject(name).directory
    numbered: dict[int, Path] = {}
    for path in directory.glob("*.avsc"):
        match = _VERSION_FILE.match(path.name)
        if match is None:
            raise ValueError(f"{path}: schema files must be named v<N>.avsc")
        numbered[int(match[1])] = path
    if sorted(numbered) != list(range(1, len(numbered) + 1)):
        raise ValueError(f"{directory}: versions {sorted(numbered)} are not numbered 1..N")
    return [numbered[n] for n in sorted(numbered)]


def load_versions(name: str) -> list[Schema]:
    """Every committed version of a subject, oldest first (index i is version i + 1)."""
    schemas: list[Schema] = []
    for path in version_paths(name):
        with path.open(encoding="utf-8") as fh:
            schemas.append(json.load(fh))
    return schemas


def latest(name: str) -> Schema:
    versions = load_versions(name)
    if not versions:
        raise LookupError(f"no committed schema for {name!r} in {subject(name).directory}")
    return versions[-1]


def check_latest(name: str) -> str | None:
    """None when the generated schema is the latest committed version, else what to do about it."""
    paths = version_paths(name)
    if not paths:
        return f"{name}: no committed version; run `python -m esr.codec write`"
    if generate(name) != load_versions(name)[-1]:
        return (
            f"{name}: the layouts no longer generate {paths[-1].name}; "
            "run `python -m esr.codec write` to add the next version"
        )
    return None


def write_latest(name: str, *, replace: bool = False) -> Path | None:
    """Write the generated schema as v<N+1> (or over v<N> with `replace`); None when already current.

    Refuses (ValueError) a schema that breaks the subject's compatibility mode against earlier versions.
    """
    subj = subject(name)
    schema = subj.generate()
    paths = version_paths(name)
    versions = load_versions(name)
    if versions and versions[-1] == schema:
        return None
    if replace and paths:
        target, earlier = paths[-1], versions[:-1]
    else:
        target, earlier = subj.directory / f"v{len(paths) + 1}.avsc", versions
    problems = incompatibilities(schema, earlier, subj.compatibility)
    if problems:
        raise ValueError(f"{name}: not {subj.compatibility.name} compatible:\n  " + "\n  ".join(problems))
    subj.directory.mkdir(parents=True, exist_ok=True)
    target.write_text(dumps(schema), encoding="utf-8")
    return target


def dumps(value: Any, width: int = 110) -> str:
    """JSON with anything that fits on one line kept on one line (one field per line, readable diffs)."""
    return _dumps(value, 0, 0, width) + "\n"


def _dumps(value: Any, indent: int, lead: int, width: int) -> str:
    compact = json.dumps(value, ensure_ascii=False)
    if lead + len(compact) <= width or not isinstance(value, dict | list) or not value:
        return compact
    pad = " " * (indent + 2)
    if isinstance(value, dict):
        items = []
        for key, item in value.items():
            head = f"{pad}{json.dumps(key)}: "
            items.append(head + _dumps(item, indent + 2, len(head), width))
        return "{\n" + ",\n".join(items) + "\n" + " " * indent + "}"
    items = [pad + _dumps(item, indent + 2, len(pad), width) for item in value]
    return "[\n" + ",\n".join(items) + "\n" + " " * indent + "]"
