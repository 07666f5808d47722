"""A generated full file and change files through the domain functions, as the shell would run them: the
events are the ones the generator's changes call for."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from typing import Any

import pytest

from esr.codec.serde import Decoder, Encoder
from esr.generate import generate_files
from esr.generate.simulation import DEFAULT_START, TrustSimulation
from streams.domain import apply_changes
from tests.unit.streams.domain.harness import ParsedFile, Shell, read_files

VPD = "999"
EMPLOYEES = 400
DAYS = 4
SEED = 11


class Day:
    """What the simulation did on one day: person ids by kind of change, and the new starters."""

    def __init__(self) -> None:
        self.kinds: dict[str, set[str]] = {}
        self.starters: set[str] = set()

    def people(self, kind: str) -> set[str]:
        return self.kinds.get(kind, set())


def simulate() -> list[Day]:
    """Replay the generator's simulation (generate_files runs the same one) and note its changes per day.

    The simulation does not publish what it changed: its `_history` and `_hired_on` are read here.
    """
    simulation = TrustSimulation(VPD, EMPLOYEES, SEED, DEFAULT_START)
    for _ in simulation.full_file_records():
        pass
    days = []
    for day in range(1, DAYS + 1):
        simulation.change_file_records(day)
        today = Day()
        change_date = DEFAULT_START + dt.timedelta(days=day - 1)
        for index, history in simulation._history.items():
            for kind, when, _serial in history:
                if when == day:
                    today.kinds.setdefault(kind, set()).add(simulation.trust.person_id(index))
        today.starters = {simulation.trust.person_id(i) for i, hired in simulation._hired_on.items()
                          if hired == change_date}
        days.append(today)
    return days


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> list[ParsedFile]:
    return read_files(generate_files(VPD, EMPLOYEES, DAYS, SEED, tmp_path_factory.mktemp("esr")))


@pytest.fixture(scope="module")
def run(files: list[ParsedFile]) -> tuple[Shell, list[list[dict[str, Any]]]]:
    shell = Shell(partitions=4, batch_size=300)
    per_file = []
    for parsed in files:
        before = len(shell.sent)
        shell.feed(parsed)
        per_file.append(shell.sent[before:])
    return shell, per_file


def by_type(events: list[dict[str, Any]]) -> Counter[str]:
    return Counter(event["event_type"] for event in events)


def people(events: list[dict[str, Any]], event_type: str) -> set[str]:
    return {event["person_id"] for event in events if event["event_type"] == event_type}


def test_the_full_file_creates_everything_once(files: list[ParsedFile],
                                               run: tuple[Shell, list[list[dict[str, Any]]]]) -> None:
    full = run[1][0]
    codes = Counter(event["record_code"] for event in files[0].events)
    created = {"LCA": "LOCATION_ADDED", "ORA": "ORGANISATION_ADDED", "POA": "POSITION_ADDED", "PRA": "NEW_STARTER",
               "ASA": "ASSIGNMENT_STARTED", "ADA": "HOME_ADDRESS_ADDED", "PHA": "PHONE_ADDED",
               "VHA": "VEHICLE_ADDED", "COA": "COSTING_ADDED"}
    assert by_type(full) == Counter({created[code]: count for code, count in codes.items()})
    assert by_type(full)["NEW_STARTER"] == EMPLOYEES
    assert {event["op"] for event in full} == {"c"}
    persons = {event["person_id"] for event in files[0].events if event["record_code"] == "PRA"}
    assert people(full, "NEW_STARTER") == persons


def test_change_files_emit_what_the_generator_changed(files: list[ParsedFile],
                                                     run: tuple[Shell, list[list[dict[str, Any]]]]) -> None:
    days = simulate()
    for day, (parsed, events) in enumerate(zip(files[1:], run[1][1:], strict=True), 1):
        today = days[day - 1]
        counts = by_type(events)
        codes = Counter(event["record_code"] for event in parsed.events)
        where = f"day {day}: {dict(counts)}"
        assert people(events, "SURNAME_CHANGED") == today.people("surname_changed"), where
        assert counts["SURNAME_CHANGED"] == len(today.people("surname_changed")), where
        assert people(events, "LEAVER") == today.people("leaver"), where
        assert counts["LEAVER"] == len(today.people("leaver")), where
        assert people(events, "NEW_STARTER") == today.starters, where
        assert counts["PERSON_DELETED"] == codes["PRD"], where
        assert people(events, "PHONE_CHANGED") == today.people("phone_changed"), where
        assert people(events, "HOME_ADDRESS_ENDED") == today.people("address_changed"), where
        assert people(events, "HOME_ADDRESS_ADDED") == today.people("address_changed") | today.starters, where
        assert people(events, "VEHICLE_ENDED") >= today.people("vehicle_ended"), where
        assert people(events, "VEHICLE_ENDED") <= today.people("vehicle_ended") | today.people("leaver"), where
        assert people(events, "VEHICLE_ADDED") <= today.people("vehicle_added") | today.starters, where
        assert people(events, "VEHICLE_ADDED") >= today.people("vehicle_added"), where
        assert people(events, "PHONE_ADDED") >= today.people("phone_added"), where
        assert people(events, "ASSIGNMENT_ENDED") == today.people("leaver"), where
        assert people(events, "ASSIGNMENT_STARTED") == today.people("secondary_assignment_added") | today.starters
        assert counts["ASSIGNMENT_DELETED"] == codes["ASD"], where
        assert counts["PHONE_DELETED"] == codes["PHD"], where
        assert counts["VEHICLE_DELETED"] == codes["VHD"], where
        assert counts["COSTING_DELETED"] == codes["COD"], where
        assert counts["HOME_ADDRESS_DELETED"] == codes["ADD"], where
        assert people(events, "COSTING_ENDED") <= today.people("costing_changed"), where
        assert counts["LOCATION_CHANGED"] == codes["LCA"], where
        assert counts["ORGANISATION_ADDED"] == codes["ORA"], where
        assert people(events, "PRIMARY_ASSIGNMENT_CHANGED") <= today.people("assignment_deleted"), where
        assert counts["ABSENT_FROM_FULL_FILE"] == 0, where
        # a person's re-sent unchanged rows say nothing: no event that is not one of the above
        assert set(counts) <= {
            "SURNAME_CHANGED", "NAME_CHANGED", "PERSON_UPDATED", "LEAVER", "NEW_STARTER", "PERSON_DELETED",
            "PHONE_CHANGED", "PHONE_ADDED", "PHONE_DELETED", "HOME_ADDRESS_ENDED", "HOME_ADDRESS_ADDED",
            "HOME_ADDRESS_DELETED", "VEHICLE_ENDED", "VEHICLE_ADDED", "VEHICLE_DELETED", "ASSIGNMENT_ENDED",
            "ASSIGNMENT_STARTED", "ASSIGNMENT_DELETED", "COSTING_ENDED", "COSTING_ADDED", "COSTING_DELETED",
            "LOCATION_CHANGED", "ORGANISATION_ADDED", "WORK_ADDRESS_CHANGED", "PRIMARY_ASSIGNMENT_CHANGED",
        }, where
        assert people(events, "PERSON_UPDATED") <= today.people("surname_changed"), where  # marital status
        assert people(events, "NAME_CHANGED") <= today.people("surname_changed"), where  # title, maiden name


def test_a_moved_location_moves_the_work_address_of_its_assignments(
        run: tuple[Shell, list[list[dict[str, Any]]]]) -> None:
    for events in run[1][1:]:
        moved = {event["entity_id"] for event in events if event["event_type"] == "LOCATION_CHANGED"}
        work = [event for event in events if event["event_type"] == "WORK_ADDRESS_CHANGED"]
        assert work, "every day moves a location (LOCATION_CHANGE_RATE)"
        for event in work:
            assert event["after"]["location_id"] in moved
            assert event["source"]["record_code"] == "LCA"
            assert event["before"]["postcode"] != event["after"]["postcode"] or (
                event["before"]["line1"] != event["after"]["line1"])


def test_surname_changes_carry_the_old_and_new_names(files: list[ParsedFile],
                                                     run: tuple[Shell, list[list[dict[str, Any]]]]) -> None:
    for parsed, events in zip(files[1:], run[1][1:], strict=True):
        for event in events:
            if event["event_type"] != "SURNAME_CHANGED":
                continue
            pras = [e["payload"] for e in parsed.events if e["record_code"] == "PRA"
                    and e["person_id"] == event["person_id"]]
            old, new = pras[-2], pras[-1]
            assert (event["before"]["last_name"], event["after"]["last_name"]) == (old["last_name"], new["last_name"])
            assert event["effective_date"] == new["effective_start"]
            assert event["employee_number"] == new["employee_number"]


def test_every_event_is_well_formed(run: tuple[Shell, list[list[dict[str, Any]]]]) -> None:
    shell = run[0]
    encoder, decoder = Encoder("change-event"), Decoder("change-event")
    ids = [event["event_id"] for event in shell.sent]
    assert len(set(ids)) == len(ids)
    for event in shell.sent:
        assert apply_changes(event["before"], event["changes"]) == (event["after"] or {})
        assert decoder.decode(encoder.encode(event)) == event


def test_other_partitions_and_batches_give_the_same_events(files: list[ParsedFile],
                                                           run: tuple[Shell, list[list[dict[str, Any]]]]) -> None:
    other = Shell(partitions=3, batch_size=37)
    for parsed in files:
        other.feed(parsed)

    def essence(events: list[dict[str, Any]]) -> dict[str, Any]:
        return {e["event_id"]: (e["event_type"], e["before"], e["after"], e["changes"]) for e in events}

    assert essence(other.sent) == essence(run[0].sent)


@pytest.mark.parametrize("keep_tombstones", [True, False])
def test_a_file_published_twice_emits_nothing_new_the_second_time(files: list[ParsedFile],
                                                                  keep_tombstones: bool) -> None:
    """The ingest job re-run after a crash publishes the file's records again (new offsets): nothing, or
    without the tombstone of a deleted person, the same PERSON_DELETED (same event id) again."""
    shell = Shell(keep_tombstones=keep_tombstones)
    for parsed in files:
        shell.feed(parsed)
        sent = len(shell.sent)
        shell.feed(parsed)
        again = shell.sent[sent:]
        if keep_tombstones:
            assert again == [], parsed.provenance.file_name
        else:
            assert {e["event_type"] for e in again} <= {"PERSON_DELETED"}
            assert {e["event_id"] for e in again} <= {e["event_id"] for e in shell.sent[:sent]}
