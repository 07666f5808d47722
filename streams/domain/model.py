"""The data model the diff works on: canonical values, date-tracked versions, entities, field diffs.

Values are kept as canonical text from the moment a record is read: ISO dates (`2024-03-01`), ISO timestamps
(`2024-02-29T10:10:10`), decimals in plain notation with their scale (`37.50000`), integers in decimal. Text
is what the change events carry anyway (DESIGN §4), text compares and hashes fast, ISO dates order as
dates, and a state made of text round-trips through JSON exactly without a type tag. Only non-null fields
are kept: an absent key is a null.

Date tracking (esr-outbound-v2.md §1.7, Q11, Q12): an entity is several versions keyed by their effective
start date. The version *in force* at a run date is the one whose start <= run date <= end (a blank end,
or Oracle's 4712-12-31, is open); when several are, the latest start wins; when none is, the version with
the latest start stands for the entity (DESIGN §5).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from esr.codec.reader import TextRecord, to_text
from esr.format.layouts import REFERENCE_ENTITIES, EntityType

Values = dict[str, str]  # canonical text of the non-null fields, by field name
Versions = dict[str, Values]  # effective start (ISO date; "" for an entity without one) -> values

END_OF_TIME = "4712-12-31"  # Q11: the same as a blank end date
NO_START = ""  # the version key of an entity that is not date-tracked (LCA) or whose row has no start


class Entity(NamedTuple):
    """One ESR entity: its versions and the file that last contained it (for full-file reconciliation).

    Immutable by convention: an update builds a new Entity (and a new versions dict when a version
    changed), so journals and earlier states can share the old one without copying.
    """

    versions: Versions
    sha: str  # SHA-256 of the last file that contained the entity
    run: str  # that file's run date (ISO date)
    seq: int  # that file's ESR sequence


class InputRecord(NamedTuple):
    """One decoded record event (`Decoder("record-event").decode`) and where it was read from.

    A NamedTuple, not a frozen dataclass: one is made per record in the worker, at a third of the cost.
    """

    event: dict[str, Any]
    topic: str
    partition: int
    offset: int


@dataclass(frozen=True, slots=True)
class Tracking:
    """Which fields date-track an entity type: the version key and the end of the version."""

    start: str | None
    end: str | None


_EFFECTIVE = Tracking("effective_start", "effective_end")
_FROM_TO = Tracking("effective_from", "effective_to")
TRACKING: dict[str, Tracking] = {
    EntityType.PERSON.value: _EFFECTIVE,
    EntityType.ASSIGNMENT.value: _EFFECTIVE,
    EntityType.PHONE.value: _EFFECTIVE,
    EntityType.ADDRESS.value: _EFFECTIVE,
    EntityType.VEHICLE.value: _EFFECTIVE,
    EntityType.COSTING.value: _EFFECTIVE,
    EntityType.ORGANISATION.value: _FROM_TO,
    EntityType.POSITION.value: _FROM_TO,
    EntityType.LOCATION.value: Tracking(None, None),  # one version; Inactive Date is data, not tracking
}
PERSON_SCOPED = frozenset(e.value for e in EntityType if e not in REFERENCE_ENTITIES)
REFERENCE_TYPES = frozenset(e.value for e in REFERENCE_ENTITIES)

# Fields whose change alone is no business change: a re-sent row with a new Last Update Date emits nothing.
INSIGNIFICANT = frozenset({"last_update_date"})


#: the canonical text of a typed value (see the module doc); None stays None. The codec's reader produces
#: the same text when it reads a payload as a `TextRecord`, so it is defined once, there.
render = to_text


def canonical(payload: Mapping[str, Any]) -> Values:
    """A record event's payload as canonical values (nulls dropped).

    A payload the decoder read as text (`esr.codec.TextRecord`, the worker's case) already is that, and is
    returned as it is (it is never changed: an entity's versions share it).
    """
    if type(payload) is TextRecord:
        return payload
    return {k: (v if type(v) is str else render(v)) for k, v in payload.items() if v is not None}  # type: ignore[misc]


def run_day(run_date: dt.datetime | dt.date | str | None) -> str:
    """The ISO date versions are selected at: the file's run date (a source's `run_date`)."""
    if run_date is None:
        return "9999-12-31"  # no run date: the latest versions
    if isinstance(run_date, str):
        return run_date[:10]
    if isinstance(run_date, dt.datetime):
        return run_date.date().isoformat()
    return run_date.isoformat()


def is_open(end: str | None) -> bool:
    """A blank end date or Oracle's end of time (Q11)."""
    return end is None or end >= END_OF_TIME


def in_force(versions: Versions, run: str, end_field: str | None) -> Values | None:
    """The version that stands for the entity at `run` (module doc); None when there is none."""
    if len(versions) == 1:
        for values in versions.values():
            return values
    if not versions:
        return None
    best: str | None = None
    for start, values in versions.items():
        if start <= run and (best is None or start > best):
            end = values.get(end_field) if end_field is not None else None
            if end is None or end >= run:
                best = start
    return versions[best if best is not None else max(versions)]


def preceding(versions: Versions, key: str) -> Values | None:
    """The version just before `key` on the entity's timeline (None when `key` is the earliest)."""
    earlier = [start for start in versions if start < key]
    return versions[max(earlier)] if earlier else None


def diff(before: Mapping[str, str] | None, after: Mapping[str, str] | None) -> list[dict[str, str | None]]:
    """Field changes from `before` to `after` (None = no entity): fields of `after` first, in its order,
    then fields only `before` had (new value None)."""
    if before is None:
        return [{"field": field, "old": None, "new": value} for field, value in (after or {}).items()]
    old = before
    new = after or {}
    changes: list[dict[str, str | None]] = []
    for field, value in new.items():
        was = old.get(field)
        if was != value:
            changes.append({"field": field, "old": was, "new": value})
    for field, was in old.items():
        if field not in new:
            changes.append({"field": field, "old": was, "new": None})
    return changes


def apply_changes(before: Mapping[str, str | None] | None, changes: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    """`before` with `changes` applied (a null new value removes the field): what a consumer does with an
    event, and the invariant every event keeps: `apply_changes(before, changes) == (after or {})`."""
    result = {k: v for k, v in (before or {}).items() if v is not None}
    for change in changes:
        if change["new"] is None:
            result.pop(change["field"], None)
        else:
            result[change["field"]] = change["new"]
    return result


def as_date(value: str | None) -> dt.date | None:
    """An ISO date (or the date of an ISO timestamp) as a date; None for anything else."""
    if not value:
        return None
    try:
        return dt.date.fromisoformat(value[:10])
    except ValueError:
        return None
