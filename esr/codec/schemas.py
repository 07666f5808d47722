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
SUBJECTS: dict[str, Subject] = {s.name: s for s in (RECORD_EVENT, CONTROL_EVENT)}

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
