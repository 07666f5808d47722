"""esr.profiles.text_template: the username / home address template language."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from esr.format.layouts import ADDRESS, PERSON
from esr.profiles.text_template import parse_text_template, text_fields, title_case
from esr.validation import ValidationError

PERSON_FIELDS = text_fields(PERSON)
ADDRESS_FIELDS = text_fields(ADDRESS)


def render(source: str, allowed: frozenset[str] = PERSON_FIELDS, **values: object) -> str:
    return parse_text_template(source, allowed).render(values)  # type: ignore[arg-type]


def test_text_fields_are_text_and_id_fields_without_spares() -> None:
    assert {"first_name", "last_name", "employee_number", "person_id"} <= PERSON_FIELDS
    assert "hire_date" not in PERSON_FIELDS
    assert not any(name.startswith("spare") for name in PERSON_FIELDS)
    assert {"line_1", "town", "postcode"} <= ADDRESS_FIELDS


def test_plain_substitution() -> None:
    assert render("{first_name}.{last_name}", first_name="Ann", last_name="Jones") == "Ann.Jones"


def test_truncation_and_filters() -> None:
    assert render("{first_name:1|lower}{last_name|lower}", first_name="Ann", last_name="Jones") == "ajones"
    assert render("{last_name|upper}", last_name="o'neill") == "O'NEILL"
    assert render("{last_name|title}", last_name="o'neill-SMITH") == "O'Neill-Smith"
    assert render("{first_name:3}", first_name="Al") == "Al"


def test_values_are_stripped_and_non_text_values_formatted() -> None:
    assert render("{first_name}", first_name="  Ann  ") == "Ann"
    assert render("{person_id}", person_id=dt.date(2024, 1, 2)) == "20240102"


def test_escaped_braces() -> None:
    assert render("{{{first_name}}}", first_name="Ann") == "{Ann}"


def test_separators_collapse_around_empty_values() -> None:
    template = "{line_1}, {line_2}, {line_3}, {town} {postcode}"
    values = {"line_1": "1 Road", "line_2": None, "line_3": "", "town": "Anytown", "postcode": "AN1 1AA"}
    assert render(template, ADDRESS_FIELDS, **values) == "1 Road, Anytown AN1 1AA"
    assert render(template, ADDRESS_FIELDS, line_2="Flat 2", postcode="AN1") == "Flat 2 AN1"


def test_prefix_and_suffix_only_when_something_renders() -> None:
    assert render("<{first_name}>", first_name="Ann") == "<Ann>"
    assert render("<{first_name}>") == ""


@pytest.mark.parametrize(
    ("source", "fragment"),
    [
        ("", "must not be empty"),
        ("   ", "must not be empty"),
        ("plain text", "at least one {field} placeholder"),
        ("{surname}", "unknown placeholder {surname}"),
        ("{hire_date}", "unknown placeholder {hire_date}"),
        ("{first_name", "unclosed '{'"),
        ("{first_name{last_name}}", "unclosed '{'"),
        ("first}", "unmatched '}'"),
        ("{first_name:0}", "at least 1"),
        ("{first_name:x}", "at least 1"),
        ("{first_name|shout}", "unknown filter 'shout'"),
        ("{}", "no valid field name"),
        ("{First Name}", "no valid field name"),
    ],
)
def test_invalid_templates_say_why(source: str, fragment: str) -> None:
    with pytest.raises(ValidationError) as raised:
        parse_text_template(source, PERSON_FIELDS, what="username_format")
    assert fragment in str(raised.value)
    assert all(p.path == "username_format" for p in raised.value.problems)


def test_every_problem_is_reported() -> None:
    with pytest.raises(ValidationError) as raised:
        parse_text_template("{nope}.{also_nope|bad}", PERSON_FIELDS)
    assert len(raised.value.problems) == 3


def test_unknown_placeholder_lists_what_is_allowed() -> None:
    with pytest.raises(ValidationError, match=r"allowed: .*first_name"):
        parse_text_template("{x}", PERSON_FIELDS)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("mary ann", "Mary Ann"), ("O'NEILL", "O'Neill"), ("smith-jones", "Smith-Jones"), ("", "")],
)
def test_title_case(text: str, expected: str) -> None:
    assert title_case(text) == expected


_literal = st.text(alphabet=st.characters(blacklist_characters="{}", blacklist_categories=["Cs"]), max_size=5)
_value = st.one_of(st.none(), st.text(alphabet="abcXYZ ", max_size=6))


@given(st.lists(st.tuples(_literal, _value), min_size=1, max_size=4), _literal)
def test_render_never_shows_separators_for_missing_values(parts: list[tuple[str, str | None]], tail: str) -> None:
    names = ["line_1", "line_2", "line_3", "town"][: len(parts)]
    source = "".join(f"{literal}{{{name}}}" for (literal, _), name in zip(parts, names, strict=True)) + tail
    values = {name: value for (_, value), name in zip(parts, names, strict=True)}
    rendered = parse_text_template(source, ADDRESS_FIELDS).render(values)
    present = [v.strip() for v in values.values() if v is not None and v.strip()]
    if not present:
        assert rendered == ""
    else:
        assert rendered.startswith(parts[0][0])
        assert rendered.endswith(tail)
        for value in present:
            assert value in rendered
