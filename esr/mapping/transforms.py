"""Transforms a mapping rule applies to its value, in order. Pure.

Every transform declares the kind of value it takes and gives (checked when a template is validated), a
check of its own settings, how it applies to one value and its JSON form (``{"op": "<name>", ...}``).

Null handling: a missing value (None) passes through every transform untouched except `Default` (which
replaces it) and `Concat` (which skips it). Text that a transform leaves empty becomes None, so a
`Default` after `Trim` also catches blank values.

===============  =====================  ===============  ===============================================
op               takes                  gives            does
===============  =====================  ===============  ===============================================
``concat``       the rule's sources     text             joins the non-empty sources with ``separator``;
                                                         must be first; required with several sources
``trim``         text                   text             strips outer whitespace
``upper``        text                   text             upper case
``lower``        text                   text             lower case
``title``        text                   text             name-friendly title case (O'Neill-Smith)
``split_part``   text                   text             the ``index``-th (from 0) part split on
                                                         ``separator`` (pipe composites); None if absent
``date_format``  date or datetime       text             formats with a strftime-style ``pattern``
``parse_date``   text                   date             parses with a strftime-style ``pattern``
``to_text``      any                    text             ISO dates, plain decimals
``lookup``       text                   text             ``table`` entry (case-insensitive unless
                                                         ``case_sensitive``), else ``default``, else None
                                                         and a problem ("the lookup for X has failed")
``default``      any (or no source)     the same kind    ``value`` when there is no value
===============  =====================  ===============  ===============================================

Date patterns use ``%Y %y %m %d %j %H %I %M %S %p %b %B %a %A %%`` only, formatted the same on every
platform and locale (English month and day names; years zero-padded to 4 digits).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, ClassVar

from esr.mapping.catalogue import Kind, MappedValue
from esr.profiles.text_template import title_case

Note = Callable[[str], None]


class KindError(Exception):
    """A transform cannot take the kind of value it is given (message says which)."""


def kind_of(value: MappedValue) -> Kind | None:
    if value is None:
        return None
    if isinstance(value, bool):
        raise TypeError("booleans are not mapped values")
    if isinstance(value, str):
        return Kind.TEXT
    if isinstance(value, dt.datetime):
        return Kind.DATETIME
    if isinstance(value, dt.date):
        return Kind.DATE
    if isinstance(value, int):
        return Kind.INT
    return Kind.DECIMAL


def to_text(value: MappedValue) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, dt.datetime):
        return value.isoformat(timespec="seconds")
    if isinstance(value, dt.date):
        return f"{value.year:04d}-{value.month:02d}-{value.day:02d}"
    if isinstance(value, Decimal):
        return format(value, "f")
    return str(value)


def _none_if_empty(text: str) -> str | None:
    return text or None


# --- date patterns ---------------------------------------------------------------------------------------

_DIRECTIVE = re.compile(r"%(.?)")
DATE_DIRECTIVES = frozenset("YymdjHIMSpbBaA%")
_MONTHS = (
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
)
_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def pattern_problems(pattern: object) -> list[str]:
    if not isinstance(pattern, str) or not pattern:
        return ["pattern must be non-empty text"]
    problems = []
    for match in _DIRECTIVE.finditer(pattern):
        directive = match.group(1)
        if directive not in DATE_DIRECTIVES:
            shown = f"%{directive}" if directive else "a lone '%' at the end"
            supported = " ".join("%" + d for d in sorted(DATE_DIRECTIVES))
            problems.append(f"pattern {pattern!r}: {shown} is not supported (use {supported})")
    if not any(m.group(1) not in ("%", "") for m in _DIRECTIVE.finditer(pattern)):
        problems.append(f"pattern {pattern!r} has no date directive such as %Y, %m or %d")
    return problems


def format_date(value: dt.date, pattern: str) -> str:
    moment = value if isinstance(value, dt.datetime) else dt.datetime(value.year, value.month, value.day)
    hour12 = moment.hour % 12 or 12
    parts = {
        "Y": f"{moment.year:04d}",
        "y": f"{moment.year % 100:02d}",
        "m": f"{moment.month:02d}",
        "d": f"{moment.day:02d}",
        "j": f"{moment.timetuple().tm_yday:03d}",
        "H": f"{moment.hour:02d}",
        "I": f"{hour12:02d}",
        "M": f"{moment.minute:02d}",
        "S": f"{moment.second:02d}",
        "p": "AM" if moment.hour < 12 else "PM",
        "b": _MONTHS[moment.month - 1][:3],
        "B": _MONTHS[moment.month - 1],
        "a": _DAYS[moment.weekday()][:3],
        "A": _DAYS[moment.weekday()],
        "%": "%",
    }
    return _DIRECTIVE.sub(lambda m: parts[m.group(1)], pattern)


_PARSE_PARTS = {
    "Y": r"(?P<Y>\d{4})",
    "y": r"(?P<y>\d{2})",
    "m": r"(?P<m>\d{1,2})",
    "d": r"(?P<d>\d{1,2})",
    "j": r"(?P<j>\d{1,3})",
    "H": r"(?P<H>\d{1,2})",
    "I": r"(?P<I>\d{1,2})",
    "M": r"(?P<M>\d{1,2})",
    "S": r"(?P<S>\d{1,2})",
    "p": r"(?P<p>AM|PM)",
    "b": "(?P<b>" + "|".join(m[:3] for m in _MONTHS) + ")",
    "B": "(?P<B>" + "|".join(_MONTHS) + ")",
    "a": "(?P<a>" + "|".join(d[:3] for d in _DAYS) + ")",
    "A": "(?P<A>" + "|".join(_DAYS) + ")",
    "%": "%",
}


def parse_date_text(text: str, pattern: str) -> dt.date:
    """Parse text with a supported pattern (locale-independent); ValueError with a clear message."""
    regex: list[str] = []
    position = 0
    for match in _DIRECTIVE.finditer(pattern):
        regex.append(re.escape(pattern[position : match.start()]))
        regex.append(_PARSE_PARTS[match.group(1)])
        position = match.end()
    regex.append(re.escape(pattern[position:]))
    try:
        found = re.fullmatch("".join(regex), text.strip(), re.IGNORECASE)
    except re.error:  # a directive used twice
        found = None
    if found is None:
        raise ValueError(f"{text!r} does not match the date pattern {pattern!r}")
    groups = found.groupdict()
    month_names = [m.lower() for m in _MONTHS]
    try:
        if groups.get("Y") is not None:
            year = int(groups["Y"])
        elif groups.get("y") is not None:
            short = int(groups["y"])
            year = 2000 + short if short < 69 else 1900 + short  # POSIX strptime's pivot
        else:
            raise ValueError(f"the date pattern {pattern!r} has no year")
        if groups.get("j") is not None:
            return dt.date(year, 1, 1) + dt.timedelta(days=int(groups["j"]) - 1)
        if groups.get("m") is not None:
            month = int(groups["m"])
        elif groups.get("B") is not None:
            month = month_names.index(groups["B"].lower()) + 1
        elif groups.get("b") is not None:
            month = [m[:3] for m in month_names].index(groups["b"].lower()) + 1
        else:
            raise ValueError(f"the date pattern {pattern!r} has no month")
        day = int(groups["d"]) if groups.get("d") is not None else 1
        return dt.date(year, month, day)
    except (ValueError, OverflowError) as error:
        if "date pattern" in str(error):
            raise
        raise ValueError(f"{text!r} is not a calendar date ({pattern!r})") from None


# --- the transforms --------------------------------------------------------------------------------------


def _need(op: str, kind: Kind | None, allowed: Iterable[Kind]) -> None:
    allowed = tuple(allowed)
    if kind is None:
        raise KindError(f"{op} has no value to work on (the rule has no source)")
    if kind not in allowed:
        names = " or ".join(k.value for k in allowed)
        hint = " (add a to_text or date_format transform first)" if Kind.TEXT in allowed else ""
        raise KindError(f"{op} takes {names} but is given {kind.value}{hint}")


@dataclass(frozen=True, slots=True)
class Transform:
    op: ClassVar[str] = ""

    def output_kind(self, kind: Kind | None) -> Kind:
        raise NotImplementedError

    def problems(self) -> list[str]:
        return []

    def apply(self, value: MappedValue, note: Note) -> MappedValue:
        raise NotImplementedError

    def params(self) -> dict[str, Any]:
        return {}

    def to_dict(self) -> dict[str, Any]:
        return {"op": self.op, **self.params()}


@dataclass(frozen=True, slots=True)
class _TextToText(Transform):
    def output_kind(self, kind: Kind | None) -> Kind:
        _need(self.op, kind, (Kind.TEXT,))
        return Kind.TEXT

    def apply(self, value: MappedValue, note: Note) -> MappedValue:  # noqa: ARG002
        if value is None:
            return None
        assert isinstance(value, str)
        return _none_if_empty(self.text(value))

    def text(self, value: str) -> str:
        raise NotImplementedError


@dataclass(frozen=True, slots=True)
class Trim(_TextToText):
    op: ClassVar[str] = "trim"

    def text(self, value: str) -> str:
        return value.strip()


@dataclass(frozen=True, slots=True)
class Upper(_TextToText):
    op: ClassVar[str] = "upper"

    def text(self, value: str) -> str:
        return value.upper()


@dataclass(frozen=True, slots=True)
class Lower(_TextToText):
    op: ClassVar[str] = "lower"

    def text(self, value: str) -> str:
        return value.lower()


@dataclass(frozen=True, slots=True)
class TitleCase(_TextToText):
    op: ClassVar[str] = "title"

    def text(self, value: str) -> str:
        return title_case(value)


@dataclass(frozen=True, slots=True)
class SplitPart(_TextToText):
    op: ClassVar[str] = "split_part"
    index: int = 0
    separator: str = "|"

    def problems(self) -> list[str]:
        problems = []
        if not isinstance(self.separator, str) or not self.separator:
            problems.append("split_part: separator must be non-empty text")
        if isinstance(self.index, bool) or not isinstance(self.index, int) or self.index < 0:
            problems.append(f"split_part: index {self.index!r} must be a whole number from 0")
        return problems

    def text(self, value: str) -> str:
        parts = value.split(self.separator)
        return parts[self.index] if self.index < len(parts) else ""

    def params(self) -> dict[str, Any]:
        return {"index": self.index, "separator": self.separator}


@dataclass(frozen=True, slots=True)
class DateFormat(Transform):
    op: ClassVar[str] = "date_format"
    pattern: str = "%d/%m/%Y"

    def output_kind(self, kind: Kind | None) -> Kind:
        _need(self.op, kind, (Kind.DATE, Kind.DATETIME))
        return Kind.TEXT

    def problems(self) -> list[str]:
        return [f"date_format: {p}" for p in pattern_problems(self.pattern)]

    def apply(self, value: MappedValue, note: Note) -> MappedValue:  # noqa: ARG002
        if value is None:
            return None
        assert isinstance(value, dt.date)
        return _none_if_empty(format_date(value, self.pattern))

    def params(self) -> dict[str, Any]:
        return {"pattern": self.pattern}


@dataclass(frozen=True, slots=True)
class ParseDate(Transform):
    op: ClassVar[str] = "parse_date"
    pattern: str = "%d/%m/%Y"

    def output_kind(self, kind: Kind | None) -> Kind:
        _need(self.op, kind, (Kind.TEXT,))
        return Kind.DATE

    def problems(self) -> list[str]:
        return [f"parse_date: {p}" for p in pattern_problems(self.pattern)]

    def apply(self, value: MappedValue, note: Note) -> MappedValue:
        if value is None:
            return None
        assert isinstance(value, str)
        try:
            return parse_date_text(value, self.pattern)
        except ValueError as error:
            note(str(error))
            return None

    def params(self) -> dict[str, Any]:
        return {"pattern": self.pattern}


@dataclass(frozen=True, slots=True)
class ToText(Transform):
    op: ClassVar[str] = "to_text"

    def output_kind(self, kind: Kind | None) -> Kind:
        _need(self.op, kind, tuple(Kind))
        return Kind.TEXT

    def apply(self, value: MappedValue, note: Note) -> MappedValue:  # noqa: ARG002
        text = to_text(value)
        return None if text is None else _none_if_empty(text)


@dataclass(frozen=True, slots=True)
class Lookup(Transform):
    """A lookup table. `table` is a tuple of (from, to) pairs so the transform stays hashable."""

    op: ClassVar[str] = "lookup"
    table: tuple[tuple[str, str], ...] = ()
    default: str | None = None
    case_sensitive: bool = False

    def __post_init__(self) -> None:
        # Entry order means nothing (keys are unique): keep them sorted so equal tables compare equal and
        # match their canonical JSON, whose keys are sorted.
        entries: object = self.table
        if isinstance(entries, tuple) and all(
            isinstance(e, tuple) and len(e) == 2 and all(isinstance(p, str) for p in e) for e in entries
        ):
            object.__setattr__(self, "table", tuple(sorted(entries)))

    @classmethod
    def of(cls, table: Mapping[str, str], default: str | None = None, *, case_sensitive: bool = False) -> Lookup:
        return cls(tuple(table.items()), default, case_sensitive)

    def _key(self, text: str) -> str:
        return text if self.case_sensitive else text.casefold()

    def output_kind(self, kind: Kind | None) -> Kind:
        _need(self.op, kind, (Kind.TEXT,))
        return Kind.TEXT

    def problems(self) -> list[str]:
        problems = []
        if not self.table:
            problems.append("lookup: the table is empty")
        seen: dict[str, str] = {}
        entries: tuple[object, ...] = self.table
        for entry in entries:
            if not (isinstance(entry, tuple) and len(entry) == 2 and all(isinstance(p, str) for p in entry)):
                problems.append(f"lookup: entry {entry!r} is not a pair of texts")
                continue
            key = self._key(entry[0])
            if key in seen:
                how = "" if self.case_sensitive else " (keys compare case-insensitively)"
                problems.append(f"lookup: {entry[0]!r} is in the table twice{how}")
            seen[key] = entry[0]
        default: object = self.default
        if default is not None and not isinstance(default, str):
            problems.append(f"lookup: default {default!r} is not text")
        return problems

    def apply(self, value: MappedValue, note: Note) -> MappedValue:
        if value is None:
            return None
        assert isinstance(value, str)
        wanted = self._key(value)
        for source, target in self.table:
            if self._key(source) == wanted:
                return _none_if_empty(target)
        if self.default is not None:
            return _none_if_empty(self.default)
        note(f"the lookup for {value!r} has failed (not in the table and no default)")
        return None

    def params(self) -> dict[str, Any]:
        return {"table": dict(self.table), "default": self.default, "case_sensitive": self.case_sensitive}


@dataclass(frozen=True, slots=True)
class Default(Transform):
    op: ClassVar[str] = "default"
    value: str | int | Decimal | dt.date | dt.datetime = ""

    def value_kind(self) -> Kind | None:
        try:
            return kind_of(self.value)
        except TypeError:
            return None

    def output_kind(self, kind: Kind | None) -> Kind:
        own = self.value_kind()
        if own is None:
            raise KindError(f"default: {self.value!r} is not a text, date, date-time, whole or decimal value")
        if kind is None:
            return own
        if own is kind or (own is Kind.INT and kind is Kind.DECIMAL):
            return kind
        raise KindError(f"default: the value {self.value!r} is {own.value} but the rule's value is {kind.value}")

    def problems(self) -> list[str]:
        problems = []
        if self.value_kind() is None:
            problems.append(f"default: {self.value!r} is not a text, date, date-time, whole or decimal value")
        elif self.value == "" or (isinstance(self.value, Decimal) and not self.value.is_finite()):
            problems.append(f"default: {self.value!r} is not a usable default")
        return problems

    def apply(self, value: MappedValue, note: Note) -> MappedValue:  # noqa: ARG002
        return self.value if value is None else value

    def params(self) -> dict[str, Any]:
        kind = self.value_kind()
        value = self.value if kind is Kind.INT else to_text(self.value)
        return {"value": value, "kind": kind.value if kind else None}


@dataclass(frozen=True, slots=True)
class Concat(Transform):
    """Joins the rule's sources; applied by the rule (see `join`), never to a single value."""

    op: ClassVar[str] = "concat"
    separator: str = " "

    def output_kind(self, kind: Kind | None) -> Kind:  # noqa: ARG002
        return Kind.TEXT

    def problems(self) -> list[str]:
        return [] if isinstance(self.separator, str) else [f"concat: separator {self.separator!r} is not text"]

    def join(self, values: Sequence[MappedValue]) -> MappedValue:
        parts = [text.strip() for text in (to_text(v) for v in values) if text is not None and text.strip()]
        return _none_if_empty(self.separator.join(parts))

    def apply(self, value: MappedValue, note: Note) -> MappedValue:  # noqa: ARG002
        return self.join([value])

    def params(self) -> dict[str, Any]:
        return {"separator": self.separator}


TRANSFORM_TYPES: dict[str, type[Transform]] = {
    t.op: t
    for t in (Trim, Upper, Lower, TitleCase, SplitPart, DateFormat, ParseDate, ToText, Lookup, Default, Concat)
}
