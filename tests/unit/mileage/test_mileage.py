"""esr.mileage: categories, the CSV import and vehicle matching at the band edges."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from esr.mileage import (
    MileageCategory,
    Unmatched,
    categories_to_csv,
    category_problems,
    match_vehicle,
    normalise_engine_cc,
    parse_categories_csv,
    table_problems,
    validate_table,
)
from esr.validation import ValidationError

CASUAL = "NHS_MILEAGE_CASUAL"
TABLE = (
    MileageCategory(CASUAL, 0, 1500, Decimal("0.56"), "Up to 1500cc"),
    MileageCategory(CASUAL, 1501, 2000, Decimal("0.60"), "1501 to 2000cc"),
    MileageCategory(CASUAL, 2001, None, Decimal("0.65"), "Over 2000cc"),
    MileageCategory("NHS_MILEAGE_ESSENTIAL", 1000, 1999, Decimal("0.70")),
)
CSV = """code,engine_from,engine_to,rate_per_mile,description
NHS_MILEAGE_CASUAL,0,1500,0.56,Up to 1500cc
NHS_MILEAGE_CASUAL,1501,2000,0.60,1501 to 2000cc
NHS_MILEAGE_CASUAL,2001,,0.65,Over 2000cc
NHS_MILEAGE_ESSENTIAL,1000,1999,0.70,
"""


def rate(engine_cc: object, code: str | None = CASUAL) -> Decimal | None:
    result = match_vehicle(code, engine_cc, TABLE)  # type: ignore[arg-type]
    return None if result.category is None else result.category.rate_per_mile


# --- matching --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("engine_cc", "expected"),
    [
        (0, Decimal("0.56")),
        (1, Decimal("1.56") - 1),  # 1 is litres: 1000cc
        (1500, Decimal("0.56")),  # upper edge inclusive
        (1501, Decimal("0.60")),  # lower edge inclusive
        (2000, Decimal("0.60")),
        (2001, Decimal("0.65")),
        (99_999, Decimal("0.65")),  # open-ended band
    ],
)
def test_band_edges_are_inclusive(engine_cc: int, expected: Decimal) -> None:
    assert rate(engine_cc) == expected


@pytest.mark.parametrize(
    ("engine_cc", "normalised"),
    [
        (Decimal("1.5"), 1500),
        (Decimal("1.6"), 1600),
        ("1.4", 1400),
        (1.2, 1200),
        (Decimal("1.5005"), 1501),  # 1500.5 rounds half up
        (Decimal("1.5004"), 1500),
        (Decimal("9.999"), 9999),
        (10, 10),  # 10 and above are cc
        (Decimal("9.9999"), 10000),
        (Decimal("1596.000"), 1596),
        (Decimal("0.5"), 500),
        (0, 0),
        (-5, -5),
        (None, None),
        ("", None),
        ("  ", None),
    ],
)
def test_engine_cc_normalisation(engine_cc: object, normalised: int | None) -> None:
    assert normalise_engine_cc(engine_cc) == normalised  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", ["1.6l", "NaN", "Infinity", True])
def test_engine_cc_that_is_not_a_number(bad: object) -> None:
    with pytest.raises(ValueError, match="not an engine size"):
        normalise_engine_cc(bad)  # type: ignore[arg-type]


def test_litres_land_in_the_right_band() -> None:
    assert rate(Decimal("1.5")) == Decimal("0.56")
    assert rate(Decimal("1.501")) == Decimal("0.60")
    assert rate("2.0") == Decimal("0.60")
    assert rate("2.001") == Decimal("0.65")


@pytest.mark.parametrize("code", [CASUAL, "nhs_mileage_casual", "Nhs_Mileage_Casual", f"  {CASUAL} "])
def test_code_match_is_case_insensitive(code: str) -> None:
    result = match_vehicle(code, 1596, TABLE)
    assert result.matched
    assert result.category == TABLE[1]
    assert result.engine_cc == 1596
    assert result.reason is None
    assert result.message is None


def test_code_not_found() -> None:
    result = match_vehicle("NHS_MILEAGE_STANDARD", 1596, TABLE)
    assert not result.matched
    assert result.reason is Unmatched.CODE_NOT_FOUND
    assert result.message == "Could not find Mileage Rate 'NHS_MILEAGE_STANDARD' with an engine capacity of '1596'"


def test_no_band_for_the_engine() -> None:
    result = match_vehicle("NHS_MILEAGE_ESSENTIAL", Decimal("2.5"), TABLE)
    assert result.reason is Unmatched.NO_BAND
    assert result.engine_cc == 2500
    assert result.message == "Found Mileage Rate 'NHS_MILEAGE_ESSENTIAL' but no match for an engine capacity of '2500'"
    assert match_vehicle("NHS_MILEAGE_ESSENTIAL", 999, TABLE).reason is Unmatched.NO_BAND  # just below the band
    assert match_vehicle("NHS_MILEAGE_ESSENTIAL", 1000, TABLE).matched
    assert match_vehicle("NHS_MILEAGE_ESSENTIAL", 1999, TABLE).matched
    assert match_vehicle("NHS_MILEAGE_ESSENTIAL", 2000, TABLE).reason is Unmatched.NO_BAND  # just above


def test_no_engine_size() -> None:
    for missing in (None, "", "junk"):
        result = match_vehicle(CASUAL, missing, TABLE)
        assert result.reason is Unmatched.NO_ENGINE_CC
        assert result.message == f"Found Mileage Rate '{CASUAL}' but no match for an engine capacity of ''"


def test_no_user_rates_table() -> None:
    for missing in (None, "", "   "):
        result = match_vehicle(missing, 1596, TABLE)
        assert result.reason is Unmatched.NO_RATES_TABLE
        assert result.message is not None
        assert result.message.startswith("Could not find Mileage Rate ''")


def test_empty_table() -> None:
    assert match_vehicle(CASUAL, 1596, []).reason is Unmatched.CODE_NOT_FOUND


def test_overlapping_bands_still_match_deterministically() -> None:
    overlapping = [MileageCategory("X", 1000, 3000, Decimal(2)), MileageCategory("X", 0, 2000, Decimal(1))]
    assert match_vehicle("X", 1500, overlapping).category == overlapping[1]
    assert match_vehicle("X", 1500, list(reversed(overlapping))).category == overlapping[1]


_bands = st.lists(st.integers(1, 5000), min_size=1, max_size=6, unique=True).map(sorted)


@given(_bands, st.integers(0, 6000), st.booleans())
def test_contiguous_bands_cover_every_cc_exactly_once(cuts: list[int], engine_cc: int, open_top: bool) -> None:
    starts = [0, *[c + 1 for c in cuts]]
    ends: list[int | None] = [*cuts, None if open_top else 5001]
    table = [MileageCategory("C", s, e, Decimal(i)) for i, (s, e) in enumerate(zip(starts, ends, strict=True))]
    validate_table(table)
    cc = normalise_engine_cc(engine_cc)  # under 10 is litres
    assert cc is not None
    containing = [c for c in table if c.contains(cc)]
    result = match_vehicle("c", engine_cc, table)
    if cc <= 5001 or open_top:
        assert len(containing) == 1
        assert result.category == containing[0]
    else:
        assert not containing
        assert result.reason is Unmatched.NO_BAND


# --- validation ------------------------------------------------------------------------------------------


def test_valid_table() -> None:
    assert validate_table(TABLE) == TABLE


@pytest.mark.parametrize(
    ("category", "path", "fragment"),
    [
        (MileageCategory("", 0, 1, Decimal(1)), "code", "must not be empty"),
        (MileageCategory(" X", 0, 1, Decimal(1)), "code", "no outer spaces"),
        (MileageCategory("X" * 81, 0, 1, Decimal(1)), "code", "at most 80"),
        (MileageCategory("X", -1, 1, Decimal(1)), "engine_from", "whole number of cc"),
        (MileageCategory("X", True, 1, Decimal(1)), "engine_from", "whole number of cc"),
        (MileageCategory("X", 0, 100_001, Decimal(1)), "engine_to", "whole number of cc"),
        (MileageCategory("X", 2000, 1999, Decimal(1)), "engine_to", "1999 is below engine_from 2000"),
        (MileageCategory("X", 0, 1, Decimal(-1)), "rate_per_mile", "amount of 0 or more"),
        (MileageCategory("X", 0, 1, Decimal("NaN")), "rate_per_mile", "amount of 0 or more"),
        (MileageCategory("X", 0, 1, 0.5), "rate_per_mile", "amount of 0 or more"),  # type: ignore[arg-type]
        (MileageCategory("X", 0, 1, Decimal("0.12345")), "rate_per_mile", "more than 4 decimal places"),
        (MileageCategory("X", 0, 1, Decimal(1), "d" * 241), "description", "at most 240"),
    ],
)
def test_category_problems(category: MileageCategory, path: str, fragment: str) -> None:
    problems = category_problems(category)
    assert len(problems) == 1
    assert problems[0].path == path
    assert fragment in problems[0].message


def test_single_cc_band_is_valid() -> None:
    assert category_problems(MileageCategory("X", 1500, 1500, Decimal(1))) == []


def test_duplicates_and_overlaps_within_a_code() -> None:
    table = [
        MileageCategory("X", 0, 1500, Decimal(1)),
        MileageCategory("x", 0, 1200, Decimal(1)),  # same key: codes compare case-insensitively
        MileageCategory("X", 1500, 2000, Decimal(1)),  # shares 1500 with the first band
        MileageCategory("Y", 0, 1500, Decimal(1)),  # another code: fine
        MileageCategory("X", 3000, None, Decimal(1)),
        MileageCategory("X", 4000, 5000, Decimal(1)),  # inside the open-ended band
    ]
    problems = [str(p) for p in table_problems(table)]
    assert problems == [
        "categories[1]: duplicates categories[0] (X from 0cc)",
        "categories[2]: band 1500-2000cc overlaps categories[0] (0-1500cc) of X",
        "categories[5]: band 4000-5000cc overlaps categories[4] (3000-cc) of X",
    ]
    with pytest.raises(ValidationError, match="invalid mileage categories"):
        validate_table(table)


# --- CSV -------------------------------------------------------------------------------------------------


def test_csv_import() -> None:
    assert parse_categories_csv(CSV) == TABLE


def test_csv_variants() -> None:
    text = "\ufeffRate_Per_Mile, Code ,ENGINE_TO,engine_from\r\n\r\n£0.56,NHS_MILEAGE_CASUAL,1500,0\r\n"
    assert parse_categories_csv(text.encode("utf-8")) == (MileageCategory(CASUAL, 0, 1500, Decimal("0.56")),)
    assert parse_categories_csv("code,engine_from,engine_to,rate_per_mile\nX,0,,1\n".encode("cp1252")) == (
        MileageCategory("X", 0, None, Decimal(1)),
    )
    quoted = 'code,engine_from,engine_to,rate_per_mile,description\nX,0,1,1,"Small, cheap"\n'
    assert parse_categories_csv(quoted)[0].description == "Small, cheap"
    pounds = "code,engine_from,engine_to,rate_per_mile\nX,0,1,£0.56\n".encode("cp1252")
    assert parse_categories_csv(pounds) == (MileageCategory("X", 0, 1, Decimal("0.56")),)


def test_csv_round_trip() -> None:
    assert parse_categories_csv(categories_to_csv(TABLE)) == TABLE


def csv_errors(text: str) -> list[str]:
    with pytest.raises(ValidationError) as raised:
        parse_categories_csv(text)
    return [str(p) for p in raised.value.problems]


def test_csv_errors_name_line_and_field() -> None:
    text = (
        "code,engine_from,engine_to,rate_per_mile\n"
        ",0,1500,0.56\n"  # line 2
        "X,abc,1500,0.56\n"  # line 3
        "X,0,1.5,0.56\n"  # line 4
        "X,0,1500,56p\n"  # line 5
        "X,0,1500\n"  # line 6
        "X,2000,1000,0.5\n"  # line 7
        "X,0,1500,\n"  # line 8
        "X,1,1500,0.123456\n"  # line 9
    )
    assert csv_errors(text) == [
        "line 2, field code: must not be empty",
        "line 3, field engine_from: 'abc' is not a whole number of cc",
        "line 4, field engine_to: '1.5' is not a whole number of cc",
        "line 5, field rate_per_mile: '56p' is not an amount such as 0.56",
        "line 6: has 3 fields, the header has 4",
        "line 7, field engine_to: 1000 is below engine_from 2000",
        "line 8, field rate_per_mile: must not be empty",
        "line 9, field rate_per_mile: 0.123456 has more than 4 decimal places",
    ]


def test_csv_duplicates_and_overlaps_name_lines() -> None:
    text = "code,engine_from,engine_to,rate_per_mile\nX,0,1500,1\nY,0,1500,1\nx,1000,2000,1\n"
    assert csv_errors(text) == ["line 4: band 1000-2000cc overlaps line 2 (0-1500cc) of X"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "line 1: the file is empty: expected a header code,engine_from,engine_to,rate_per_mile,description"),
        ("\n\n", "line 1: the file is empty"),
        ("code,engine_from,rate_per_mile\n", "line 1: missing column(s) engine_to"),
        ("code,engine_from,engine_to,rate_per_mile,colour\n", "line 1: unknown column(s) 'colour'"),
        ("code,code,engine_from,engine_to,rate_per_mile\n", "line 1: column(s) named twice: code"),
        ('code,engine_from,engine_to,rate_per_mile\n"X,0,1,1\n', "not valid CSV"),
    ],
)
def test_csv_header_and_file_errors(text: str, expected: str) -> None:
    assert any(e.startswith(expected) or expected in e for e in csv_errors(text)), csv_errors(text)


def test_header_only_is_an_empty_table() -> None:
    assert parse_categories_csv("code,engine_from,engine_to,rate_per_mile\n") == ()


_categories = st.builds(
    MileageCategory,
    st.text(alphabet="ABCXYZ_abc,\" ", min_size=1, max_size=12).map(str.strip).filter(bool),
    st.integers(0, 50_000),
    st.one_of(st.none(), st.integers(50_001, 100_000)),
    st.decimals(min_value=0, max_value=100, places=2),
    st.text(alphabet="abc ,\"'", max_size=10).map(str.strip),
)


@given(st.lists(_categories, max_size=5, unique_by=lambda c: c.code.casefold()))
def test_any_valid_table_round_trips_through_csv(categories: list[MileageCategory]) -> None:
    assert parse_categories_csv(categories_to_csv(categories)) == tuple(categories)
