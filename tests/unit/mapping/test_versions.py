"""esr.mapping.versions: immutable, attributable template versions and their diffs."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from esr.mapping.catalogue import Kind
from esr.mapping.template import MappingRule, MappingTemplate, UdfDefinition, default_template
from esr.mapping.transforms import Trim, Upper
from esr.mapping.versions import (
    TemplateVersion,
    current,
    diff_templates,
    diff_versions,
    history_problems,
    next_version,
    validate_version,
)
from esr.validation import ValidationError

T0 = dt.datetime(2024, 3, 1, 9, 0, tzinfo=dt.UTC)
R = MappingRule.of


def changed_template() -> MappingTemplate:
    base = default_template()
    rules = [r for r in base.rules if r.target not in ("gender", "surname")]
    rules.append(R("surname", "PRA.last_name", transforms=(Trim(), Upper())))
    rules.append(R("udf.band", "primary_assignment.grade"))
    return MappingTemplate(tuple(rules), (UdfDefinition("band", Kind.TEXT, "AfC band"),), "custom")


def test_first_and_next_versions() -> None:
    v1 = next_version(None, "999", default_template(), "alice", T0, "initial")
    assert (v1.version, v1.author, v1.note, v1.vpd) == (1, "alice", "initial", "999")
    v2 = next_version(v1, "999", changed_template(), "bob", T0 + dt.timedelta(hours=1), "upper-case surnames")
    assert v2.version == 2
    assert v2.author == "bob"
    assert v2.template.rule_for("surname") == R("surname", "person.last_name", transforms=(Trim(), Upper()))
    assert current([v1, v2]) is v2
    assert current([]) is None
    assert history_problems([v1, v2]) == []


def test_versions_are_immutable() -> None:
    v1 = next_version(None, "999", default_template(), "alice", T0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        v1.author = "mallory"  # type: ignore[misc]


def test_saving_an_unchanged_template_keeps_the_version() -> None:
    v1 = next_version(None, "999", default_template(), "alice", T0)
    again = next_version(v1, "999", default_template(), "bob", T0 + dt.timedelta(days=1), "no-op")
    assert again is v1


def test_spelling_differences_are_not_changes() -> None:
    v1 = next_version(None, "999", MappingTemplate((R("surname", "PRA.last_name"),)), "alice", T0)
    again = next_version(v1, "999", MappingTemplate((R("surname", "person.last_name"),)), "bob", T0)
    assert again is v1


@pytest.mark.parametrize(
    ("author", "created_at", "fragment"),
    [
        ("", T0, "author: every version needs an author"),
        ("  ", T0, "author"),
        ("alice", dt.datetime(2024, 3, 1, 9), "created_at: .* is not a timezone-aware"),
    ],
)
def test_every_version_is_attributable(author: str, created_at: dt.datetime, fragment: str) -> None:
    with pytest.raises(ValidationError, match=fragment):
        next_version(None, "999", default_template(), author, created_at)


def test_invalid_templates_never_become_versions() -> None:
    with pytest.raises(ValidationError, match=r"template\.rules\[0\] \(surname\)\.sources\[0\]: unknown ESR field"):
        next_version(None, "999", MappingTemplate((R("surname", "person.surname"),)), "alice", T0)


def test_time_and_trust_must_follow_the_history() -> None:
    v1 = next_version(None, "999", default_template(), "alice", T0)
    with pytest.raises(ValidationError, match="created_at: is before version 1"):
        next_version(v1, "999", changed_template(), "bob", T0 - dt.timedelta(seconds=1))
    with pytest.raises(ValidationError, match="belongs to trust '999'"):
        next_version(v1, "RX9", changed_template(), "bob", T0)


def test_history_problems() -> None:
    v1 = next_version(None, "999", default_template(), "alice", T0)
    v2 = next_version(v1, "999", changed_template(), "bob", T0 + dt.timedelta(hours=1))
    assert [p.path for p in history_problems([v2])] == ["history[0]"]
    stray = dataclasses.replace(v2, vpd="RX9", created_at=T0 - dt.timedelta(days=1))
    assert len(history_problems([v1, stray])) == 2


def test_validate_version() -> None:
    bad = TemplateVersion("99", 0, default_template(), "", T0, "x" * 3000)
    with pytest.raises(ValidationError) as raised:
        validate_version(bad)
    assert {p.path for p in raised.value.problems} == {"vpd", "version", "author", "note"}


def test_diff() -> None:
    old, new = default_template(), changed_template()
    diff = diff_templates(old, new)
    assert diff.name == ("default", "custom")
    assert [r.target for r in diff.rules_added] == ["udf.band"]
    assert [r.target for r in diff.rules_removed] == ["gender"]
    assert [(a.target, b.transforms) for a, b in diff.rules_changed] == [("surname", (Trim(), Upper()))]
    assert [u.name for u in diff.udfs_added] == ["band"]
    assert diff.udfs_removed == ()
    assert diff.udfs_changed == ()
    assert diff.targets_affected() == ("gender", "surname", "udf.band")
    assert not diff.empty
    assert diff.lines() == [
        "~ name 'default' -> 'custom'",
        "+ udf band (text)",
        "+ udf.band <- primary_assignment.grade",
        "- gender <- person.gender",
        "~ surname <- person.last_name  =>  surname <- person.last_name | trim | upper",
    ]
    back = diff_templates(new, old)
    assert [r.target for r in back.rules_removed] == ["udf.band"]
    assert [u.name for u in back.udfs_removed] == ["band"]


def test_diff_of_equal_templates_and_reordering_is_empty() -> None:
    template = default_template()
    assert diff_templates(template, template).empty
    reordered = MappingTemplate(tuple(reversed(template.rules)), template.udfs, template.name)
    assert diff_templates(template, reordered).empty


def test_udf_changes() -> None:
    rules = (R("udf.band", "primary_assignment.grade"),)
    old = MappingTemplate(rules, (UdfDefinition("band", Kind.TEXT, "band"),))
    new = MappingTemplate(rules, (UdfDefinition("band", Kind.TEXT, "AfC band"),))
    diff = diff_templates(old, new)
    assert len(diff.udfs_changed) == 1
    assert diff.targets_affected() == ("udf.band",)
    assert diff.lines() == ["~ udf band: text 'band' -> text 'AfC band'"]


def test_diff_versions() -> None:
    v1 = next_version(None, "999", default_template(), "alice", T0)
    v2 = next_version(v1, "999", changed_template(), "bob", T0)
    assert diff_versions(v1, v2) == diff_templates(v1.template, v2.template)
