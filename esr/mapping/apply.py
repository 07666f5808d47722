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
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from esr.mapping.catalogue import STANDARD_FIELDS, Kind, MappedValue, Scope, SourceField, find_source, is_udf_target
from esr.mapping.catalogue import udf_name as _udf_name
from esr.mapping.coerce import coerce
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
class _Rule:
    target: str
    udf: str | None  # the UDF name for a UDF target
    sources: tuple[SourceField, ...]
    concat: Concat | None
    steps: tuple[Transform, ...]
    target_kind: Kind


def _compile_uncached(template: MappingTemplate) -> tuple[_Rule, ...]:
    validate_template(template)
    compiled = []
    for rule in template.rules:
        sources = tuple(s for s in (find_source(key) for key in rule.sources) if s is not None)
        concat = rule.transforms[0] if rule.transforms and isinstance(rule.transforms[0], Concat) else None
        steps = rule.transforms[1:] if concat is not None else rule.transforms
        kind = template.target_kind(rule.target)
        assert kind is not None
        udf = _udf_name(rule.target) if is_udf_target(rule.target) else None
        compiled.append(_Rule(rule.target, udf, sources, concat, steps, kind))
    return tuple(compiled)


_compile_cached = functools.lru_cache(maxsize=256)(_compile_uncached)


def compile_template(template: MappingTemplate) -> tuple[_Rule, ...]:
    try:
        hash(template)
    except TypeError:  # a transform built with an unhashable setting: still valid, just not cached
        return _compile_uncached(template)
    return _compile_cached(template)


def _rows(view: EmployeeView) -> dict[Scope, Row | None]:
    return {
        Scope.PERSON: view.person,
        Scope.PRIMARY_ASSIGNMENT: view.primary_assignment,
        Scope.HOME_ADDRESS: view.home_address,
        Scope.LINE_MANAGER: view.line_manager,
        Scope.WORK_LOCATION: view.work_location,
        Scope.ORGANISATION: view.organisation,
        Scope.POSITION: view.position,
    }


def _unresolved_manager(view: EmployeeView) -> str | None:
    if view.line_manager is not None or view.primary_assignment is None:
        return None
    supervisor = view.primary_assignment.get("supervisor_person_id")
    text = "" if supervisor is None else str(supervisor).strip()
    return text or None


def apply_template(template: MappingTemplate, view: EmployeeView) -> MappedEmployee:
    rules = compile_template(template)
    rows = _rows(view)
    unresolved_manager = _unresolved_manager(view)
    standard: dict[str, MappedValue] = dict.fromkeys(STANDARD_FIELDS)
    udf: dict[str, MappedValue] = {definition.name: None for definition in template.udfs}
    problems: list[MappingProblem] = []

    for rule in rules:
        def note(message: str, target: str = rule.target) -> None:
            problems.append(MappingProblem(target, message))

        values: list[MappedValue] = []
        for source in rule.sources:
            row = rows[source.scope]
            if source.scope is Scope.LINE_MANAGER and unresolved_manager is not None:
                note(f"the line manager (person id {unresolved_manager}) is not known")
            raw = None if row is None else row.get(source.field)
            try:
                values.append(coerce(raw, source.kind))
            except ValueError as error:
                note(f"{source.key}: {error}")
                values.append(None)
        value: MappedValue = values[0] if values else None
        if rule.concat is not None:
            value = rule.concat.join(values)
        for transform in rule.steps:
            value = transform.apply(value, note)
        if rule.target_kind is Kind.DECIMAL and isinstance(value, int):
            value = Decimal(value)
        if isinstance(value, str) and not value:
            value = None
        if rule.udf is not None:
            udf[rule.udf] = value
        else:
            standard[rule.target] = value
    # One problem per target and message, in rule order (several line-manager sources say it once).
    unique = list(dict.fromkeys(problems))
    return MappedEmployee(standard, udf, unique)

