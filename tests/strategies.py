"""Hypothesis strategies for ESR Outbound v2 values, shared by every test module.

One strategy per layout (`LOCATION_VALUES` ... `COSTING_VALUES`, or `values_for(layout)`) draws a typed values
dict, keyed by field name without `record_code`, exactly as `esr.format.lines.parse_fields` returns it for a
valid line of that layout:

- text: 1..max_length characters from Windows-1252 (non-ASCII included), never `~`, CR, LF or a control
  character; pipes, quotes and spaces are data (Q5). Optional fields are sometimes None, never "".
- ids: 1..15 ASCII digits, as text (Q1/Q15); leading zeros happen on purpose.
- dates: any calendar date from 0001-01-01, with 4712-12-31 (Q11) and 29 February among the edge cases.
- timestamps: naive, whole seconds (the file has no fractions).
- decimals: within the field's precision and scale, with the field's scale as exponent (as the parser
  quantizes them), so they compare equal *and* print the same as parsed values.
- ints: signed 64-bit (the Avro type is `long`).

Mandatory fields (and so every key) are never None.

Text is also *reader-safe*: `esr.format.reader` decodes a line as UTF-8 when it is valid UTF-8 and as
Windows-1252 otherwise (Q4), so a cp1252 line whose bytes happen to form UTF-8 ("Ã©" is C3 A9, i.e. "é")
would read back differently. A multi-byte UTF-8 sequence is a lead byte C2..F4 followed by continuation
bytes 80..BF, and the `~` between fields is ASCII, so a value never holds a lead character directly
followed by a continuation character (one is swapped for a letter). A line of these values written in
cp1252 therefore reads back unchanged, and so does the same line written in UTF-8.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from decimal import Decimal

from hypothesis import strategies as st

from esr.format.layouts import (
    ADDRESS,
    ASSIGNMENT,
    COSTING,
    LAYOUTS,
    LOCATION,
    ORGANISATION,
    PERSON,
    PHONE,
    POSITION,
    VEHICLE,
    Field,
    FieldType,
    Layout,
)
from esr.format.values import END_OF_TIME, Value

Values = dict[str, Value]

ID_MAX_DIGITS = 15
UNBOUNDED_TEXT_MAX = 60  # for the spare fields, which have no Assure column width
INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1


def _cp1252_char(byte: int) -> str | None:
    try:
        return bytes([byte]).decode("cp1252")
    except UnicodeDecodeError:  # 0x81, 0x8D, 0x8F, 0x90, 0x9D are undefined
        return None


# Bytes 0x20..0xFF but DEL: all of Windows-1252 except the C0 controls, DEL and the undefined bytes. Its
# 0x80..0x9F are letters and punctuation (€, Š, “), not the C1 controls the reader quarantines. NBSP and the
# soft hyphen are in: they are text, however invisible.
_BY_BYTE: dict[int, str] = {
    byte: char for byte in range(0x20, 0x100) if byte != 0x7F and (char := _cp1252_char(byte)) is not None
}
del _BY_BYTE[ord("~")]

#: Every character a text value may hold: Windows-1252 without `~`, controls or DEL.
CP1252_ALPHABET: str = "".join(sorted(_BY_BYTE.values()))
#: The non-ASCII part, for tests that want to insist on it.
CP1252_NON_ASCII: str = "".join(ch for ch in CP1252_ALPHABET if not ch.isascii())

_UTF8_LEAD = frozenset(char for byte, char in _BY_BYTE.items() if 0xC2 <= byte <= 0xF4)
_UTF8_CONTINUATION = frozenset(char for byte, char in _BY_BYTE.items() if 0x80 <= byte <= 0xBF)


def _reader_safe(text: str) -> str:
    """Replace with "x" each continuation character that directly follows a lead character (see module doc)."""
    out: list[str] = []
    for char in text:
        out.append("x" if out and out[-1] in _UTF8_LEAD and char in _UTF8_CONTINUATION else char)
    return "".join(out)


def esr_text(max_length: int | None = None, *, min_length: int = 1, reader_safe: bool = True) -> st.SearchStrategy[str]:
    """Non-empty field text from `CP1252_ALPHABET`, at most `max_length` characters (the soft maximum)."""
    size = UNBOUNDED_TEXT_MAX if max_length is None else max_length
    text = st.text(alphabet=CP1252_ALPHABET, min_size=min_length, max_size=size)
    return text.map(_reader_safe) if reader_safe else text


def non_ascii_text(max_length: int = 30) -> st.SearchStrategy[str]:
    """Reader-safe text that certainly holds a non-ASCII Windows-1252 character (its first one)."""
    rest = st.text(alphabet=CP1252_ALPHABET, max_size=max_length - 1)
    return st.tuples(st.sampled_from(CP1252_NON_ASCII), rest).map(lambda parts: _reader_safe(parts[0] + parts[1]))


def esr_ids() -> st.SearchStrategy[str]:
    return st.text(alphabet="0123456789", min_size=1, max_size=ID_MAX_DIGITS)


def esr_dates(
    min_value: dt.date = dt.date(1, 1, 1), max_value: dt.date = dt.date(9999, 12, 31)
) -> st.SearchStrategy[dt.date]:
    edges = [d for d in (END_OF_TIME, dt.date(1951, 1, 1), dt.date(2024, 2, 29)) if min_value <= d <= max_value]
    plain = st.dates(min_value=min_value, max_value=max_value)
    return st.one_of(st.sampled_from(edges), plain) if edges else plain


def esr_timestamps(
    min_value: dt.datetime = dt.datetime(1, 1, 1), max_value: dt.datetime = dt.datetime(9999, 12, 31, 23, 59, 59)
) -> st.SearchStrategy[dt.datetime]:
    return st.datetimes(min_value=min_value, max_value=max_value).map(
        lambda value: value.replace(microsecond=0, fold=0)
    )


def esr_decimals(precision: int, scale: int) -> st.SearchStrategy[Decimal]:
    """Any value of a Dec(precision, scale) field, in the parser's quantized form."""
    bound = 10**precision - 1
    return st.integers(min_value=-bound, max_value=bound).map(lambda n: Decimal(n).scaleb(-scale))


def esr_ints(min_value: int = INT64_MIN, max_value: int = INT64_MAX) -> st.SearchStrategy[int]:
    return st.integers(min_value=min_value, max_value=max_value)


TypeOverrides = Mapping[FieldType, st.SearchStrategy[Value]]


def field_values(field: Field, overrides: TypeOverrides | None = None) -> st.SearchStrategy[Value]:
    """Values one field may take once parsed; None included unless the field is mandatory.

    `overrides` replaces the strategy of a whole type, e.g. `{FieldType.DATE: esr_dates(dt.date(1900, 1, 1))}`
    for a consumer that cannot store early dates.
    """
    strategy: st.SearchStrategy[Value]
    match field.type:
        case field_type if overrides and field_type in overrides:
            strategy = overrides[field_type]
        case FieldType.ID:
            strategy = esr_ids()
        case FieldType.TEXT:
            strategy = esr_text(field.max_length)
        case FieldType.DATE:
            strategy = esr_dates()
        case FieldType.TIMESTAMP:
            strategy = esr_timestamps()
        case FieldType.INT:
            strategy = esr_ints()
        case FieldType.DECIMAL:
            strategy = esr_decimals(field.precision, field.scale)
    return strategy if field.mandatory else st.none() | strategy


def values_for(layout: Layout, overrides: TypeOverrides | None = None) -> st.SearchStrategy[Values]:
    """A typed values dict valid for `layout` (every data field present, mandatory ones filled)."""
    return st.fixed_dictionaries({f.name: field_values(f, overrides) for f in layout.data_fields})


LOCATION_VALUES = values_for(LOCATION)
ORGANISATION_VALUES = values_for(ORGANISATION)
POSITION_VALUES = values_for(POSITION)
PERSON_VALUES = values_for(PERSON)
ASSIGNMENT_VALUES = values_for(ASSIGNMENT)
PHONE_VALUES = values_for(PHONE)
ADDRESS_VALUES = values_for(ADDRESS)
VEHICLE_VALUES = values_for(VEHICLE)
COSTING_VALUES = values_for(COSTING)

VALUES_BY_CODE: dict[str, st.SearchStrategy[Values]] = {
    LOCATION.code: LOCATION_VALUES,
    ORGANISATION.code: ORGANISATION_VALUES,
    POSITION.code: POSITION_VALUES,
    PERSON.code: PERSON_VALUES,
    ASSIGNMENT.code: ASSIGNMENT_VALUES,
    PHONE.code: PHONE_VALUES,
    ADDRESS.code: ADDRESS_VALUES,
    VEHICLE.code: VEHICLE_VALUES,
    COSTING.code: COSTING_VALUES,
}
assert set(VALUES_BY_CODE) == {layout.code for layout in LAYOUTS}


def any_record(overrides: TypeOverrides | None = None) -> st.SearchStrategy[tuple[Layout, Values]]:
    """A layout and values for it, any layout."""
    return st.sampled_from(LAYOUTS).flatmap(
        lambda layout: values_for(layout, overrides).map(lambda values: (layout, values))
    )
