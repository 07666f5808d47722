"""esr.mapping.serde: templates and versions as JSON."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from esr.mapping.catalogue import SOURCE_FIELDS, STANDARD_FIELDS, Kind
from esr.mapping.serde import (
    template_from_dict,
    template_from_json,
    template_to_dict,
    template_to_json,
    version_from_dict,
    version_from_json,
    version_to_dict,
    version_to_json,
)
from esr.mapping.template import MappingRule, MappingTemplate, UdfDefinition, default_template
from esr.mapping.transforms import (
    Concat,
    DateFormat,
    Default,
    Lookup,
    Lower,
    ParseDate,
    SplitPart,
    TitleCase,
    ToText,
    Trim,
    Upper,
)
from esr.mapping.versions import next_version
from esr.validation import ValidationError

R = MappingRule.of
EVERYTHING = MappingTemplate(
    (
        R("surname", "PRA.last_name", transforms=(Trim(), Upper())),
        R("first_name", "person.first_name", transforms=(Lower(), TitleCase())),
        R("middle_names", "person.first_name", "person.middle_names", transforms=(Concat(" "),)),
        R("gender", "person.gender", transforms=(Lookup.of({"F": "Female", "M": "Male"}, None, case_sensitive=True),)),
        R("email", "person.email", transforms=(Default("unknown@example.nhs.uk"),)),
        R("udf.band", "ASA.grade", transforms=(SplitPart(1, "|"),)),
        R("udf.born", "person.date_of_birth", transforms=(DateFormat("%d %B %Y"),)),
        R("udf.start", "person.nhs_crs_uuid", transforms=(ParseDate("%Y%m%d"), Default(dt.date(1900, 1, 1)))),
        R("udf.fte", "primary_assignment.fte", transforms=(Default(Decimal("1.00")),)),
        R("udf.count", transforms=(Default(3),)),
        R("udf.seen", "person.last_update_date", transforms=(Default(dt.datetime(2000, 1, 1, 12)),)),
        R("udf.fte_text", "primary_assignment.fte", transforms=(ToText(),)),
    ),
    (
        UdfDefinition("band", Kind.TEXT, "AfC band"),
        UdfDefinition("born", Kind.TEXT),
        UdfDefinition("start", Kind.DATE),
        UdfDefinition("fte", Kind.DECIMAL),
        UdfDefinition("count", Kind.INT),
        UdfDefinition("seen", Kind.DATETIME),
        UdfDefinition("fte_text", Kind.TEXT),
    ),
    "everything",
)
T0 = dt.datetime(2024, 3, 1, 9, 0, tzinfo=dt.UTC)


def test_every_transform_round_trips() -> None:
    loaded = template_from_json(template_to_json(EVERYTHING))
    assert loaded == EVERYTHING.canonical()
    assert loaded.rules[0].sources == ("person.last_name",)
    assert template_to_json(loaded) == template_to_json(EVERYTHING)


def test_template_json_shape() -> None:
    data = template_to_dict(MappingTemplate((R("udf.x", "ASA.grade", transforms=(Trim(),)),), (UdfDefinition("x"),)))
    assert data == {
        "format_version": 1,
        "name": "default",
        "udfs": [{"name": "x", "kind": "text", "description": ""}],
        "rules": [{"target": "udf.x", "sources": ["primary_assignment.grade"], "transforms": [{"op": "trim"}]}],
    }


def test_shorthands_and_defaults() -> None:
    loaded = template_from_dict({"rules": [{"target": "surname", "source": "PRA.last_name"}]})
    assert loaded == MappingTemplate((R("surname", "person.last_name"),))
    constant = {"target": "surname", "transforms": [{"op": "default", "value": "x"}]}
    untyped_default = template_from_dict({"rules": [constant]})
    assert untyped_default.rules[0].transforms == (Default("x"),)


def test_the_default_template_round_trips() -> None:
    assert template_from_json(template_to_json(default_template())) == default_template()


def errors(data: Any) -> list[str]:
    with pytest.raises(ValidationError) as raised:
        template_from_dict(data)
    return [str(p) for p in raised.value.problems]


def test_shape_errors_name_the_place() -> None:
    found = errors(
        {
            "rules": [
                {"target": 5},
                {"target": "surname", "sources": ["person.last_name", 7], "transforms": [{"op": "shout"}]},
                {"target": "gender", "source": "person.gender", "sources": [], "transforms": [{"op": "lookup"}]},
                {"target": "title", "source": "person.title", "transforms": [{"op": "trim", "extra": 1}, "trim"]},
            ],
            "udfs": [{"name": "x", "kind": "colour"}],
            "colour": "blue",
        }
    )
    assert "rules[0].target: expected text, got 5" in found
    assert "rules[1].sources[1]: expected text, got 7" in found
    assert any(f.startswith("rules[1].transforms[0].op: unknown transform 'shout'") for f in found)
    assert "rules[2]: give either source or sources, not both" in found
    assert "rules[2].transforms[0].table: is missing" in found
    assert "rules[3].transforms[0].extra: unknown key" in found
    assert "rules[3].transforms[1]: expected a JSON object, got str" in found
    assert any(f.startswith("udfs[0].kind: 'colour' is not one of") for f in found)
    assert "colour: unknown key" in found


def test_rules_are_required() -> None:
    assert errors({"name": "x"}) == ["rules: is missing"]


@pytest.mark.parametrize(
    ("transform", "fragment"),
    [
        ({"op": "default", "value": "soon", "kind": "date"}, "'soon' is not a date value"),
        ({"op": "default", "value": "x", "kind": "decimal"}, "'x' is not a decimal value"),
        ({"op": "default", "value": "NaN", "kind": "decimal"}, "'NaN' is not a finite decimal"),
        ({"op": "default", "value": "5", "kind": "int"}, "'5' is not a whole number"),
        ({"op": "default", "value": 5, "kind": "text"}, "5 must be given as text"),
        ({"op": "default", "value": 1.5}, "expected text or a whole number"),
        ({"op": "lookup", "table": {"F": 1}}, "table.F: 1 is not text"),
        ({"op": "date_format"}, "pattern: is missing"),
        ({"op": "split_part", "index": "1"}, "expected a whole number"),
    ],
)
def test_bad_transform_settings(transform: dict[str, Any], fragment: str) -> None:
    found = errors({"rules": [{"target": "surname", "source": "person.last_name", "transforms": [transform]}]})
    assert any(fragment in f for f in found), found


def test_template_checks_run_after_shape_checks() -> None:
    found = errors({"rules": [{"target": "surname", "source": "person.hire_date"}]})
    assert found == [
        "rules[0] (surname): type mismatch: the rule gives date but surname is text"
        " (add a date_format or to_text transform)"
    ]


def test_not_json() -> None:
    with pytest.raises(ValidationError, match="not JSON"):
        template_from_json("{")


def test_lenient_reading() -> None:
    data = template_to_dict(default_template()) | {"later": 1, "format_version": 9}
    assert template_from_dict(data, strict=False) == default_template()
    with pytest.raises(ValidationError, match="newer than this program"):
        template_from_dict(data)


def test_versions_round_trip() -> None:
    v1 = next_version(None, "999", default_template(), "alice", T0, "initial")
    v2 = next_version(v1, "999", EVERYTHING, "bob", T0 + dt.timedelta(hours=2), "everything")
    for version in (v1, v2):
        assert version_from_json(version_to_json(version)) == version
    data = version_to_dict(v2)
    assert data["created_at"] == "2024-03-01T11:00:00+00:00"
    assert data["version"] == 2
    assert data["author"] == "bob"


def test_version_errors() -> None:
    v1 = next_version(None, "999", default_template(), "alice", T0)
    data = version_to_dict(v1) | {"created_at": "yesterday", "author": ""}
    with pytest.raises(ValidationError, match="created_at: 'yesterday' is not an ISO 8601"):
        version_from_dict(data)
    data = version_to_dict(v1) | {"author": ""}
    with pytest.raises(ValidationError, match="author"):
        version_from_dict(data)
    data = version_to_dict(v1) | {"created_at": "2024-03-01T09:00:00"}
    with pytest.raises(ValidationError, match="timezone-aware"):
        version_from_dict(data)


_text_sources = sorted(k for k, s in SOURCE_FIELDS.items() if s.kind is Kind.TEXT)
_text_targets = sorted(k for k, s in STANDARD_FIELDS.items() if s.kind is Kind.TEXT)
_text_steps = st.lists(
    st.one_of(
        st.just(Trim()),
        st.just(Upper()),
        st.just(Lower()),
        st.just(TitleCase()),
        st.builds(SplitPart, st.integers(0, 5), st.sampled_from(["|", "/", " "])),
        st.builds(  # keys distinct as a case-insensitive lookup compares them ("I" and "i" are one key)
            Lookup.of, st.dictionaries(st.text(min_size=1, max_size=3), st.text(max_size=3), min_size=1, max_size=3)
            .filter(lambda table: len({key.casefold() for key in table}) == len(table))
        ),
    ),
    max_size=3,
)


@st.composite
def _templates(draw: st.DrawFn) -> MappingTemplate:
    targets = draw(st.lists(st.sampled_from(_text_targets), unique=True, max_size=6))
    rules = []
    for target in targets:
        sources = draw(st.lists(st.sampled_from(_text_sources), min_size=1, max_size=3, unique=True))
        steps = draw(_text_steps)
        lead = (Concat(draw(st.sampled_from([" ", ", ", ""]))),) if len(sources) > 1 else ()
        rules.append(MappingRule(target, tuple(sources), (*lead, *steps)))
    return MappingTemplate(tuple(rules), (), draw(st.sampled_from(["a", "Trust template"])))


@given(_templates())
def test_generated_templates_round_trip(template: MappingTemplate) -> None:
    text = template_to_json(template)
    loaded = template_from_json(text)
    assert loaded == template
    assert json.loads(text) == template_to_dict(loaded)
