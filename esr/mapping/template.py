"""Mapping templates: ordered rules from ESR source fields to a trust's employee fields. Pure.

A rule names its target (a standard field such as ``surname``, or ``udf.<name>`` for a user-defined field
the template declares), its sources (zero, one or several catalogue keys) and its transforms, applied in
order. Several sources need ``concat`` as the first transform; no source needs a ``default`` (a constant).

`template_problems` checks everything at once: unknown source field, unknown standard field, unknown UDF,
duplicate target, duplicate UDF, bad transform settings, and the kinds along the rule (source -> each
transform -> target: a kind mismatch names the step and suggests the transform that converts).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from esr.mapping.catalogue import (
    STANDARD_FIELDS,
    UDF_NAME,
    UDF_PREFIX,
    Kind,
    assignable,
    canonical_source_key,
    find_source,
    is_udf_target,
    udf_name,
    unknown_source_message,
    unknown_standard_message,
)
from esr.mapping.transforms import Concat, KindError, Transform
from esr.validation import Problem, ValidationError, raise_if

MAX_UDF_DESCRIPTION = 500


@dataclass(frozen=True, slots=True)
class UdfDefinition:
    """A user-defined field a trust creates: its name (``udf.<name>`` as a target) and kind."""

    name: str
    kind: Kind = Kind.TEXT
    description: str = ""


@dataclass(frozen=True, slots=True)
class MappingRule:
    target: str
    sources: tuple[str, ...] = ()
    transforms: tuple[Transform, ...] = ()

    @classmethod
    def of(cls, target: str, *sources: str, transforms: tuple[Transform, ...] = ()) -> MappingRule:
        return cls(target, tuple(sources), tuple(transforms))

    def canonical(self) -> MappingRule:
        return replace(self, sources=tuple(canonical_source_key(s) for s in self.sources))

    def describe(self) -> str:
        """One line for a person: ``surname <- person.last_name | trim | upper``."""
        text = f"{self.target} <- {' + '.join(self.sources) if self.sources else '(no source)'}"
        for transform in self.transforms:
            params = ", ".join(f"{k}={v!r}" for k, v in transform.params().items())
            text += f" | {transform.op}" + (f"({params})" if params else "")
        return text


@dataclass(frozen=True, slots=True)
class MappingTemplate:
    rules: tuple[MappingRule, ...]
    udfs: tuple[UdfDefinition, ...] = ()
    name: str = "default"

    def canonical(self) -> MappingTemplate:
        """The same template with every source written ``<scope>.<field>``."""
        return replace(self, rules=tuple(rule.canonical() for rule in self.rules))

    def rule_for(self, target: str) -> MappingRule | None:
        return next((rule for rule in self.rules if rule.target == target), None)

    def udf(self, name: str) -> UdfDefinition | None:
        return next((u for u in self.udfs if u.name == name), None)

    def target_kind(self, target: str) -> Kind | None:
        if is_udf_target(target):
            definition = self.udf(udf_name(target))
            return None if definition is None else definition.kind
        standard = STANDARD_FIELDS.get(target)
        return None if standard is None else standard.kind


def _udf_problems(udfs: tuple[UdfDefinition, ...]) -> list[Problem]:
    problems: list[Problem] = []
    seen: dict[str, int] = {}
    entries: tuple[object, ...] = udfs
    for index, udf in enumerate(entries):
        path = f"udfs[{index}]"
        if not isinstance(udf, UdfDefinition):
            problems.append(Problem(path, f"{udf!r} is not a UDF definition"))
            continue
        name: object = udf.name
        if not isinstance(name, str) or not UDF_NAME.fullmatch(name):
            problems.append(
                Problem(path, f"UDF name {name!r} must be a letter then up to 62 letters, digits or underscores")
            )
        else:
            key = name.casefold()
            if key in seen:
                problems.append(Problem(path, f"UDF {name!r} is defined twice (also udfs[{seen[key]}])"))
            seen.setdefault(key, index)
        kind: object = udf.kind
        if not isinstance(kind, Kind):
            problems.append(Problem(path, f"UDF kind {kind!r} is not one of {', '.join(k.value for k in Kind)}"))
        description: object = udf.description
        if not isinstance(description, str) or len(description) > MAX_UDF_DESCRIPTION:
            problems.append(Problem(path, f"description must be text of at most {MAX_UDF_DESCRIPTION} characters"))
    return problems


def _target_problem(template: MappingTemplate, target: object) -> tuple[str | None, Kind | None]:
    """(problem, kind of the target)."""
    if not isinstance(target, str) or not target:
        return "the target must be a field name", None
    if is_udf_target(target):
        name = udf_name(target)
        definition = template.udf(name)
        if definition is None:
            declared = ", ".join(u.name for u in template.udfs) or "none"
            return f"unknown UDF {name!r}: declare it in the template's udfs first (declared: {declared})", None
        return None, definition.kind if isinstance(definition.kind, Kind) else None
    standard = STANDARD_FIELDS.get(target)
    if standard is None:
        return unknown_standard_message(target), None
    return None, standard.kind


def rule_problems(template: MappingTemplate, index: int, rule: MappingRule) -> list[Problem]:
    """Problems of one rule on its own (duplicate targets are the template's business)."""
    target: object = rule.target
    path = f"rules[{index}] ({target})"
    problems: list[Problem] = []
    message, target_kind = _target_problem(template, target)
    if message:
        problems.append(Problem(f"{path}.target", message))

    source_kinds: list[Kind] = []
    sources_known = True
    entries: tuple[object, ...] = rule.sources
    for s_index, key in enumerate(entries):
        source = find_source(key) if isinstance(key, str) else None
        if source is None:
            shown = key if isinstance(key, str) else repr(key)
            problems.append(Problem(f"{path}.sources[{s_index}]", unknown_source_message(str(shown))))
            sources_known = False
        else:
            source_kinds.append(source.kind)
    canonical = [canonical_source_key(k) for k in rule.sources if isinstance(k, str)]
    for key in sorted({k for k in canonical if canonical.count(k) > 1}):
        problems.append(Problem(f"{path}.sources", f"{key} is listed more than once"))

    transforms: tuple[object, ...] = rule.transforms
    for t_index, transform in enumerate(transforms):
        t_path = f"{path}.transforms[{t_index}]"
        if not isinstance(transform, Transform):
            problems.append(Problem(t_path, f"{transform!r} is not a transform"))
            return problems
        problems.extend(Problem(t_path, p) for p in transform.problems())
        if isinstance(transform, Concat) and t_index != 0:
            problems.append(Problem(t_path, "concat joins the rule's sources, so it must be the first transform"))
    if len(rule.sources) > 1 and not (rule.transforms and isinstance(rule.transforms[0], Concat)):
        problems.append(Problem(path, f"{len(rule.sources)} sources need concat as the first transform"))
    if problems or not sources_known:
        return problems

    # The kinds along the rule.
    kind: Kind | None = source_kinds[0] if len(source_kinds) == 1 else None
    steps = rule.transforms
    if rule.transforms and isinstance(rule.transforms[0], Concat):
        if not rule.sources:
            problems.append(Problem(f"{path}.transforms[0]", "concat has no sources to join"))
            return problems
        kind, steps = Kind.TEXT, rule.transforms[1:]
    offset = len(rule.transforms) - len(steps)
    for t_index, transform in enumerate(steps, start=offset):
        try:
            kind = transform.output_kind(kind)
        except KindError as error:
            problems.append(Problem(f"{path}.transforms[{t_index}]", str(error)))
            return problems
    if kind is None:
        problems.append(Problem(path, "the rule has no source and no default value"))
    elif target_kind is not None and not assignable(kind, target_kind):
        hint = ""
        if target_kind is Kind.TEXT:
            hint = " (add a date_format or to_text transform)" if kind in (Kind.DATE, Kind.DATETIME) else (
                " (add a to_text transform)"
            )
        elif target_kind is Kind.DATE and kind is Kind.TEXT:
            hint = " (add a parse_date transform)"
        problems.append(
            Problem(f"{path}", f"type mismatch: the rule gives {kind.value} but {target} is {target_kind.value}{hint}")
        )
    return problems


def template_problems(template: MappingTemplate) -> list[Problem]:
    problems: list[Problem] = []
    name: object = template.name
    if not isinstance(name, str) or not name.strip():
        problems.append(Problem("name", "the template needs a name"))
    problems.extend(_udf_problems(template.udfs))
    first_rule_for: dict[str, int] = {}
    rules: tuple[object, ...] = template.rules
    for index, rule in enumerate(rules):
        if not isinstance(rule, MappingRule):
            problems.append(Problem(f"rules[{index}]", f"{rule!r} is not a mapping rule"))
            continue
        problems.extend(rule_problems(template, index, rule))
        if isinstance(rule.target, str):
            key = rule.target.casefold() if is_udf_target(rule.target) else rule.target
            if key in first_rule_for:
                problems.append(
                    Problem(
                        f"rules[{index}] ({rule.target})",
                        f"duplicate target: {rule.target} is already mapped by rules[{first_rule_for[key]}]",
                    )
                )
            else:
                first_rule_for[key] = index
    return problems


def validate_template(template: MappingTemplate) -> MappingTemplate:
    """The template, or `ValidationError` listing every problem."""
    raise_if(f"mapping template {template.name!r}", template_problems(template))
    return template


def rule_kind(rule: MappingRule) -> Kind:
    """The kind a valid rule gives (before it is stored in its target)."""
    source = find_source(rule.sources[0]) if len(rule.sources) == 1 else None
    kind: Kind | None = source.kind if source is not None else None
    for transform in rule.transforms:
        kind = transform.output_kind(kind)
    if kind is None:  # pragma: no cover - validate_template rejects it
        raise ValidationError("mapping rule", [Problem(rule.target, "no source and no default")])
    return kind


# --- the default template --------------------------------------------------------------------------------

_DEFAULT_RULES: tuple[tuple[str, str], ...] = (
    ("payroll_number", "person.employee_number"),
    ("title", "person.title"),
    ("first_name", "person.first_name"),
    ("middle_names", "person.middle_names"),
    ("surname", "person.last_name"),
    ("preferred_name", "person.preferred_name"),
    ("maiden_name", "person.maiden_name"),
    ("gender", "person.gender"),
    ("date_of_birth", "person.date_of_birth"),
    ("ni_number", "person.ni_number"),
    ("email", "person.email"),
    ("hire_date", "person.hire_date"),
    ("termination_date", "person.termination_date"),
    ("person_type", "person.user_person_type"),
    ("assignment_number", "primary_assignment.assignment_number"),
    ("job_name", "primary_assignment.job_name"),
    ("position_name", "primary_assignment.position_name"),
    ("grade", "primary_assignment.grade"),
    ("department", "organisation.name"),
    ("cost_centre", "organisation.default_cost_centre"),
    ("work_location", "work_location.description"),
    ("line_manager", "line_manager.employee_number"),
    ("line_manager_person_id", "primary_assignment.supervisor_person_id"),
)


def default_template(name: str = "default") -> MappingTemplate:
    """The usual mapping (§4.3, §4.4): employee number -> payroll number, names, e-mail, dates, the primary
    assignment's number, job, position and grade, its organisation and work location, and the line manager
    (the supervisor person's employee number and person id). Every standard field is mapped; no UDFs."""
    return MappingTemplate(tuple(MappingRule.of(target, source) for target, source in _DEFAULT_RULES), (), name)


def udf_target(name: str) -> str:
    return UDF_PREFIX + name

