"""Values read from an employee view -> the kind the catalogue says they have. Pure.

A view normally holds the typed values of `esr.format.values` (``dt.date`` for dates, ``Decimal`` ...), as
the parser and the Avro decoder give them. Views rebuilt from JSON (a table changelog, a jsonb column)
hold text instead, so each kind also accepts its usual text spellings: dates as ``YYYYMMDD`` or ISO
``YYYY-MM-DD``, date-times as ``YYYYMMDD HHMMSS`` or ISO, numbers as plain ASCII text. Blank text is None.
Anything else raises `ValueError` with a message naming the value and the kind.
"""

from __future__ import annotations

import datetime as dt
import functools
import math
import re
from collections.abc import Callable
from decimal import Decimal, InvalidOperation

from esr.format.values import parse_date, parse_timestamp
from esr.mapping.catalogue import Kind, MappedValue

_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_INT = re.compile(r"[+-]?[0-9]+")
_DECIMAL = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)")


def as_date(value: object) -> dt.date | None:
    """A date from a date, a date-time (its date) or text; ValueError otherwise."""
    if value is None:
        return None
    if isinstance(value, str):
        return _text_date(value)
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    raise ValueError(f"{value!r} is not a date")


# Views rebuilt from JSON hold dates as text, and the same dates come back for employee after employee
# (effective ends such as 4712-12-31, start and birth dates: tens of thousands at most): parsing each text
# once pays. Dates are immutable.
@functools.lru_cache(maxsize=1 << 16)
def _text_date(value: str) -> dt.date | None:
    text = value.strip()
    if not text:
        return None
    if _ISO_DATE.fullmatch(text):
        try:
            return dt.date.fromisoformat(text)
        except ValueError:
            raise ValueError(f"{value!r} is not a calendar date") from None
    if len(text) == 15 and text[8] == " ":
        stamp = parse_timestamp(text)
        return None if stamp is None else stamp.date()
    return parse_date(text)


def _as_datetime(value: object) -> dt.datetime | None:
    if isinstance(value, dt.datetime):
        return value
    if isinstance(value, dt.date):
        return dt.datetime(value.year, value.month, value.day)
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        if len(text) == 15 and text[8] == " ":
            return parse_timestamp(text)
        if len(text) == 8 and text.isdigit():
            day = parse_date(text)
            return None if day is None else dt.datetime(day.year, day.month, day.day)
        try:
            return dt.datetime.fromisoformat(text)
        except ValueError:
            raise ValueError(f"{value!r} is not a date and time") from None
    raise ValueError(f"{value!r} is not a date and time")


def _as_int(value: object) -> int | None:
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a whole number")
    if isinstance(value, int):
        return value
    if isinstance(value, Decimal) and value.is_finite() and value == value.to_integral_value():
        return int(value)
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        if _INT.fullmatch(text):
            return int(text)
    raise ValueError(f"{value!r} is not a whole number")


def _as_decimal(value: object) -> Decimal | None:
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a decimal number")
    if isinstance(value, Decimal):
        if value.is_finite():
            return value
    elif isinstance(value, int):
        return Decimal(value)
    elif isinstance(value, float):
        if math.isfinite(value):
            return Decimal(str(value))
    elif isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        if _DECIMAL.fullmatch(text):
            try:
                return Decimal(text)
            except InvalidOperation:  # pragma: no cover - the pattern admits only valid decimals
                pass
    raise ValueError(f"{value!r} is not a decimal number")


def _as_text(value: object) -> str | None:
    if isinstance(value, str):
        return value or None
    if isinstance(value, bool) or not isinstance(value, int | Decimal):
        raise ValueError(f"{value!r} is not text")
    return str(value)


#: the coercion of a (non-None) value to each kind
COERCERS: dict[Kind, Callable[[object], MappedValue]] = {
    Kind.TEXT: _as_text,
    Kind.DATE: as_date,
    Kind.DATETIME: _as_datetime,
    Kind.INT: _as_int,
    Kind.DECIMAL: _as_decimal,
}


def coerce(value: object, kind: Kind) -> MappedValue:
    """`value` as a value of `kind` (None for a missing or blank value)."""
    return None if value is None else COERCERS[kind](value)
