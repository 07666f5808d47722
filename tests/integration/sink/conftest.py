"""Fixtures of the sink's broker tests: the topics, a publisher of change events, a second database, and
a comparison of read models that ignores only processing timestamps."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import psycopg
import pytest
from confluent_kafka import Message
from psycopg import sql
from psycopg.rows import dict_row

from connectors.sink import Sink, SinkSettings
from connectors.sink.database import SinkDatabase
from connectors.sink.mapping import TABLES, Consumed
from esr.codec import Decoder, Encoder
from esr.kafka.producer import Publisher
from esr.kafka.topics import CHANGES, ensure_topics
from esr.runtime.broker import EmbeddedBroker
from tests import sink_events as ev
from tests.conftest import _create_database, _drop_database
from tests.kafka_helpers import consume_all

PARTITIONS = 3
VOLATILE = {"updated_at", "recorded_at"}  # processing time: the only columns two runs may differ in


class Changes:
    """esr.changes on the test's broker, and a publisher of change events (keyed like the stream app)."""

    def __init__(self, broker: EmbeddedBroker) -> None:
        self.bootstrap = broker.bootstrap_servers
        ensure_topics({"bootstrap.servers": self.bootstrap}, PARTITIONS)
        self.encoder = Encoder("change-event")
        self.publisher = Publisher({"bootstrap.servers": self.bootstrap, "partitioner": "murmur2_random",
                                    "linger.ms": 5, "enable.idempotence": True})
        self.published = 0

    def publish(self, events: Sequence[dict[str, Any]]) -> None:
        for event in events:
            self.raw(key_of(event), self.encoder.encode(event))
        self.publisher.flush(30)

    def raw(self, key: bytes, value: bytes | None) -> None:
        self.publisher.send(CHANGES, key, value, self.encoder.headers)
        self.published += 1

    def sink(self, database_url: str, group: str = "test-sink", **options: Any) -> Sink:
        settings = {"batch_size": 500, "batch_wait": 0.05, "backoff_initial": 0.2, "backoff_max": 1.0, **options}
        return Sink(SinkSettings(self.bootstrap, database_url, group_id=group, **settings))


def key_of(event: dict[str, Any]) -> bytes:
    person = event.get("person_id")
    return (f"{event['vpd']}:{person}" if person else f"{event['vpd']}:{event['entity_type']}:{event['entity_id']}"
            ).encode()


@pytest.fixture
def changes(broker: EmbeddedBroker) -> Changes:
    return Changes(broker)


@pytest.fixture
def other_database_url(admin_database_url: str, template_database: str) -> Iterator[str]:
    """A second fresh, migrated database (a reference run)."""
    name = f"esr_test_{uuid.uuid4().hex[:12]}"
    url = _create_database(admin_database_url, name, template_database)
    yield url
    _drop_database(admin_database_url, name)


def read_model(url: str, ignore: frozenset[str] | set[str] = VOLATILE) -> dict[str, list[dict[str, Any]]]:
    """Every table the sink writes, sorted, without the processing timestamps (`ignore`)."""
    tables: dict[str, list[dict[str, Any]]] = {}
    with psycopg.connect(url, row_factory=dict_row) as conn:
        for name in (*(spec.name for spec in TABLES), "change_event"):
            found = conn.execute(sql.SQL("SELECT * FROM esr.{} ORDER BY 1, 2").format(sql.Identifier(name))).fetchall()
            tables[name] = [{k: v for k, v in row.items() if k not in ignore} for row in found]
    return tables


def reference(url: str, bootstrap: str) -> dict[str, list[dict[str, Any]]]:
    """The read model an undisturbed sink makes of everything on esr.changes: read back (with the partitions
    and offsets the events have there) and written in one transaction, which the guards make equivalent to
    any sequence of batches in offset order."""
    messages = consume_all(bootstrap, CHANGES)
    database = SinkDatabase(url, "reference")
    try:
        database.write(located(messages, Encoder("change-event")), [])
    finally:
        database.close()
    return read_model(url)


def located(messages: Sequence[Message], encoder: Encoder) -> list[Consumed]:
    """The events of consumed messages, with their topic coordinates, in offset order per partition."""
    decode = Decoder(encoder.subject).decode
    found = []
    for m in sorted(messages, key=lambda m: (m.partition() or 0, m.offset() or 0)):
        value, topic, partition, offset = m.value(), m.topic(), m.partition(), m.offset()
        assert value is not None
        assert topic is not None
        assert partition is not None
        assert offset is not None
        found.append(Consumed(decode(value), topic, partition, offset))
    return found


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.05)


def people(count: int, *, first: int = 1, sequence: int = 1) -> list[dict[str, Any]]:
    """A full-file-like load: per person a person, an assignment, an address, a phone and a costing."""
    events: list[dict[str, Any]] = []
    line = 2
    for n in range(first, first + count):
        pid = str(n)
        aid, adid, phid, coid = f"{n}1", f"{n}2", f"{n}3", f"{n}4"
        for entity_type, entity_id, event_type, after in (
            ("PERSON", pid, "NEW_STARTER", ev.person(pid, f"Person{n}")),
            ("ASSIGNMENT", aid, "ASSIGNMENT_STARTED", ev.assignment(pid, aid)),
            ("ADDRESS", adid, "HOME_ADDRESS_ADDED", ev.address(pid, adid)),
            ("PHONE", phid, "PHONE_ADDED", ev.phone(pid, phid)),
            ("COSTING", coid, "COSTING_ADDED", ev.costing(pid, aid, coid)),
        ):
            events.append(ev.change(entity_type, entity_id, event_type, after=after, person_id=pid,
                                    sequence=sequence, line_no=line))
            line += 1
    return events


def day_two(count: int, *, sequence: int = 2) -> list[dict[str, Any]]:
    """A change file over `people(count)`: surname changes, phone deletes, person deletes, new starters."""
    events: list[dict[str, Any]] = []
    line = 2
    for n in range(1, count + 1):
        pid = str(n)
        if n % 3 == 0:
            events.append(ev.change("PERSON", pid, "SURNAME_CHANGED", before=ev.person(pid, f"Person{n}"),
                                    after=ev.person(pid, f"Changed{n}"), person_id=pid, sequence=sequence,
                                    line_no=line))
        elif n % 7 == 0:
            events.append(ev.change("PERSON", pid, "PERSON_DELETED", person_id=pid, sequence=sequence, line_no=line,
                                    op="d"))
        elif n % 5 == 0:
            events.append(ev.change("PHONE", f"{n}3", "PHONE_DELETED", person_id=pid, sequence=sequence,
                                    line_no=line, op="d"))
        line += 1
    return events + people(count // 10, first=count + 1, sequence=sequence)
