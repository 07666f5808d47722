"""The employee view a template reads, and the pure selections that build it (format reference §3, §4.4).

Rows are plain mappings by layout field name (record code excluded), as `esr.format.lines` and the Avro
decoder give them; text spellings of dates are accepted too (`esr.mapping.coerce`). Each list holds one row
per ESR id: the version in force, as the read model keeps it.

Selections, each a pure function of its rows and the run date:

- `select_primary`: the single assignment flagged ``Yes`` (case-insensitive) whose effective end is empty
  or on/after the run date. Several such: the one with the latest effective start. None such: the
  assignment with the latest effective start of all (a leaver keeps the assignment they left last);
  ties go to the one flagged primary, then to the one still open, then to the highest assignment id, so
  the answer never depends on list order.
- `select_home_address`: the addresses in force on the run date (effective start empty or on/before it,
  end empty or on/after it); of those the primary-flagged ones, or, when the trust does not insist on the
  primary address, any when none is flagged; the latest effective start wins, then the highest address id.
- `resolve_line_manager`: the person whose person id is the primary assignment's supervisor person id.
- `resolve_work_location`: the primary assignment's location, else its organisation's location.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from esr.mapping.coerce import as_date

Row = Mapping[str, object]
Resolver = Callable[[str], Row | None]


def _no_row(_: str) -> Row | None:
    return None


@dataclass(frozen=True, slots=True)
class EmployeeView:
    """Everything a mapping template may read about one employee."""

    person: Row
    primary_assignment: Row | None = None
    assignments: Sequence[Row] = ()
    home_address: Row | None = None
    line_manager: Row | None = None  # the supervisor's PRA fields, resolved by the caller
    vehicles: Sequence[Row] = ()
    work_location: Row | None = None
    organisation: Row | None = None
    position: Row | None = None


def is_yes(value: object) -> bool:
    """S1's rule: the flag upper-cased is ``YES`` (outer spaces ignored)."""
    return isinstance(value, str) and value.strip().upper() == "YES"


def _date(row: Row, name: str) -> dt.date | None:
    try:
        return as_date(row.get(name))
    except ValueError:
        return None


def _id_key(value: object) -> tuple[int, int, str]:
    """Orders ids numerically when they are digits (as ESR ids are), text otherwise."""
    text = "" if value is None else str(value).strip()
    if text.isascii() and text.isdigit():
        return (1, int(text), text)
    return (0, 0, text)


def _open_on(row: Row, run_date: dt.date) -> bool:
    end = _date(row, "effective_end")
    return end is None or end >= run_date


def _start(row: Row) -> dt.date:
    return _date(row, "effective_start") or dt.date.min


def select_primary(assignments: Sequence[Row], run_date: dt.date) -> Row | None:
    active_primaries = [a for a in assignments if is_yes(a.get("primary_assignment")) and _open_on(a, run_date)]
    if len(active_primaries) == 1:
        return active_primaries[0]
    if active_primaries:
        return max(active_primaries, key=lambda a: (_start(a), _id_key(a.get("assignment_id"))))
    if not assignments:
        return None
    return max(
        assignments,
        key=lambda a: (
            _start(a),
            is_yes(a.get("primary_assignment")),
            _open_on(a, run_date),
            _id_key(a.get("assignment_id")),
        ),
    )


def _in_force(row: Row, run_date: dt.date) -> bool:
    start = _date(row, "effective_start")
    return (start is None or start <= run_date) and _open_on(row, run_date)


def select_home_address(addresses: Sequence[Row], run_date: dt.date, *, only_primary: bool = True) -> Row | None:
    current = [a for a in addresses if _in_force(a, run_date)]
    pool = [a for a in current if is_yes(a.get("primary_flag"))]
    if not pool and not only_primary:
        pool = current
    if not pool:
        return None
    return max(pool, key=lambda a: (_start(a), _id_key(a.get("address_id"))))


def _ref(row: Row | None, name: str) -> str | None:
    if row is None:
        return None
    value = row.get(name)
    text = "" if value is None else str(value).strip()
    return text or None


def resolve_line_manager(primary: Row | None, people: Resolver) -> Row | None:
    supervisor = _ref(primary, "supervisor_person_id")
    return None if supervisor is None else people(supervisor)


def resolve_work_location(
    primary: Row | None, locations: Resolver, organisations: Resolver = _no_row
) -> Row | None:
    location_id = _ref(primary, "location_id")
    if location_id is not None and (location := locations(location_id)) is not None:
        return location
    organisation_id = _ref(primary, "organisation_id")
    organisation = None if organisation_id is None else organisations(organisation_id)
    fallback = _ref(organisation, "location_id")
    return None if fallback is None else locations(fallback)


def build_view(
    person: Row,
    run_date: dt.date,
    *,
    assignments: Sequence[Row] = (),
    addresses: Sequence[Row] = (),
    vehicles: Sequence[Row] = (),
    people: Resolver = _no_row,
    locations: Resolver = _no_row,
    organisations: Resolver = _no_row,
    positions: Resolver = _no_row,
    only_primary_address: bool = True,
) -> EmployeeView:
    """A view from one person's rows and lookups of the rows they point at (person, location,
    organisation, position by ESR id). Lookups default to "not known"."""
    primary = select_primary(assignments, run_date)
    organisation_id = _ref(primary, "organisation_id")
    position_id = _ref(primary, "position_id")
    return EmployeeView(
        person=person,
        primary_assignment=primary,
        assignments=tuple(assignments),
        home_address=select_home_address(addresses, run_date, only_primary=only_primary_address),
        line_manager=resolve_line_manager(primary, people),
        vehicles=tuple(vehicles),
        work_location=resolve_work_location(primary, locations, organisations),
        organisation=None if organisation_id is None else organisations(organisation_id),
        position=None if position_id is None else positions(position_id),
    )
