"""Parking at the sink (`esr.parking`): an employee whose change event went to `esr.dlq.sink` has its later
events dead-lettered behind it, until a release comes back through `esr.changes`.

The parked employees are in `esr.sink_parked`, read at the start of each batch and written in the batch's
transaction (with the data and the offsets). Per batch:

1. every message, in partition order, is decided from the parks and its release headers: applied, parked
   (a dead letter "parked behind <blocker>"), or skipped (a discarded blocker's release marker);
2. the applied events are written (`SinkDatabase.write`); what PostgreSQL or the mapping refuses is only
   known then. If a refused event of an employee has later events of that employee applied in the same
   batch, the transaction is rolled back (before anything is published or committed) and the batch is
   written again with them parked: the employee's order holds inside a batch as across batches;
3. the parks that changed are written, the dead letters published in partition order, then COMMIT.

An event without an employee key (a reference's own events, `<vpd>:<TYPE>:<id>`) is never parked.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg
from confluent_kafka import Message

from connectors.sink.database import OffsetUpdate, SinkDatabase, WriteResult
from connectors.sink.mapping import Plan, Refusal, plan
from esr.parking import (
    RELEASE,
    Action,
    Origin,
    Park,
    Release,
    dead_lettered,
    decide,
    employee_key,
    parked_reason,
)

log = logging.getLogger(__name__)

Coordinates = tuple[int, int]  # (partition, offset)

_PARKS = ("SELECT key, blocker, releasing, straggler, topic_id FROM esr.sink_parked "
          "WHERE consumer_group = %s AND topic = %s")
_STORE = """
INSERT INTO esr.sink_parked AS p (consumer_group, topic, key, blocker, releasing, straggler, topic_id)
VALUES (%s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (consumer_group, topic, key) DO UPDATE
   SET blocker = EXCLUDED.blocker, releasing = EXCLUDED.releasing, straggler = EXCLUDED.straggler,
       topic_id = EXCLUDED.topic_id, parked_at = CASE WHEN p.blocker = EXCLUDED.blocker THEN p.parked_at
                                                      ELSE now() END
"""
_FORGET = "DELETE FROM esr.sink_parked WHERE consumer_group = %s AND topic = %s AND key = %s"


@dataclass(frozen=True, slots=True)
class Parked(Refusal):
    """An event not written because its employee waits behind `behind`."""

    behind: Origin


@dataclass(frozen=True, slots=True)
class Entry:
    """A message of the batch as parking sees it."""

    at: Origin
    key: bytes | None
    release: Release | None


@dataclass
class Settlement:
    applied: set[Coordinates] = field(default_factory=set)
    parked: dict[Coordinates, Origin] = field(default_factory=dict)
    skipped: set[Coordinates] = field(default_factory=set)
    parks: dict[bytes, Park | None] = field(default_factory=dict)  # every key seen, with its park after


def settle(entries: Iterable[Entry], parks: Mapping[bytes, Park], refused: set[Coordinates]) -> Settlement:
    """Decide every entry in order (`refused`: the ones that are dead letters of their own)."""
    result = Settlement()
    current: dict[bytes, Park | None] = result.parks
    for entry in entries:
        here = (entry.at.partition, entry.at.offset)
        key = entry.key
        if key is None or not employee_key(key):
            if here not in refused:
                result.applied.add(here)
            continue
        park = current[key] if key in current else parks.get(key)
        decision = decide(park, entry.at, entry.release)
        park = decision.park
        if decision.action is Action.PARK:
            assert decision.behind is not None
            result.parked[here] = decision.behind
        elif decision.action is Action.SKIP:
            result.skipped.add(here)
        elif here in refused:
            park, behind = dead_lettered(park, entry.at)
            if behind is not None:
                result.parked[here] = behind
        else:
            result.applied.add(here)
        current[key] = park
    return result


class _Again(Exception):
    """Rolls the batch back: a refused event has later events of its employee applied in the batch."""

    def __init__(self, refused: list[Refusal]) -> None:
        super().__init__("refused events with later events of their employee in the batch")
        self.refused = refused


def _release(message: Message) -> Release | None:
    headers = message.headers()
    if not headers:
        return None
    pairs = list(headers.items()) if isinstance(headers, dict) else headers
    for pair in pairs:
        if pair[0] == RELEASE:
            break
    else:  # the common case, no dict built
        return None
    found = {pair[0]: pair[1] if isinstance(pair[1], bytes) else str(pair[1] or "").encode() for pair in pairs}
    return Release.from_headers(found.get)


class SinkParking:
    def __init__(self, group: str, topic: str) -> None:
        self.group = group
        self.topic = topic

    def _parks(self, db: SinkDatabase, topic_id: str | None) -> dict[bytes, Park]:
        """The group's parks (those of another incarnation of the topic are left out: their locations
        name other events; the next write of the key replaces them)."""
        rows = db.connect().execute(_PARKS, (self.group, self.topic)).fetchall()  # autocommit: one round trip
        return {
            key.encode(): Park(Origin.parse(blocker), releasing, None if straggler is None else Origin.parse(straggler))
            for key, blocker, releasing, straggler, stored_id in rows
            if topic_id is None or stored_id in (None, topic_id)
        }

    def write(self, db: SinkDatabase, batch_plan: Plan, updates: list[OffsetUpdate],
              dead_letter: Callable[[list[Refusal]], None], undecodable: Sequence[Refusal],
              messages: Mapping[Coordinates, Message], topic_id: str | None) -> WriteResult:
        """`SinkDatabase.write` of the batch with parking (module doc)."""
        parks = self._parks(db, topic_id)
        releases = {here: release for here, message in messages.items()
                    if (release := _release(message)) is not None}
        topic = self.topic

        def entries() -> list[Entry]:
            return [Entry(Origin(topic, partition, offset), message.key(), releases.get((partition, offset)))
                    for (partition, offset), message in messages.items()]
        refusals: dict[Coordinates, Refusal] = {(r.consumed.partition, r.consumed.offset): r for r in undecodable}
        # nothing parked or released here: everything is applied unless refused (then decided in full)
        quiet = not parks and not releases and not refusals
        while True:
            settled = Settlement(applied=set(messages)) if quiet else settle(entries(), parks, set(refusals))
            try:
                return self._attempt(db, batch_plan, updates, dead_letter, settled, parks, entries, refusals,
                                     topic_id)
            except _Again as again:
                quiet = False
                for refusal in again.refused:
                    refusals[(refusal.consumed.partition, refusal.consumed.offset)] = refusal
                log.info("sink: %d refused event(s) have later events of their employee in the batch; "
                         "writing the batch again with those parked", len(again.refused))

    def _attempt(self, db: SinkDatabase, batch_plan: Plan, updates: list[OffsetUpdate],
                 dead_letter: Callable[[list[Refusal]], None], settled: Settlement, parks: Mapping[bytes, Park],
                 entries: Callable[[], list[Entry]], refusals: Mapping[Coordinates, Refusal],
                 topic_id: str | None) -> WriteResult:
        written = batch_plan
        mine: list[Refusal] = [r for here, r in refusals.items() if here not in settled.parked]
        if settled.parked or settled.skipped or refusals:
            written = plan([c for c in batch_plan.consumed if (c.partition, c.offset) in settled.applied])
            consumed = {(c.partition, c.offset): c for c in batch_plan.consumed}
            for here, behind in settled.parked.items():
                item = consumed.get(here) or refusals[here].consumed
                mine.append(Parked(item, parked_reason(behind), behind))
        known = set(refusals) | set(settled.parked)

        def before_commit(refused: list[Refusal]) -> None:
            final = settled
            new = [r for r in refused if (r.consumed.partition, r.consumed.offset) not in known]
            if new:
                coordinates = {(r.consumed.partition, r.consumed.offset) for r in new}
                final = settle(entries(), parks, set(refusals) | coordinates)
                if final.applied != settled.applied - coordinates:
                    raise _Again(new)
                refused[:] = [r for r in refused if (r.consumed.partition, r.consumed.offset) not in final.parked]
                refused.extend(Parked(r.consumed, parked_reason(final.parked[here]), final.parked[here])
                               for r in new if (here := (r.consumed.partition, r.consumed.offset)) in final.parked)
            self._store(db.connect(), final.parks, parks, topic_id)
            refused.sort(key=lambda r: (r.consumed.partition, r.consumed.offset))
            dead_letter(refused)

        return db.write(written, updates, before_commit, mine)

    def _store(self, conn: psycopg.Connection[Any], after: Mapping[bytes, Park | None],
               before: Mapping[bytes, Park], topic_id: str | None) -> None:
        for key, park in after.items():
            if park == before.get(key):
                continue
            if park is None:
                conn.execute(_FORGET, (self.group, self.topic, key.decode()))
            else:
                conn.execute(_STORE, (self.group, self.topic, key.decode(), str(park.blocker), park.releasing,
                                      None if park.straggler is None else str(park.straggler), topic_id))
            log.info("sink: %s %s", key.decode(errors="replace"),
                     "released" if park is None else f"parked behind {park.blocker}")
