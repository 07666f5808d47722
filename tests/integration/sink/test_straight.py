"""The sink's PostgreSQL half going straight in (no look-up once a look-up found nothing), against a real
database: whatever is there already, the batches write what looking up every batch writes."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from typing import Any

import psycopg
import pytest
from psycopg import sql

from connectors.sink import database
from connectors.sink.database import Fenced, OffsetUpdate, SinkDatabase, WriteResult, stored_offsets
from connectors.sink.mapping import Consumed, Refusal
from tests import sink_events as ev
from tests.integration.sink.conftest import day_two, people, read_model

pytestmark = pytest.mark.integration

TOPIC = "esr.changes"


class Batches:
    """Writes batches as the sink does (partition 0, offsets in order, each batch one transaction), through one
    SinkDatabase (`fresh` False: it goes straight in once a look-up found nothing) or a new one per batch
    (`fresh` True: every batch looks up first)."""

    def __init__(self, url: str, *, fresh: bool) -> None:
        self.url = url
        self.fresh = fresh
        self.db = SinkDatabase(url, "test")
        self.offset = 0
        self.stored: int | None = None

    def __call__(self, events: Sequence[dict[str, Any]]) -> tuple[Any, ...]:
        batch = [Consumed(event, TOPIC, 0, self.offset + i) for i, event in enumerate(events)]
        self.offset += len(events)
        if self.fresh:
            self.db.close()
            self.db = SinkDatabase(self.url, "test")
        refused: list[Refusal] = []
        result = self.db.write(batch, [OffsetUpdate(TOPIC, 0, self.offset, self.stored)], refused.extend)
        self.stored = self.offset
        return outcome(result, refused)

    def close(self) -> None:
        self.db.close()


def outcome(result: WriteResult, refused: list[Refusal]) -> tuple[Any, ...]:
    """What a batch wrote, as the sink reports it (`seconds`, `committed_at` and `isolations` aside)."""
    return (result.events, result.change_events, result.state_rows, result.cascaded, dict(result.rows),
            sorted(result.event_times), sorted(r.consumed.offset for r in result.refused),
            sorted(r.consumed.offset for r in refused))


@pytest.fixture
def look_ups(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """Look-ups of what is held, by database URL."""
    counted: Counter[str] = Counter()
    look_up = SinkDatabase._look_up

    def counting(self: SinkDatabase, cursor: psycopg.Cursor[Any], batch_plan: Any) -> Any:
        counted[self.url] += 1
        return look_up(self, cursor, batch_plan)

    monkeypatch.setattr(SinkDatabase, "_look_up", counting)
    return counted


@pytest.fixture
def straight(database_url: str) -> Iterator[Batches]:
    batches = Batches(database_url, fresh=False)
    yield batches
    batches.close()


@pytest.fixture
def looking_up(other_database_url: str) -> Iterator[Batches]:
    batches = Batches(other_database_url, fresh=True)
    yield batches
    batches.close()


def test_a_full_file_goes_straight_in_after_one_look_up(database_url: str, other_database_url: str,
                                                       straight: Batches, looking_up: Batches,
                                                       look_ups: Counter[str]) -> None:
    events = people(40)  # 200 events
    for start in range(0, len(events), 50):
        assert straight(events[start:start + 50]) == looking_up(events[start:start + 50])
    assert look_ups == {database_url: 1, other_database_url: 4}
    assert read_model(database_url) == read_model(other_database_url)


def test_straight_in_meets_rows_and_events_already_there(database_url: str, other_database_url: str,
                                                         straight: Batches, looking_up: Batches,
                                                         look_ups: Counter[str]) -> None:
    full = people(30)
    again = people(5, first=100)
    overflow = ev.change("COSTING", "9994", "COSTING_ADDED", after=ev.costing("999", "9991", "9994",
                                                                              percentage="12345.67"),
                         person_id="999", line_no=9)  # numeric(5, 2) overflow: 22003, refused by PostgreSQL
    batches = [
        full[:75],  # looked up: nothing there
        full[75:],  # straight in
        day_two(30),  # straight in meets the rows (upserts, tombstones, cascades): looked up again
        full[75:],  # delivered again: every event held
        again,  # looked up: nothing there
        [*people(5, first=200), *again],  # straight in meets held events: looked up again
        people(5, first=300),  # looked up: nothing there
        [*people(5, first=400), overflow, *people(5, first=500)],  # straight in meets a refusal: isolated
        people(5, first=600),
    ]
    for batch in batches:
        assert straight(batch) == looking_up(batch)
    assert read_model(database_url) == read_model(other_database_url)
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT count(*) FROM esr.costing WHERE costing_id = '9994'").fetchone() == (0,)
    assert look_ups[database_url] < look_ups[other_database_url]  # some batches went straight in


def test_held_events_are_looked_up_by_index_probes(database_url: str) -> None:
    """Not `event_id = ANY(..)`: with a batch's ids and a table of some size, that is planned as a scan of
    the whole table, for every batch."""
    ids = [f"held-{i}" for i in range(0, 10_000, 2)]
    with psycopg.connect(database_url) as conn:
        conn.execute(
            "INSERT INTO esr.change_event (event_id, vpd, event_type, op, entity_type, entity_id) "
            "SELECT 'held-' || i, '999', 'NEW_STARTER', 'c', 'PERSON', i::text FROM generate_series(1, 20000) i"
        )
        conn.execute("ANALYZE esr.change_event")
        plan = "\n".join(row[0] for row in conn.execute(sql.SQL("EXPLAIN ") + database._HELD, [ids]).fetchall())
        assert "Seq Scan on change_event" not in plan, plan
        assert "change_event_pkey" in plan, plan
        held = {row[2] for row in conn.execute(database._HELD, [[*ids, "not-held"]]).fetchall()}
    assert held == {i for i in ids if int(i.split("-")[1]) >= 1}


def test_offsets_of_several_partitions_move_together_or_not_at_all(database_url: str) -> None:
    db = SinkDatabase(database_url, "test")
    try:
        first = [Consumed(ev.change("PERSON", str(p), "NEW_STARTER", after=ev.person(str(p)), person_id=str(p),
                                    line_no=p + 2), TOPIC, p, 0) for p in range(3)]
        db.write(first, [OffsetUpdate(TOPIC, p, 1, None, "topic-a") for p in range(3)])
        assert {p: s.next_offset for p, s in stored_offsets(database_url, "test", TOPIC).items()} == {0: 1, 1: 1, 2: 1}
        second = [Consumed(ev.change("PERSON", str(p), "SURNAME_CHANGED", after=ev.person(str(p), "Jones"),
                                     person_id=str(p), sequence=2, line_no=p + 2), TOPIC, p, 1) for p in range(3)]
        with pytest.raises(Fenced, match=r"esr\.changes\[1\]: the stored offset is no longer 7"):
            db.write(second, [OffsetUpdate(TOPIC, 0, 2, 1), OffsetUpdate(TOPIC, 1, 2, 7), OffsetUpdate(TOPIC, 2, 2, 1)])
        assert {p: s.next_offset for p, s in stored_offsets(database_url, "test", TOPIC).items()} == {0: 1, 1: 1, 2: 1}
        with psycopg.connect(database_url) as conn:
            assert conn.execute("SELECT count(*) FROM esr.person WHERE last_name = 'Jones'").fetchone() == (0,)
        db.write(second, [OffsetUpdate(TOPIC, p, 2, 1) for p in range(3)])
        assert {p: s.next_offset for p, s in stored_offsets(database_url, "test", TOPIC).items()} == {0: 2, 1: 2, 2: 2}
    finally:
        db.close()
