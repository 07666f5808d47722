"""Parking behind dead letters (`esr.parking`): the pure decisions, the grouping `esr dlq` shows, and the
worker's shell (`EmployeesProcessor` with a `parked` table) over fake events, tables and producer."""

from __future__ import annotations

import asyncio
import pickle
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import pytest

from connectors.sink.parking import Entry, settle
from esr.kafka.topics import CHANGES, DLQ_OFFSET, DLQ_PROCESS, DLQ_REASON, FORWARDED, FORWARDED_REFERENCE, RECORDS
from esr.parking import (
    PARKED_BEHIND,
    RELEASE,
    RELEASE_DISCARDED,
    RELEASE_END,
    Action,
    Decision,
    Origin,
    Park,
    Release,
    dead_lettered,
    decide,
    employee_key,
    group_letters,
    release_plan,
)
from streams.agents import EmployeesProcessor
from streams.parking import WorkerParking
from streams.port import DomainPort, load_domain
from tests.unit.streams.test_shell import (
    PARTITIONS,
    Event,
    Log,
    Output,
    Table,
    assignment,
    location,
    person,
    record,
)

B = Origin(RECORDS, 1, 10)


def at(offset: int) -> Origin:
    return Origin(RECORDS, 1, offset)


# -- the pure decisions ---------------------------------------------------------------------------------


def test_origins_and_parks_round_trip_and_bad_text_is_refused() -> None:
    assert str(B) == "esr.records[1]@10"
    assert Origin.parse(b"esr.records[1]@10") == B
    park = Park(B, releasing=True, straggler=at(12))
    assert Park.decode(park.encode()) == park
    with pytest.raises(ValueError, match="TOPIC"):
        Origin.parse("esr.records:1:10")
    assert Origin(RECORDS, 2, 3).before(B) is False  # another partition is not "before"
    assert at(9).before(B)


def test_employee_keys_are_two_parts_references_are_not() -> None:
    assert employee_key(b"999:600001")
    assert not employee_key(b"999:LOCATION:17")
    assert not employee_key(b"999:")
    assert not employee_key(None)


def test_release_headers_round_trip_and_an_unreadable_blocker_releases_nothing() -> None:
    release = Release(B, end=True, discarded=True)
    headers = dict(release.headers())
    assert headers == {RELEASE: b"esr.records[1]@10", RELEASE_END: b"1", RELEASE_DISCARDED: b"1"}
    assert Release.from_headers(headers.get) == release
    nothing: dict[str, bytes] = {}
    assert Release.from_headers(nothing.get) is None
    assert Release.from_headers({RELEASE: b"nonsense"}.get) is None


def test_nothing_parked_applies_and_a_discarded_marker_never_applies() -> None:
    assert decide(None, at(5), None) == Decision(Action.APPLY, None)
    assert decide(None, at(5), Release(B, discarded=True)).action is Action.SKIP
    assert decide(None, at(5), Release(B)).action is Action.APPLY  # a release of a key that is not parked


def test_a_parked_key_parks_its_later_messages_but_not_earlier_ones_processed_again() -> None:
    park = Park(B)
    later = decide(park, at(11), None)
    assert (later.action, later.park, later.behind) == (Action.PARK, park, B)
    assert decide(park, at(9), None) == Decision(Action.APPLY, park)  # re-processed after a restart
    assert decide(park, B, None) == Decision(Action.APPLY, None)  # the blocker itself: tried again
    assert decide(park, at(11), Release(at(3))).action is Action.PARK  # a release of another blocker
    assert decide(park, at(11), Release(at(3), discarded=True)) == Decision(Action.SKIP, park)


def test_a_release_applies_while_the_key_stays_parked_until_its_end() -> None:
    park = Park(B)
    first = decide(park, at(20), Release(B))
    assert first == Decision(Action.APPLY, Park(B, releasing=True))
    straggler = decide(first.park, at(21), None)  # ingested during the release
    assert (straggler.action, straggler.behind) == (Action.PARK, B)
    assert straggler.park == Park(B, releasing=True, straggler=at(21))
    assert decide(straggler.park, at(22), None).park == straggler.park  # only the first one is remembered
    end = decide(straggler.park, at(23), Release(B, end=True))
    assert end == Decision(Action.APPLY, Park(at(21)))  # the straggler blocks now
    assert decide(Park(B, releasing=True), at(23), Release(B, end=True)) == Decision(Action.APPLY, None)
    marker = decide(park, at(20), Release(B, end=True, discarded=True))
    assert marker == Decision(Action.SKIP, None)


def test_a_dead_letter_blocks_or_waits_behind_the_blocker() -> None:
    assert dead_lettered(None, B) == (Park(B), None)
    assert dead_lettered(Park(B), at(11)) == (Park(B), B)
    assert dead_lettered(Park(B), B) == (Park(B), None)
    # a released message that fails again blocks the key anew
    assert dead_lettered(Park(B, releasing=True, straggler=at(21)), at(22)) == (Park(at(22)), None)


# -- grouping for `esr dlq` -------------------------------------------------------------------------------


@dataclass
class Letter:
    offset: int
    key: bytes | None
    origin: tuple[str, int, int] | None
    resolution: str | None = None


def test_letters_are_grouped_behind_the_earliest_open_letter_of_their_key() -> None:
    letters = [
        Letter(0, b"999:1", (RECORDS, 1, 10)),
        Letter(1, b"999:1", (RECORDS, 1, 12)),
        Letter(2, b"999:LOCATION:7", (RECORDS, 0, 4)),  # a reference stands alone
        Letter(3, b"999:1", (RECORDS, 1, 10)),  # the blocker dead-lettered again after a restart
        Letter(4, b"999:2", (RECORDS, 0, 5), "replayed"),
        Letter(5, b"999:2", (RECORDS, 0, 5)),  # a copy of a resolved message: resolved too
        Letter(6, b"999:1", (RECORDS, 1, 11)),  # a straggler: earlier in the log than 12
        Letter(7, b"999:3", None),
    ]
    groups, alone = group_letters(letters)
    [group] = groups
    assert [letter.offset for letter in group.letters()] == [0, 6, 1]
    assert sorted(letter.offset for letter in group.all_copies()) == [0, 1, 3, 6]
    assert [letter.offset for letter in alone] == [2, 4, 5, 7]


def test_the_release_plan_replays_or_discards_in_order_with_the_end_on_the_last() -> None:
    groups, _ = group_letters([Letter(0, b"999:1", (RECORDS, 1, 10)), Letter(1, b"999:1", (RECORDS, 1, 12))])
    [group] = groups
    replay = release_plan(group, discard_blocker=False, discard_followers=False)
    assert [(letter.offset, release) for letter, release in replay] == [
        (0, Release(B)), (1, Release(B, end=True))]
    discard = release_plan(group, discard_blocker=True, discard_followers=False)
    assert [release for _, release in discard] == [Release(B, discarded=True), Release(B, end=True)]
    everything = release_plan(group, discard_blocker=True, discard_followers=True)
    assert [(letter.offset, release) for letter, release in everything] == [
        (0, Release(B, end=True, discarded=True))]


# -- the worker's shell ------------------------------------------------------------------------------------

K, J = b"999:1", b"999:2"


class FlakyDomain:
    """The test double domain, refusing (or failing on) the records of chosen lines until they are fixed."""

    def __init__(self) -> None:
        self.port = load_domain("tests.doubles.domain")
        self.refused: set[int] = set()
        self.failing: set[int] = set()

    def bind(self) -> DomainPort:
        inner = self.port.apply_employee_batch

        def apply(state: Any, records: Sequence[Any], reference: Any, *, now_ms: int) -> Any:
            lines = {id(r): r.event["source"]["line_no"] for r in records}
            if self.failing & set(lines.values()):
                raise RuntimeError("the domain failed")
            refused = [r for r in records if lines[id(r)] in self.refused]
            outcome = inner(state, [r for r in records if lines[id(r)] not in self.refused], reference,
                            now_ms=now_ms)
            outcome.rejected = [(r, "refused line") for r in refused]
            return outcome

        return replace(self.port, apply_employee_batch=apply)


class Worker:
    def __init__(self, domain: FlakyDomain) -> None:
        self.employees, self.references, self.parked, self.output = Table(), Table(), Table(), Output()
        self.processor = EmployeesProcessor(domain.bind(), self.employees, self.references,  # type: ignore[arg-type]
                                            self.output, PARTITIONS,  # type: ignore[arg-type]
                                            clock=lambda: 1_700_000_000.0)
        self.processor.parking = WorkerParking(self.parked)  # type: ignore[arg-type]

    def run(self, events: list[Event]) -> None:
        async def go() -> None:
            await self.processor.process(events)
            await self.processor.settle()

        asyncio.run(go())

    def entities(self, key: bytes) -> dict[str, Any]:
        state = pickle.loads(self.employees.data[key])
        return dict(state.entities)

    def letters(self) -> list[tuple[bytes | None, bytes | None, dict[str, bytes]]]:
        return [(k, v, h) for k, v, _, h in self.output.to(DLQ_PROCESS)]


def person_record(line_no: int, last_name: str, key: bytes = K) -> bytes:
    pid = key.decode().split(":")[1]
    return record("PERSON", pid, person(pid, last_name), person_id=pid, line_no=line_no)


def assignment_record(line_no: int, location_id: str) -> bytes:
    return record("ASSIGNMENT", "10", assignment("10", "1", location_id), person_id="1", line_no=line_no)


def k_records() -> list[tuple[bytes, bytes]]:
    return [
        (K, person_record(2, "Jones")),
        (K, assignment_record(3, "L1")),  # refused at first
        (J, person_record(4, "Evans", J)),
        (K, person_record(5, "Price")),
        (K, assignment_record(6, "L2")),
    ]


def undisturbed(records: list[tuple[bytes, bytes]]) -> Worker:
    worker = Worker(FlakyDomain())
    log = Log()
    worker.run([log.event(key, value) for key, value in records])
    return worker


def republish(worker: Worker, log: Log, *, discard_blocker: bool = False, discard_followers: bool = False,
              resolved: int = 0) -> list[Event]:
    """What `esr dlq replay|discard` publishes for the key's open group (the letters after `resolved`)."""
    letters = [DlqLetter(n, key, value, headers) for n, (key, value, headers) in enumerate(worker.letters())]
    groups, _ = group_letters(letters[resolved:])
    [group] = groups
    return [log.event(letter.key or b"", letter.value,
                      headers=[*((k, v) for k, v in letter.headers.items() if not k.startswith("esr.dlq.")),
                               *release.headers()])
            for letter, release in release_plan(group, discard_blocker=discard_blocker,
                                                discard_followers=discard_followers)]


@dataclass
class DlqLetter:
    offset: int
    key: bytes | None
    value: bytes | None
    headers: dict[str, bytes]
    resolution: str | None = None

    @property
    def origin(self) -> tuple[str, int, int]:
        return RECORDS, int(self.headers["esr.dlq.original.partition"]), int(self.headers[DLQ_OFFSET])


def test_later_records_of_a_refused_key_are_parked_in_the_batch_and_after_it_others_go_on() -> None:
    domain = FlakyDomain()
    domain.refused = {3}
    worker, log = Worker(domain), Log()
    events = [log.event(key, value) for key, value in k_records()]
    worker.run(events[:4])
    worker.run(events[4:])
    assert worker.entities(K) == undisturbed(k_records()[:1]).entities(K)  # line 5 was not applied past the hole
    assert worker.entities(J) == undisturbed(k_records()).entities(J)
    letters = worker.letters()
    blocker = str(Origin(RECORDS, events[1].message.partition, events[1].message.offset))
    assert [(k, h[DLQ_REASON].decode(), h.get(PARKED_BEHIND)) for k, _, h in letters] == [
        (K, "rejected by the domain: refused line", None),
        (K, f"parked behind {blocker}", blocker.encode()),
        (K, f"parked behind {blocker}", blocker.encode()),
    ]
    assert Park.decode(worker.parked.data[K]) == Park(Origin.parse(blocker))


def test_a_replay_after_the_fix_releases_the_key_in_order_and_clears_the_park() -> None:
    domain = FlakyDomain()
    domain.refused = {3}
    worker, log = Worker(domain), Log()
    worker.run([log.event(key, value) for key, value in k_records()])
    domain.refused = set()
    worker.run(republish(worker, log))
    assert worker.entities(K) == undisturbed(k_records()).entities(K)
    assert K not in worker.parked.data
    worker.run([log.event(K, person_record(7, "Later"))])  # applied at once
    assert worker.entities(K)["PERSON:1"]["last_name"] == "Later"


def test_a_discard_drops_the_blocker_and_replays_its_followers() -> None:
    domain = FlakyDomain()
    domain.refused = {3}
    worker, log = Worker(domain), Log()
    worker.run([log.event(key, value) for key, value in k_records()])
    worker.run(republish(worker, log, discard_blocker=True))
    without = [record for record in k_records() if record[1] != k_records()[1][1]]
    assert worker.entities(K) == undisturbed(without).entities(K)
    assert K not in worker.parked.data
    assert worker.processor.parking is not None
    assert worker.processor.parking.skipped == 1


def test_a_record_arriving_during_a_release_waits_and_then_blocks() -> None:
    domain = FlakyDomain()
    domain.refused = {3}
    worker, log = Worker(domain), Log()
    worker.run([log.event(key, value) for key, value in k_records()])
    domain.refused = set()
    released = republish(worker, log)
    straggler = log.event(K, person_record(8, "Straggler"))
    released.insert(1, straggler)
    released[2:] = [log.event(e.message.key or b"", e.message.value, headers=e.message.headers)
                     for e in released[2:]]  # offsets in log order after the straggler
    worker.run(released)
    assert worker.entities(K) == undisturbed(k_records()).entities(K)
    assert Park.decode(worker.parked.data[K]) == Park(Origin(RECORDS, straggler.message.partition,
                                                              straggler.message.offset))
    _, value, headers = worker.letters()[-1]
    assert value == straggler.message.value
    assert headers[DLQ_REASON].startswith(b"parked behind")


def test_a_replayed_blocker_that_fails_again_parks_the_rest_of_the_release_behind_it() -> None:
    domain = FlakyDomain()
    domain.failing = {3}
    worker, log = Worker(domain), Log()
    events = [log.event(key, value) for key, value in k_records()]
    worker.run(events[:1])
    worker.run(events[1:])
    first = worker.letters()
    assert len(first) == 3  # the domain failed for the key's group: its first record blocks, the rest wait
    released = republish(worker, log)
    worker.run(released)
    again = worker.letters()[len(first):]
    new_blocker = str(Origin(RECORDS, released[0].message.partition, released[0].message.offset))
    assert [h[DLQ_REASON].decode() for _, _, h in again] == [
        "domain error for key 999:1", f"parked behind {new_blocker}", f"parked behind {new_blocker}"]
    assert worker.entities(K) == undisturbed(k_records()[:1]).entities(K)
    domain.failing = set()
    worker.run(republish(worker, log, resolved=len(first)))
    assert worker.entities(K) == undisturbed(k_records()).entities(K)
    assert K not in worker.parked.data


def test_processing_the_same_log_again_decides_the_same() -> None:
    """A restart re-processes uncommitted records with the tables as they were left: the same dead letters,
    the same state, the same park."""
    domain = FlakyDomain()
    domain.refused = {3}
    worker, log = Worker(domain), Log()
    events = [log.event(key, value) for key, value in k_records()]
    worker.run(events)
    state, park, letters = worker.entities(K), worker.parked.data[K], worker.letters()
    worker.run(events)
    assert worker.entities(K) == state
    assert worker.parked.data[K] == park
    assert worker.letters()[len(letters):] == letters


def test_forwarded_references_are_never_parked() -> None:
    worker, log = Worker(FlakyDomain()), Log()
    loc = record("LOCATION", "L1", location("L1", "CF10 1AA"), person_id=None, line_no=9)
    forwarded = log.event(b"999:LOCATION:L1", loc, partition=0, headers=[(FORWARDED, FORWARDED_REFERENCE)])
    assert worker.processor.parking is not None
    assert worker.processor.parking.dead_lettered(forwarded) is None
    assert not worker.parked.data


# -- the sink's decisions over a batch ---------------------------------------------------------------------


def entry(offset: int, key: bytes = K, release: Release | None = None) -> Entry:
    return Entry(Origin(CHANGES, 0, offset), key, release)


def test_the_sink_parks_what_follows_a_refused_event_of_the_same_employee_in_the_batch() -> None:
    batch = [entry(1), entry(2), entry(3, J), entry(4), entry(5, b"999:LOCATION:7")]
    clean = settle(batch, {}, set())
    assert clean.applied == {(0, 1), (0, 2), (0, 3), (0, 4), (0, 5)}
    assert clean.parks == {K: None, J: None}
    refused = settle(batch, {}, {(0, 2), (0, 5)})  # a reference refused on its own parks nothing
    assert refused.applied == {(0, 1), (0, 3)}
    assert refused.parked == {(0, 4): Origin(CHANGES, 0, 2)}
    assert refused.parks == {K: Park(Origin(CHANGES, 0, 2)), J: None}


def test_the_sink_releases_a_parked_employee_and_skips_a_discarded_marker() -> None:
    blocker = Origin(CHANGES, 0, 2)
    parks = {K: Park(blocker)}
    batch = [entry(7), entry(8, release=Release(blocker, discarded=True)), entry(9, release=Release(blocker)),
             entry(10, release=Release(blocker, end=True)), entry(11)]
    settled = settle(batch, parks, set())
    assert settled.parked == {(0, 7): blocker}
    assert settled.skipped == {(0, 8)}
    assert settled.applied == {(0, 9), (0, 10), (0, 11)}
    assert settled.parks == {K: None}
    assert parks == {K: Park(blocker)}  # the stored parks are not changed in place
