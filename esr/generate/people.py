"""A person and everything ESR sends with them (PRA and its ASA, PHA, ADA, VHA, COA rows).

`build_person` derives a person's starting data from a generator seeded by (seed, person index) alone, so
the full file streams person by person and a changed person can be rebuilt from scratch at any time.
"""

from __future__ import annotations

import datetime as dt
import random
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal

from esr.format.layouts import BY_ENTITY, PERSON, EntityType
from esr.generate.records import DeleteRow, GeneratedLine, RecordRow, Row
from esr.generate.trust import CHILD_SLOTS, Post, Trust, landline, postcode, random_date, street_line
from esr.generate.trust import working_hours_timestamp as timestamp_on
from esr.generate.vocab import (
    ACCENTED_FEMALE_FIRST_NAMES,
    ACCENTED_MALE_FIRST_NAMES,
    ACCENTED_SURNAMES,
    ASSIGNMENT_CATEGORIES,
    CARS,
    COSTING_SPLITS,
    COUNTRIES_OF_BIRTH,
    ETHNIC_ORIGINS,
    FEMALE_FIRST_NAMES,
    FEMALE_TITLES,
    FULL_TIME_HOURS,
    LOCALITIES,
    MALE_FIRST_NAMES,
    MARITAL_STATUSES,
    NATIONALITIES,
    OWNERSHIPS,
    PART_TIME_HOURS,
    PEOPLE_GROUPS,
    REGISTRATION_LETTERS,
    SECONDARY_POST_HOURS,
    SURNAMES,
    TOWNS,
    USER_RATES_TABLES,
)

# A person's block (§1.8): PRA rows, then children in this order.
CHILD_ENTITIES = (EntityType.ASSIGNMENT, EntityType.PHONE, EntityType.ADDRESS, EntityType.VEHICLE,
                  EntityType.COSTING)
# Delete rows close the block, an assignment's vehicles and costings before the assignment itself.
DELETE_ORDER = (EntityType.VEHICLE, EntityType.COSTING, EntityType.PHONE, EntityType.ADDRESS,
                EntityType.ASSIGNMENT)
ACCENTED_NAME_RATE = 0.03
SECONDARY_ASSIGNMENT_RATE = 0.10
VEHICLE_RATE = 0.20
OLD_ADDRESS_RATE = 0.25
COSTING_HISTORY_RATE = 0.10
LITRES_ENGINE_RATE = 0.02
_ONE_DAY = dt.timedelta(days=1)
_CENTS = Decimal("0.01")
_ASCII_FOLD = str.maketrans({"ø": "o", "Ø": "O", "ß": "ss", "æ": "ae", "Æ": "AE"})


@dataclass(slots=True)
class PersonState:
    """One person's current rows, plus what changed since the last block was sent."""

    index: int
    person_id: str
    versions: list[Row]  # date-tracked PRA rows, oldest first; the last is current
    children: dict[EntityType, list[Row]] = field(default_factory=lambda: {e: [] for e in CHILD_ENTITIES})
    next_slot: dict[EntityType, int] = field(default_factory=lambda: dict.fromkeys(CHILD_ENTITIES, 0))
    is_new: bool = False  # a new starter: the whole block is sent
    changed_versions: set[int] = field(default_factory=set)
    changed: set[tuple[EntityType, str]] = field(default_factory=set)
    removed: list[tuple[EntityType, str]] = field(default_factory=list)

    @property
    def current(self) -> Row:
        return self.versions[-1]

    @property
    def terminated(self) -> bool:
        return self.current.get("termination_date") is not None

    @property
    def hire_date(self) -> dt.date:
        value = self.current["hire_date"]
        assert isinstance(value, dt.date)
        return value

    def rows(self, entity: EntityType) -> list[Row]:
        return self.children[entity]

    def has_room(self, entity: EntityType, count: int = 1) -> bool:
        return self.next_slot[entity] + count <= CHILD_SLOTS

    def new_id(self, entity: EntityType) -> str:
        slot = self.next_slot[entity]
        if slot >= CHILD_SLOTS:
            raise RuntimeError(f"person {self.person_id} has used all {CHILD_SLOTS} {entity.value} ids")
        self.next_slot[entity] = slot + 1
        return Trust.child_id(entity, self.index, slot)

    def add(self, entity: EntityType, row: Row) -> None:
        self.children[entity].append(row)
        self.mark(entity, row)

    def mark(self, entity: EntityType, row: Row) -> None:
        self.changed.add((entity, entity_id(entity, row)))

    def remove(self, entity: EntityType, row: Row) -> None:
        self.children[entity].remove(row)
        key = (entity, entity_id(entity, row))
        self.changed.discard(key)
        self.removed.append(key)

    def block(self, *, whole: bool) -> Iterator[GeneratedLine]:
        """The person's lines: everything (`whole`), or the changed rows with the current PRA (Q9)."""
        if whole or self.is_new:
            yield from (RecordRow(PERSON, version) for version in self.versions)
            for entity in CHILD_ENTITIES:
                yield from (RecordRow(BY_ENTITY[entity], row) for row in self.children[entity])
            return
        last = len(self.versions) - 1
        for number, version in enumerate(self.versions):
            if number in self.changed_versions or number == last:
                yield RecordRow(PERSON, version)
        for entity in CHILD_ENTITIES:
            for row in self.children[entity]:
                if (entity, entity_id(entity, row)) in self.changed:
                    yield RecordRow(BY_ENTITY[entity], row)
        for entity in DELETE_ORDER:
            yield from (DeleteRow(BY_ENTITY[entity], key) for kind, key in self.removed if kind is entity)


def entity_id(entity: EntityType, row: Row) -> str:
    value = row[BY_ENTITY[entity].key_field]
    assert isinstance(value, str)
    return value


def row_date(row: Row, name: str) -> dt.date | None:
    value = row.get(name)
    assert value is None or isinstance(value, dt.date)
    return value


def is_open(row: Row) -> bool:
    return row.get("effective_end") is None


def ascii_fold(text: str) -> str:
    """"Ó Súilleabháin" -> "osuilleabhain": for e-mail addresses."""
    decomposed = unicodedata.normalize("NFKD", text.translate(_ASCII_FOLD))
    return "".join(ch for ch in decomposed if ch.isascii() and ch.isalnum()).lower()


def build_person(trust: Trust, index: int, hired_on: dt.date | None = None) -> PersonState:
    """A person of the full file (`hired_on` None) or a new starter hired on `hired_on`.

    Dates of the full file's people lie before `trust.start`; a starter's are all `hired_on`, and only
    people already in ESR have history (ended addresses, cars and costings).
    """
    builder = _PersonBuilder(trust, index, hired_on)
    primary_post = trust.post(builder.rng.randrange(trust.position_count))
    state = PersonState(index, trust.person_id(index), [builder.person_row(primary_post)],
                        is_new=hired_on is not None)
    assignments = builder.add_assignments(state, primary_post)
    builder.add_phones(state)
    builder.add_addresses(state)
    builder.add_vehicles(state, assignments)
    state.changed.clear()
    return state


class _PersonBuilder:
    """The steps of `build_person`, sharing the person's generator (the order of draws is the data)."""

    def __init__(self, trust: Trust, index: int, hired_on: dt.date | None) -> None:
        self.trust = trust
        self.index = index
        self.hired_on = hired_on
        self.rng = trust.rng("person", index)
        self.as_of = trust.start - _ONE_DAY if hired_on is None else hired_on
        self.showcase = trust.is_showcase(index)
        self.history = hired_on is None
        self.hire_date = self.as_of  # drawn by person_row, which runs first

    def updated(self, since: dt.date) -> dt.datetime:
        """When a row was last keyed: a starter's rows all on the hire day."""
        if self.hired_on is not None:
            return timestamp_on(self.rng, self.hired_on)
        return timestamp_on(self.rng, random_date(self.rng, max(since, self.as_of - dt.timedelta(days=400)),
                                                  self.as_of))

    def before_as_of(self, first: dt.date, days: int) -> dt.date:
        """A date from `first` to `days` days before the as-of date (`first` when that is earlier)."""
        return random_date(self.rng, first, self.as_of - dt.timedelta(days=days))

    def person_row(self, primary_post: Post) -> Row:
        rng, index = self.rng, self.index
        female = rng.random() < 0.77
        first_names = FEMALE_FIRST_NAMES if female else MALE_FIRST_NAMES
        first_name, last_name = rng.choice(first_names), rng.choice(SURNAMES)
        if rng.random() < ACCENTED_NAME_RATE:
            if rng.random() < 0.6:
                first_name = rng.choice(ACCENTED_FEMALE_FIRST_NAMES if female else ACCENTED_MALE_FIRST_NAMES)
            else:
                last_name = rng.choice(ACCENTED_SURNAMES)
        maiden_name = rng.choice(SURNAMES) if female and rng.random() < 0.3 else None
        date_of_birth = random_date(rng, _years_after(self.as_of, -66), _years_after(self.as_of, -18))
        adult = _years_after(date_of_birth, 18)
        self.hire_date = self.hired_on or self.before_as_of(max(adult, self.trust.earliest_hire), 30)
        if primary_post.job.staff_group == "Medical and Dental":
            title = "Dr."
        else:
            title = "Mrs." if maiden_name else rng.choice(FEMALE_TITLES) if female else "Mr."
        e_mail_suffix = "" if rng.random() < 0.6 else str(rng.randint(2, 99))
        return {
            "person_id": self.trust.person_id(index),
            "effective_start": self.hire_date,
            "employee_number": self.trust.employee_number(index),
            "title": title,
            "last_name": last_name,
            "first_name": first_name,
            "middle_names": rng.choice(first_names) if rng.random() < 0.35 else None,
            "maiden_name": maiden_name,
            "gender": "F" if female else "M",
            "date_of_birth": date_of_birth,
            # QQ is the prefix HMRC never issues; the digits are a bijection of the index (unique below 4M).
            "ni_number": f"QQ{(index * 7919 + 4321) % 1_000_000:06d}{'ABCD'[index // 1_000_000 % 4]}",
            "hire_date": self.hire_date,
            "wtr_opt_out": "N",
            "ethnic_origin": rng.choice(ETHNIC_ORIGINS),
            "marital_status": "Married" if maiden_name else rng.choice(MARITAL_STATUSES),
            "country_of_birth": rng.choice(COUNTRIES_OF_BIRTH),
            "system_person_type": "EMP",
            "user_person_type": "Employee",
            "email": f"{ascii_fold(first_name)}.{ascii_fold(last_name)}{e_mail_suffix}@nhs.net",
            "nhs_start_date": self.hire_date if rng.random() < 0.7 else random_date(rng, adult, self.hire_date),
            "last_update_date": self.updated(self.hire_date),
            "disability_flag": "Y" if rng.random() < 0.05 else "N",
            "nationality": rng.choice(NATIONALITIES),
        }

    def add_assignments(self, state: PersonState, primary_post: Post) -> list[Row]:
        """The primary assignment, ~10% of people a secondary one; each costed, some with an ended split."""
        trust, rng, hire_date = self.trust, self.rng, self.hire_date
        supervisor = trust.supervisor_of(self.index, rng)
        primary_start = hire_date if rng.random() < 0.6 else self.before_as_of(hire_date, 30)
        hours = FULL_TIME_HOURS if rng.random() < 0.6 else rng.choice(PART_TIME_HOURS)
        posts = [primary_post]
        assignments = [new_assignment(trust, state, primary_post, primary_start, hire_date, hours, supervisor,
                                      rng, self.updated(primary_start))]
        for _ in range(2 if self.showcase else int(rng.random() < SECONDARY_ASSIGNMENT_RATE)):
            start = self.before_as_of(hire_date, 30)
            posts.append(trust.post(rng.randrange(trust.position_count)))
            assignments.append(new_assignment(trust, state, posts[-1], start, start,
                                              rng.choice(SECONDARY_POST_HOURS), supervisor, rng, self.updated(start)))
        for assignment, post in zip(assignments, posts, strict=True):
            state.add(EntityType.ASSIGNMENT, assignment)
            start = _date(assignment, "effective_start")
            centre, subjective = post.cost_centre, post.job.subjective_code
            if (self.history and (self.showcase or rng.random() < COSTING_HISTORY_RATE)
                    and start < self.as_of - _ONE_DAY):
                moved = random_date(rng, start + _ONE_DAY, self.as_of)
                for old in new_costings(trust, state, assignment, start, (Decimal(100),), centre, subjective, rng,
                                        timestamp_on(rng, moved)):
                    old["effective_end"] = moved - _ONE_DAY
                    state.add(EntityType.COSTING, old)
                start = moved
            for costing in new_costings(trust, state, assignment, start, rng.choice(COSTING_SPLITS), centre,
                                        subjective, rng, self.updated(start)):
                state.add(EntityType.COSTING, costing)
        return assignments

    def add_phones(self, state: PersonState) -> None:
        for phone_type, rate in (("H1", 0.5), ("M", 0.85), ("W1", 0.25)):
            if self.showcase or self.rng.random() < rate:
                state.add(EntityType.PHONE, new_phone(state, phone_type, self.hire_date, self.rng,
                                                      self.updated(self.hire_date)))

    def add_addresses(self, state: PersonState) -> None:
        """The current primary address; ~25% of people also an older one, ended the day before the move."""
        rng = self.rng
        old_addresses = 0 if not self.history else 2 if self.showcase else int(rng.random() < OLD_ADDRESS_RATE)
        moved_in = self.before_as_of(self.hire_date - dt.timedelta(days=3650), 60)
        addresses = [new_address(state, moved_in, rng, self.updated(moved_in))]
        for _ in range(old_addresses):
            end = moved_in - _ONE_DAY
            moved_in = end - dt.timedelta(days=rng.randint(200, 3000))
            old = new_address(state, moved_in, rng, timestamp_on(rng, end + _ONE_DAY))
            old["effective_end"] = end
            addresses.append(old)
        for address in reversed(addresses):
            state.add(EntityType.ADDRESS, address)

    def add_vehicles(self, state: PersonState, assignments: list[Row]) -> None:
        """~20% of people drive for work: one car, allocated to the primary and maybe other assignments."""
        rng, as_of = self.rng, self.as_of
        if not (self.showcase or rng.random() < VEHICLE_RATE):
            return
        primary = assignments[0]
        primary_start = _date(primary, "effective_start")
        car = car_details(rng, random_date(rng, as_of - dt.timedelta(days=4000), as_of - dt.timedelta(days=30)))
        earliest = _date(car, "initial_registration_date")
        if self.history and self.showcase and primary_start < as_of - _ONE_DAY:
            sold = random_date(rng, primary_start, as_of - _ONE_DAY)
            older_car = car_details(rng, random_date(rng, sold - dt.timedelta(days=4000), sold))
            ended = new_vehicle(state, primary, older_car, primary_start, timestamp_on(rng, sold))
            ended["effective_end"] = sold
            state.add(EntityType.VEHICLE, ended)
            earliest = max(earliest, sold + _ONE_DAY)
        for assignment in assignments:
            if assignment is primary or rng.random() < 0.5:
                start = max(_date(assignment, "effective_start"), earliest)
                state.add(EntityType.VEHICLE, new_vehicle(state, assignment, car, start, self.updated(start)))


def new_assignment(trust: Trust, person: PersonState, post: Post, start: dt.date, earliest: dt.date,
                   hours: Decimal, supervisor: int | None, rng: random.Random, updated: dt.datetime) -> Row:
    """An active assignment to `post`; the first a person gets is the primary one (Q16/Q17)."""
    slot = person.next_slot[EntityType.ASSIGNMENT]
    primary = slot == 0  # never deleted (only secondary assignments are), so every person keeps one
    number = _text(person.current, "employee_number")
    fte = hours / FULL_TIME_HOURS
    job = post.job
    location_id = post.location_id if rng.random() < 0.85 else trust.location_id(rng.randrange(trust.location_count))
    manager = trust.is_manager(person.index)
    return {
        "person_id": person.person_id,
        "assignment_id": person.new_id(EntityType.ASSIGNMENT),
        "effective_start": start,
        "earliest_assignment_start": earliest,
        "assignment_type": "E",
        "assignment_number": number if primary else f"{number}-{slot + 1}",
        "system_assignment_status": "ACTIVE_ASSIGN",
        "user_assignment_status": "Active Assignment",
        "payroll_name": f"{trust.vpd} Monthly",
        "payroll_period_type": "Calendar Month",
        "location_id": location_id,
        "supervisor_flag": "Y" if manager else "N",
        "supervisor_person_id": None if supervisor is None else trust.person_id(supervisor),
        "supervisor_assignment_id": (
            None if supervisor is None else trust.child_id(EntityType.ASSIGNMENT, supervisor, 0)
        ),
        "supervisor_assignment_number": None if supervisor is None else trust.employee_number(supervisor),
        "employee_category": "Full Time" if hours == FULL_TIME_HOURS else "Part Time",
        "assignment_category": rng.choice(ASSIGNMENT_CATEGORIES),
        "primary_assignment": "Yes" if primary else "No",
        "normal_hours": hours,
        "frequency": "W",
        "grade_contract_hours": FULL_TIME_HOURS,
        "fte": fte,
        "organisation_id": post.organisation_id,
        "position_id": post.position_id,
        "position_name": post.position_name,
        "grade": f"NHS|{job.payscale}|{job.grade_name}",
        "grade_step": str(rng.randint(1, 4)),
        "start_date_in_grade": start,
        "annual_salary": (job.salary * fte).quantize(_CENTS),
        "job_name": f"{job.staff_group}|{job.job_role}",
        "people_group": f"{trust.vpd} z {rng.choice(PEOPLE_GROUPS)}|||",
        "afc_flag": "Y" if job.payscale.startswith("XR") else "N",
        "last_update_date": updated,
        "manager_flag": "Yes" if manager and primary else None,
    }


def new_costings(trust: Trust, person: PersonState, assignment: Row, start: dt.date, split: tuple[Decimal, ...],
                 cost_centre: str, subjective: str, rng: random.Random, updated: dt.datetime) -> list[Row]:
    """One costing row per share of `split`: the first to the post's cost centre, others elsewhere."""
    rows: list[Row] = []
    for number, percentage in enumerate(split):
        centre = cost_centre if number == 0 else f"{trust.vpd}C{rng.randrange(trust.organisation_count):04d}"
        rows.append({
            "person_id": person.person_id,
            "assignment_id": entity_id(EntityType.ASSIGNMENT, assignment),
            "costing_id": person.new_id(EntityType.COSTING),
            "effective_start": start,
            "entity_code": trust.nacs_code,
            "charitable_indicator": "N",
            "cost_centre": centre,
            "subjective": subjective,
            "percentage": percentage,
            "last_update_date": updated,
        })
    return rows


def new_phone(person: PersonState, phone_type: str, start: dt.date, rng: random.Random,
              updated: dt.datetime) -> Row:
    return {
        "person_id": person.person_id,
        "phone_id": person.new_id(EntityType.PHONE),
        "phone_type": phone_type,
        "phone_number": phone_number(phone_type, rng),
        "effective_start": start,
        "last_update_date": updated,
    }


def phone_number(phone_type: str, rng: random.Random) -> str:
    """Ofcom's drama ranges: 07700 900xxx for mobiles, 01632 960xxx for landlines."""
    return f"07700 {900000 + rng.randrange(1000)}" if phone_type == "M" else landline(rng)


def new_address(person: PersonState, start: dt.date, rng: random.Random, updated: dt.datetime) -> Row:
    town = rng.choice(TOWNS)
    return {
        "person_id": person.person_id,
        "address_id": person.new_id(EntityType.ADDRESS),
        "address_style": "GB",
        "primary_flag": "Yes",
        "line_1": street_line(rng),
        "line_2": rng.choice(LOCALITIES) if rng.random() < 0.4 else None,
        "town": town.name,
        "county": town.county,
        "postcode": postcode(rng, town.postcode_area),
        "country": "GB",
        "effective_start": start,
        "last_update_date": updated,
    }


def car_details(rng: random.Random, first_registered: dt.date) -> Row:
    """The car itself: one car can be allocated to several assignments (§3)."""
    car = rng.choice(CARS)
    engine_cc: Decimal | None = None
    if car.engine_ccs:
        engine_cc = Decimal(rng.choice(car.engine_ccs))
        if rng.random() < LITRES_ENGINE_RATE:  # S1 reads a value under 10 as litres
            engine_cc = (engine_cc / 1000).quantize(Decimal("0.1"))
    return {
        "registration": registration(rng, first_registered),
        "make": car.make,
        "model": car.model,
        "ownership": rng.choice(OWNERSHIPS),
        "initial_registration_date": first_registered,
        "engine_cc": engine_cc,
        "user_rates_table": rng.choice(USER_RATES_TABLES),
        "fuel_type": rng.choice(car.fuel_types),
    }


def registration(rng: random.Random, first_registered: dt.date) -> str:
    """A current-style number plate: area letters, age identifier of the registration date, 3 letters."""
    year = first_registered.year % 100
    age = year if 3 <= first_registered.month <= 8 else (year + 50 if first_registered.month >= 9 else year + 49)
    letters = "".join(rng.choice(REGISTRATION_LETTERS) for _ in range(5))
    return f"{letters[:2]}{age:02d}{letters[2:]}"


def new_vehicle(person: PersonState, assignment: Row, car: Row, start: dt.date, updated: dt.datetime) -> Row:
    return {
        "person_id": person.person_id,
        "assignment_id": entity_id(EntityType.ASSIGNMENT, assignment),
        "vehicle_allocation_id": person.new_id(EntityType.VEHICLE),
        "effective_start": start,
        **car,
        "last_update_date": updated,
    }


def _text(row: Row, name: str) -> str:
    value = row[name]
    assert isinstance(value, str)
    return value


def _date(row: Row, name: str) -> dt.date:
    value = row[name]
    assert isinstance(value, dt.date)
    return value


def _years_after(day: dt.date, years: int) -> dt.date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February
        return day.replace(year=day.year + years, day=28)
