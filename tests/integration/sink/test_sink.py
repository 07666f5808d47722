"""The sink end to end: change events on esr.changes (embedded Tansu) -> PostgreSQL, and its faults."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import psycopg
import pytest
from confluent_kafka import Message

from connectors.sink import Sink, reset_offsets
from connectors.sink.database import APPLICATION_NAME, stored_offsets
from esr.kafka.topics import (
    CHANGES,
    DLQ_EVENT_ID,
    DLQ_OFFSET,
    DLQ_PARTITION,
    DLQ_REASON,
    DLQ_SINK,
    DLQ_STAGE,
    DLQ_TOPIC,
)
from tests import sink_events as ev
from tests.integration.sink.conftest import (
    Changes,
    day_two,
    people,
    read_model,
    reference,
    wait_for,
)
from tests.integration.sink.proxy import CuttableProxy
from tests.kafka_helpers import consume_all

pytestmark = pytest.mark.integration


def header_map(message: Message) -> dict[str, str]:
    raw = message.headers() or []
    items = raw.items() if isinstance(raw, dict) else raw
    return {k: v.decode() if isinstance(v, bytes) else (v or "") for k, v in items}


def stepped(sink: Sink) -> bool:
    """One turn of the sink's loop (for conditions polled from the sink's own thread)."""
    sink.step()
    return True


def total_stored(url: str, group: str = "test-sink") -> int:
    return sum(o.next_offset for o in stored_offsets(url, group, CHANGES).values())


class Running:
    """A sink running in a thread of its own (`run()`), as `esr run` would run it."""

    def __init__(self, sink: Sink) -> None:
        self.sink = sink
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._main, name="sink", daemon=True)
        self._thread.start()

    def _main(self) -> None:
        try:
            with self.sink:
                self.sink.run()
        except BaseException as exc:
            self.error = exc
            raise

    def stop(self) -> None:
        self.sink.stop()
        self._thread.join(30)
        assert not self._thread.is_alive(), "the sink did not stop"
        if self.error is not None:
            raise self.error


@pytest.fixture
def running() -> Iterator[list[Running]]:
    started: list[Running] = []
    yield started
    for run in started:
        if run._thread.is_alive():
            run.sink.stop()
            run._thread.join(30)


def test_events_land_and_offsets_are_the_databases(changes: Changes, database_url: str) -> None:
    load = people(20)
    changes.publish(load)
    with changes.sink(database_url) as sink:
        stats = sink.drain(idle=0.5, timeout=40)
    assert (stats.messages, stats.events, stats.change_events) == (100, 100, 100)
    assert stats.state_rows == 100
    model = read_model(database_url)
    assert {name: len(found) for name, found in model.items()} == {
        "person": 20, "assignment": 20, "home_address": 20, "phone": 20, "vehicle": 0, "costing": 20,
        "location": 0, "organisation": 0, "position": 0, "change_event": 100}
    assert model["person"][0]["last_name"] == "Person1"
    assert total_stored(database_url) == 100

    # a new sink of the group starts at the stored offsets: it reads only what came since
    changes.publish(day_two(20))
    with changes.sink(database_url) as sink:
        stats = sink.drain(idle=0.5, timeout=40)
    assert stats.messages == len(day_two(20))
    assert total_stored(database_url) == 100 + len(day_two(20))
    persons = {r["person_id"]: r for r in read_model(database_url)["person"]}
    assert persons["3"]["last_name"] == "Changed3"
    assert persons["7"]["deleted_at"] is not None
    assert persons["21"]["deleted_at"] is None


def test_redelivery_from_the_earliest_offset_changes_nothing(
    changes: Changes, database_url: str, other_database_url: str
) -> None:
    changes.publish(people(30) + day_two(30))
    with changes.sink(database_url, batch_size=40) as sink:
        sink.drain(idle=0.5, timeout=40)
    before = read_model(database_url)
    with psycopg.connect(database_url) as conn:
        stamps = conn.execute("SELECT person_id, updated_at FROM esr.person ORDER BY 1").fetchall()
    assert reset_offsets(database_url, "test-sink", CHANGES) == 3
    with changes.sink(database_url) as sink:
        stats = sink.drain(idle=0.5, timeout=40)
    assert stats.messages == changes.published
    assert (stats.change_events, stats.state_rows, stats.cascaded) == (0, 0, 0)
    assert read_model(database_url) == before
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT person_id, updated_at FROM esr.person ORDER BY 1").fetchall() == stamps
    # and it is what one transaction of everything makes
    assert before == reference(other_database_url, changes.bootstrap)


def test_refused_and_undecodable_events_go_to_the_dead_letters(changes: Changes, database_url: str) -> None:
    good = people(3)
    overflow = ev.change("COSTING", "90", "COSTING_ADDED", after=ev.costing("1", "11", "90", percentage="1000.00"),
                         person_id="1", line_no=50)
    bad_date = ev.change("PHONE", "91", "PHONE_ADDED", after=ev.phone("2", "91", effective_start="2024-02-31"),
                         person_id="2", line_no=51)
    changes.publish([*good[:5], overflow, *good[5:10], bad_date, *good[10:]])
    changes.raw(b"999:3", b"\x00\x01 not avro at all")
    changes.publisher.flush(10)
    with changes.sink(database_url) as sink:
        stats = sink.drain(idle=0.5, timeout=40)
    assert stats.dead_letters == 3
    assert stats.events == 15
    model = read_model(database_url)
    assert len(model["change_event"]) == 15
    assert {r["costing_id"] for r in model["costing"]} == {"14", "24", "34"}
    assert total_stored(database_url) == changes.published  # past the dead letters too

    letters = consume_all(changes.bootstrap, DLQ_SINK, expected=3)
    assert len(letters) == 3
    by_reason: dict[str, tuple[dict[str, str], Message]] = {}
    for letter in letters:
        headers = header_map(letter)
        assert headers[DLQ_STAGE] == "sink"
        assert headers[DLQ_TOPIC] == CHANGES
        assert int(headers[DLQ_PARTITION]) in range(3)
        assert int(headers[DLQ_OFFSET]) >= 0
        by_reason[headers[DLQ_REASON].split(":")[0]] = (headers, letter)
    assert set(by_reason) == {"refused by PostgreSQL", "phone.effective_start", "undecodable"}
    refused, letter = by_reason["refused by PostgreSQL"]
    assert "22003" in refused[DLQ_REASON]
    assert refused[DLQ_EVENT_ID] == overflow["event_id"]
    assert letter.key() == b"999:1"
    assert by_reason["undecodable"][1].value() == b"\x00\x01 not avro at all"


def test_postgresql_going_away_and_coming_back(
    changes: Changes, database_url: str, other_database_url: str, running: list[Running]
) -> None:
    """The database disappears mid-load (every connection dropped, new ones refused) and comes back: the
    sink pauses, retries with back-off, and ends in the state of an undisturbed run."""
    proxy, through_proxy = CuttableProxy.to(database_url)
    try:
        changes.publish(people(150))
        sink = changes.sink(through_proxy, batch_size=50)
        run = Running(sink)
        running.append(run)
        wait_for(lambda: sink.stats.batches >= 2, 30, "the first batches")
        proxy.cut()
        wait_for(lambda: sink.stats.outages >= 1, 10, "the sink to notice")
        changes.publish(day_two(150))  # more work arrives while the database is away
        threading.Event().wait(1.5)
        assert not sink.caught_up
        proxy.restore()
        wait_for(lambda: sink.caught_up and total_stored(database_url) == changes.published, 40, "catching up")
        run.stop()
    finally:
        proxy.close()
    assert sink.stats.outages >= 1
    assert sink.stats.rewinds >= 1
    assert read_model(database_url) == reference(other_database_url, changes.bootstrap)


@pytest.mark.parametrize("pipeline", [True, False], ids=["writer-thread", "inline"])
def test_backends_terminated_again_and_again(
    changes: Changes, database_url: str, other_database_url: str, pipeline: bool
) -> None:
    changes.publish(people(300) + day_two(300))
    sink = changes.sink(database_url, batch_size=60, pipeline=pipeline)
    stop = threading.Event()
    terminated = 0

    def terminate() -> None:
        nonlocal terminated
        with psycopg.connect(database_url, autocommit=True) as conn:
            while not stop.wait(0.25):
                found = conn.execute(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE application_name = %s AND datname = current_database()", (APPLICATION_NAME,)
                ).fetchone()
                terminated += found[0] if found else 0

    killer = threading.Thread(target=terminate, daemon=True)
    with sink:
        killer.start()
        try:
            wait_for(lambda: stepped(sink) and terminated >= 4, 40, "several terminated connections")
        finally:
            stop.set()
            killer.join(10)
        sink.drain(idle=0.5, timeout=40)
    assert sink.stats.outages >= 1
    assert total_stored(database_url) == changes.published
    assert read_model(database_url) == reference(other_database_url, changes.bootstrap)


def test_database_unavailable_when_partitions_are_assigned(changes: Changes, database_url: str) -> None:
    proxy, through_proxy = CuttableProxy.to(database_url)
    try:
        changes.publish(people(10))
        proxy.cut()
        with changes.sink(through_proxy) as sink:
            wait_for(lambda: stepped(sink) and sink.stats.outages >= 1, 20, "the outage at assignment")
            for _ in range(5):
                sink.step()
            assert sink.stats.events == 0
            proxy.restore()
            sink.drain(idle=0.5, timeout=30)
    finally:
        proxy.close()
    assert len(read_model(database_url)["change_event"]) == 50
    assert total_stored(database_url) == 50


def test_offsets_of_another_incarnation_of_the_topic_are_not_used(changes: Changes, database_url: str) -> None:
    """The embedded broker loses its topics on restart: offsets stored for the old topic must not skip the
    new one's messages."""
    changes.publish(people(4))
    with psycopg.connect(database_url) as conn:
        conn.execute(
            "INSERT INTO esr.sink_offset (consumer_group, topic, partition, next_offset, topic_id) "
            "SELECT 'test-sink', %s, p, 1000, 'an-older-topic' FROM generate_series(0, 2) AS p", (CHANGES,))
    with changes.sink(database_url) as sink:
        sink.start()
        wait_for(lambda: stepped(sink) and bool(sink._partitions), 20, "the assignment")
        # from the assignment on, the table no longer shows the old incarnation's offsets
        assert {o.next_offset for o in stored_offsets(database_url, "test-sink", CHANGES).values()} <= {0, 20}
        stats = sink.drain(idle=0.5, timeout=30)
    assert stats.events == 20
    assert total_stored(database_url) == 20
    assert "an-older-topic" not in {o.topic_id for o in stored_offsets(database_url, "test-sink", CHANGES).values()}


def test_two_sinks_share_the_partitions(
    changes: Changes, database_url: str, other_database_url: str, running: list[Running]
) -> None:
    changes.publish(people(100))
    first = Running(changes.sink(database_url, batch_size=50))
    running.append(first)
    wait_for(lambda: first.sink.stats.batches >= 1, 20, "the first sink")
    second = Running(changes.sink(database_url, batch_size=50))
    running.append(second)
    changes.publish(day_two(100))
    wait_for(lambda: total_stored(database_url) == changes.published, 40, "both sinks")
    first.stop()
    second.stop()
    assert first.sink.stats.events + second.sink.stats.events >= changes.published
    assert read_model(database_url) == reference(other_database_url, changes.bootstrap)


def test_a_stored_offset_moved_under_the_sink_is_fenced(
    changes: Changes, database_url: str, other_database_url: str
) -> None:
    """Another writer moved the group's offset (a zombie sink, an operator's reset while running): the sink's
    next transaction is refused, rolled back, and it re-reads from what is stored."""
    changes.publish(people(60))
    with changes.sink(database_url, batch_size=30) as sink:
        wait_for(lambda: stepped(sink) and sink.stats.batches >= 2, 30, "the first batches")
        with psycopg.connect(database_url) as conn:
            conn.execute("UPDATE esr.sink_offset SET next_offset = 0 WHERE consumer_group = 'test-sink'")
        changes.publish(day_two(60))
        sink.drain(idle=0.5, timeout=40)
    assert sink.stats.rewinds >= 1
    assert total_stored(database_url) == changes.published
    assert read_model(database_url) == reference(other_database_url, changes.bootstrap)
