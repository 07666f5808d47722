"""esr.format.values: each field type from text and back."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from decimal import Decimal, localcontext

import pytest
from hypothesis import given
from hypothesis import strategies as st

from esr.format.layouts import LAYOUTS, Field, FieldType
from esr.format.values import (
    END_OF_TIME,
    Value,
    decimal_parser,
    format_value,
    parse_date,
    parse_id,
    parse_int,
    parse_text,
    parse_timestamp,
    parser_for,
)
from tests.strategies import esr_dates, esr_decimals, esr_ids, esr_ints, esr_text, esr_timestamps

ALL_PARSERS: list[Callable[[str], Value]] = [
    parse_date,
    parse_timestamp,
    parse_int,
    decimal_parser(5, 2),
    parse_id,
    parse_text,
]


@pytest.mark.parametrize("parse", ALL_PARSERS)
def test_empty_text_is_null_for_every_type(parse: Callable[[str], Value]) -> None:
    assert parse("") is None


# --- dates -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("20240301", dt.date(2024, 3, 1)),
        ("19510101", dt.date(1951, 1, 1)),
        ("20240229", dt.date(2024, 2, 29)),
        ("00010101", dt.date(1, 1, 1)),
        ("99991231", dt.date(9999, 12, 31)),
    ],
)
def test_parse_date(text: str, expected: dt.date) -> None:
    assert parse_date(text) == expected


def test_zero_date_is_null() -> None:
    assert parse_date("00000000") is None


def test_end_of_time_is_a_real_date() -> None:
    # Q11: the parser does not decide that 4712-12-31 means "open-ended"; the stream does.
    assert parse_date("47121231") == END_OF_TIME == dt.date(4712, 12, 31)


@pytest.mark.parametrize(
    "text",
    ["20240230", "20230229", "20241301", "20240001", "20240100", "00000101", "20240431"],
)
def test_impossible_calendar_dates_are_rejected(text: str) -> None:
    with pytest.raises(ValueError, match="not a calendar date") as info:
        parse_date(text)
    assert text in str(info.value)


@pytest.mark.parametrize(
    "text",
    [
        "2024031",  # 7 digits
        "202403011",  # 9 digits
        "2024-03-01",
        "01/03/2024",
        "2024030a",
        " 20240301",
        "20240301 ",
        "20240301 000000",  # a timestamp is not a date
        "２０２４０３０１",  # fullwidth digits: str.isdigit() says yes, the format says no
        "2024030²",  # superscript two (a Windows-1252 character)
        "٢٠٢٤٠٣٠١",  # Arabic-Indic digits
    ],
)
def test_malformed_dates_are_rejected(text: str) -> None:
    with pytest.raises(ValueError, match=r"is not a date \(YYYYMMDD\)"):
        parse_date(text)


# --- timestamps ------------------------------------------------------------------------------------------


def test_parse_timestamp() -> None:
    assert parse_timestamp("20240301 071503") == dt.datetime(2024, 3, 1, 7, 15, 3)
    assert parse_timestamp("47121231 235959") == dt.datetime(4712, 12, 31, 23, 59, 59)
    assert parse_timestamp("20240229 000000") == dt.datetime(2024, 2, 29)


def test_timestamps_are_naive_whole_seconds() -> None:
    value = parse_timestamp("20240301 071503")
    assert value is not None
    assert value.tzinfo is None
    assert value.microsecond == 0


def test_zero_timestamp_is_null() -> None:
    # S2's synthetic full file uses this for "no previous run".
    assert parse_timestamp("00000000 000000") is None


@pytest.mark.parametrize(
    "text",
    [
        "20240301071503",  # missing space
        "20240301T071503",
        "20240301  071503",
        "20240301 0715",
        "20240301 07150",
        "20240301 07:15:03",
        "20240301",  # a date is not a timestamp
        "2024030 1071503",
        "20240301 0715O3",  # letter O
        "20240301 ０７１５０３",  # fullwidth digits
        " 20240301 071503",
    ],
)
def test_malformed_timestamps_are_rejected(text: str) -> None:
    with pytest.raises(ValueError, match=r"is not a timestamp \(YYYYMMDD HHMMSS\)"):
        parse_timestamp(text)


@pytest.mark.parametrize(
    "text",
    [
        "20240301 250000",  # bad hour
        "20240301 076000",  # bad minute
        "20240301 071560",  # bad second (no leap seconds)
        "20240230 071503",  # bad date
        "00000000 120000",  # zero date with a time is not the null form
    ],
)
def test_impossible_timestamps_are_rejected(text: str) -> None:
    with pytest.raises(ValueError, match="not a calendar date and time"):
        parse_timestamp(text)


# --- ints ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [("0", 0), ("7000001", 7000001), ("-5", -5), ("+5", 5), ("007", 7), (" 42 ", 42), ("9" * 30, int("9" * 30))],
)
def test_parse_int(text: str, expected: int) -> None:
    assert parse_int(text) == expected


@pytest.mark.parametrize(
    "text", ["1.5", "1e3", "abc", "1 000", "1_000", "+-5", "--5", "-", " ", "²", "١٢", "0x10", "5-"]
)
def test_malformed_ints_are_rejected(text: str) -> None:
    with pytest.raises(ValueError, match="is not a whole number"):
        parse_int(text)


def test_an_int_too_long_for_python_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="too long for a whole number"):
        parse_int("1" * 5000)


# --- decimals --------------------------------------------------------------------------------------------

PERCENTAGE = decimal_parser(5, 2)  # COA percentage split, Dec(5,2)
FTE = decimal_parser(22, 3)  # ASA fte
BUDGETED_FTE = decimal_parser(13, 5)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("100", Decimal("100.00")),
        ("33.33", Decimal("33.33")),
        ("0.5", Decimal("0.50")),
        (".5", Decimal("0.50")),
        ("5.", Decimal("5.00")),
        ("-12.5", Decimal("-12.50")),
        ("+1", Decimal("1.00")),
        ("999.99", Decimal("999.99")),
        (" 50 ", Decimal("50.00")),
        ("1e2", Decimal("100.00")),  # exponent notation is accepted (never written, see test_format_value)
        ("0", Decimal("0.00")),
    ],
)
def test_parse_decimal(text: str, expected: Decimal) -> None:
    value = PERCENTAGE(text)
    assert value == expected
    assert value is not None
    assert value.as_tuple().exponent == -2  # quantized to the field's scale


@pytest.mark.parametrize("text", ["12.345", "0.001", "1.230", "100.000"])
def test_decimal_with_too_many_places_is_rejected(text: str) -> None:
    # Strict on the written scale: a trailing zero beyond it ("1.230") counts too.
    with pytest.raises(ValueError, match="has more than 2 decimal places"):
        PERCENTAGE(text)


@pytest.mark.parametrize("text", ["1000", "1000.00", "-1000", "12345", "1e3"])
def test_decimal_with_too_many_digits_is_rejected(text: str) -> None:
    with pytest.raises(ValueError, match="has more than 5 significant digits"):
        PERCENTAGE(text)


@pytest.mark.parametrize("text", ["1e30", "1" * 40, "9" * 29, "1e999999"])
def test_decimal_beyond_the_decimal_context_is_a_value_error(text: str) -> None:
    # Regression: these used to escape as decimal.InvalidOperation (not a ValueError) and crash the line parser.
    for parse in (PERCENTAGE, FTE, BUDGETED_FTE):
        with pytest.raises(ValueError, match="significant digits"):
            parse(text)


def test_decimal_ignores_a_narrow_global_context() -> None:
    with localcontext() as context:
        context.prec = 3
        assert FTE("123456.5") == Decimal("123456.500")


@pytest.mark.parametrize("text", ["NaN", "nan", "-NaN", "sNaN", "Infinity", "-Infinity", "inf", "Inf"])
def test_decimal_nan_and_infinity_are_rejected(text: str) -> None:
    with pytest.raises(ValueError, match="is not a finite decimal number"):
        PERCENTAGE(text)


@pytest.mark.parametrize("text", ["abc", "1,5", "1.2.3", "1_000", "١٢", "½", "--1", "1e", "e5", ".", "0x10", " "])
def test_malformed_decimals_are_rejected(text: str) -> None:
    with pytest.raises(ValueError, match="is not a decimal number"):
        PERCENTAGE(text)


def test_zero_with_any_exponent_fits() -> None:
    assert PERCENTAGE("0E+50") == Decimal("0.00")
    assert PERCENTAGE("-0") == Decimal("0.00")


# --- ids and text ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["600001", "000123", "A48180", " 1 ", "1" * 40])
def test_ids_are_kept_as_text_unchanged(text: str) -> None:
    # Q1/Q15: never reinterpreted; leading zeros, letters and spaces survive (lines.py warns).
    assert parse_id(text) == text


@pytest.mark.parametrize(
    "text", ["Main Hospital", " padded ", "7000001|Staff Nurse|N7B|Ward 1|", 'say "hi"', "Siân Ó Briain"]
)
def test_text_is_kept_unchanged(text: str) -> None:
    assert parse_text(text) == text


def test_whitespace_is_not_empty() -> None:
    # Only "" is null; a blank is a value (for text and ids) and an error for numbers.
    assert parse_text(" ") == " "
    assert parse_id(" ") == " "
    with pytest.raises(ValueError, match="is not a whole number"):
        parse_int(" ")


# --- parser_for ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "text", "expected"),
    [
        (Field("d", FieldType.DATE), "20240301", dt.date(2024, 3, 1)),
        (Field("t", FieldType.TIMESTAMP), "20240301 071503", dt.datetime(2024, 3, 1, 7, 15, 3)),
        (Field("n", FieldType.INT), "12", 12),
        (Field("x", FieldType.DECIMAL, precision=9, scale=3), "1.6", Decimal("1.600")),
        (Field("i", FieldType.ID), "0042", "0042"),
        (Field("s", FieldType.TEXT), "text", "text"),
    ],
)
def test_parser_for_each_type(field: Field, text: str, expected: Value) -> None:
    assert parser_for(field)(text) == expected


def test_parser_for_covers_every_field_of_every_layout() -> None:
    for layout in LAYOUTS:
        for field in layout.data_fields:
            assert parser_for(field)("") is None


# --- format_value ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, ""),
        (dt.date(2024, 3, 1), "20240301"),
        (END_OF_TIME, "47121231"),
        (dt.date(1, 1, 1), "00010101"),
        (dt.datetime(2024, 3, 1, 7, 15, 3), "20240301 071503"),
        (dt.datetime(999, 1, 2, 3, 4, 5), "09990102 030405"),  # regression: strftime("%Y") gave "999"
        (dt.datetime(2024, 3, 1, 7, 15, 3, 999999), "20240301 071503"),  # fractions dropped
        (Decimal("100.00"), "100"),
        (Decimal("1E+2"), "100"),  # never exponent notation
        (Decimal("0.50"), "0.5"),
        (Decimal("-12.50"), "-12.5"),
        (Decimal("0.00000"), "0"),
        (42, "42"),
        (-7, "-7"),
        ("000123", "000123"),
        ("Siân", "Siân"),
    ],
)
def test_format_value(value: Value, text: str) -> None:
    assert format_value(value) == text


@given(esr_dates())
def test_dates_round_trip(value: dt.date) -> None:
    assert parse_date(format_value(value)) == value


@given(esr_timestamps())
def test_timestamps_round_trip(value: dt.datetime) -> None:
    assert parse_timestamp(format_value(value)) == value


@given(esr_ints())
def test_ints_round_trip(value: int) -> None:
    assert parse_int(format_value(value)) == value


@given(
    st.sampled_from([(5, 2), (9, 3), (13, 5), (22, 2), (22, 3), (22, 5)]).flatmap(
        lambda ps: st.tuples(st.just(ps), esr_decimals(*ps))
    )
)
def test_decimals_round_trip(case: tuple[tuple[int, int], Decimal]) -> None:
    (precision, scale), value = case
    parsed = decimal_parser(precision, scale)(format_value(value))
    assert parsed == value
    assert str(parsed) == str(value)  # same scale too, not only the same number


@given(esr_ids())
def test_ids_round_trip(value: str) -> None:
    assert parse_id(format_value(value)) == value


@given(esr_text(240))
def test_text_round_trips(value: str) -> None:
    assert parse_text(format_value(value)) == value
