"""Applying a mapping template to an employee view. Pure.

`apply_template` validates the template (raising `ValidationError` for an invalid one; compiled templates
are cached, so this costs once per template), then evaluates every rule:

1. each source is read from its scope's row in the view (a scope with no row, e.g. no primary assignment
   or an unknown line manager, reads as None) and coerced to its catalogue kind; a value that cannot be is
   a problem and reads as None;
2. several sources are joined by the leading ``concat``; the other transforms run in order;
3. the result is stored in the target (an int into a decimal field becomes a Decimal).

The result has every standard field (None when the template does not map it, so a row written from it
replaces the whole employee record) and every UDF the template declares. Problems never stop the mapping:
they are reported per target for the import log. A rule reading the line manager when the primary
assignment names a supervisor the view could not resolve reports that too.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from esr.mapping.catalogue import STANDARD_FIELDS, Kind, MappedValue, Scope, SourceField, find_source, is_udf_target
from esr.mapping.catalogue import udf_name as _udf_name
from esr.mapping.coerce import COERCERS
from esr.mapping.template import MappingTemplate, validate_template
from esr.mapping.transforms import Concat, Transform, to_text
from esr.mapping.view import EmployeeView, Row


@dataclass(frozen=True, slots=True)
class MappingProblem:
    target: str
    message: str

    def __str__(self) -> str:
        return f"{self.target}: {self.message}"


@dataclass(slots=True)
class MappedEmployee:
    standard: dict[str, MappedValue]
    udf: dict[str, MappedValue]
    problems: list[MappingProblem] = field(default_factory=list)

    def to_json_dict(self) -> dict[str, Any]:
        """JSON-ready: dates and date-times in ISO 8601, decimals as text, ints as numbers."""
        return {
            "standard": {k: json_value(v) for k, v in self.standard.items()},
            "udf": {k: json_value(v) for k, v in self.udf.items()},
            "problems": [{"target": p.target, "message": p.message} for p in self.problems],
        }


def json_value(value: MappedValue) -> str | int | None:
    if value is None or isinstance(value, int | str):
        return value
    return to_text(value)


@dataclass(frozen=True, slots=True)
class _Read:
    """One source of a rule, resolved once: the view row it reads (index into `_rows`), the field, and the
    coercion to its kind (never called with None)."""

    row: int
    field: str
    coerce: Callable[[object], MappedValue]
    key: str
    line_manager: bool


@dataclass(frozen=True, slots=True)
class _Rule:
    target: str
    udf: str | None  # the UDF name for a UDF target
    reads: tuple[_Read, ...]
    concat: Concat | None
    steps: tuple[Transform, ...]
    decimal: bool  # the target is a decimal: an int result becomes a Decimal


@dataclass(frozen=True, slots=True)
class CompiledTemplate:
    """A validated template ready to apply: its rules resolved, its UDF names in order."""

    rules: tuple[_Rule, ...]
    udfs: tuple[str, ...]


#: the view's rows in the order `_rows` gives them
_SCOPE_ROW = {scope: index for index, scope in enumerate((
    Scope.PERSON, Scope.PRIMARY_ASSIGNMENT, Scope.HOME_ADDRESS, Scope.LINE_MANAGER, Scope.WORK_LOCATION,
    Scope.ORGANISATION, Scope.POSITION,
))}


def _read(source: SourceField) -> _Read:
    return _Read(_SCOPE_ROW[source.scope], source.field, COERCERS[source.kind], source.key,
                 source.scope is Scope.LINE_MANAGER)


def _compile_uncached(template: MappingTemplate) -> CompiledTemplate:
    validate_template(template)
    compiled = []
    for rule in template.rules:
        sources = tuple(s for s in (find_source(key) for key in rule.sources) if s is not None)
        concat = rule.transforms[0] if rule.transforms and isinstance(rule.transforms[0], Concat) else None
        steps = rule.transforms[1:] if concat is not None else rule.transforms
        kind = template.target_kind(rule.target)
        assert kind is not None
        udf = _udf_name(rule.target) if is_udf_target(rule.target) else None
        compiled.append(_Rule(rule.target, udf, tuple(map(_read, sources)), concat, steps, kind is Kind.DECIMAL))
    return CompiledTemplate(tuple(compiled), tuple(definition.name for definition in template.udfs))


_compile_cached = functools.lru_cache(maxsize=256)(_compile_uncached)
#: the last templates compiled, by identity: hashing a template (every rule, every transform) each time an
#: employee is mapped would cost more than the mapping; each entry keeps its template alive, so its id
#: cannot be reused while it is here
_RECENT: dict[int, tuple[MappingTemplate, CompiledTemplate]] = {}
_RECENT_SIZE = 64


def compile_template(template: MappingTemplate) -> CompiledTemplate:
    found = _RECENT.get(id(template))
    if found is not None and found[0] is template:
        return found[1]
    try:
        hash(template)
    except TypeError:  # a transform built with an unhashable setting: still valid, just not cached
        return _compile_uncached(template)
    compiled = _compile_cached(template)
    if len(_RECENT) >= _RECENT_SIZE:
        _RECENT.clear()
    _RECENT[id(template)] = (template, compiled)
    return compiled


def _rows(view: EmployeeView) -> tuple[Row | None, ...]:
    """The row of each scope, in `_SCOPE_ROW` order."""
    return (view.person, view.primary_assignment, view.home_address, view.line_manager, view.work_location,
            view.organisation, view.position)


def _unresolved_manager(view: EmployeeView) -> str | None:
    if view.line_manager is not None or view.primary_assignment is None:
        return None
    supervisor = view.primary_assignment.get("supervisor_person_id")
    text = "" if supervisor is None else str(supervisor).strip()
    return text or None


def apply_template(template: MappingTemplate, view: EmployeeView) -> MappedEmployee:
    compiled = compile_template(template)
    rows = _rows(view)
    unresolved_manager = _unresolved_manager(view)
    standard: dict[str, MappedValue] = dict.fromkeys(STANDARD_FIELDS)
    udf: dict[str, MappedValue] = dict.fromkeys(compiled.udfs)
    problems: list[MappingProblem] = []
    target = ""

    def note(message: str) -> None:  # the problems of the rule being applied (`target`)
        problems.append(MappingProblem(target, message))

    def read_value(read: _Read) -> MappedValue:
        if read.line_manager and unresolved_manager is not None:
            note(f"the line manager (person id {unresolved_manager}) is not known")
        row = rows[read.row]
        raw = None if row is None else row.get(read.field)
        if raw is None:
            return None
        try:
            return read.coerce(raw)
        except ValueError as error:
            note(f"{read.key}: {error}")
            return None

    for rule in compiled.rules:
        target = rule.target
        reads = rule.reads
        value: MappedValue
        if rule.concat is not None:
            value = rule.concat.join([read_value(read) for read in reads])
        elif len(reads) == 1:  # the usual rule: one source
            value = read_value(reads[0])
        else:
            values = [read_value(read) for read in reads]
            value = values[0] if values else None
        for transform in rule.steps:
            value = transform.apply(value, note)
        if rule.decimal and isinstance(value, int):
            value = Decimal(value)
        if isinstance(value, str) and not value:
            value = None
        if rule.udf is not None:
            udf[rule.udf] = value
        else:
            standard[target] = value
    # One problem per target and message, in rule order (several line-manager sources say it once).
    unique = list(dict.fromkeys(problems))
    return MappedEmployee(standard, udf, unique)

