"""NHS mileage: a trust's mileage categories, their CSV import, vehicle matching. Pure."""

from esr.mileage.csv_import import categories_to_csv, parse_categories_csv
from esr.mileage.model import (
    MatchResult,
    MileageCategory,
    Unmatched,
    category_problems,
    match_vehicle,
    normalise_engine_cc,
    table_problems,
    validate_table,
)

__all__ = [
    "MatchResult",
    "MileageCategory",
    "Unmatched",
    "categories_to_csv",
    "category_problems",
    "match_vehicle",
    "normalise_engine_cc",
    "parse_categories_csv",
    "table_problems",
    "validate_table",
]
