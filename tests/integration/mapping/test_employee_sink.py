"""The employee sink: esr.mapped-changes -> esr.employee, exactly once, with the template guard, soft
deletes, dead letters and a database outage."""

from __future__ import annotations

import dataclasses
import datetime as dt
import threading
import time
from collections.abc import Callable
from typing import Any

import psycopg
import pytest
from confluent_kafka import Producer

from connectors.sink.employee import EMPLOYEE_GROUP, EmployeeSink, employee_row, employee_sink_caught_up, write_rows
from esr.codec import Encoder
from esr.kafka.topics import DLQ_SINK, MAPPED_CHANGES, ensure_topics
from esr.mapping.catalogue import STANDARD_FIELDS
from esr.runtime.broker import EmbeddedBroker
from tests.integration.sink.proxy import CuttableProxy
from tests.kafka_helpers import consume_all

pytestmark = pytest.mark.integration

VPD = "999"
PARTITIONS = 3


def mapped(person_id: str, *, surname: str = "Smith", version: int = 1, deleted: bool = False,
           hire_date: str | None = "2020-01-31", udf: dict[str, str | None] | None = None,
           event_id: str | None = None) -> dict[str, Any]:
    standard = dict.fromkeys(STANDARD_FIELDS)
    standard.update(payroll_number=f"E{person_id}", surname=surname, hire_date=hire_date)
    return {
        "event_id": event_id or f"ev-{person_id}-{surname}-{version}-{deleted}",
        "event_type": "PERSON_DELETED" if deleted else "EMPLOYEE_MAPPED",
        "op": "d" if deleted else "u",
        "vpd": VPD,
        "person_id": person_id,
        "template_version": version,
        "standard": {} if deleted else standard,
        "udf": {} if deleted else (udf or {"band": "5", "years": "12"}),
        "udf_kinds": {} if deleted else {"band": "text", "years": "int"},
        "changes": [],
        "problems": [],
        "source": {"topic": None, "partition": None, "offset": None},
        "ts_ms": 0,
    }


def rows(url: str) -> dict[str, tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        found = conn.execute(
            "SELECT person_id, surname, hire_date, udf, template_version, deleted_at IS NOT NULL, activated_at"
            " FROM esr.employee ORDER BY person_id"
        ).fetchall()
    return {row[0]: row[1:] for row in found}


def test_rows_keep_their_types_never_go_back_to_an_older_template_and_delete_softly(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        write_rows(conn, [employee_row(mapped("1")), employee_row(mapped("2"))])
        conn.execute("UPDATE esr.employee SET activated_at = now() WHERE person_id = '1'")
        write_rows(conn, [employee_row(mapped("1", surname="Newer", version=2))])
        write_rows(conn, [employee_row(mapped("1", surname="Stale", version=1))])  # in flight before a remap
        write_rows(conn, [employee_row(mapped("2", surname="First")), employee_row(mapped("2", surname="Last"))])
        write_rows(conn, [employee_row(mapped("3"))])
        write_rows(conn, [employee_row(mapped("3", deleted=True))])
        write_rows(conn, [employee_row(mapped("4")), employee_row(mapped("4", deleted=True))])  # the last one wins
        write_rows(conn, [employee_row(mapped("5", deleted=True))])  # deleted before a record was written
        conn.commit()
    got = rows(database_url)
    assert got["1"][:5] == ("Newer", dt.date(2020, 1, 31), {"band": "5", "years": 12}, 2, False)
    assert got["1"][5] is not None  # the lifecycle column is the lifecycle's
    assert got["2"][0] == "Last"
    assert got["3"] == (None, None, {}, 1, True, None)  # soft-deleted, mapped fields cleared
    assert got["4"] == got["5"] == got["3"]  # the same row however the states were batched
    with psycopg.connect(database_url) as conn:
        write_rows(conn, [employee_row(mapped("3", surname="Back"))])
        conn.commit()
    assert rows(database_url)["3"][0] == "Back"
    assert rows(database_url)["3"][4] is False


def test_each_write_moves_its_own_rows_only(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        write_rows(conn, [employee_row(mapped("1")), employee_row(mapped("2", surname="Jones"))])
        conn.execute("UPDATE esr.employee SET surname = 'Edited' WHERE person_id = '1'")
        refused = employee_row(mapped("4"))
        refused = dataclasses.replace(refused, standard=tuple("not a date" if isinstance(v, dt.date) else v
                                                              for v in refused.standard))
        with pytest.raises(psycopg.errors.InvalidDatetimeFormat), conn.transaction():  # the batch rolls back
            write_rows(conn, [employee_row(mapped("3")), refused])
        write_rows(conn, [employee_row(mapped("5"))])  # the same transaction: 1 is not written again, 3 never
        conn.commit()
    got = rows(database_url)
    assert sorted(got) == ["1", "2", "5"]
    assert (got["1"][0], got["2"][0], got["5"][0]) == ("Edited", "Jones", "Smith")


def test_a_value_that_is_not_of_its_kind_is_refused_before_the_database() -> None:
    with pytest.raises(ValueError, match="Invalid isoformat"):
        employee_row(mapped("1", hire_date="31/01/2020"))


class Topic:
    def __init__(self, broker: EmbeddedBroker) -> None:
        self.config = {"bootstrap.servers": broker.bootstrap_servers}
        ensure_topics(self.config, PARTITIONS)
        self.producer = Producer({**self.config, "partitioner": "murmur2_random"})
        self.encoder = Encoder("mapped-change-event")

    def publish(self, events: list[dict[str, Any]]) -> None:
        for event in events:
            self.raw(f"{event['vpd']}:{event['person_id']}".encode(), self.encoder.encode(event))

    def raw(self, key: bytes, value: bytes) -> None:
        self.producer.produce(MAPPED_CHANGES, key=key, value=value)
        self.producer.flush(10)


def drain(sink: EmployeeSink, topic: Topic, url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not employee_sink_caught_up(topic.config, url, PARTITIONS):
        assert time.monotonic() < deadline, "the employee sink did not catch up"
        sink.step(0.2)


def test_exactly_once_across_restarts_with_dead_letters(broker: EmbeddedBroker, database_url: str) -> None:
    topic = Topic(broker)
    topic.publish([mapped(str(i)) for i in range(20)])
    topic.raw(f"{VPD}:99".encode(), b"not avro")
    with pytest.raises(TimeoutError, match="did not catch up"):
        EmployeeSink(broker.bootstrap_servers, database_url).drain(PARTITIONS, timeout=0)
    sink = EmployeeSink(broker.bootstrap_servers, database_url, batch_size=7)
    assert sink.drain(PARTITIONS, timeout=30).dead_letters == 1
    assert len(rows(database_url)) == 20
    letters = consume_all(broker.bootstrap_servers, DLQ_SINK)
    assert [m.key() for m in letters] == [f"{VPD}:99".encode()]

    with psycopg.connect(database_url) as conn:
        before = conn.execute("SELECT sum(next_offset) FROM esr.sink_offset WHERE consumer_group = %s",
                              (EMPLOYEE_GROUP,)).fetchone()
    topic.publish([mapped("0", surname="Changed")])
    restarted = EmployeeSink(broker.bootstrap_servers, database_url)
    restarted.start()
    try:
        drain(restarted, topic, database_url)
        assert restarted.stats.messages == 1  # resumed from the stored offsets, nothing read twice
    finally:
        restarted.close()
    assert rows(database_url)["0"][0] == "Changed"
    with psycopg.connect(database_url) as conn:
        after = conn.execute("SELECT sum(next_offset) FROM esr.sink_offset WHERE consumer_group = %s",
                             (EMPLOYEE_GROUP,)).fetchone()
    assert before is not None
    assert after is not None
    assert after[0] == before[0] + 1


def test_a_database_outage_loses_nothing(broker: EmbeddedBroker, database_url: str) -> None:
    topic = Topic(broker)
    proxy, through_proxy = CuttableProxy.to(database_url)
    stop = threading.Event()
    sink = EmployeeSink(broker.bootstrap_servers, through_proxy, batch_size=10, backoff_initial=0.1, backoff_max=0.5)
    thread = threading.Thread(target=sink.run, args=(stop,), daemon=True)
    try:
        topic.publish([mapped(str(i)) for i in range(30)])
        thread.start()
        wait(lambda: sink.stats.batches >= 1, "the first batch")
        proxy.cut()
        topic.publish([mapped(str(i), surname="Later") for i in range(30)])
        wait(lambda: sink.stats.outages >= 1, "the outage")
        proxy.restore()
        wait(lambda: employee_sink_caught_up(topic.config, database_url, PARTITIONS), "the catch-up")
    finally:
        stop.set()
        thread.join(30)
        proxy.close()
    got = rows(database_url)
    assert len(got) == 30
    assert {row[0] for row in got.values()} == {"Later"}


def wait(condition: Callable[[], bool], what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)
