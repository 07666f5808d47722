"""The day-to-day changes of a person, as ESR would send them in a change file (§1.6, §1.7).

Each change mutates a `PersonState` and marks what it touched. A change draws its randomness only from the
generator it is given and reads only the person and the static `Trust`, so replaying a person's list of
(kind, day, serial) on a rebuilt person reproduces their state exactly: that list is all the simulation
keeps for a changed person.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

from esr.format.layouts import EntityType
from esr.generate.people import (
    PersonState,
    car_details,
    entity_id,
    is_open,
    new_address,
    new_assignment,
    new_costings,
    new_phone,
    new_vehicle,
    phone_number,
    row_date,
)
from esr.generate.records import Row
from esr.generate.trust import Trust, random_date
from esr.generate.trust import working_hours_timestamp as timestamp_on
from esr.generate.vocab import COSTING_SPLITS, PHONE_TYPES, SECONDARY_POST_HOURS, SURNAMES, TERMINATION_REASONS

_ONE_DAY = dt.timedelta(days=1)
_MAX_SPLIT = max(len(split) for split in COSTING_SPLITS)


@dataclass(frozen=True, slots=True)
class PersonChange:
    kind: str
    eligible: Callable[[Trust, PersonState, dt.date], bool]
    apply: Callable[[Trust, PersonState, dt.date, random.Random], None]
    rate: float  # people changed per day, as a share of the initial employees
    at_least: int = 1  # a day: additions outnumber deletes in a small trust, so something is left to delete


def _secondary_assignments(person: PersonState) -> list[Row]:
    return [row for row in person.rows(EntityType.ASSIGNMENT) if row.get("primary_assignment") == "No"]


def _ended(person: PersonState, entity: EntityType) -> list[Row]:
    return [row for row in person.rows(entity) if not is_open(row)]


def _started_before(rows: list[Row], day: dt.date) -> list[Row]:
    return [row for row in rows if is_open(row) and (row_date(row, "effective_start") or day) < day]


def _stays(trust: Trust, person: PersonState) -> bool:
    """Managers (every supervisor id must stay valid) and showcase people never leave nor are deleted."""
    return trust.is_manager(person.index) or trust.is_showcase(person.index)


# --- deletes of child rows (the entity must exist) ----------------------------------------------------------

def _delete_assignment(_trust: Trust, person: PersonState, _day: dt.date, rng: random.Random) -> None:
    """A secondary assignment, with its vehicles and costings (never the primary one)."""
    assignment = rng.choice(_secondary_assignments(person))
    assignment_id = entity_id(EntityType.ASSIGNMENT, assignment)
    for entity in (EntityType.VEHICLE, EntityType.COSTING):
        for row in [row for row in person.rows(entity) if row["assignment_id"] == assignment_id]:
            person.remove(entity, row)
    person.remove(EntityType.ASSIGNMENT, assignment)


def _delete_phone(_trust: Trust, person: PersonState, _day: dt.date, rng: random.Random) -> None:
    person.remove(EntityType.PHONE, rng.choice(person.rows(EntityType.PHONE)))


def _delete_old_address(_trust: Trust, person: PersonState, _day: dt.date, rng: random.Random) -> None:
    person.remove(EntityType.ADDRESS, rng.choice(_ended(person, EntityType.ADDRESS)))


def _delete_old_vehicle(_trust: Trust, person: PersonState, _day: dt.date, rng: random.Random) -> None:
    person.remove(EntityType.VEHICLE, rng.choice(_ended(person, EntityType.VEHICLE)))


def _delete_old_costing(_trust: Trust, person: PersonState, _day: dt.date, rng: random.Random) -> None:
    """An ended costing: the splits in force still sum to 100."""
    person.remove(EntityType.COSTING, rng.choice(_ended(person, EntityType.COSTING)))


# --- changes of active people ---------------------------------------------------------------------------------

def _leave(_trust: Trust, person: PersonState, day: dt.date, rng: random.Random) -> None:
    """Termination on the PRA; open assignments end with TERM_ASSIGN; their cars end with them."""
    updated = timestamp_on(rng, day)
    person.current.update(
        termination_date=day, termination_reason=rng.choice(TERMINATION_REASONS), last_update_date=updated
    )
    person.changed_versions.add(len(person.versions) - 1)
    for assignment in person.rows(EntityType.ASSIGNMENT):
        if is_open(assignment):
            assignment.update(
                effective_end=day, assignment_end_date=day, last_working_day=day,
                system_assignment_status="TERM_ASSIGN", user_assignment_status="Terminate Assignment",
                last_update_date=updated,
            )
            person.mark(EntityType.ASSIGNMENT, assignment)
    for vehicle in person.rows(EntityType.VEHICLE):
        if is_open(vehicle):
            vehicle.update(effective_end=day, last_update_date=updated)
            person.mark(EntityType.VEHICLE, vehicle)


def _can_leave(trust: Trust, person: PersonState, day: dt.date) -> bool:
    return not person.terminated and not _stays(trust, person) and person.hire_date < day


def _change_surname(_trust: Trust, person: PersonState, day: dt.date, rng: random.Random) -> None:
    """A new PRA version from `day`; the old one is re-sent ending the day before."""
    updated = timestamp_on(rng, day)
    old = person.current
    new = dict(old)
    old.update(effective_end=day - _ONE_DAY, last_update_date=updated)
    surname = rng.choice([name for name in SURNAMES if name != old["last_name"]])
    new.update(effective_start=day, last_name=surname, previous_last_name=old["last_name"],
               last_update_date=updated)
    if new.get("gender") == "F" and new.get("title") in ("Miss", "Ms."):
        new.update(title="Mrs.", maiden_name=new.get("maiden_name") or old["last_name"], marital_status="Married")
    person.versions.append(new)
    person.changed_versions.update((len(person.versions) - 2, len(person.versions) - 1))


def _can_change_surname(_trust: Trust, person: PersonState, day: dt.date) -> bool:
    start = row_date(person.current, "effective_start")
    return not person.terminated and start is not None and start < day


def _move_house(_trust: Trust, person: PersonState, day: dt.date, rng: random.Random) -> None:
    """The current address ends the day before; a new primary address starts on `day`."""
    updated = timestamp_on(rng, day)
    for address in _started_before(person.rows(EntityType.ADDRESS), day):
        address.update(effective_end=day - _ONE_DAY, last_update_date=updated)
        person.mark(EntityType.ADDRESS, address)
    person.add(EntityType.ADDRESS, new_address(person, day, rng, updated))


def _can_move_house(_trust: Trust, person: PersonState, day: dt.date) -> bool:
    open_addresses = [row for row in person.rows(EntityType.ADDRESS) if is_open(row)]
    return (not person.terminated and person.has_room(EntityType.ADDRESS) and bool(open_addresses)
            and _started_before(open_addresses, day) == open_addresses)


def _change_phone_number(_trust: Trust, person: PersonState, day: dt.date, rng: random.Random) -> None:
    """A new number for the same phone row (one of a thousand drama numbers: draw until it differs)."""
    phone = rng.choice(person.rows(EntityType.PHONE))
    phone_type = phone.get("phone_type")
    number = phone["phone_number"]
    while number == phone["phone_number"]:
        number = phone_number(phone_type if isinstance(phone_type, str) else "M", rng)
    phone.update(phone_number=number, last_update_date=timestamp_on(rng, day))
    person.mark(EntityType.PHONE, phone)


def _can_change_phone(_trust: Trust, person: PersonState, _day: dt.date) -> bool:
    return not person.terminated and bool(person.rows(EntityType.PHONE))


def _add_phone(_trust: Trust, person: PersonState, day: dt.date, rng: random.Random) -> None:
    """A phone of a type the person has not got."""
    phone_type = rng.choice(_missing_phone_types(person))
    person.add(EntityType.PHONE, new_phone(person, phone_type, day, rng, timestamp_on(rng, day)))


def _missing_phone_types(person: PersonState) -> list[str]:
    present = {row.get("phone_type") for row in person.rows(EntityType.PHONE)}
    return [phone_type for phone_type in PHONE_TYPES if phone_type not in present]


def _can_add_phone(_trust: Trust, person: PersonState, _day: dt.date) -> bool:
    return not person.terminated and person.has_room(EntityType.PHONE) and bool(_missing_phone_types(person))


def _costable_assignments(person: PersonState, day: dt.date) -> list[Row]:
    """Open assignments whose costings in force all started before `day` (so they can end the day before)."""
    costings = person.rows(EntityType.COSTING)
    return [
        assignment for assignment in _started_before(person.rows(EntityType.ASSIGNMENT), day)
        if all((row_date(row, "effective_start") or day) < day for row in costings
               if is_open(row) and row["assignment_id"] == assignment["assignment_id"])
    ]


def _change_costing(trust: Trust, person: PersonState, day: dt.date, rng: random.Random) -> None:
    """The assignment's splits in force end the day before; a new split (summing to 100) starts on `day`."""
    assignment = rng.choice(_costable_assignments(person, day))
    updated = timestamp_on(rng, day)
    for costing in person.rows(EntityType.COSTING):
        if is_open(costing) and costing["assignment_id"] == assignment["assignment_id"]:
            costing.update(effective_end=day - _ONE_DAY, last_update_date=updated)
            person.mark(EntityType.COSTING, costing)
    post = trust.post(rng.randrange(trust.position_count))
    for costing in new_costings(trust, person, assignment, day, rng.choice(COSTING_SPLITS), post.cost_centre,
                                post.job.subjective_code, rng, updated):
        person.add(EntityType.COSTING, costing)


def _can_change_costing(_trust: Trust, person: PersonState, day: dt.date) -> bool:
    return (not person.terminated and person.has_room(EntityType.COSTING, _MAX_SPLIT)
            and bool(_costable_assignments(person, day)))


def _end_vehicle(_trust: Trust, person: PersonState, day: dt.date, rng: random.Random) -> None:
    vehicle = rng.choice(_started_before(person.rows(EntityType.VEHICLE), day))
    vehicle.update(effective_end=day, last_update_date=timestamp_on(rng, day))
    person.mark(EntityType.VEHICLE, vehicle)


def _can_end_vehicle(_trust: Trust, person: PersonState, day: dt.date) -> bool:
    return not person.terminated and bool(_started_before(person.rows(EntityType.VEHICLE), day))


# --- additions ---------------------------------------------------------------------------------------------

def _add_secondary_assignment(trust: Trust, person: PersonState, day: dt.date, rng: random.Random) -> None:
    """A new part-time post numbered `<employee number>-<n>`, costed 100% to the post's cost centre."""
    updated = timestamp_on(rng, day)
    post = trust.post(rng.randrange(trust.position_count))
    assignment = new_assignment(trust, person, post, day, day, rng.choice(SECONDARY_POST_HOURS),
                                trust.supervisor_of(person.index, rng), rng, updated)
    person.add(EntityType.ASSIGNMENT, assignment)
    for costing in new_costings(trust, person, assignment, day, (Decimal(100),), post.cost_centre,
                                post.job.subjective_code, rng, updated):
        person.add(EntityType.COSTING, costing)


def _can_add_secondary_assignment(_trust: Trust, person: PersonState, _day: dt.date) -> bool:
    return not person.terminated and person.has_room(EntityType.ASSIGNMENT) and person.has_room(EntityType.COSTING)


def _add_vehicle(_trust: Trust, person: PersonState, day: dt.date, rng: random.Random) -> None:
    assignment = rng.choice([row for row in person.rows(EntityType.ASSIGNMENT) if is_open(row)])
    car = car_details(rng, random_date(rng, day - dt.timedelta(days=4000), day))
    person.add(EntityType.VEHICLE, new_vehicle(person, assignment, car, day, timestamp_on(rng, day)))


def _can_add_vehicle(_trust: Trust, person: PersonState, _day: dt.date) -> bool:
    return (not person.terminated and person.has_room(EntityType.VEHICLE)
            and any(map(is_open, person.rows(EntityType.ASSIGNMENT))))


def _has_secondary_assignment(_trust: Trust, person: PersonState, _day: dt.date) -> bool:
    return bool(_secondary_assignments(person))


def _has_any(entity: EntityType) -> Callable[[Trust, PersonState, dt.date], bool]:
    return lambda _trust, person, _day: bool(person.rows(entity))


def _has_ended(entity: EntityType) -> Callable[[Trust, PersonState, dt.date], bool]:
    return lambda _trust, person, _day: bool(_ended(person, entity))


# In the order they are applied each day: deletes first (so they only hit rows that existed before the
# day), then leavers, then changes, then additions.
PERSON_CHANGES = (
    PersonChange("assignment_deleted", _has_secondary_assignment, _delete_assignment, 0.0001),
    PersonChange("phone_deleted", _has_any(EntityType.PHONE), _delete_phone, 0.0001),
    PersonChange("address_deleted", _has_ended(EntityType.ADDRESS), _delete_old_address, 0.0001),
    PersonChange("vehicle_deleted", _has_ended(EntityType.VEHICLE), _delete_old_vehicle, 0.0001),
    PersonChange("costing_deleted", _has_ended(EntityType.COSTING), _delete_old_costing, 0.0001),
    PersonChange("leaver", _can_leave, _leave, 0.0025),
    PersonChange("surname_changed", _can_change_surname, _change_surname, 0.0004),
    PersonChange("address_changed", _can_move_house, _move_house, 0.0008),
    PersonChange("phone_changed", _can_change_phone, _change_phone_number, 0.0008),
    PersonChange("costing_changed", _can_change_costing, _change_costing, 0.0004),
    PersonChange("vehicle_ended", _can_end_vehicle, _end_vehicle, 0.0003, at_least=2),
    PersonChange("secondary_assignment_added", _can_add_secondary_assignment, _add_secondary_assignment, 0.0004,
                 at_least=2),
    PersonChange("phone_added", _can_add_phone, _add_phone, 0.0004, at_least=2),
    PersonChange("vehicle_added", _can_add_vehicle, _add_vehicle, 0.0006, at_least=3),
)
BY_KIND = {change.kind: change for change in PERSON_CHANGES}


def can_be_deleted(trust: Trust, person: PersonState, _day: dt.date) -> bool:
    return not _stays(trust, person)
