"""Template versions: every change to a trust's mapping is kept and attributable. Pure.

A `TemplateVersion` is immutable: trust (VPD), version number (1, 2, ...), the template (canonical
spelling), author, time (timezone-aware) and change note. `next_version` makes the version after another
one, validating the template; saving a template equal to the current one returns the current version
unchanged, so a retried save never makes an empty version. `diff_templates` says what changed between two
templates (rules by target; UDFs by name; order of rules is not a change because targets are unique).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from esr.mapping.template import MappingRule, MappingTemplate, UdfDefinition, validate_template
from esr.validation import Problem, ValidationError, raise_if

MAX_AUTHOR = 200
MAX_NOTE = 2000


@dataclass(frozen=True, slots=True)
class TemplateVersion:
    vpd: str
    version: int
    template: MappingTemplate
    author: str
    created_at: dt.datetime
    note: str = ""


def version_problems(version: TemplateVersion) -> list[Problem]:
    problems: list[Problem] = []
    number: object = version.version
    if isinstance(number, bool) or not isinstance(number, int) or number < 1:
        problems.append(Problem("version", f"{number!r} is not a whole number from 1"))
    author: object = version.author
    if not isinstance(author, str) or not author.strip() or len(author) > MAX_AUTHOR:
        problems.append(Problem("author", f"every version needs an author (text of at most {MAX_AUTHOR} characters)"))
    created: object = version.created_at
    if not isinstance(created, dt.datetime) or created.utcoffset() is None:
        problems.append(Problem("created_at", f"{created!r} is not a timezone-aware date and time"))
    note: object = version.note
    if not isinstance(note, str) or len(note) > MAX_NOTE:
        problems.append(Problem("note", f"must be text of at most {MAX_NOTE} characters"))
    vpd: object = version.vpd
    if not isinstance(vpd, str) or len(vpd) != 3:
        problems.append(Problem("vpd", f"{vpd!r} is not a 3-character VPD"))
    try:
        validate_template(version.template)
    except ValidationError as error:
        problems.extend(Problem(f"template.{p.path}" if p.path else "template", p.message) for p in error.problems)
    return problems


def validate_version(version: TemplateVersion) -> TemplateVersion:
    raise_if(f"template version {version.version!r}", version_problems(version))
    return version


def next_version(
    previous: TemplateVersion | None,
    vpd: str,
    template: MappingTemplate,
    author: str,
    created_at: dt.datetime,
    note: str = "",
) -> TemplateVersion:
    """The version after `previous` (version 1 when there is none). Raises `ValidationError` for an invalid
    template, a missing author, a naive time, a time before the previous version's or another trust's
    history. Returns `previous` itself when the template has not changed."""
    canonical = template.canonical()
    if previous is not None:
        if previous.vpd != vpd:
            raise ValidationError(
                "template version", [Problem("vpd", f"the previous version belongs to trust {previous.vpd!r}")]
            )
        if previous.template.canonical() == canonical:
            return previous
    number = 1 if previous is None else previous.version + 1
    candidate = TemplateVersion(vpd, number, canonical, author, created_at, note)
    problems = version_problems(candidate)
    if (
        previous is not None
        and not problems
        and previous.created_at.utcoffset() is not None
        and created_at < previous.created_at
    ):
        earlier = f"is before version {previous.version} ({previous.created_at.isoformat()})"
        problems.append(Problem("created_at", earlier))
    raise_if(f"template version {candidate.version}", problems)
    return candidate


def history_problems(history: Sequence[TemplateVersion]) -> list[Problem]:
    """A trust's history must run 1, 2, 3 ... for one VPD, in time order."""
    problems: list[Problem] = []
    for index, version in enumerate(history):
        if version.version != index + 1:
            problems.append(Problem(f"history[{index}]", f"is version {version.version}, expected {index + 1}"))
        if index and version.vpd != history[0].vpd:
            problems.append(Problem(f"history[{index}]", f"belongs to trust {version.vpd!r}, not {history[0].vpd!r}"))
        if index and version.created_at < history[index - 1].created_at:
            problems.append(Problem(f"history[{index}]", "is older than the version before it"))
    return problems


def current(history: Sequence[TemplateVersion]) -> TemplateVersion | None:
    return max(history, key=lambda v: v.version, default=None)


# --- diff ------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TemplateDiff:
    name: tuple[str, str] | None = None  # (old, new) when renamed
    rules_added: tuple[MappingRule, ...] = ()
    rules_removed: tuple[MappingRule, ...] = ()
    rules_changed: tuple[tuple[MappingRule, MappingRule], ...] = ()  # (old, new), same target
    udfs_added: tuple[UdfDefinition, ...] = ()
    udfs_removed: tuple[UdfDefinition, ...] = ()
    udfs_changed: tuple[tuple[UdfDefinition, UdfDefinition], ...] = ()

    @property
    def empty(self) -> bool:
        return not (
            self.name or self.rules_added or self.rules_removed or self.rules_changed
            or self.udfs_added or self.udfs_removed or self.udfs_changed
        )

    def targets_affected(self) -> tuple[str, ...]:
        """The targets whose values may differ: what a remap would change."""
        targets = {r.target for r in self.rules_added + self.rules_removed}
        targets |= {old.target for old, _ in self.rules_changed}
        targets |= {f"udf.{u.name}" for u in self.udfs_removed + self.udfs_added}
        targets |= {f"udf.{old.name}" for old, _ in self.udfs_changed}
        return tuple(sorted(targets))

    def lines(self) -> list[str]:
        """A readable change list: ``+ rule``, ``- rule``, ``~ old -> new``."""
        out: list[str] = []
        if self.name:
            out.append(f"~ name {self.name[0]!r} -> {self.name[1]!r}")
        out.extend(f"+ udf {u.name} ({u.kind.value})" for u in self.udfs_added)
        out.extend(f"- udf {u.name} ({u.kind.value})" for u in self.udfs_removed)
        out.extend(
            f"~ udf {old.name}: {old.kind.value} {old.description!r} -> {new.kind.value} {new.description!r}"
            for old, new in self.udfs_changed
        )
        out.extend(f"+ {r.describe()}" for r in self.rules_added)
        out.extend(f"- {r.describe()}" for r in self.rules_removed)
        out.extend(f"~ {old.describe()}  =>  {new.describe()}" for old, new in self.rules_changed)
        return out


def diff_templates(old: MappingTemplate, new: MappingTemplate) -> TemplateDiff:
    old, new = old.canonical(), new.canonical()
    old_rules = {r.target: r for r in old.rules}
    new_rules = {r.target: r for r in new.rules}
    old_udfs = {u.name: u for u in old.udfs}
    new_udfs = {u.name: u for u in new.udfs}
    return TemplateDiff(
        name=(old.name, new.name) if old.name != new.name else None,
        rules_added=tuple(r for t, r in new_rules.items() if t not in old_rules),
        rules_removed=tuple(r for t, r in old_rules.items() if t not in new_rules),
        rules_changed=tuple(
            (old_rules[t], r) for t, r in new_rules.items() if t in old_rules and old_rules[t] != r
        ),
        udfs_added=tuple(u for n, u in new_udfs.items() if n not in old_udfs),
        udfs_removed=tuple(u for n, u in old_udfs.items() if n not in new_udfs),
        udfs_changed=tuple((old_udfs[n], u) for n, u in new_udfs.items() if n in old_udfs and old_udfs[n] != u),
    )


def diff_versions(old: TemplateVersion, new: TemplateVersion) -> TemplateDiff:
    return diff_templates(old.template, new.template)
