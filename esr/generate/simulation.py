"""A trust over time: its full file, then one change file a day, as typed rows.

State is sparse. A person nobody changed is rebuilt from (seed, index) when needed; for a changed person
the simulation keeps only the list of changes applied to them and replays it on a rebuilt person. Deleted
people, starters' hire dates, leavers and changed locations are the only other state.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable, Iterator

from esr.format.layouts import LOCATION, ORGANISATION, PERSON, POSITION
from esr.generate.changes import BY_KIND, PERSON_CHANGES, can_be_deleted
from esr.generate.people import PersonState, build_person
from esr.generate.records import DeleteRow, GeneratedLine, RecordRow, Row
from esr.generate.trust import MAX_PEOPLE, Trust, postcode, street_line
from esr.generate.trust import working_hours_timestamp as timestamp_on
from esr.generate.vocab import DEPARTMENTS, SITE_BUILDINGS

DEFAULT_START = dt.date(2026, 1, 5)
STARTER_RATE = 0.003  # new starters a day, as a share of the initial employees
PERSON_DELETE_RATE = 0.0002
LOCATION_CHANGE_RATE = 0.01  # as a share of the locations
NEW_ORGANISATION_RATE = 0.002  # as a share of the organisations
RANDOM_PICKS = 32  # random tries to find a person a change applies to, before a bounded scan
MAX_SCAN = 5000

Replay = tuple[str, int, int]  # (change kind, day, serial): what a change is rebuilt from
Eligible = Callable[[Trust, PersonState, dt.date], bool]


class TrustSimulation:
    """`full_file_records()` is the snapshot at `start`; `change_file_records(day)` the changes keyed on day
    `day - 1` after it (a file dated `start + day`), for day = 1, 2, ... in order.
    """

    def __init__(self, vpd: str, employees: int, seed: int, start: dt.date = DEFAULT_START) -> None:
        self.trust = Trust(vpd, employees, seed, start)
        self.person_count = employees  # people ever created: index = person id - base
        self.days_simulated = 0
        self._history: dict[int, list[Replay]] = {}
        self._hired_on: dict[int, dt.date] = {}
        self._deleted: set[int] = set()
        self._leavers: list[int] = []  # terminated, not deleted: deleted first (ESR purges leavers)
        self._changed_locations: dict[int, Row] = {}
        self._organisation_count = self.trust.organisation_count

    def file_date(self, day: int) -> dt.date:
        return self.trust.start + dt.timedelta(days=day)

    def full_file_records(self) -> Iterator[GeneratedLine]:
        """Every location, organisation and position, then every person's block, one person at a time."""
        trust = self.trust
        yield from (RecordRow(LOCATION, trust.location(index)) for index in range(trust.location_count))
        yield from (RecordRow(ORGANISATION, trust.organisation(index)) for index in range(trust.organisation_count))
        yield from (RecordRow(POSITION, trust.position(index)) for index in range(trust.position_count))
        for index in range(trust.employees):
            yield from build_person(trust, index).block(whole=True)

    def change_file_records(self, day: int) -> list[GeneratedLine]:
        """Apply day `day`'s changes and return its lines: reference rows, then person blocks by person id."""
        if day != self.days_simulated + 1:
            raise ValueError(f"day {day} cannot follow day {self.days_simulated}: days are simulated in order")
        self.days_simulated = day
        change_date = self.trust.start + dt.timedelta(days=day - 1)
        lines = self._reference_changes(day, change_date)
        touched: dict[int, PersonState] = {}
        deleted_today = self._delete_people(day, change_date, touched)
        for change in PERSON_CHANGES:
            pick_rng = self.trust.rng("pick", day, change.kind)
            for serial in range(max(change.at_least, self._count(change.rate))):
                person = self._choose(pick_rng, change.eligible, change_date, touched)
                if person is None:
                    break
                was_terminated = person.terminated
                change.apply(self.trust, person, change_date, self.trust.rng("change", day, change.kind, serial))
                self._history.setdefault(person.index, []).append((change.kind, day, serial))
                touched[person.index] = person
                if person.terminated and not was_terminated:
                    self._leavers.append(person.index)
        for _ in range(self._count(STARTER_RATE)):
            index = self._new_person_index()
            self._hired_on[index] = change_date
            touched[index] = build_person(self.trust, index, change_date)
        for index in sorted(touched.keys() | deleted_today):
            if index in deleted_today:
                lines.append(DeleteRow(PERSON, self.trust.person_id(index)))
            else:
                lines.extend(touched[index].block(whole=False))
        return lines

    def _count(self, rate: float, of: int | None = None) -> int:
        return max(1, round(rate * (self.trust.employees if of is None else of)))

    def _new_person_index(self) -> int:
        if self.person_count >= MAX_PEOPLE:
            raise RuntimeError(f"the id scheme holds at most {MAX_PEOPLE} people")
        self.person_count += 1
        return self.person_count - 1

    def _person(self, index: int, touched: dict[int, PersonState]) -> PersonState:
        """The person as of now: today's working copy, else rebuilt and their changes replayed."""
        if index in touched:
            return touched[index]
        trust = self.trust
        person = build_person(trust, index, self._hired_on.get(index))
        person.is_new = False
        for kind, day, serial in self._history.get(index, ()):
            BY_KIND[kind].apply(trust, person, trust.start + dt.timedelta(days=day - 1),
                                trust.rng("change", day, kind, serial))
        person.changed.clear()
        person.changed_versions.clear()
        person.removed.clear()
        return person

    def _choose(self, rng: random.Random, eligible: Eligible, change_date: dt.date,
                touched: dict[int, PersonState]) -> PersonState | None:
        """A live person a change applies to, or None when there is none."""
        for index in self._candidates(rng):
            if index not in self._deleted:
                person = self._person(index, touched)
                if eligible(self.trust, person, change_date):
                    return person
        return None

    def _candidates(self, rng: random.Random) -> Iterator[int]:
        """Random tries, then a bounded scan from a random offset (exhaustive for small trusts)."""
        count = self.person_count
        for _ in range(RANDOM_PICKS):
            yield rng.randrange(count)
        offset = rng.randrange(count)
        for step in range(min(count, MAX_SCAN)):
            yield (offset + step) % count

    def _delete_people(self, day: int, change_date: dt.date, touched: dict[int, PersonState]) -> set[int]:
        """PRD rows: leavers first, else anyone but managers and showcase people."""
        rng = self.trust.rng("pick", day, "person_deleted")
        deleted: set[int] = set()
        for _ in range(self._count(PERSON_DELETE_RATE)):
            if self._leavers:
                index = self._leavers.pop(rng.randrange(len(self._leavers)))
            else:
                candidate = self._choose(rng, can_be_deleted, change_date, touched)
                if candidate is None:
                    break
                index = candidate.index
            deleted.add(index)
            self._deleted.add(index)
            self._history.pop(index, None)
        return deleted

    def _reference_changes(self, day: int, change_date: dt.date) -> list[GeneratedLine]:
        """Locations moving (address lines and postcode change) and new organisations under existing ones."""
        trust = self.trust
        rng = trust.rng("reference", day)
        lines: list[GeneratedLine] = []
        moved = rng.sample(range(trust.location_count), min(trust.location_count,
                                                            self._count(LOCATION_CHANGE_RATE, trust.location_count)))
        for index in sorted(moved):
            location = dict(self._changed_locations.get(index) or trust.location(index))
            area = str(location["postcode"]).split()[0].rstrip("0123456789")
            location.update(address_line_1=street_line(rng), address_line_2=rng.choice(SITE_BUILDINGS),
                            postcode=postcode(rng, area), last_update_date=timestamp_on(rng, change_date))
            self._changed_locations[index] = location
            lines.append(RecordRow(LOCATION, location))
        for _ in range(self._count(NEW_ORGANISATION_RATE, trust.organisation_count)):
            index = self._organisation_count
            self._organisation_count += 1
            lines.append(RecordRow(ORGANISATION, trust.organisation_row(
                index, rng.choice(DEPARTMENTS), rng.randrange(trust.organisation_count), change_date,
                rng.randrange(trust.location_count), timestamp_on(rng, change_date),
            )))
        return lines
