"""NHS mileage categories and vehicle matching (format reference §3 "NHS Mileage", §2.9 VHA#12-13). Pure.

A trust's mileage table is a list of `MileageCategory`: an NHS mileage code (the value ESR sends as a
vehicle's User Rates Table, e.g. ``NHS_MILEAGE_CASUAL``), an engine band and a rate per mile.

Engine bands are **inclusive at both ends**, in whole cc: ``engine_from <= cc <= engine_to``, as Assure
matches them (S1 ``CarVehicleJourneyRateCrud``). Contiguous bands are therefore written 0-1500,
1501-2000, 2001-(open). ``engine_to`` None means no upper limit. Within one code (compared
case-insensitively) bands must not overlap, so a vehicle matches at most one category (the
``vehicle_mileage`` view is keyed by vehicle).

A vehicle's engine CC is normalised before matching: a value above 0 and under 10 is litres and is
multiplied by 1000 (S1); the result is rounded to whole cc, halves up (1.5995 l -> 1600 cc).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from esr.validation import Problem, raise_if

MAX_CODE_LENGTH = 80  # VHA user_rates_table width
MAX_DESCRIPTION_LENGTH = 240
MAX_ENGINE_CC = 100_000
MAX_RATE_PLACES = 4
LITRES_BELOW = Decimal(10)


@dataclass(frozen=True, slots=True)
class MileageCategory:
    code: str
    engine_from: int
    engine_to: int | None
    rate_per_mile: Decimal
    description: str = ""

    @property
    def key(self) -> tuple[str, int]:
        """The identity within a trust's table: (code case-folded, engine_from)."""
        return (self.code.casefold(), self.engine_from)

    def contains(self, engine_cc: int) -> bool:
        return self.engine_from <= engine_cc and (self.engine_to is None or engine_cc <= self.engine_to)

    def band(self) -> str:
        return f"{self.engine_from}-{'' if self.engine_to is None else self.engine_to}cc"


def _places(value: Decimal) -> int:
    exponent = value.as_tuple().exponent
    return -exponent if isinstance(exponent, int) and exponent < 0 else 0


def category_problems(category: MileageCategory, path: str = "") -> list[Problem]:
    def at(name: str) -> str:
        return f"{path}, field {name}" if path else name

    problems: list[Problem] = []
    code: object = category.code
    if not isinstance(code, str) or not code.strip():
        problems.append(Problem(at("code"), "must not be empty"))
    elif code != code.strip() or len(code) > MAX_CODE_LENGTH:
        problems.append(Problem(at("code"), f"{code!r} must be at most {MAX_CODE_LENGTH} characters, no outer spaces"))
    low: object = category.engine_from
    high: object = category.engine_to
    low_ok = isinstance(low, int) and not isinstance(low, bool) and 0 <= low <= MAX_ENGINE_CC
    if not low_ok:
        problems.append(Problem(at("engine_from"), f"{low!r} is not a whole number of cc from 0 to {MAX_ENGINE_CC}"))
    high_ok = high is None or (isinstance(high, int) and not isinstance(high, bool) and 0 <= high <= MAX_ENGINE_CC)
    if not high_ok:
        problems.append(Problem(at("engine_to"), f"{high!r} is not a whole number of cc from 0 to {MAX_ENGINE_CC}"))
    if low_ok and high_ok and isinstance(low, int) and isinstance(high, int) and high < low:
        problems.append(Problem(at("engine_to"), f"{high} is below engine_from {low}"))
    rate: object = category.rate_per_mile
    if not isinstance(rate, Decimal) or not rate.is_finite() or rate < 0:
        problems.append(Problem(at("rate_per_mile"), f"{rate!r} is not an amount of 0 or more"))
    elif _places(rate) > MAX_RATE_PLACES:
        problems.append(Problem(at("rate_per_mile"), f"{rate} has more than {MAX_RATE_PLACES} decimal places"))
    description: object = category.description
    if not isinstance(description, str) or len(description) > MAX_DESCRIPTION_LENGTH:
        problems.append(Problem(at("description"), f"must be text of at most {MAX_DESCRIPTION_LENGTH} characters"))
    return problems


def _overlap(a: MileageCategory, b: MileageCategory) -> bool:
    a_high = a.engine_to if a.engine_to is not None else MAX_ENGINE_CC + 1
    b_high = b.engine_to if b.engine_to is not None else MAX_ENGINE_CC + 1
    return a.engine_from <= b_high and b.engine_from <= a_high


def table_problems(categories: Sequence[MileageCategory], labels: Sequence[str] | None = None) -> list[Problem]:
    """Every category's own problems, then duplicates and overlapping bands within a code.
    `labels` name the categories in messages (e.g. "line 4"); by default "categories[i]"."""
    names = list(labels) if labels is not None else [f"categories[{i}]" for i in range(len(categories))]
    problems: list[Problem] = []
    valid: list[int] = []
    for index, category in enumerate(categories):
        own = category_problems(category, names[index])
        problems.extend(own)
        if not own:
            valid.append(index)
    by_code: dict[str, list[int]] = {}
    for index in valid:
        by_code.setdefault(categories[index].code.casefold(), []).append(index)
    for indexes in by_code.values():
        ordered = sorted(indexes, key=lambda i: categories[i].engine_from)
        for position, i in enumerate(ordered):
            for j in ordered[position + 1 :]:
                a, b = categories[i], categories[j]
                if a.engine_from == b.engine_from:
                    what = f"duplicates {names[i]} ({a.code} from {a.engine_from}cc)"
                elif _overlap(a, b):
                    what = f"band {b.band()} overlaps {names[i]} ({a.band()}) of {a.code}"
                else:
                    continue
                problems.append(Problem(names[j], what))
    return problems


def validate_table(categories: Iterable[MileageCategory]) -> tuple[MileageCategory, ...]:
    table = tuple(categories)
    raise_if("mileage categories", table_problems(table))
    return table


# --- matching --------------------------------------------------------------------------------------------


class Unmatched(enum.Enum):
    NO_RATES_TABLE = "no_rates_table"  # the vehicle has no user rates table (S1: "Could not find ...")
    CODE_NOT_FOUND = "code_not_found"  # no category has that code
    NO_ENGINE_CC = "no_engine_cc"  # the code exists but the vehicle has no engine size
    NO_BAND = "no_band"  # the code exists but no band of it holds the engine size


@dataclass(frozen=True, slots=True)
class MatchResult:
    category: MileageCategory | None
    engine_cc: int | None  # the normalised engine size
    reason: Unmatched | None = None
    message: str | None = None  # for the import log, worded as Assure's

    @property
    def matched(self) -> bool:
        return self.category is not None


def normalise_engine_cc(engine_cc: int | Decimal | float | str | None) -> int | None:
    """Whole cc: litres (0 < value < 10) times 1000, rounded half up. None for no value; ValueError for text
    that is not a number."""
    if engine_cc is None or (isinstance(engine_cc, str) and not engine_cc.strip()):
        return None
    if isinstance(engine_cc, bool):
        raise ValueError(f"{engine_cc!r} is not an engine size")
    try:
        value = Decimal(str(engine_cc).strip()) if isinstance(engine_cc, str | float) else Decimal(engine_cc)
    except ArithmeticError:
        raise ValueError(f"{engine_cc!r} is not an engine size") from None
    if not value.is_finite():
        raise ValueError(f"{engine_cc!r} is not an engine size")
    if 0 < value < LITRES_BELOW:
        value *= 1000
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def match_vehicle(
    user_rates_table: str | None,
    engine_cc: int | Decimal | float | str | None,
    categories: Iterable[MileageCategory],
) -> MatchResult:
    """The category whose code equals the vehicle's user rates table (case-insensitively, outer spaces
    ignored) and whose band holds its engine size. With overlapping bands (a table that failed validation)
    the lowest band start wins, so the answer is still deterministic."""
    try:
        cc = normalise_engine_cc(engine_cc)
    except ValueError:
        cc = None
    table = (user_rates_table or "").strip()
    shown_cc = "" if cc is None else str(cc)
    if not table:
        message = f"Could not find Mileage Rate '' with an engine capacity of '{shown_cc}'"
        return MatchResult(None, cc, Unmatched.NO_RATES_TABLE, message + " (the vehicle has no user rates table)")
    wanted = table.casefold()
    same_code = sorted(
        (c for c in categories if c.code.strip().casefold() == wanted), key=lambda c: (c.engine_from, c.code)
    )
    if not same_code:
        return MatchResult(
            None, cc, Unmatched.CODE_NOT_FOUND,
            f"Could not find Mileage Rate '{table}' with an engine capacity of '{shown_cc}'",
        )
    if cc is None:
        return MatchResult(
            None, None, Unmatched.NO_ENGINE_CC,
            f"Found Mileage Rate '{table}' but no match for an engine capacity of ''",
        )
    for category in same_code:
        if category.contains(cc):
            return MatchResult(category, cc)
    return MatchResult(
        None, cc, Unmatched.NO_BAND, f"Found Mileage Rate '{table}' but no match for an engine capacity of '{cc}'"
    )
