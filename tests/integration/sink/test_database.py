"""The sink's PostgreSQL half against a real database (no broker): guards, deletes, refusals, offsets, views."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.rows import dict_row

from connectors.sink.database import Fenced, OffsetUpdate, SinkDatabase, WriteResult, reset_offsets, stored_offsets
from connectors.sink.mapping import CHANGE_EVENT_COLUMNS, TABLES, UK, Consumed, Refusal
from esr.mileage.store import unmatched_vehicles_of_file
from tests import sink_events as ev

pytestmark = pytest.mark.integration

TOPIC = "esr.changes"


@pytest.fixture
def db(database_url: str) -> Iterator[SinkDatabase]:
    database = SinkDatabase(database_url, "test")
    yield database
    database.close()


class Writer:
    """Writes events as the sink would, each call one batch/transaction, offsets on partition 0."""

    def __init__(self, db: SinkDatabase) -> None:
        self.db = db
        self.offset = 0
        self.stored: int | None = None

    def __call__(self, *events: dict[str, Any]) -> WriteResult:
        batch = []
        for event in events:
            batch.append(Consumed(event, TOPIC, 0, self.offset))
            self.offset += 1
        update = OffsetUpdate(TOPIC, 0, self.offset, self.stored)
        result = self.db.write(batch, [update])
        self.stored = self.offset
        return result


@pytest.fixture
def write(db: SinkDatabase) -> Writer:
    return Writer(db)


def rows(url: str, table: str, order: str = "1") -> list[dict[str, Any]]:
    with psycopg.connect(url, row_factory=dict_row) as conn:
        return conn.execute(sql.SQL("SELECT * FROM esr.{} ORDER BY " + order).format(sql.Identifier(table))).fetchall()


def one(url: str, table: str) -> dict[str, Any]:
    found = rows(url, table)
    assert len(found) == 1, found
    return found[0]


def snapshot(url: str) -> dict[str, list[dict[str, Any]]]:
    return {name: rows(url, name, "2") for name in (*(s.name for s in TABLES), "change_event", "sink_offset")}


# -- the schema ---------------------------------------------------------------------------------------------

def test_schema_matches_the_mapping(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        def columns(name: str) -> set[str]:
            return {r[0] for r in conn.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_schema = 'esr' AND table_name = %s",
                (name,)).fetchall()}

        for spec in TABLES:
            assert set(spec.columns) | {"deleted_at", "updated_at"} <= columns(spec.name), spec.name
        assert set(CHANGE_EVENT_COLUMNS) | {"recorded_at"} <= columns("change_event")
        assert {"consumer_group", "topic", "partition", "next_offset"} <= columns("sink_offset")
        assert {"vpd", "code", "engine_from", "engine_to", "rate_per_mile", "description"} <= columns(
            "mileage_category")
        assert {"vpd", "assignment_id", "person_id", "assignment_number", "location_id", "description", "line1",
                "line2", "line3", "town", "county", "postcode"} <= columns("work_address")
        assert {"vpd", "vehicle_allocation_id", "code", "engine_from", "engine_to", "rate_per_mile"} <= columns(
            "vehicle_mileage")


# -- current state ------------------------------------------------------------------------------------------

def test_upsert_moves_forward_and_never_back(database_url: str, write: Writer) -> None:
    write(ev.change("PERSON", "1", "NEW_STARTER", after=ev.person("1"), person_id="1", sequence=1, line_no=5))
    write(ev.change("PERSON", "1", "SURNAME_CHANGED", after=ev.person("1", "Jones"), person_id="1", sequence=2,
                    line_no=3))
    current = one(database_url, "person")
    assert (current["last_name"], current["src_sequence"], current["src_line_no"]) == ("Jones", 2, 3)
    # an older line arriving late (a replay of an earlier file) changes nothing, not even updated_at
    result = write(ev.change("PERSON", "1", "PERSON_UPDATED", after=ev.person("1", "Stale"), person_id="1",
                             sequence=1, line_no=9))
    assert result.state_rows == 0
    assert one(database_url, "person") == current
    assert len(rows(database_url, "change_event")) == 3  # history has it


def test_an_event_id_already_held_is_ignored(database_url: str, write: Writer) -> None:
    event = ev.change("PHONE", "40", "PHONE_ADDED", after=ev.phone("1", "40"), person_id="1", line_no=4)
    write(event)
    before = snapshot(database_url)
    # the same event again, even with other content and a later position: it is held, so ignored
    again = {**event, "after": ev.phone("1", "40", phone_number="0"), "source": {**event["source"], "sequence": 9}}
    result = write(again, event)
    assert (result.change_events, result.state_rows) == (0, 0)
    after = snapshot(database_url)
    assert after.pop("sink_offset") != before.pop("sink_offset")
    assert after == before


def test_redelivering_a_batch_changes_no_row(database_url: str, db: SinkDatabase) -> None:
    events = [
        ev.change("PERSON", "1", "NEW_STARTER", after=ev.person("1"), person_id="1", line_no=2),
        ev.change("ASSIGNMENT", "11", "ASSIGNMENT_STARTED", after=ev.assignment("1", "11"), person_id="1", line_no=3),
        ev.change("COSTING", "50", "COSTING_DELETED", person_id="1", line_no=4),
        ev.change("PERSON", "2", "PERSON_DELETED", person_id="2", line_no=5),
    ]
    first = Writer(db)
    first(*events)
    before = snapshot(database_url)
    replay = Writer(SinkDatabase(database_url, "replay"))
    replay(*events)
    after = snapshot(database_url)
    assert after.pop("sink_offset") != before.pop("sink_offset")  # the other group's offsets, nothing else
    assert after == before


def test_rows_are_counted_by_table(write: Writer) -> None:
    result = write(
        ev.change("PERSON", "1", "NEW_STARTER", after=ev.person("1"), person_id="1", line_no=2),
        ev.change("PHONE", "40", "PHONE_ADDED", after=ev.phone("1", "40"), person_id="1", line_no=3),
        ev.change("PHONE", "41", "PHONE_ADDED", after=ev.phone("1", "41"), person_id="1", line_no=4),
    )
    assert result.rows == {"person": 1, "phone": 2, "change_event": 3}
    result = write(
        ev.change("PHONE", "41", "PHONE_CHANGED", after=ev.phone("1", "41", phone_number="1"), person_id="1",
                  sequence=2, line_no=2),
        ev.change("PERSON", "1", "PERSON_DELETED", person_id="1", sequence=2, line_no=3, op="d"),
    )
    assert result.rows == {"phone": 3, "person": 1, "change_event": 2}  # one upsert, two cascaded
    assert (result.state_rows, result.cascaded) == (2, 2)


@pytest.fixture
def stale_lookups(monkeypatch: pytest.MonkeyPatch, db: SinkDatabase) -> None:
    """Look-ups that find nothing: what a sink sees when another writer inserts the same keys and events
    between its look-up and its COPY."""
    from connectors.sink import database

    monkeypatch.setattr(database, "_HELD", sql.SQL("SELECT NULL, NULL, NULL WHERE false AND %s::text[] IS NULL"))
    for name in db._existing:
        db._existing[name] = sql.Composed(
            [sql.SQL("SELECT NULL, NULL, NULL WHERE false AND %s::text[] IS NULL AND %s::text[] IS NULL")])


@pytest.mark.usefixtures("stale_lookups")
def test_keys_inserted_by_another_writer_meanwhile_are_upserted(database_url: str, db: SinkDatabase) -> None:
    first = Writer(SinkDatabase(database_url, "other"))
    events = [
        ev.change("PERSON", "1", "NEW_STARTER", after=ev.person("1"), person_id="1", line_no=2),
        ev.change("LOCATION", "7", "LOCATION_ADDED", after=ev.location("7"), line_no=3),
    ]
    first(*events)
    before = snapshot(database_url)
    # the same events again: the straight COPY of change_event and of both rows fails on the unique keys,
    # and the upsert path writes nothing
    mine = Writer(db)
    again = mine(*events)
    assert (again.change_events, again.state_rows, again.refused) == (0, 0, [])
    after = snapshot(database_url)
    assert after.pop("sink_offset") != before.pop("sink_offset")
    assert after == before
    # a newer version of a row the look-up missed still moves it forward, and an older one does not
    newer = ev.change("PERSON", "1", "SURNAME_CHANGED", after=ev.person("1", "Jones"), person_id="1", sequence=2,
                      line_no=2)
    older = ev.change("LOCATION", "7", "LOCATION_CHANGED", after=ev.location("7", postcode="X1 1XX"), line_no=1)
    result = mine(newer, older)
    assert (result.change_events, result.state_rows) == (2, 1)
    assert one(database_url, "person")["last_name"] == "Jones"
    assert one(database_url, "location")["postcode"] == before["location"][0]["postcode"]


def test_soft_delete_keeps_the_row_and_a_newer_add_brings_it_back(database_url: str, write: Writer) -> None:
    write(ev.change("VEHICLE", "30", "VEHICLE_ADDED", after=ev.vehicle("1", "11", "30"), person_id="1", sequence=1,
                    line_no=7))
    write(ev.change("VEHICLE", "30", "VEHICLE_DELETED", person_id="1", sequence=2, line_no=4, op="d"))
    deleted = one(database_url, "vehicle")
    assert deleted["deleted_at"] == dt.datetime(2024, 3, 1, 7, 15, 3, tzinfo=UK)
    assert (deleted["registration"], deleted["src_sequence"], deleted["last_event_type"]) == ("X123ABC", 2,
                                                                                             "VEHICLE_DELETED")
    # an older add replayed late does not undelete it
    write(ev.change("VEHICLE", "30", "VEHICLE_CHANGED", after=ev.vehicle("1", "11", "30", make="FORD"),
                    person_id="1", sequence=1, line_no=8))
    assert one(database_url, "vehicle")["deleted_at"] is not None
    write(ev.change("VEHICLE", "30", "VEHICLE_ADDED", after=ev.vehicle("1", "11", "30", make="FORD"), person_id="1",
                    sequence=3, line_no=2))
    back = one(database_url, "vehicle")
    assert (back["deleted_at"], back["make"]) == (None, "FORD")


def test_a_delete_of_an_unknown_entity_leaves_a_deleted_row(database_url: str, write: Writer) -> None:
    write(ev.change("ADDRESS", "20", "HOME_ADDRESS_DELETED", person_id="1", sequence=2, line_no=3))
    write(ev.change("ADDRESS", "20", "HOME_ADDRESS_ADDED", after=ev.address("1", "20"), person_id="1", sequence=1,
                    line_no=9))  # older: must not bring it to life
    row = one(database_url, "home_address")
    assert row["deleted_at"] is not None
    assert row["person_id"] == "1"
    assert row["line1"] is None


def test_person_deleted_cascades_to_older_rows_under_the_person(database_url: str, write: Writer) -> None:
    write(
        ev.change("PERSON", "1", "NEW_STARTER", after=ev.person("1"), person_id="1", line_no=2),
        ev.change("ASSIGNMENT", "11", "ASSIGNMENT_STARTED", after=ev.assignment("1", "11"), person_id="1", line_no=3),
        ev.change("ADDRESS", "20", "HOME_ADDRESS_ADDED", after=ev.address("1", "20"), person_id="1", line_no=4),
        ev.change("PHONE", "40", "PHONE_ADDED", after=ev.phone("1", "40"), person_id="1", line_no=5),
        ev.change("VEHICLE", "30", "VEHICLE_ADDED", after=ev.vehicle("1", "11", "30"), person_id="1", line_no=6),
        ev.change("COSTING", "50", "COSTING_ADDED", after=ev.costing("1", "11", "50"), person_id="1", line_no=7),
        ev.change("PERSON", "2", "NEW_STARTER", after=ev.person("2"), person_id="2", line_no=8),
        ev.change("PHONE", "41", "PHONE_ADDED", after=ev.phone("2", "41"), person_id="2", line_no=9),
    )
    result = write(
        ev.change("PERSON", "1", "PERSON_DELETED", person_id="1", sequence=2, line_no=2, op="d"),
        # the same file, later line: a phone for person 1 again (after the delete): stays live
        ev.change("PHONE", "42", "PHONE_ADDED", after=ev.phone("1", "42"), person_id="1", sequence=2, line_no=3),
    )
    assert result.cascaded == 5
    for table in ("person", "assignment", "home_address", "phone", "vehicle", "costing"):
        for row in rows(database_url, table):
            live = row["person_id"] == "2" or row.get("phone_id") == "42"
            assert (row["deleted_at"] is None) is live, (table, row)
            if not live:
                assert (row["src_sequence"], row["src_line_no"]) == (2, 2)
                assert row["last_event_type"] == "PERSON_DELETED"


def test_history_only_events_write_no_state(database_url: str, write: Writer) -> None:
    write(ev.change("ASSIGNMENT", "11", "WORK_ADDRESS_CHANGED", after={"location_id": "300"}, person_id="1"),
          ev.change("PERSON", "1", "ABSENT_FROM_FULL_FILE", person_id="1", line_no=None))
    assert rows(database_url, "assignment") == []
    assert rows(database_url, "person") == []
    assert [r["event_type"] for r in rows(database_url, "change_event", "event_type")] == [
        "ABSENT_FROM_FULL_FILE", "WORK_ADDRESS_CHANGED"]


# -- refusals -----------------------------------------------------------------------------------------------

def test_refused_events_are_isolated_and_the_rest_is_written(database_url: str, db: SinkDatabase) -> None:
    events = [ev.change("PHONE", str(40 + i), "PHONE_ADDED", after=ev.phone("1", str(40 + i)), person_id="1",
                        line_no=10 + i) for i in range(12)]
    events[3] = ev.change("COSTING", "50", "COSTING_ADDED", after=ev.costing("1", "11", "50", percentage="12345.67"),
                          person_id="1", line_no=13)  # numeric(5, 2) overflow: 22003
    events[8] = ev.change("PHONE", "48", "PHONE_ADDED", after=ev.phone("1", "48", phone_number="01\x0013"),
                          person_id="1", line_no=18)  # NUL in text: 22021
    events[10] = ev.change("PHONE", "50", "PHONE_ADDED", after=ev.phone("1", "50", effective_start="2024-02-30"),
                           person_id="1", line_no=20)  # does not parse: refused before the database
    seen: list[Refusal] = []
    batch = [Consumed(event, TOPIC, 0, i) for i, event in enumerate(events)]
    result = db.write(batch, [OffsetUpdate(TOPIC, 0, len(events), None)], seen.extend)
    assert sorted(r.consumed.offset for r in seen) == [3, 8, 10]
    assert sorted(r.consumed.offset for r in result.refused) == [3, 8, 10]
    reasons = {r.consumed.offset: r.reason for r in seen}
    assert "22003" in reasons[3]
    assert "refused by PostgreSQL" in reasons[3]
    assert "phone.effective_start" in reasons[10]
    assert result.isolations > 0
    assert sorted(r["phone_id"] for r in rows(database_url, "phone")) == sorted(
        str(40 + i) for i in range(12) if i not in (3, 8, 10))
    assert rows(database_url, "costing") == []
    assert len(rows(database_url, "change_event")) == 9
    assert stored_offsets(database_url, "test", TOPIC)[0].next_offset == len(events)


def test_before_commit_failing_rolls_everything_back(database_url: str, db: SinkDatabase) -> None:
    def fail(_refused: list[Refusal]) -> None:
        raise RuntimeError("dead letters could not be delivered")

    event = ev.change("PERSON", "1", "NEW_STARTER", after=ev.person("1"), person_id="1")
    with pytest.raises(RuntimeError):
        db.write([Consumed(event, TOPIC, 0, 0)], [OffsetUpdate(TOPIC, 0, 1, None)], fail)
    assert rows(database_url, "person") == []
    assert rows(database_url, "change_event") == []
    assert stored_offsets(database_url, "test", TOPIC) == {}


# -- offsets ------------------------------------------------------------------------------------------------

def test_offsets_are_fenced(database_url: str, db: SinkDatabase) -> None:
    first = ev.change("PERSON", "1", "NEW_STARTER", after=ev.person("1"), person_id="1")
    db.write([Consumed(first, TOPIC, 0, 0)], [OffsetUpdate(TOPIC, 0, 1, None, "topic-a")])
    second = ev.change("PERSON", "2", "NEW_STARTER", after=ev.person("2"), person_id="2")
    with pytest.raises(Fenced):  # another sink believed there was no stored offset yet
        db.write([Consumed(second, TOPIC, 0, 0)], [OffsetUpdate(TOPIC, 0, 1, None)])
    with pytest.raises(Fenced):
        db.write([Consumed(second, TOPIC, 0, 5)], [OffsetUpdate(TOPIC, 0, 6, 3)])
    assert [r["person_id"] for r in rows(database_url, "person")] == ["1"]
    db.write([Consumed(second, TOPIC, 0, 1)], [OffsetUpdate(TOPIC, 0, 2, 1, "topic-a")])
    assert stored_offsets(database_url, "test", TOPIC)[0].next_offset == 2
    assert stored_offsets(database_url, "test", TOPIC)[0].topic_id == "topic-a"
    assert reset_offsets(database_url, "test", TOPIC) == 1
    assert stored_offsets(database_url, "test", TOPIC) == {}


# -- views --------------------------------------------------------------------------------------------------

def test_work_address(database_url: str, write: Writer) -> None:
    write(
        ev.change("LOCATION", "300", "LOCATION_ADDED", after=ev.location("300", postcode="LS1 3EX")),
        ev.change("LOCATION", "301", "LOCATION_ADDED", after=ev.location("301", postcode="LS9 7TF")),
        ev.change("ORGANISATION", "400", "ORGANISATION_ADDED", after=ev.organisation("400", location_id="301")),
        # its own location
        ev.change("ASSIGNMENT", "11", "ASSIGNMENT_STARTED",
                  after=ev.assignment("1", "11", location_id="300", organisation_id="400"), person_id="1"),
        # no location: the organisation's
        ev.change("ASSIGNMENT", "12", "ASSIGNMENT_STARTED", after=ev.assignment("1", "12", organisation_id="400"),
                  person_id="1"),
        # a location the sink has never seen: the organisation's
        ev.change("ASSIGNMENT", "13", "ASSIGNMENT_STARTED",
                  after=ev.assignment("1", "13", location_id="999", organisation_id="400"), person_id="1"),
        # nothing at all
        ev.change("ASSIGNMENT", "14", "ASSIGNMENT_STARTED", after=ev.assignment("2", "14"), person_id="2"),
    )
    found = {r["assignment_id"]: r for r in rows(database_url, "work_address")}
    assert {k: (r["location_id"], r["postcode"], r["location_source"]) for k, r in found.items()} == {
        "11": ("300", "LS1 3EX", "assignment"),
        "12": ("301", "LS9 7TF", "organisation"),
        "13": ("301", "LS9 7TF", "organisation"),
        "14": (None, None, None),
    }
    assert (found["11"]["person_id"], found["11"]["assignment_number"], found["11"]["line1"]) == (
        "1", "A11", "1 Hospital Road")
    write(ev.change("ASSIGNMENT", "14", "ASSIGNMENT_DELETED", person_id="2", sequence=2))
    assert "14" not in {r["assignment_id"] for r in rows(database_url, "work_address")}


def test_vehicle_mileage(database_url: str, write: Writer) -> None:
    with psycopg.connect(database_url) as conn:
        conn.cursor().executemany(
            "INSERT INTO esr.mileage_category (vpd, code, engine_from, engine_to, rate_per_mile, description) "
            "VALUES ('999', %s, %s, %s, %s, %s)",
            [("NHS_MILEAGE_CASUAL", 0, 1500, Decimal("0.5600"), "up to 1500"),
             ("NHS_MILEAGE_CASUAL", 1501, 2000, Decimal("0.5800"), "1501-2000"),
             ("NHS_MILEAGE_CASUAL", 2001, None, Decimal("0.6000"), "over 2000"),
             ("nhs_mileage_regular", 0, None, Decimal("0.4500"), "all")],
        )
    write(
        ev.change("VEHICLE", "30", "VEHICLE_ADDED", after=ev.vehicle("1", "11", "30", engine_cc="1600.000"),
                  person_id="1"),
        ev.change("VEHICLE", "31", "VEHICLE_ADDED", after=ev.vehicle("1", "11", "31", engine_cc="1.500"),
                  person_id="1"),  # litres
        ev.change("VEHICLE", "32", "VEHICLE_ADDED", after=ev.vehicle("1", "11", "32", engine_cc="2500.000",
                                                                     user_rates_table="nhs_mileage_casual"),
                  person_id="1"),
        ev.change("VEHICLE", "33", "VEHICLE_ADDED", after=ev.vehicle("2", "12", "33", engine_cc="1200.000",
                                                                     user_rates_table="NHS_MILEAGE_REGULAR "),
                  person_id="2"),
        ev.change("VEHICLE", "34", "VEHICLE_ADDED", after=ev.vehicle("2", "12", "34", user_rates_table="OTHER"),
                  person_id="2"),  # no such code
        ev.change("VEHICLE", "35", "VEHICLE_ADDED",
                  after={k: v for k, v in ev.vehicle("2", "12", "35").items() if k != "engine_cc"},
                  person_id="2"),  # electric: no engine size
    )
    found = {r["vehicle_allocation_id"]: r for r in rows(database_url, "vehicle_mileage")}
    assert {k: (r["code"], r["engine_from"], r["rate_per_mile"], r["engine_size_cc"]) for k, r in found.items()} == {
        "30": ("NHS_MILEAGE_CASUAL", 1501, Decimal("0.5800"), 1600),
        "31": ("NHS_MILEAGE_CASUAL", 0, Decimal("0.5600"), 1500),
        "32": ("NHS_MILEAGE_CASUAL", 2001, Decimal("0.6000"), 2500),
        "33": ("nhs_mileage_regular", 0, Decimal("0.4500"), 1200),
    }
    # the import log's view: the vehicles of the file that no category matches, with the reason
    [sha256] = {r["src_file_sha256"] for r in rows(database_url, "vehicle")}
    with psycopg.connect(database_url) as conn:
        unmatched = unmatched_vehicles_of_file(conn, sha256)
    assert [(v.vehicle_allocation_id, v.person_id) for v in unmatched] == [("34", "2"), ("35", "2")]
    assert "matches no mileage category (rates table 'OTHER', engine" in unmatched[0].describe()
    assert unmatched[1].describe().endswith("no engine size)")
