"""Event builders: parsed ESR lines and file lifecycle facts -> event dicts ready for `Encoder.encode`.

Pure functions. Built for speed on the ingest path: the record's value dict becomes the payload as is
(no copy), and the payload union branch is named with fastavro's tuple notation `(fullname, values)`
so the encoder never has to guess it.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypedDict

from fastavro import parse_schema

from esr.codec.schemas import Action, ControlEventType, fullname
from esr.codec.serde import Encoder
from esr.codec.writer import _EPOCH_ORDINAL, TemplateMismatch, _Compiler, encode_long
from esr.format.header import ExtractType, RejectionCode
from esr.format.layouts import BY_CODE, LAYOUTS, Field, FieldType, Layout
from esr.format.lines import Delete, Record, clean_line_code
from esr.format.reader import FileScan
from esr.format.values import Value, parse_timestamp, parser_for

__all__ = [
    "Action",
    "CleanLine",
    "ControlEvent",
    "ControlEventType",
    "FieldIssueDict",
    "Provenance",
    "RecordEvent",
    "RecordEventWriter",
    "SourceDict",
    "control_event",
    "record_event",
]

log = logging.getLogger(__name__)

_PAYLOAD_TYPE: dict[str, str] = {layout.code: fullname(layout.avro_name) for layout in LAYOUTS}
#: the payload record types, by full name (what `Decoder(..., text_records=PAYLOAD_TYPES)` reads as text)
PAYLOAD_TYPES: frozenset[str] = frozenset(_PAYLOAD_TYPE.values())
_UPSERT = Action.UPSERT.value
_DELETE = Action.DELETE.value


@dataclass(frozen=True, slots=True)
class Provenance:
    """What every record event of one file says about where it came from."""

    vpd: str
    file_name: str
    file_sha256: str
    sequence: int
    extract_type: ExtractType
    extract_date: dt.date
    run_date: dt.datetime
    previous_run_date: dt.datetime | None

    @classmethod
    def from_scan(cls, scan: FileScan) -> Provenance:
        """From an `EsrFile.open()` that succeeded (file name and header parsed)."""
        if scan.file_name is None or scan.header is None:
            raise ValueError(f"{scan.path}: no provenance for a file whose name or header did not parse")
        return cls(
            vpd=scan.header.vpd,
            file_name=scan.file_name.name,
            file_sha256=scan.sha256,
            sequence=scan.file_name.sequence,
            extract_type=scan.file_name.extract_type,
            extract_date=scan.file_name.extract_date,
            run_date=scan.header.run_date,
            previous_run_date=scan.header.previous_run_date,
        )


class SourceDict(TypedDict):
    file_name: str
    file_sha256: str
    line_no: int
    sequence: int
    extract_type: str
    extract_date: dt.date
    run_date: dt.datetime
    previous_run_date: dt.datetime | None


class FieldIssueDict(TypedDict):
    field: str
    raw: str
    message: str


class RecordEvent(TypedDict):
    """A RecordEvent as built for encoding; decoded events have `payload` as a plain dict instead."""

    record_id: str
    vpd: str
    record_code: str
    entity_type: str
    action: str
    entity_id: str
    person_id: str | None
    payload: tuple[str, dict[str, Value]] | None
    extra_fields: list[str]
    issues: list[FieldIssueDict]
    source: SourceDict
    ingested_at: dt.datetime


class ControlEvent(TypedDict):
    event_type: str
    vpd: str
    file_name: str
    file_sha256: str
    sequence: int | None
    extract_type: str | None
    run_date: dt.datetime | None
    line_count: int
    record_count: int
    quarantined_count: int
    warning_count: int
    unknown_count: int
    counts_by_code: dict[str, int]
    rejection_code: str | None
    message: str | None
    ts: dt.datetime


def _require_aware(name: str, value: dt.datetime) -> None:
    if value.tzinfo is None:
        raise ValueError(f"{name} must be timezone-aware (timestamp-millis is UTC): {value!r}")


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


# Per record code: (payload union branch, entity type, person-scoped). Looked up by code: hashing a Layout
# (a frozen dataclass of every field) would cost more than the rest of the event.
_LAYOUT_FACTS: dict[str, tuple[str, str, bool]] = {
    layout.code: (_PAYLOAD_TYPE[layout.code], layout.entity.value, layout.person_scoped) for layout in LAYOUTS
}
# Per record code: (payload union branch, key field, owner field), for RecordEventWriter.
_RECORD_FACTS: dict[str, tuple[str, str, str | None]] = {
    layout.code: (_PAYLOAD_TYPE[layout.code], layout.key_field, layout.owner_field) for layout in LAYOUTS
}
_last_source: tuple[Provenance | None, tuple[Any, ...]] = (None, ())


def _source_facts(provenance: Provenance) -> tuple[Any, ...]:
    """The Source fields of `provenance` in schema order, line_no aside (remembered for the last one)."""
    global _last_source  # noqa: PLW0603 - a one-entry cache: a file's lines share one Provenance
    last, facts = _last_source
    if last is not provenance:
        facts = (
            provenance.file_name, provenance.file_sha256, provenance.sequence, provenance.extract_type.value,
            provenance.extract_date, provenance.run_date, provenance.previous_run_date,
        )
        _last_source = (provenance, facts)
    return facts


def record_event(
    line: Record | Delete,
    provenance: Provenance,
    line_no: int,
    person_id: str | None = None,
    *,
    ingested_at: dt.datetime | None = None,
) -> RecordEvent:
    """The RecordEvent of one parsed data line.

    `person_id` is for deletes of person-scoped records, whose row carries only the entity id: the caller
    supplies the owner (None when it is not known). An add/update row carries its owner itself (passing
    the same value is allowed). `record_id` is `<file_sha256>:<line_no>`, identical on every replay of the
    file. `ingested_at` defaults to now; pass it (once per batch, say) to keep the function pure.
    """
    if ingested_at is None:
        ingested_at = _utc_now()
    elif ingested_at.tzinfo is None:
        _require_aware("ingested_at", ingested_at)
    layout = line.layout
    facts = _LAYOUT_FACTS.get(layout.code)
    if facts is None:  # not one of LAYOUTS
        facts = (_PAYLOAD_TYPE.get(layout.code, ""), layout.entity.value, layout.person_scoped)
    payload_type, entity_type, person_scoped = facts
    if isinstance(line, Record):
        own = line.person_id
        if person_id is not None and person_id != own:
            raise ValueError(f"{layout.code} line {line_no}: person_id {person_id!r} but the row says {own!r}")
        code, action, entity_id = layout.code, _UPSERT, line.entity_id
        payload: tuple[str, dict[str, Value]] | None = (payload_type or _PAYLOAD_TYPE[layout.code], line.values)
        person_id = own
    else:
        if person_id is not None and not person_scoped:
            raise ValueError(f"{layout.delete_code} line {line_no}: a {entity_type} has no person_id")
        code, action, entity_id, payload = layout.delete_code, _DELETE, line.entity_id, None
    file_name, file_sha256, sequence, extract_type, extract_date, run_date, previous_run_date = (
        _source_facts(provenance)
    )
    issues = line.issues
    return {
        "record_id": f"{file_sha256}:{line_no}",
        "vpd": provenance.vpd,
        "record_code": code,
        "entity_type": entity_type,
        "action": action,
        "entity_id": entity_id,
        "person_id": person_id,
        "payload": payload,
        "extra_fields": line.extra_fields,
        "issues": [{"field": i.field, "raw": i.raw, "message": i.message} for i in issues] if issues else [],
        "source": {
            "file_name": file_name,
            "file_sha256": file_sha256,
            "line_no": line_no,
            "sequence": sequence,
            "extract_type": extract_type,
            "extract_date": extract_date,
            "run_date": run_date,
            "previous_run_date": previous_run_date,
        },
        "ingested_at": ingested_at,
    }


# How `record_event` fills a RecordEvent: these fields vary from line to line...
_LINE_FIELDS = ("record_id", "entity_id", "person_id", "payload", "extra_fields", "issues", "source.line_no")
# ...and these depend only on the record code (which fixes the action), the Provenance and `ingested_at`.
_CODE_FIELDS = (
    "vpd", "record_code", "entity_type", "action", "source.file_name", "source.file_sha256", "source.sequence",
    "source.extract_type", "source.extract_date", "source.run_date", "source.previous_run_date", "ingested_at",
)


# A clean add/update line straight from its fields: (record code, entity id, person id or None, the encoded
# payload, union branch index included). See RecordEventWriter.clean_line.
CleanLine = tuple[str, str, str | None, bytes]


_LOCAL_TS = {"type": "long", "logicalType": "local-timestamp-millis"}
_CACHED_TYPES = frozenset({FieldType.DATE, FieldType.INT, FieldType.DECIMAL})
# Timestamps are nearly all distinct, their date and time of day are not: the milliseconds of the date and
# of the time of day of every timestamp `parse_timestamp` accepted, by text ("YYYYMMDD", " HHMMSS"). A text
# whose two parts are both known is a valid timestamp of exactly their sum.
_TS_DAY: dict[str, int] = {}
_TS_TIME: dict[str, int] = {}


def _timestamp_millis(text: str) -> int | None:
    """Milliseconds of a timestamp text by `parse_timestamp` (None: no timestamp); raises if it refuses it."""
    value = parse_timestamp(text)
    if value is None:
        return None
    if len(_TS_DAY) >= 1 << 16:
        _TS_DAY.clear()
    day = _TS_DAY[text[:8]] = (value.toordinal() - _EPOCH_ORDINAL) * 86_400_000
    time = _TS_TIME[text[8:]] = (value.hour * 3600 + value.minute * 60 + value.second) * 1000  # <= 86,400
    return day + time


def _emit_text_timestamp(var: str, nullable: bool, mandatory: bool, lines: list[str]) -> None:
    """Lines writing the local-timestamp-millis of timestamp text `var` (`["null", ts]` when `nullable`):
    what parsing it and writing the datetime gives; the line is not clean if `parse_timestamp` refuses it."""
    prefix = b"\x02" if nullable else b""
    null = "return None" if mandatory or not nullable else "a(b'\\x00')"
    lines += [
        f"      if {var}:",
        "          try:",
        f"              {var} = _TS_DAY[{var}[:8]] + _TS_TIME[{var}[8:]]",
        "          except KeyError:",
        f"              {var} = _timestamp_millis({var})",
        f"      if {var} is None or {var} == '':",
        f"          {null}",
        f"      elif 0x8000000 <= {var} < 0x20000000000:  # zigzag of 28 to 41 bits: the varint from the tables",
        f"          {var} <<= 1",
        f"          a({prefix!r} + _PAIR[{var} & 0x3FFF] + _PAIR[{var} >> 14 & 0x3FFF] + _VARINT[{var} >> 28])",
        "      else:",
        f"          a({prefix!r} + encode_long({var}))",
    ]


# Dates, whole numbers and amounts repeat a lot: their encodings (union index included) by text, per kind of
# value and schema type. `miss` converts a text as the parser does and encodes the value as the writer does.
_ENCODED: dict[tuple[Any, ...], tuple[dict[str, bytes], Callable[[str], bytes]]] = {}


def _encoded_cache(
    named: dict[str, Any], spec: Field, schema: Any, mandatory: bool
) -> tuple[dict[str, bytes], Callable[[str], bytes]]:
    key = (spec.type, spec.precision, spec.scale, json.dumps(schema, sort_keys=True), mandatory)
    found = _ENCODED.get(key)
    if found is None:
        compiler = _Compiler(named, prefix="E")
        lines = ["def encode(v):", "    out = []", "    a = out.append"]
        compiler.emit(schema, "v", lines, "    ", spec.name)
        lines.append("    return b''.join(out)")
        env = dict(compiler.env)
        exec(compile("\n\n".join([*compiler.sources, "\n".join(lines)]) + "\n", f"<{spec.type.value}>", "exec"), env)
        encode: Callable[[Value], bytes] = env["encode"]
        convert = parser_for(spec)
        cache: dict[str, bytes] = {}

        def miss(text: str) -> bytes:
            value = convert(text)  # a ValueError: not clean
            if value is None and mandatory:
                raise ValueError(f"{spec.name} is mandatory")
            encoded = encode(value)
            if len(text) <= 32:
                if len(cache) >= 1 << 16:
                    cache.clear()
                cache[text] = encoded
            return encoded

        found = _ENCODED[key] = (cache, miss)
    return found


def _compile_clean_line(named: dict[str, Any], payload: list[Any], layout: Layout) -> Callable[..., Any] | None:
    """`f(fields) -> CleanLine | None` for `layout`: the fast parser's checks and values (`clean_line_code`)
    written straight to the payload branch of `payload` (the union, parsed) by the writer's own code, without
    the values dict; None for any line that is not clean, or that does not fit the schema. None (no function)
    when the branch has a field the layout has not."""
    name = _PAYLOAD_TYPE[layout.code]
    branches = [named.get(b, b) if isinstance(b, str) else b for b in payload]
    index = next((i for i, b in enumerate(branches) if isinstance(b, dict) and b.get("name") == name), None)
    if index is None:
        return None
    branch = branches[index]
    specs = {f.name: f for f in layout.data_fields}
    if any(field["name"] not in specs for field in branch["fields"]):
        return None
    # Timestamps of the usual schema shapes, and the cached kinds of value, go from their text straight to
    # their encoding; text fields and keys as values, written by the writer's code.
    text_timestamps = {
        field["name"]: field["type"] == ["null", _LOCAL_TS] for field in branch["fields"]
        if specs[field["name"]].type is FieldType.TIMESTAMP and field["type"] in (_LOCAL_TS, ["null", _LOCAL_TS])
    }
    cached = {
        field["name"]: field["type"] for field in branch["fields"] if specs[field["name"]].type in _CACHED_TYPES
    }
    clean = clean_line_code(layout, extra=False, text_fields=frozenset(text_timestamps) | frozenset(cached))
    compiler = _Compiler(named, fast=True, prefix="S")
    lines = [f"def clean_{layout.code}(f):", "  try:", *(f"  {line}" for line in clean.body)]
    lines += ["      out = [_INDEX]", "      a = out.append"]
    env: dict[str, Any] = {}
    for number, field in enumerate(branch["fields"]):
        var, spec = clean.variables[field["name"]], specs[field["name"]]
        if field["name"] in text_timestamps:
            _emit_text_timestamp(var, text_timestamps[field["name"]], spec.mandatory, lines)
        elif field["name"] in cached:
            env[f"_E{number}"], env[f"_M{number}"] = _encoded_cache(named, spec, cached[field["name"]], spec.mandatory)
            lines += ["      try:", f"          a(_E{number}[{var}])", "      except KeyError:",
                      f"          a(_M{number}({var}))"]
        else:
            compiler.emit(field["type"], var, lines, "      ", f"{name}.{field['name']}")
    owner = "None" if layout.owner_field is None else clean.variables[layout.owner_field]
    lines += [
        f"      return ({layout.code!r}, {clean.variables[layout.key_field]}, {owner}, b''.join(out))",
        "  except Exception:  # not clean (or not fitting): the ordinary path says how",
        "      return None",
    ]
    env.update(
        clean.env, **compiler.env, _INDEX=encode_long(index), _TS_DAY=_TS_DAY, _TS_TIME=_TS_TIME,
        _timestamp_millis=_timestamp_millis,
    )
    source = "\n\n".join([*compiler.sources, "\n".join(lines)]) + "\n"
    exec(compile(source, f"<clean line {layout.code} to {name}>", "exec"), env)
    function: Callable[..., Any] = env[f"clean_{layout.code}"]
    return function


_CLEAN_LINES: dict[bytes, dict[str, Callable[[list[str]], CleanLine | None]]] = {}  # by schema fingerprint


def _clean_lines(encoder: Encoder) -> dict[str, Callable[[list[str]], CleanLine | None]]:
    found = _CLEAN_LINES.get(encoder.fingerprint)
    if found is None:
        found = {}
        named: dict[str, Any] = {}
        parsed = parse_schema(encoder.schema, named_schemas=named)
        fields = parsed.get("fields", []) if isinstance(parsed, dict) else []
        payload = next((f["type"] for f in fields if f["name"] == "payload"), None)
        if isinstance(payload, list):
            for layout in LAYOUTS:
                function = _compile_clean_line(named, payload, layout)
                if function is not None:
                    found[layout.code] = function
        _CLEAN_LINES[encoder.fingerprint] = found
    return found


class RecordEventWriter:
    """`encoder.encode(record_event(line, provenance, line_no, person_id, ingested_at=ingested_at))` for the
    lines of one file, byte for byte, without building the event.

    The fields that depend only on the record code are encoded once per code (from the first line's real
    event) and spliced around the fields of each line (`Template`). Whatever is unusual (a schema with
    other fields, a person_id `record_event` refuses, a value that does not fit, a Record or Delete
    subclass) goes through `encoder.encode(record_event(...))` itself, errors included.

    Faster still, for the clean add/update lines that make up nearly all of a file: `clean_line(fields)`
    reads the fields of a line straight into its encoded payload (no Record, no values dict) and
    `encode_clean` writes the event around it: the same bytes as parsing the line (`parse_fields`, which
    gives a Record without issues or extra fields for exactly these lines) and encoding that Record. It
    returns None for any other line, which then takes the ordinary path. `clean_line` is None when the
    schema does not allow it.
    """

    def __init__(self, encoder: Encoder, provenance: Provenance, ingested_at: dt.datetime) -> None:
        self.encoder = encoder
        self.provenance = provenance
        self.ingested_at = ingested_at
        self._record_id = f"{provenance.file_sha256}:"
        self._runs: dict[str, tuple[bytes, ...]] = {}  # record code -> the encoded code fields
        self._write: Callable[..., bytes] | None = None
        self._write_clean: Callable[..., bytes] | None = None
        self.clean_line: Callable[[list[str]], CleanLine | None] | None = None
        if ingested_at.tzinfo is not None:  # else record_event raises, line after line
            try:
                self._write = encoder.template(_LINE_FIELDS, _CODE_FIELDS).write
                self._write_clean = encoder.template(_LINE_FIELDS, _CODE_FIELDS, raw=("payload",)).write
            except TemplateMismatch:
                log.debug("%s: not the fields RecordEventWriter splices; every event is built", encoder.subject)
            else:
                clean_lines = _clean_lines(encoder)
                if clean_lines:
                    get = clean_lines.get

                    def clean_line(fields: list[str]) -> CleanLine | None:
                        function = get(fields[0])
                        return None if function is None else function(fields)

                    self.clean_line = clean_line

    def _code_runs(self, code: str, line: Record | Delete, line_no: int, person_id: str | None) -> tuple[bytes, ...]:
        event = record_event(line, self.provenance, line_no, person_id, ingested_at=self.ingested_at)
        runs = self._runs[code] = self.encoder.template(_LINE_FIELDS, _CODE_FIELDS).constants(event)
        return runs

    def encode_clean(self, clean: CleanLine, line_no: int) -> bytes:
        """The event of a line `clean_line` took (its person_id: the row's own)."""
        code, entity_id, person_id, payload = clean
        runs = self._runs.get(code)
        if runs is None:  # the code's constant fields, from an event of that code (any line would do)
            layout = BY_CODE[code]
            values: dict[str, Value] = {layout.key_field: entity_id}
            if layout.owner_field is not None:
                values[layout.owner_field] = person_id
            runs = self._code_runs(code, Record(layout, values), line_no, person_id)
        assert self._write_clean is not None
        return self._write_clean(runs, f"{self._record_id}{line_no}", entity_id, person_id, payload, [], [], line_no)

    def encode(self, line: Record | Delete, line_no: int, person_id: str | None = None) -> bytes:
        write = self._write
        if write is not None:
            try:
                issues = line.issues
                issue_dicts = [{"field": i.field, "raw": i.raw, "message": i.message} for i in issues] if issues else []
                if type(line) is Record:
                    code = line.layout.code
                    payload_type, key_field, owner_field = _RECORD_FACTS[code]
                    values = line.values
                    own = None if owner_field is None else values[owner_field]  # Record.person_id, unchecked,
                    if (owner_field is None or isinstance(own, str)) and (person_id is None or person_id == own):
                        runs = self._runs.get(code) or self._code_runs(code, line, line_no, line.person_id)
                        return write(
                            runs, f"{self._record_id}{line_no}", values[key_field], own, (payload_type, values),
                            line.extra_fields, issue_dicts, line_no,
                        )
                elif type(line) is Delete:
                    layout = line.layout
                    if person_id is None or layout.person_scoped:
                        code = layout.delete_code
                        runs = self._runs.get(code) or self._code_runs(code, line, line_no, person_id)
                        return write(
                            runs, f"{self._record_id}{line_no}", line.entity_id, person_id, None,
                            line.extra_fields, issue_dicts, line_no,
                        )
            except Exception:  # the reference path below raises what it raises
                pass
        event = record_event(line, self.provenance, line_no, person_id, ingested_at=self.ingested_at)
        return self.encoder.encode(event)


def control_event(
    event_type: ControlEventType | str,
    *,
    vpd: str,
    file_name: str,
    file_sha256: str,
    ts: dt.datetime | None = None,
    sequence: int | None = None,
    extract_type: ExtractType | str | None = None,
    run_date: dt.datetime | None = None,
    line_count: int = 0,
    record_count: int = 0,
    quarantined_count: int = 0,
    warning_count: int = 0,
    unknown_count: int = 0,
    counts_by_code: Mapping[str, int] | None = None,
    rejection_code: RejectionCode | str | None = None,
    message: str | None = None,
) -> ControlEvent:
    """A file lifecycle event. Enums may be given by value ("FILE_STARTED", "F"); `rejection_code` is
    carried by name (e.g. "RECORD_COUNT"); `ts` defaults to now."""
    if ts is None:
        ts = _utc_now()
    else:
        _require_aware("ts", ts)
    return {
        "event_type": ControlEventType(event_type).value,
        "vpd": vpd,
        "file_name": file_name,
        "file_sha256": file_sha256,
        "sequence": sequence,
        "extract_type": None if extract_type is None else ExtractType(extract_type).value,
        "run_date": run_date,
        "line_count": line_count,
        "record_count": record_count,
        "quarantined_count": quarantined_count,
        "warning_count": warning_count,
        "unknown_count": unknown_count,
        "counts_by_code": dict(counts_by_code or {}),
        "rejection_code": rejection_code.name if isinstance(rejection_code, RejectionCode) else rejection_code,
        "message": message,
        "ts": ts,
    }
