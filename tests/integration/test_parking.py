"""Parking behind dead letters, end to end on the embedded broker (`esr.parking`): the worker over real
files with the real domain, the sink over PostgreSQL, both resolved with `esr dlq`."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from click.testing import CliRunner, Result
from confluent_kafka import Message

from connectors.sink import Sink, SinkSettings
from esr.cli import main
from esr.codec import Encoder, Provenance, record_event
from esr.config import Settings
from esr.format.lines import Record
from esr.format.reader import EsrFile
from esr.generate import generate_files
from esr.kafka.config import producer_config
from esr.kafka.producer import Publisher
from esr.kafka.topics import CHANGES, DLQ_OFFSET, DLQ_PARTITION, DLQ_PROCESS, DLQ_REASON, DLQ_SINK, EMPLOYEES, RECORDS
from esr.parking import PARKED_BEHIND, RELEASE, Origin, Park
from esr.runtime.broker import EmbeddedBroker
from streams.agents import EmployeesProcessor
from streams.port import load_domain
from streams.topics import PARKED_CHANGELOG
from tests import sink_events as ev
from tests.conftest import _create_database, _drop_database
from tests.integration.sink.conftest import Changes, people, read_model, reference
from tests.integration.streams.conftest import PARTITIONS, VPD, messages, publish_files, wait_processed, workers
from tests.kafka_helpers import consume_all
from tests.unit.streams.test_shell import Event, Output, Table
from tests.unit.streams.test_shell import Message as FakeMessage

pytestmark = pytest.mark.integration

K = "10000001"  # has records in both change files of `files`
OTHER = "10000002"


def esr_cli(database_url: str, bootstrap: str, tmp_path: Path) -> Callable[..., Result]:
    env = {"ESR_DATABASE_URL": database_url, "ESR_BOOTSTRAP_SERVERS": bootstrap, "ESR_DATA_DIR": str(tmp_path),
           "ESR_PARTITIONS": str(PARTITIONS)}

    def esr(*args: str) -> Result:
        result = CliRunner().invoke(main, ["dlq", *args], env=env, catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return result

    return esr


def headers_of(message: Message) -> dict[str, bytes]:
    headers = message.headers() or []
    pairs = headers.items() if isinstance(headers, dict) else headers
    return {name: value if isinstance(value, bytes) else str(value or "").encode() for name, value in pairs}


def origin_of(letter: Message) -> Origin:
    headers = headers_of(letter)
    return Origin(RECORDS if headers.get("esr.dlq.original.topic") == RECORDS.encode() else CHANGES,
                  int(headers[DLQ_PARTITION]), int(headers[DLQ_OFFSET]))


# -- the worker ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """A full file of 60 employees and two daily change files (K has records in both)."""
    return generate_files(VPD, 60, 2, 5, tmp_path_factory.mktemp("parking-files"))


def foreign_record(full_file: Path) -> bytes:
    """A record of OTHER, to be sent under K's key: the domain refuses it for K ("record for ... in the batch
    of ...")."""
    with EsrFile(full_file) as esr_file:
        provenance = Provenance.from_scan(esr_file.open())
        line_no, parsed = next((n, p) for n, p in esr_file.records()
                               if isinstance(p, Record) and p.person_id == OTHER)
    assert isinstance(parsed, Record)
    return Encoder("record-event").encode(record_event(parsed, provenance, line_no))


def records_in(path: Path, person_id: str) -> int:
    with EsrFile(path) as esr_file:
        esr_file.open()
        return sum(1 for _, parsed in esr_file.records() if getattr(parsed, "person_id", None) == person_id)


def reference_run(bootstrap: str, skip: Callable[[Message], bool]) -> tuple[list[str], dict[bytes, Any]]:
    """The worker's shell with the real domain over esr.records as it is, without the messages `skip`
    names, in each partition's order: the change event ids in order and the last esr.employees values."""
    domain = load_domain()
    output = Output()
    processor = EmployeesProcessor(domain, Table(), Table(), output, PARTITIONS)  # type: ignore[arg-type]
    events = [Event(FakeMessage(RECORDS, m.partition() or 0, m.offset() or 0, m.key(), m.value(),
                                list(headers_of(m).items())))
              for m in sorted(consume_all(bootstrap, RECORDS, idle=1.0),
                              key=lambda m: (m.partition() or 0, m.offset() or 0))
              if not skip(m)]

    async def go() -> None:
        await processor.process(events)
        await processor.settle()

    asyncio.run(go())
    ids = [domain.decode_change(value or b"")["event_id"] for _, value, _, _ in output.to(CHANGES)]
    return ids, {key: value for key, value, _, _ in output.to(EMPLOYEES) if key is not None}


def test_the_worker_parks_an_employee_behind_a_refused_record_across_a_restart_until_a_discard(
        broker: EmbeddedBroker, database_url: str, files: list[Path], tmp_path: Path) -> None:
    bootstrap = broker.bootstrap_servers
    key = f"{VPD}:{K}".encode()
    full = publish_files(bootstrap, database_url, files[:1])
    with workers(bootstrap, tmp_path / "first") as group:
        wait_processed(group, full)  # the full file's barrier is in the log before what follows
        publisher = Publisher(producer_config(Settings(partitions=PARTITIONS), bootstrap))
        publisher.send(RECORDS, key, foreign_record(files[0]), Encoder("record-event").headers)
        publisher.flush()
        day_one = publish_files(bootstrap, database_url, files[1:2])
        wait_processed(group, full + 1 + day_one)
    first = messages(bootstrap, DLQ_PROCESS)
    blocker = next(m for m in first if headers_of(m)[DLQ_REASON].startswith(b"rejected by the domain: record for"))
    assert blocker.key() == key
    parked = {origin_of(m) for m in first if headers_of(m).get(PARKED_BEHIND) == str(origin_of(blocker)).encode()}
    assert len(parked) == records_in(files[1], K)
    assert {m.key() for m in first} == {key}  # nobody else is held

    day_two = publish_files(bootstrap, database_url, files[2:3])
    with workers(bootstrap, tmp_path / "second") as group:  # a restart: the park comes back from its changelog
        wait_processed(group, day_two)
        second = messages(bootstrap, DLQ_PROCESS)
        parked_now = {origin_of(m) for m in second
                      if headers_of(m).get(PARKED_BEHIND) == str(origin_of(blocker)).encode()}
        assert len(parked_now - parked) == records_in(files[2], K)
        listed = esr_cli(database_url, bootstrap, tmp_path)("list").output
        assert f"({len(parked_now)} parked behind it)" in listed
        esr_cli(database_url, bootstrap, tmp_path)(
            "discard", f"{blocker.partition()}:{blocker.offset()}", "--reason", "another person's record")
        wait_processed(group, day_two + 1 + len(parked_now))
        third = messages(bootstrap, DLQ_PROCESS)
    assert len(third) == len(second)  # the released records were applied, none parked again
    park_log = [m for m in consume_all(bootstrap, PARKED_CHANGELOG, idle=1.0) if m.key() == key]
    assert park_log[-1].value() is None  # released
    assert Park.decode(park_log[0].value() or b"").blocker == origin_of(blocker)

    # K ends as an undisturbed run without the refused record leaves it, its events in the same order
    def released_or_refused(message: Message) -> bool:
        return RELEASE in headers_of(message) or message.value() == blocker.value()

    expected_ids, expected_states = reference_run(bootstrap, released_or_refused)
    decode = load_domain().decode_change
    changes = messages(bootstrap, CHANGES)
    ids = list(dict.fromkeys(decode(m.value() or b"")["event_id"] for m in changes))
    assert set(ids) == set(expected_ids)
    # K's own records' events in the same order; the work-address events a location change fans out to K are
    # emitted where the location is in the log, parked or not (esr.parking: reference data is never parked)
    own = [event["event_id"] for event in (decode(m.value() or b"") for m in changes if m.key() == key)
           if event["event_type"] != "WORK_ADDRESS_CHANGED"]
    assert list(dict.fromkeys(own)) == [i for i in dict.fromkeys(expected_ids) if i in set(own)]
    states = {m.key(): m.value() for m in messages(bootstrap, EMPLOYEES)}
    assert json.loads(states[key] or b"{}") == json.loads(expected_states[key])


# -- the sink -------------------------------------------------------------------------------------------------


@pytest.fixture
def reference_url(admin_database_url: str, template_database: str) -> Iterator[str]:
    name = f"esr_test_{uuid.uuid4().hex[:12]}"
    url = _create_database(admin_database_url, name, template_database)
    yield url
    _drop_database(admin_database_url, name)


def surname(person_id: str, old: str, new: str, line_no: int, sequence: int = 2) -> dict[str, Any]:
    return ev.change("PERSON", person_id, "SURNAME_CHANGED", before=ev.person(person_id, old),
                     after=ev.person(person_id, new), person_id=person_id, sequence=sequence, line_no=line_no)


def drain(changes: Changes, database_url: str, group: str) -> None:
    with Sink(SinkSettings(changes.bootstrap, database_url, group_id=group, batch_size=500, batch_wait=0.05,
                           backoff_initial=0.2, backoff_max=1.0)) as sink:
        sink.drain(idle=0.5, timeout=60)


def parks(database_url: str) -> list[tuple[str, str]]:
    with psycopg.connect(database_url) as conn:
        return [(k, b) for k, b in conn.execute("SELECT key, blocker FROM esr.sink_parked ORDER BY key").fetchall()]


def state_tables(model: dict[str, list[dict[str, Any]]]) -> dict[str, list[dict[str, Any]]]:
    """The read model without the change_event rows' own coordinates (a replayed event is read at another
    offset); the events themselves are compared by id."""
    tables = {name: rows for name, rows in model.items() if name != "change_event"}
    tables["change_event"] = [{"event_id": event_id} for event_id in sorted(row["event_id"]
                                                                            for row in model["change_event"])]
    return tables


def test_the_sink_parks_an_employee_behind_a_refused_event_until_a_replay_after_the_fix(
        broker: EmbeddedBroker, database_url: str, reference_url: str, tmp_path: Path) -> None:
    changes = Changes(broker)
    with psycopg.connect(database_url) as conn:  # the cause: a rule the operator will lift
        conn.execute("ALTER TABLE esr.person ADD CONSTRAINT test_no_forbidden CHECK (last_name <> 'Forbidden')")
    changes.publish([
        *people(3),
        surname("1", "Person1", "Forbidden", 20),  # refused
        # applied at first in the same batch: the batch is rolled back and written again with it parked
        ev.change("PHONE", "13", "PHONE_DELETED", person_id="1", sequence=2, line_no=21, op="d"),
        surname("2", "Person2", "Two", 22),
    ])
    group = f"test-sink-{uuid.uuid4().hex[:6]}"
    drain(changes, database_url, group)
    changes.publish([  # a later batch: parked too
        surname("1", "Forbidden", "Later", 2, sequence=3),
        ev.change("PHONE", "15", "PHONE_ADDED", after=ev.phone("1", "15"), person_id="1", sequence=3, line_no=3),
    ])
    drain(changes, database_url, group)

    model = read_model(database_url)
    names = {row["person_id"]: row["last_name"] for row in model["person"]}
    assert names == {"1": "Person1", "2": "Two", "3": "Person3"}
    assert {row["phone_id"] for row in model["phone"] if row["deleted_at"] is None} >= {"13"}
    letters = consume_all(changes.bootstrap, DLQ_SINK, expected=4)
    reasons = [headers_of(m)[DLQ_REASON].decode() for m in letters]
    assert reasons[0].startswith("refused by PostgreSQL")
    blocker = origin_of(letters[0])
    assert reasons[1:] == [f"parked behind {blocker}"] * 3
    assert all(headers_of(m)[PARKED_BEHIND] == str(blocker).encode() for m in letters[1:])
    assert parks(database_url) == [("999:1", str(blocker))]

    with psycopg.connect(database_url) as conn:  # the fix
        conn.execute("ALTER TABLE esr.person DROP CONSTRAINT test_no_forbidden")
    replayed = esr_cli(database_url, changes.bootstrap, tmp_path)(
        "replay", "--stage", "sink", f"{letters[0].partition()}:{letters[0].offset()}")
    assert "with 3 parked letter(s) behind it, in order" in replayed.output
    drain(changes, database_url, group)
    assert parks(database_url) == []
    assert len(consume_all(changes.bootstrap, DLQ_SINK, idle=1.0)) == 4  # nothing parked again
    assert state_tables(read_model(database_url)) == state_tables(reference(reference_url, changes.bootstrap))


def test_the_sink_discard_releases_the_employee_and_its_parked_events_follow(
        broker: EmbeddedBroker, database_url: str, reference_url: str, tmp_path: Path) -> None:
    changes = Changes(broker)
    overflow = ev.change("COSTING", "90", "COSTING_ADDED", after=ev.costing("1", "11", "90", percentage="1000.00"),
                         person_id="1", sequence=2, line_no=20)
    changes.publish([*people(2), overflow, surname("1", "Person1", "After", 21)])
    group = f"test-sink-{uuid.uuid4().hex[:6]}"
    drain(changes, database_url, group)
    letters = consume_all(changes.bootstrap, DLQ_SINK, expected=2)
    assert [headers_of(m)[DLQ_REASON].decode().split(":")[0] for m in letters] == [
        "refused by PostgreSQL", f"parked behind {origin_of(letters[0])}"]

    esr_cli(database_url, changes.bootstrap, tmp_path)(
        "discard", "--stage", "sink", f"{letters[0].partition()}:{letters[0].offset()}", "--reason", "bad share")
    drain(changes, database_url, group)
    assert parks(database_url) == []
    model = read_model(database_url)
    assert {row["person_id"]: row["last_name"] for row in model["person"]} == {"1": "After", "2": "Person2"}
    assert "90" not in {row["costing_id"] for row in model["costing"]}
    # the reference holds everything once, the refused event refused there too
    assert state_tables(model) == state_tables(reference(reference_url, changes.bootstrap))
