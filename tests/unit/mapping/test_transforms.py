"""esr.mapping.transforms: each transform's kinds, settings and effect."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from esr.mapping.catalogue import Kind, MappedValue
from esr.mapping.transforms import (
    TRANSFORM_TYPES,
    Concat,
    DateFormat,
    Default,
    KindError,
    Lookup,
    Lower,
    ParseDate,
    SplitPart,
    TitleCase,
    ToText,
    Transform,
    Trim,
    Upper,
    format_date,
    parse_date_text,
    pattern_problems,
)


def run(transform: Transform, value: MappedValue) -> tuple[MappedValue, list[str]]:
    notes: list[str] = []
    return transform.apply(value, notes.append), notes


@pytest.mark.parametrize(
    ("transform", "value", "expected"),
    [
        (Trim(), "  Ann  ", "Ann"),
        (Trim(), "   ", None),  # blank becomes missing
        (Upper(), "ann", "ANN"),
        (Lower(), "ANN", "ann"),
        (TitleCase(), "o'NEILL-smith", "O'Neill-Smith"),
        (SplitPart(1), "Nursing|Staff Nurse", "Staff Nurse"),
        (SplitPart(0, "|"), "XN05|Band 5", "XN05"),
        (SplitPart(5), "a|b", None),
        (SplitPart(1, " - "), "a - b", "b"),
        (ToText(), dt.date(2024, 3, 1), "2024-03-01"),
        (ToText(), dt.datetime(2024, 3, 1, 7, 15, 3), "2024-03-01T07:15:03"),
        (ToText(), Decimal("37.50"), "37.50"),
        (ToText(), 42, "42"),
        (ToText(), "x", "x"),
    ],
)
def test_text_transforms(transform: Transform, value: MappedValue, expected: MappedValue) -> None:
    assert run(transform, value) == (expected, [])


@pytest.mark.parametrize(
    "transform", [Trim(), Upper(), Lower(), TitleCase(), SplitPart(1), ToText(), DateFormat(), ParseDate()]
)
def test_none_passes_through(transform: Transform) -> None:
    assert run(transform, None) == (None, [])


def test_date_format() -> None:
    day = dt.date(2024, 3, 1)
    assert run(DateFormat("%d/%m/%Y"), day) == ("01/03/2024", [])
    assert run(DateFormat("%Y%m%d"), day) == ("20240301", [])
    assert run(DateFormat("%a %d %B %Y"), day) == ("Fri 01 March 2024", [])
    assert run(DateFormat("%d-%b-%y"), day) == ("01-Mar-24", [])
    assert run(DateFormat("%j"), day) == ("061", [])
    assert run(DateFormat("%Y-%m-%d %H:%M:%S %p %I"), dt.datetime(2024, 3, 1, 13, 5, 9)) == (
        "2024-03-01 13:05:09 PM 01",
        [],
    )
    assert run(DateFormat("%Y 100%%"), dt.date(7, 1, 1)) == ("0007 100%", [])  # zero-padded, unlike strftime


def test_parse_date() -> None:
    assert run(ParseDate("%d/%m/%Y"), "01/03/2024") == (dt.date(2024, 3, 1), [])
    assert run(ParseDate("%d %B %Y"), "1 march 2024") == (dt.date(2024, 3, 1), [])
    assert run(ParseDate("%d-%b-%y"), "01-Mar-24") == (dt.date(2024, 3, 1), [])
    assert run(ParseDate("%d-%b-%y"), "01-Mar-70") == (dt.date(1970, 3, 1), [])
    assert run(ParseDate("%Y%j"), "2024061") == (dt.date(2024, 3, 1), [])
    value, notes = run(ParseDate("%d/%m/%Y"), "31/02/2024")
    assert value is None
    assert "not a calendar date" in notes[0]
    value, notes = run(ParseDate("%d/%m/%Y"), "2024-03-01")
    assert value is None
    assert "does not match the date pattern" in notes[0]


def test_parse_date_needs_a_year_and_month() -> None:
    with pytest.raises(ValueError, match="has no year"):
        parse_date_text("01/03", "%d/%m")
    with pytest.raises(ValueError, match="has no month"):
        parse_date_text("2024", "%Y")


@given(st.dates(), st.sampled_from(["%d/%m/%Y", "%Y%m%d", "%d %B %Y", "%Y-%j", "%a %d %b %Y"]))
def test_format_then_parse_round_trips(day: dt.date, pattern: str) -> None:
    assert parse_date_text(format_date(day, pattern), pattern) == day


@pytest.mark.parametrize(
    ("pattern", "fragment"),
    [("", "non-empty"), ("%Q", "%Q is not supported"), ("%d/%m/%", "lone '%'"), ("dd/mm", "no date directive")],
)
def test_bad_patterns(pattern: str, fragment: str) -> None:
    assert any(fragment in p for p in pattern_problems(pattern))
    assert DateFormat(pattern).problems()
    assert ParseDate(pattern).problems()


def test_lookup() -> None:
    genders = Lookup.of({"F": "Female", "M": "Male"}, default="Unknown")
    assert run(genders, "F") == ("Female", [])
    assert run(genders, "m") == ("Male", [])  # case-insensitive by default
    assert run(genders, "X") == ("Unknown", [])
    strict = Lookup.of({"F": "Female"}, case_sensitive=True)
    value, notes = run(strict, "f")
    assert value is None
    assert notes == ["the lookup for 'f' has failed (not in the table and no default)"]


def test_lookup_settings() -> None:
    assert Lookup().problems() == ["lookup: the table is empty"]
    assert "twice" in Lookup((("F", "a"), ("f", "b"))).problems()[0]
    assert Lookup((("F", "a"), ("f", "b")), case_sensitive=True).problems() == []
    assert "not a pair" in Lookup((("F",),)).problems()[0]  # type: ignore[arg-type]
    assert "default" in Lookup((("F", "a"),), default=1).problems()[0]  # type: ignore[arg-type]


def test_default() -> None:
    assert run(Default("n/a"), None) == ("n/a", [])
    assert run(Default("n/a"), "x") == ("x", [])
    assert run(Default(dt.date(1900, 1, 1)), None) == (dt.date(1900, 1, 1), [])
    assert Default("").problems()
    assert Default(True).problems()
    assert Default(Decimal("NaN")).problems()


def test_concat_joins_non_empty_parts() -> None:
    join = Concat(" ").join
    assert join(["Ann", None, "  ", "Jones"]) == "Ann Jones"
    assert join([None, ""]) is None
    assert Concat(", ").join(["a", dt.date(2024, 1, 2), Decimal("1.50"), 3]) == "a, 2024-01-02, 1.50, 3"
    assert Concat("").join(["a", "b"]) == "ab"


@pytest.mark.parametrize(
    ("transform", "given_kind", "gives"),
    [
        (Trim(), Kind.TEXT, Kind.TEXT),
        (SplitPart(), Kind.TEXT, Kind.TEXT),
        (DateFormat(), Kind.DATE, Kind.TEXT),
        (DateFormat(), Kind.DATETIME, Kind.TEXT),
        (ParseDate(), Kind.TEXT, Kind.DATE),
        (ToText(), Kind.DECIMAL, Kind.TEXT),
        (Lookup.of({"a": "b"}), Kind.TEXT, Kind.TEXT),
        (Default("x"), Kind.TEXT, Kind.TEXT),
        (Default("x"), None, Kind.TEXT),
        (Default(5), Kind.DECIMAL, Kind.DECIMAL),
        (Default(dt.date(2000, 1, 1)), None, Kind.DATE),
        (Concat(), None, Kind.TEXT),
    ],
)
def test_output_kinds(transform: Transform, given_kind: Kind | None, gives: Kind) -> None:
    assert transform.output_kind(given_kind) is gives


@pytest.mark.parametrize(
    ("transform", "given_kind", "fragment"),
    [
        (Trim(), Kind.DATE, "trim takes text but is given date (add a to_text or date_format transform first)"),
        (Upper(), Kind.INT, "upper takes text but is given int"),
        (DateFormat(), Kind.TEXT, "date_format takes date or datetime but is given text"),
        (ParseDate(), Kind.DATE, "parse_date takes text but is given date"),
        (Lookup.of({"a": "b"}), Kind.DECIMAL, "lookup takes text"),
        (Trim(), None, "has no value to work on"),
        (Default("x"), Kind.DATE, "the value 'x' is text but the rule's value is date"),
        (Default(Decimal(1)), Kind.INT, "is decimal but the rule's value is int"),
    ],
)
def test_kind_errors(transform: Transform, given_kind: Kind | None, fragment: str) -> None:
    with pytest.raises(KindError) as raised:
        transform.output_kind(given_kind)
    assert fragment in str(raised.value)


def test_every_transform_has_an_op_and_a_dict() -> None:
    assert set(TRANSFORM_TYPES) == {
        "trim", "upper", "lower", "title", "split_part", "date_format", "parse_date", "to_text", "lookup",
        "default", "concat",
    }
    assert Lookup.of({"F": "Female"}, "U").to_dict() == {
        "op": "lookup", "table": {"F": "Female"}, "default": "U", "case_sensitive": False,
    }
    assert Default(dt.date(2000, 1, 2)).to_dict() == {"op": "default", "value": "2000-01-02", "kind": "date"}
    assert Default(7).to_dict() == {"op": "default", "value": 7, "kind": "int"}
    assert SplitPart(2, "/").to_dict() == {"op": "split_part", "index": 2, "separator": "/"}


@given(st.text())
def test_text_transforms_never_return_empty_text(text: str) -> None:
    for transform in (Trim(), Upper(), Lower(), TitleCase(), SplitPart(1)):
        value, _ = run(transform, text)
        assert value is None or (isinstance(value, str) and value)
