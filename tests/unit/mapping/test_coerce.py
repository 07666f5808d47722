"""esr.mapping.coerce: view values to catalogue kinds."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from esr.format.values import format_value
from esr.mapping.catalogue import Kind
from esr.mapping.coerce import as_date, coerce


@pytest.mark.parametrize(
    ("value", "kind", "expected"),
    [
        (None, Kind.TEXT, None),
        ("", Kind.TEXT, None),
        ("x", Kind.TEXT, "x"),
        (12, Kind.TEXT, "12"),
        (Decimal("1.50"), Kind.TEXT, "1.50"),
        (dt.date(2024, 3, 1), Kind.DATE, dt.date(2024, 3, 1)),
        (dt.datetime(2024, 3, 1, 7), Kind.DATE, dt.date(2024, 3, 1)),
        ("20240301", Kind.DATE, dt.date(2024, 3, 1)),
        ("2024-03-01", Kind.DATE, dt.date(2024, 3, 1)),
        ("20240301 071503", Kind.DATE, dt.date(2024, 3, 1)),
        ("  ", Kind.DATE, None),
        ("00000000", Kind.DATE, None),
        (dt.date(2024, 3, 1), Kind.DATETIME, dt.datetime(2024, 3, 1)),
        ("20240301 071503", Kind.DATETIME, dt.datetime(2024, 3, 1, 7, 15, 3)),
        ("2024-03-01T07:15:03", Kind.DATETIME, dt.datetime(2024, 3, 1, 7, 15, 3)),
        ("20240301", Kind.DATETIME, dt.datetime(2024, 3, 1)),
        (7, Kind.INT, 7),
        (" -7 ", Kind.INT, -7),
        (Decimal("7.000"), Kind.INT, 7),
        (Decimal("1.5"), Kind.DECIMAL, Decimal("1.5")),
        (3, Kind.DECIMAL, Decimal(3)),
        (1.25, Kind.DECIMAL, Decimal("1.25")),
        ("0.50", Kind.DECIMAL, Decimal("0.50")),
    ],
)
def test_coerce(value: object, kind: Kind, expected: object) -> None:
    result = coerce(value, kind)
    assert result == expected
    assert type(result) is type(expected)


@pytest.mark.parametrize(
    ("value", "kind", "fragment"),
    [
        (True, Kind.TEXT, "is not text"),
        ([1], Kind.TEXT, "is not text"),
        ("2024-02-30", Kind.DATE, "not a calendar date"),
        ("1st March", Kind.DATE, "is not a date"),
        (5, Kind.DATE, "is not a date"),
        ("yesterday", Kind.DATETIME, "is not a date and time"),
        (5, Kind.DATETIME, "is not a date and time"),
        (True, Kind.INT, "is not a whole number"),
        ("1.5", Kind.INT, "is not a whole number"),
        (Decimal("1.5"), Kind.INT, "is not a whole number"),
        ("٣", Kind.INT, "is not a whole number"),
        (False, Kind.DECIMAL, "is not a decimal number"),
        ("1e5", Kind.DECIMAL, "is not a decimal number"),
        (Decimal("NaN"), Kind.DECIMAL, "is not a decimal number"),
        (float("inf"), Kind.DECIMAL, "is not a decimal number"),
    ],
)
def test_coerce_refuses(value: object, kind: Kind, fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment):
        coerce(value, kind)


@given(st.dates())
def test_esr_and_iso_spellings_agree(day: dt.date) -> None:
    assert as_date(format_value(day)) == as_date(day.isoformat()) == day
