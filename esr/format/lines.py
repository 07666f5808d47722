"""One data line of an ESR file <-> one typed record. Pure functions, no I/O.

Rules (format reference §1.7, §4.6, Q7, Q19):
- an add/update row needs at least its documented field count; extra trailing fields are kept aside;
- a delete row is its code plus the entity id (2 fields; extra trailing fields are kept aside);
- a row whose key (entity id, owning person id) is missing or unusable is quarantined;
- any other field that does not parse becomes null and is reported as a field issue; the row goes on;
- an unknown record code is not an error: the line is skipped and counted.
"""

from __future__ import annotations

import datetime as dt
import operator
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from esr.format.layouts import (
    BY_CODE,
    BY_DELETE_CODE,
    DELETE_FIELD_COUNT,
    DELIMITER,
    FieldType,
    Layout,
)
from esr.format.values import Value, format_value, parse_id, parse_text, parse_timestamp, parser_for


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


# -- the fast path -----------------------------------------------------------------------------------
#
# Nearly every line of a real file is clean: exact field count, every value within its length, every typed
# value well formed, keys numeric, mandatory fields present. For each layout a function is generated once
# that handles exactly that case with few per-field calls: text fields inline, dates, whole numbers and
# amounts from a cache of the precise converters' own results (they repeat a lot within a file),
# timestamps (nearly all distinct) by `datetime.fromisoformat` once their shape is checked. At the first
# sign of anything else it gives up (returns None or raises `_Slow`) and the line goes through
# `_parse_record`, the precise path, which alone produces issues and quarantines. So the fast path only
# ever returns what `_parse_record` would return for the same fields.


class _Slow(Exception):
    """A typed value that does not convert: the line needs the precise path."""


_CACHE_LIMIT = 1 << 16  # entries per kind of value; cleared when full
_CACHE_TEXT_LIMIT = 32  # longer texts are converted every time: the cache must stay small


def _cached(convert: Callable[[str], Value]) -> tuple[dict[str, Value], Callable[[str], Value]]:
    """(cache, miss): `miss(text)` converts, remembers and returns, or raises `_Slow` on a ValueError."""
    cache: dict[str, Value] = {}

    def miss(text: str) -> Value:
        try:
            value = convert(text)
        except ValueError:
            raise _Slow from None
        if len(text) <= _CACHE_TEXT_LIMIT:
            if len(cache) >= _CACHE_LIMIT:
                cache.clear()
            cache[text] = value
        return value

    return cache, miss


# Timestamps are nearly all distinct, so not cached: a text of exactly 8 ASCII digits, a space and 6 ASCII
# digits is what `parse_timestamp` reads field by field, and `datetime.fromisoformat` reads it (basic ISO
# format) to the same value, or raises ValueError where it does (the all-zero "no timestamp" included: the
# precise path makes it None).
_TIMESTAMP_SHAPE = re.compile(r"[0-9]{8} [0-9]{6}")


_CACHES: dict[tuple[FieldType, int, int], tuple[dict[str, Value], Callable[[str], Value]]] = {}


@dataclass(frozen=True, slots=True)
class CleanLineCode:
    """Python source lines reading the fields `f` of one clean line of a layout into local variables.

    `body` (indented 4 spaces, run with `env` as globals) leaves each data field's value, exactly as
    `parse_fields` would give it, in `variables[name]`, and returns None (or raises `_Slow`) as soon as the
    line is not clean: the field count (exactly `field_count`, or with empty trailing fields when
    `extra` is allowed, then in `extra`), a length limit, a key that is not numeric, a typed value that
    does not convert, an empty mandatory field. For a line it does not refuse, the precise path
    (`_parse_record`) reports no issue and gives the same values. Shared by the fast parser and by the
    codec's line-to-Avro shortcut, so both accept exactly the same lines.
    """

    body: tuple[str, ...]
    env: dict[str, Any]
    variables: dict[str, str]  # field name -> local variable


def clean_line_code(layout: Layout, *, extra: bool, text_fields: frozenset[str] = frozenset()) -> CleanLineCode:
    """See CleanLineCode. The typed fields named in `text_fields` are left as their text, unchecked (not even
    for being mandatory): the caller converts them, with their converter's rules (`parser_for`)."""
    code = layout.code
    expected = layout.field_count
    required = set(_REQUIRED_KEYS[code])
    mandatory = set(_OTHER_MANDATORY[code])
    # Index 0 is the record code, already matched: never length-checked (as in `_parse_record`).
    limits = (sys.maxsize, *(sys.maxsize if m is None else m for _, _, m in _CONVERTERS[code]))
    env: dict[str, Any] = {
        "_any": any, "_map": map, "_len": len, "_gt": operator.gt, "_LIMITS": limits,
        "_timestamp_shape": _TIMESTAMP_SHAPE.fullmatch, "_fromisoformat": dt.datetime.fromisoformat,
        "_Slow": _Slow,
    }
    if extra:
        body = [
            f"    if len(f) != {expected}:",
            f"        if len(f) < {expected} or any(f[{expected}:]):",
            "            return None",
            f"        extra = f[{expected}:]",
            "    else:",
            "        extra = []",
        ]
    else:
        body = [f"    if len(f) != {expected}:", "        return None"]
    body += [
        "    if _any(_map(_gt, _map(_len, f), _LIMITS)):",
        "        return None",
    ]
    variables: dict[str, str] = {}
    for index, ((name, convert, _max_length), spec) in enumerate(
        zip(_CONVERTERS[code], layout.data_fields, strict=True), 1
    ):
        var = variables[name] = f"v{index}"
        if name in text_fields and convert is not parse_text and convert is not parse_id:
            body.append(f"    {var} = f[{index}]")
            continue
        if convert is parse_text or convert is parse_id:
            if name in required:  # numeric (so not empty, not blank); no issue to report
                body.append(f"    {var} = f[{index}]")
                body.append(f"    if not ({var}.isdigit() and {var}.isascii()):")
                body.append("        return None")
                continue
            body.append(f"    {var} = f[{index}] or None")
        elif convert is parse_timestamp:
            body.append(f"    {var} = f[{index}]")
            body.append(f"    if {var}:")
            body.append(f"        if _timestamp_shape({var}) is None:  # not even the shape: the precise path says why")
            body.append("            return None")
            body.append("        try:")
            body.append(f"            {var} = _fromisoformat({var})")
            body.append("        except ValueError:")
            body.append("            raise _Slow from None")
            body.append("    else:")
            body.append(f"        {var} = None")
        else:
            # One cache per kind of value, shared by every field and layout (a date is a date anywhere).
            key = (spec.type, spec.precision, spec.scale)
            if key not in _CACHES:
                _CACHES[key] = _cached(convert)
            env[f"_cache{index}"], env[f"_miss{index}"] = _CACHES[key]
            body.append("    try:")
            body.append(f"        {var} = _cache{index}[f[{index}]]")
            body.append("    except KeyError:")
            body.append(f"        {var} = _miss{index}(f[{index}])")
        if name in mandatory:
            body.append(f"    if {var} is None:")
            body.append("        return None")
    return CleanLineCode(tuple(body), env, variables)


def _compile_fast(layout: Layout) -> Callable[[list[str]], Record | None]:
    clean = clean_line_code(layout, extra=True)
    items = ", ".join(f"{name!r}: {var}" for name, var in clean.variables.items())
    source = "\n".join([
        f"def fast_{layout.code}(f):",
        *clean.body,
        f"    return _Record(_LAYOUT, {{{items}}}, extra, [])",
    ]) + "\n"
    env = dict(clean.env, _Record=Record, _LAYOUT=layout)
    exec(compile(source, f"<fast parser {layout.code}>", "exec"), env)
    function: Callable[[list[str]], Record | None] = env[f"fast_{layout.code}"]
    return function


_FAST: dict[str, Callable[[list[str]], Record | None]] = {
    layout.code: _compile_fast(layout) for layout in BY_CODE.values()
}


def _numeric(text: str) -> bool:
    return text.isascii() and text.isdigit()  # str.isdigit alone accepts "²" and other scripts' digits


def parse_fields(fields: list[str]) -> ParsedLine:
    """Parse the fields of one data line (already split on `~`, line ending removed)."""
    code = fields[0]
    fast = _FAST.get(code)
    if fast is not None:
        try:
            record = fast(fields)
        except _Slow:
            record = None
        if record is not None:
            return record
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
    """The precise parse of an add/update row: every rule, every issue (the fast path's reference)."""
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
