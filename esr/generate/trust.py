"""The static side of a synthetic trust: its codes, its id scheme and its reference data (LCA, ORA, POA).

Everything here is a pure function of (seed, vpd, size, index), so any row can be rebuilt on demand and
nothing proportional to the trust's size has to be kept: this is what lets the full file stream.
"""

from __future__ import annotations

import datetime as dt
import random
import re
from decimal import Decimal
from functools import lru_cache
from typing import NamedTuple, Protocol, TypeVar

from esr.format.layouts import EntityType
from esr.generate.records import Row
from esr.generate.vocab import (
    DEPARTMENTS,
    JOBS,
    POSTCODE_LETTERS,
    SITE_BUILDINGS,
    SITE_KINDS,
    STREET_KINDS,
    STREET_NAMES,
    TOWNS,
    Job,
)

# Ids are digit strings (Q1/Q15), unique per entity type and never reused. A person's child entities
# get `base + person index * CHILD_SLOTS + slot`, so they can be rebuilt from the person index alone.
LOCATION_ID_BASE = 1_000_000
ORGANISATION_ID_BASE = 2_000_000
POSITION_ID_BASE = 3_000_000
POSITION_NUMBER_BASE = 7_000_000
PERSON_ID_BASE = 10_000_000
CHILD_SLOTS = 100
CHILD_ID_BASES = {
    EntityType.ASSIGNMENT: 1_000_000_000,
    EntityType.PHONE: 2_000_000_000,
    EntityType.ADDRESS: 3_000_000_000,
    EntityType.VEHICLE: 4_000_000_000,
    EntityType.COSTING: 5_000_000_000,
}
MAX_PEOPLE = 1_000_000_000 // CHILD_SLOTS  # beyond this, child id ranges of two entity types would meet

MANAGER_EVERY = 12  # every 12th initial employee (index 0, 12, 24, ...) supervises others
# Every 40th initial employee from index 1 has every optional child (secondary assignments, vehicles, old addresses,
# costing history), so that even a 10-employee trust has something of each kind to change or delete.
SHOWCASE_EVERY = 40
T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)
_VPD = re.compile(r"[0-9A-Za-z]{3}", re.ASCII)


class Post(NamedTuple):
    """What an assignment takes from its position (POA), its organisation (ORA) and the job."""

    position_id: str
    position_name: str
    organisation_id: str
    location_id: str
    cost_centre: str
    job: Job


class Indexable(Protocol[T_co]):
    """What `random.Random.choice` accepts (typeshed's SupportsLenAndGetItem)."""

    def __len__(self) -> int: ...

    def __getitem__(self, index: int, /) -> T_co: ...


class SeededRandom(random.Random):
    """`random.Random` whose integer draws cost one `random()` call each.

    The standard library draws bits until they fall in range, in Python code: exact, but it was a fifth of
    the full file's time. Scaling one 53-bit float is biased by under 2**-40 for the small ranges used here.
    """

    def randrange(self, start: int, stop: int | None = None, step: int = 1) -> int:
        if stop is None:
            start, stop = 0, start
        count = (stop - start + step - 1) // step
        if count <= 0:
            raise ValueError(f"empty range for randrange({start}, {stop}, {step})")
        return start + step * int(self.random() * count)

    def randint(self, a: int, b: int) -> int:
        return self.randrange(a, b + 1)

    def choice(self, seq: Indexable[T]) -> T:
        if not seq:
            raise IndexError("cannot choose from an empty sequence")
        return seq[int(self.random() * len(seq))]


def seeded_rng(seed: int, *parts: object) -> SeededRandom:
    """A generator for one purpose: string seeds are hashed with SHA-512, the same on every run."""
    return SeededRandom(":".join(str(part) for part in (seed, *parts)))


def random_date(rng: random.Random, first: dt.date, last: dt.date) -> dt.date:
    """A day from `first` to `last` inclusive; `first` when `last` is earlier."""
    return dt.date.fromordinal(rng.randint(first.toordinal(), max(first, last).toordinal()))


def working_hours_timestamp(rng: random.Random, day: dt.date) -> dt.datetime:
    """A last-update time on `day` between 08:00:00 and 18:59:59."""
    return dt.datetime(day.year, day.month, day.day) + dt.timedelta(seconds=rng.randrange(8 * 3600, 19 * 3600))


def postcode(rng: random.Random, area: str) -> str:
    inward = f"{rng.randint(1, 9)}{rng.choice(POSTCODE_LETTERS)}{rng.choice(POSTCODE_LETTERS)}"
    return f"{area}{rng.randint(1, 29)} {inward}"


def street_line(rng: random.Random) -> str:
    return f"{rng.randint(1, 240)} {rng.choice(STREET_NAMES)} {rng.choice(STREET_KINDS)}"


def landline(rng: random.Random) -> str:
    """A number from Ofcom's range reserved for drama (01632 960000-960999): never a real line."""
    return f"01632 {960000 + rng.randrange(1000)}"


class Trust:
    """One synthetic trust: VPD, seed, initial size and the date of its full file."""

    def __init__(self, vpd: str, employees: int, seed: int, start: dt.date) -> None:
        if not _VPD.fullmatch(vpd):
            raise ValueError(f"VPD {vpd!r} is not 3 letters or digits")
        if not 1 <= employees <= MAX_PEOPLE // 2:
            raise ValueError(f"employees must be between 1 and {MAX_PEOPLE // 2}, not {employees}")
        self.vpd = vpd
        self.employees = employees
        self.seed = seed
        self.start = start
        self.location_count = max(3, employees // 40)
        self.organisation_count = max(4, employees // 20)
        self.position_count = max(6, employees // 10)
        rng = self.rng("trust")
        letters = "ABCDEFGHJKLMNPQRTVWXY"
        self.nacs_code = f"R{rng.choice(letters)}{rng.randint(1, 9)}"
        self.hierarchy_version_id = str(5000 + rng.randrange(1000))
        self.employee_number_offset = rng.randrange(90_000_000)
        self.earliest_hire = dt.date(start.year - 30, 1, 1)
        self.location = lru_cache(maxsize=4096)(self._location)
        self.organisation = lru_cache(maxsize=8192)(self._organisation)
        self.post = lru_cache(maxsize=16384)(self._post)

    def rng(self, *parts: object) -> random.Random:
        return seeded_rng(self.seed, self.vpd, *parts)

    # --- ids -------------------------------------------------------------------------------------------

    @staticmethod
    def location_id(index: int) -> str:
        return str(LOCATION_ID_BASE + index)

    @staticmethod
    def organisation_id(index: int) -> str:
        return str(ORGANISATION_ID_BASE + index)

    @staticmethod
    def position_id(index: int) -> str:
        return str(POSITION_ID_BASE + index)

    @staticmethod
    def person_id(index: int) -> str:
        return str(PERSON_ID_BASE + index)

    @staticmethod
    def child_id(entity: EntityType, person_index: int, slot: int) -> str:
        return str(CHILD_ID_BASES[entity] + person_index * CHILD_SLOTS + slot)

    def employee_number(self, index: int) -> str:
        """8 digits, unique: 7919 is prime to 90,000,000, so this is a bijection on 0..89,999,999."""
        return str(10_000_000 + (index * 7919 + self.employee_number_offset) % 90_000_000)

    def is_manager(self, index: int) -> bool:
        """Among the initial employees only: new starters must be free to leave, or leavers would run out."""
        return index < self.employees and index % MANAGER_EVERY == 0

    def is_showcase(self, index: int) -> bool:
        return index < self.employees and index % SHOWCASE_EVERY == 1

    def supervisor_of(self, index: int, rng: random.Random) -> int | None:
        """A manager among the initial employees (managers never leave nor are deleted); None for the top."""
        limit = index if self.is_manager(index) else self.employees
        managers = (limit + MANAGER_EVERY - 1) // MANAGER_EVERY
        if managers == 0:
            return None
        return rng.randrange(managers) * MANAGER_EVERY

    # --- reference rows ---------------------------------------------------------------------------------

    def _location(self, index: int) -> Row:
        rng = self.rng("location", index)
        town = rng.choice(TOWNS)
        description = f"{town.name} {rng.choice(SITE_KINDS)}"
        return {
            "location_id": self.location_id(index),
            "location_code": f"{self.vpd} z {index:04d} {description}",
            "description": description,
            "address_line_1": street_line(rng),
            "address_line_2": rng.choice(SITE_BUILDINGS),
            "town": town.name,
            "county": town.county,
            "postcode": postcode(rng, town.postcode_area),
            "country": "United Kingdom",
            "telephone": landline(rng),
            "payslip_delivery_point": rng.choice(("Y", "N")),
            "last_update_date": self._reference_timestamp(rng),
        }

    def _organisation(self, index: int) -> Row:
        """Index 0 is the trust board; every other organisation's parent has a lower index (a tree)."""
        rng = self.rng("organisation", index)
        department = "Trust Board" if index == 0 else rng.choice(DEPARTMENTS)
        return self.organisation_row(
            index, department, None if index == 0 else (index - 1) // 6, dt.date(1951, 1, 1),
            rng.randrange(self.location_count), self._reference_timestamp(rng),
        )

    def organisation_row(self, index: int, department: str, parent: int | None, effective_from: dt.date,
                         location: int, updated: dt.datetime) -> Row:
        return {
            "organisation_id": self.organisation_id(index),
            "name": f"{self.vpd} {department}",
            "organisation_type": "NHS_TM" if parent is None or parent == 0 else "NHS_DE",
            "effective_from": effective_from,
            "hierarchy_version_id": self.hierarchy_version_id,
            "hierarchy_version_date_from": dt.date(1951, 1, 1),
            "default_cost_centre": f"{self.vpd}C{index:04d}",
            "parent_organisation_id": None if parent is None else self.organisation_id(parent),
            "nacs_code": self.nacs_code,
            "location_id": self.location_id(location),
            "last_update_date": updated,
            "cost_centre_description": department,
        }

    def _position_parts(self, index: int) -> tuple[Row, Job, int]:
        rng = self.rng("position", index)
        organisation_index = rng.randrange(self.organisation_count)
        organisation = self.organisation(organisation_index)
        job = rng.choice(JOBS)
        number = POSITION_NUMBER_BASE + index
        row: Row = {
            "position_id": self.position_id(index),
            "effective_from": random_date(rng, dt.date(2005, 4, 1), self.start - dt.timedelta(days=400)),
            "position_number": number,
            "position_name": (
                f"{number}|{job.job_role}|{job.occupation_code}|{organisation['cost_centre_description']}|"
            ),
            "budgeted_fte": rng.choice((Decimal(1), Decimal(1), Decimal(2), Decimal("0.5"), Decimal("3.6"))),
            "subjective_code": job.subjective_code,
            "job_staff_group": job.staff_group,
            "job_role": job.job_role,
            "occupation_code": job.occupation_code,
            "payscale": job.payscale,
            "grade_step": f"{job.payscale}|{rng.randint(1, 3)}",
            "isa_regulated_post": "Not Applicable",
            "organisation_id": self.organisation_id(organisation_index),
            "hiring_status": "Active",
            "position_type": "NONE",
            "eligible_for_oh_processing": rng.choice(("Yes", "No")),
            "epp_flag": "No",
            "last_update_date": self._reference_timestamp(rng),
            "subjective_code_description": job.subjective_description,
        }
        return row, job, organisation_index

    def position(self, index: int) -> Row:
        return self._position_parts(index)[0]

    def _post(self, index: int) -> Post:
        row, job, organisation_index = self._position_parts(index)
        organisation = self.organisation(organisation_index)
        position_name, location_id, cost_centre = (
            row["position_name"], organisation["location_id"], organisation["default_cost_centre"]
        )
        assert isinstance(position_name, str)
        assert isinstance(location_id, str)
        assert isinstance(cost_centre, str)
        return Post(self.position_id(index), position_name, self.organisation_id(organisation_index), location_id,
                    cost_centre, job)

    def _reference_timestamp(self, rng: random.Random) -> dt.datetime:
        return working_hours_timestamp(rng, random_date(rng, self.start - dt.timedelta(days=900),
                                                        self.start - dt.timedelta(days=1)))
