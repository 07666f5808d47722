"""One data line of an ESR file <-> one typed record. Pure functions, no I/O.

Rules (format reference §1.7, §4.6, Q7, Q19):
- an add/update row needs at least its documented field count; extra trailing fields are kept aside;
- a delete row is its code plus the entity id (2 fields; extra trailing fields are kept aside);
- a row whose key (entity id, owning person id) is missing or unusable is quarantined;
- any other field that does not parse becomes null and is reported as a field issue; the row goes on;
- an unknown record code is not an error: the line is skipped and counted.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from esr.format.layouts import (
    BY_CODE,
    BY_DELETE_CODE,
    DELETE_FIELD_COUNT,
    DELIMITER,
    FieldType,
    Layout,
)
from esr.format.values import Value, format_value, parser_for


@dataclass(frozen=True, slots=True)
class FieldIssue:
    field: str
    raw: str
    message: str

    def __str__(self) -> str:
        return f"field {self.field}: {self.message}"


@dataclass(slots=True)
class Record:
    """An add/update row ("A" record) with typed values by field name (record_code excluded)."""

    layout: Layout
    values: dict[str, Value]
    extra_fields: list[str] = field(default_factory=list)
    issues: list[FieldIssue] = field(default_factory=list)

    @property
    def entity_id(self) -> str:
        value = self.values[self.layout.key_field]
        assert isinstance(value, str)
        return value

    @property
    def person_id(self) -> str | None:
        if self.layout.owner_field is None:
            return None
        value = self.values[self.layout.owner_field]
        assert isinstance(value, str)
        return value


@dataclass(slots=True)
class Delete:
    """A delete row ("D" record): the entity id only."""

    layout: Layout
    entity_id: str
    extra_fields: list[str] = field(default_factory=list)
    issues: list[FieldIssue] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Unknown:
    """A record code this interface does not define (e.g. a GDW-only code): skipped and counted."""

    code: str


@dataclass(frozen=True, slots=True)
class Quarantined:
    """A line that cannot be published; kept with its reason in the import log."""

    code: str
    reason: str
    field: str | None = None


ParsedLine = Record | Delete | Unknown | Quarantined

_Converter = tuple[str, Callable[[str], Value], int | None]
_CONVERTERS: dict[str, tuple[_Converter, ...]] = {
    layout.code: tuple((f.name, parser_for(f), f.max_length) for f in layout.data_fields)
    for layout in BY_CODE.values()
}
# Fields whose absence makes a row unroutable: the entity key and the owning person.
_REQUIRED_KEYS: dict[str, tuple[str, ...]] = {
    layout.code: tuple(
        f.name
        for f in layout.data_fields
        if f.type is FieldType.ID
        and f.mandatory
        and f.name in {layout.key_field, layout.owner_field, "assignment_id"}
    )
    for layout in BY_CODE.values()
}
# Other fields the reference marks mandatory: their absence is reported, the row still goes on.
_OTHER_MANDATORY: dict[str, tuple[str, ...]] = {
    layout.code: tuple(
        f.name for f in layout.data_fields if f.mandatory and f.name not in _REQUIRED_KEYS[layout.code]
    )
    for layout in BY_CODE.values()
}


def _numeric(text: str) -> bool:
    return text.isascii() and text.isdigit()  # str.isdigit alone accepts "²" and other scripts' digits


def parse_fields(fields: list[str]) -> ParsedLine:
    """Parse the fields of one data line (already split on `~`, line ending removed)."""
    code = fields[0]
    layout = BY_CODE.get(code)
    if layout is not None:
        return _parse_record(layout, fields)
    layout = BY_DELETE_CODE.get(code)
    if layout is not None:
        return _parse_delete(layout, fields)
    if len(code) == 3 and code.isalnum() and code.isupper():
        return Unknown(code)
    return Quarantined(code[:3], f"record code {code[:20]!r} is not a record code")


def _parse_record(layout: Layout, fields: list[str]) -> ParsedLine:
    expected = layout.field_count
    if len(fields) < expected:
        return Quarantined(
            layout.code,
            f"{layout.code} needs {expected} fields, the line has {len(fields)}",
        )
    values: dict[str, Value] = {}
    issues: list[FieldIssue] = []
    for (name, convert, max_length), raw in zip(_CONVERTERS[layout.code], fields[1:expected], strict=True):
        try:
            values[name] = convert(raw)
        except ValueError as exc:
            values[name] = None
            issues.append(FieldIssue(name, raw, str(exc)))
            continue
        if max_length is not None and len(raw) > max_length:
            issues.append(FieldIssue(name, raw, f"longer than {max_length} characters (kept whole)"))
    for name in _REQUIRED_KEYS[layout.code]:
        value = values[name]
        if value is None or (isinstance(value, str) and not value.strip()):
            return Quarantined(layout.code, f"{layout.code} has no {name}", name)
        assert isinstance(value, str)
        if not _numeric(value):
            issues.append(FieldIssue(name, value, "ESR id is not numeric (kept as text)"))
    for name in _OTHER_MANDATORY[layout.code]:
        if values[name] is None and not any(issue.field == name for issue in issues):
            issues.append(FieldIssue(name, "", "mandatory field is empty"))
    extra = fields[expected:]
    if any(extra):
        issues.append(FieldIssue("(extra)", DELIMITER.join(extra), f"{len(extra)} extra trailing field(s)"))
    return Record(layout, values, extra, issues)


def _parse_delete(layout: Layout, fields: list[str]) -> ParsedLine:
    if len(fields) < DELETE_FIELD_COUNT or not fields[1].strip():
        return Quarantined(layout.delete_code, f"{layout.delete_code} has no {layout.key_field}", layout.key_field)
    entity_id = fields[1]
    issues = []
    if not _numeric(entity_id):
        issues.append(FieldIssue(layout.key_field, entity_id, "ESR id is not numeric (kept as text)"))
    extra = fields[DELETE_FIELD_COUNT:]
    if any(extra):
        issues.append(FieldIssue("(extra)", DELIMITER.join(extra), f"{len(extra)} extra trailing field(s)"))
    return Delete(layout, entity_id, extra, issues)


def format_record(layout: Layout, values: dict[str, Value]) -> str:
    """Write one add/update row as ESR does (no line ending). Inverse of `parse_fields`."""
    parts = [layout.code]
    for f in layout.data_fields:
        text = format_value(values.get(f.name))
        if DELIMITER in text or "\n" in text or "\r" in text:
            raise ValueError(f"{layout.code}.{f.name}: a value cannot contain '~' or a line break")
        parts.append(text)
    return DELIMITER.join(parts)


def format_delete(layout: Layout, entity_id: str) -> str:
    return f"{layout.delete_code}{DELIMITER}{entity_id}"
