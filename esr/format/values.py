"""Typed field values: text of the file <-> Python values. Pure functions, no I/O.

Empty text is null for every type. A value that does not parse raises `ValueError` with a message fit
for an operator; the caller decides whether that quarantines the line or only nulls the field.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from decimal import Decimal, InvalidOperation, localcontext

from esr.format.layouts import Field, FieldType

Value = str | int | Decimal | dt.date | dt.datetime | None

# Oracle HR's "end of time"; seen in other ESR feeds for open-ended rows (Q11). Parsed as a real date:
# deciding it means "open" is the stream's business, not the parser's.
END_OF_TIME = dt.date(4712, 12, 31)
_ZERO_DATE = "00000000"
_ZERO_TIMESTAMP = "00000000 000000"
# ASCII only: `str.isdigit`, `int` and `Decimal` also accept other scripts' digits ("٢٠٢٤", "²").
_INT = re.compile(r"[+-]?[0-9]+")
_DECIMAL = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


def _digits(text: str) -> bool:
    return text.isascii() and text.isdigit()


def parse_date(text: str) -> dt.date | None:
    if not text or text == _ZERO_DATE:
        return None
    if len(text) != 8 or not _digits(text):
        raise ValueError(f"{text!r} is not a date (YYYYMMDD)")
    try:
        return dt.date(int(text[:4]), int(text[4:6]), int(text[6:]))
    except ValueError:
        raise ValueError(f"{text!r} is not a calendar date") from None


def parse_timestamp(text: str) -> dt.datetime | None:
    if not text or text == _ZERO_TIMESTAMP:
        return None
    if len(text) != 15 or text[8] != " " or not (_digits(text[:8]) and _digits(text[9:])):
        raise ValueError(f"{text!r} is not a timestamp (YYYYMMDD HHMMSS)")
    try:
        return dt.datetime(
            int(text[:4]), int(text[4:6]), int(text[6:8]), int(text[9:11]), int(text[11:13]), int(text[13:])
        )
    except ValueError:
        raise ValueError(f"{text!r} is not a calendar date and time") from None


def parse_int(text: str) -> int | None:
    if not text:
        return None
    stripped = text.strip()
    if _INT.fullmatch(stripped) is None:
        raise ValueError(f"{text!r} is not a whole number")
    try:
        return int(stripped)
    except ValueError:  # more digits than Python converts (sys.get_int_max_str_digits)
        raise ValueError(f"{text[:20]!r}... is too long for a whole number") from None


def decimal_parser(precision: int, scale: int) -> Callable[[str], Decimal | None]:
    def parse_decimal(text: str) -> Decimal | None:
        if not text:
            return None
        try:
            value = Decimal(text.strip())
        except InvalidOperation:
            raise ValueError(f"{text!r} is not a decimal number") from None
        if not value.is_finite():
            raise ValueError(f"{text!r} is not a finite decimal number")
        if _DECIMAL.fullmatch(text.strip()) is None:  # e.g. "1_000", non-ASCII digits
            raise ValueError(f"{text!r} is not a decimal number")
        exponent = value.as_tuple().exponent
        assert isinstance(exponent, int)
        if exponent < -scale:
            raise ValueError(f"{text!r} has more than {scale} decimal places")
        # Checked before quantizing: quantize() raises InvalidOperation (not a ValueError) past the
        # context precision, e.g. for "1e30".
        if value and value.adjusted() >= precision - scale:
            raise ValueError(f"{text!r} has more than {precision} significant digits")
        with localcontext() as context:
            context.prec = max(context.prec, precision)
            return value.quantize(Decimal(1).scaleb(-scale))

    return parse_decimal


def parse_id(text: str) -> str | None:
    """ESR ids are kept as text (Q1/Q15): numeric in practice, but never reinterpreted."""
    return text or None


def parse_text(text: str) -> str | None:
    return text or None


def parser_for(field: Field) -> Callable[[str], Value]:
    match field.type:
        case FieldType.DATE:
            return parse_date
        case FieldType.TIMESTAMP:
            return parse_timestamp
        case FieldType.INT:
            return parse_int
        case FieldType.DECIMAL:
            return decimal_parser(field.precision, field.scale)
        case FieldType.ID:
            return parse_id
        case FieldType.TEXT:
            return parse_text


def format_value(value: Value) -> str:
    """The inverse of the parsers: how ESR writes a value into a field."""
    if value is None:
        return ""
    if isinstance(value, dt.datetime):  # before date: datetime is a date
        # Not strftime: "%Y" does not zero-pad years before 1000 on every platform.
        return (
            f"{value.year:04d}{value.month:02d}{value.day:02d} "
            f"{value.hour:02d}{value.minute:02d}{value.second:02d}"
        )
    if isinstance(value, dt.date):
        return f"{value.year:04d}{value.month:02d}{value.day:02d}"
    if isinstance(value, Decimal):
        return format(value.normalize(), "f")
    return str(value)
