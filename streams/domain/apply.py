"""The engine both agents share: apply one input record to a journaled state and classify what changed.

A `Step` is one record (or one full-file reconciliation) being applied: it knows the run date versions are
selected at, journals every entity it replaces, and turns classified changes into events. `upsert` and
`remove` change the state and report what the views before and after were; the callers (`employee`,
`reference`) decide which events that makes.

Diff semantics (documented once, here):

- The view of an entity is its version in force at the run date of the record's file (`model.in_force`).
  Views before and after the record are compared at that same run date, so passing time alone never
  makes a change. A record that leaves the view unchanged but changes another version of the entity (a
  future-dated change, or a correction of history) is reported as the change from the version before it
  on the timeline (or that version's previous content) to the new version, with its effective start as the
  effective date: downstream hears of a future-dated change when ESR sends it, as ESR sends it.
- A change of `last_update_date` alone is no change (a re-sent row emits nothing). Otherwise every field
  counts; the events' `changes` are always the complete diff of `before` and `after`.
- Created entities emit their "created" event (NEW_STARTER, ASSIGNMENT_STARTED, *_ADDED) whatever their
  dates, even an entity that had already ended when first seen (its `after` shows the end).
- *_ENDED (address, phone, vehicle, costing) when the view's effective end goes from open (blank or
  4712-12-31) to a date, whether past or future: the end has been decided. ASSIGNMENT_ENDED when the
  view's Assignment End Date arrives or its system status becomes TERM_*: an assignment's date-tracked
  effective end alone also closes a version that a new one continues (ESR re-sends the old version
  end-dated, then the new one), so it makes an ASSIGNMENT_CHANGED, not an end.
- A record applied twice in a row (a re-sent row, a re-ingested file) changes nothing the second time.
- Each record is diffed on its own, so the events never depend on how the records were batched (two
  workers, a replay with other batch boundaries: the same events). The price: when ESR closes a version
  of a phone, vehicle, address or costing and continues it with a new version of the same id in the next
  row, that reads as *_ENDED then *_CHANGED (ESR gives a new id to a new address or costing split, so the
  generator's data never does this; persons and assignments are handled as above).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from typing import Any

from streams.domain.events import CREATE, DELETE, NAMES, REPLAY, UPDATE, ChangeEvent, change_event, record_source
from streams.domain.model import (
    INSIGNIFICANT,
    NO_START,
    TRACKING,
    Entity,
    InputRecord,
    Values,
    as_date,
    diff,
    in_force,
    is_open,
    preceding,
    run_day,
)
from streams.domain.state import JournaledState, JournalEntry, Undo, record_identity


class _Lookup:
    """The default of `Step.emit`'s employee number: look it up in the state."""


LOOKUP = _Lookup()


class Step:
    """One record (or reconciliation) being applied to `state`; events go to `out`."""

    __slots__ = ("_employee_number", "_looked_up", "_source", "_source_fn", "line_no", "ms", "out", "person_id",
                 "replay", "run", "seq", "sha", "state", "undo", "vpd")

    def __init__(self, state: JournaledState, *, person_id: str | None, source: Any, sha: str, line_no: int | None,
                 run: str, seq: int, ms: int, replay: bool, out: list[ChangeEvent]) -> None:
        self.state = state
        self.vpd = state.vpd
        self.person_id = person_id
        self._source: dict[str, Any] | None = None
        self._source_fn = source  # a callable building the source dict (only when something is emitted)
        self.sha = sha
        self.line_no = line_no
        self.run = run
        self.seq = seq
        self.ms = ms
        self.replay = replay
        self.out = out
        self.undo: list[Undo] = []
        self._employee_number: str | None = None
        self._looked_up = False

    @property
    def source(self) -> dict[str, Any]:
        if self._source is None:
            self._source = self._source_fn()
        return self._source

    def employee_number(self) -> str | None:
        """The employee number of the person in force (looked up once, after the record changed it)."""
        if not self._looked_up:
            person = self.state.view("PERSON", self.person_id, self.run) if self.person_id is not None else None
            self._employee_number = None if person is None else person.get("employee_number")
            self._looked_up = True
        return self._employee_number

    def forget_employee_number(self) -> None:
        self._looked_up = False

    def emit(self, event_type: str, op: str, entity_type: str, entity_id: str, before: Values | None,
             after: Values | None, effective_date: dt.date | None, changes: list[dict[str, str | None]] | None = None,
             *, employee_number: str | _Lookup | None = LOOKUP) -> None:
        self.out.append(change_event(
            event_type, REPLAY if self.replay else op, entity_type, entity_id,
            vpd=self.vpd, person_id=self.person_id,
            employee_number=self.employee_number() if isinstance(employee_number, _Lookup) else employee_number,
            before=before, after=after, effective_date=effective_date, source=self.source, ts_ms=self.ms,
            changes=changes,
        ))


# What `upsert` found: the entity was created, its view changed, another version changed (timeline), or
# nothing changed (the record was identical to what the state held).
CREATED = "created"
CHANGED = "changed"
TIMELINE = "timeline"
SAME = "same"


def upsert(step: Step, entity_type: str, entity_id: str, values: Values) -> tuple[str, Values | None, Values]:
    """Store `values` as the version of the entity keyed by its effective start.

    Returns (what happened, before, after): for CREATED (None, values); for CHANGED the views before and
    after; for TIMELINE the version the new one changes (see the module doc) and the new version; for SAME
    (None, values). The entity's last-seen file is updated in every case.
    """
    state = step.state
    tracking = TRACKING[entity_type]
    key = values.get(tracking.start, NO_START) if tracking.start is not None else NO_START
    bucket = state.entities.get(entity_type)
    if bucket is None:
        bucket = state.entities[entity_type] = {}
    old = bucket.get(entity_id)
    step.undo.append([entity_type, entity_id, old])
    if old is None:
        bucket[entity_id] = Entity({key: values}, step.sha, step.run, step.seq)
        return CREATED, None, values
    previous = old.versions.get(key)
    if previous == values:
        bucket[entity_id] = Entity(old.versions, step.sha, step.run, step.seq)
        return SAME, None, values
    versions = dict(old.versions)
    versions[key] = values
    bucket[entity_id] = Entity(versions, step.sha, step.run, step.seq)
    before = in_force(old.versions, step.run, tracking.end)
    after = in_force(versions, step.run, tracking.end)
    assert before is not None
    assert after is not None
    if before != after:
        return CHANGED, before, after
    if after is values:
        return SAME, None, values  # unreachable: the view was the stored version, which differed
    base = previous if previous is not None else preceding(versions, key) or before
    return TIMELINE, base, values


def remove(step: Step, entity_type: str, entity_id: str) -> Values | None:
    """Delete every version of the entity (Q12); the view it had, or None when there was no such entity."""
    bucket = step.state.entities.get(entity_type)
    old = None if bucket is None else bucket.pop(entity_id, None)
    if old is None:
        return None
    step.undo.append([entity_type, entity_id, old])
    return in_force(old.versions, step.run, TRACKING[entity_type].end)


def significant(changes: list[dict[str, str | None]]) -> bool:
    return any(change["field"] not in INSIGNIFICANT for change in changes)


def assignment_ended(values: Values) -> bool:
    """Assignment End Date set (not 4712-12-31), or a terminated system status (TERM_ASSIGN)."""
    return not is_open(values.get("assignment_end_date")) or values.get("system_assignment_status", "").startswith(
        "TERM")


def start_date(entity_type: str, values: Values | None) -> dt.date | None:
    start = TRACKING[entity_type].start
    return None if values is None or start is None else as_date(values.get(start))


def entity_events(step: Step, entity_type: str, entity_id: str, what: str, before: Values | None,
                  after: Values) -> list[dict[str, str | None]] | None:
    """Emit the created / changed / ended event of a non-person entity; returns the changes (None: nothing)."""
    names = NAMES[entity_type]
    if what == CREATED:
        step.emit(names.created, CREATE, entity_type, entity_id, None, after, start_date(entity_type, after))
        return []
    if what == SAME or before is None:
        return None
    changes = diff(before, after)
    if not significant(changes):
        return None
    end_field = TRACKING[entity_type].end
    if entity_type == "ASSIGNMENT":
        ended = not assignment_ended(before) and assignment_ended(after)
        effective = after.get("assignment_end_date") or after.get("effective_end") if ended else None
    elif names.ended is not None and end_field is not None:
        ended = is_open(before.get(end_field)) and not is_open(after.get(end_field))
        effective = after.get(end_field) if ended else None
    else:
        ended = False
        effective = None
    if ended:
        assert names.ended is not None
        step.emit(names.ended, UPDATE, entity_type, entity_id, before, after, as_date(effective), changes)
    else:
        step.emit(names.changed, UPDATE, entity_type, entity_id, before, after, start_date(entity_type, after),
                  changes)
    return changes


def deleted_event(step: Step, entity_type: str, entity_id: str, before: Values | None) -> None:
    step.emit(NAMES[entity_type].deleted, DELETE, entity_type, entity_id, before, None, None)


def apply_journaled(
    current: JournaledState,
    records: Sequence[InputRecord],
    *,
    now_ms: int,
    person_id: str | None,
    reject: Callable[[Mapping[str, Any]], str | None],
    rejected: list[tuple[InputRecord, str]],
    out: list[ChangeEvent],
    apply_one: Callable[[Step, InputRecord], None],
) -> None:
    """The replay-safe loop employees and reference entities share (module doc of `state`): roll the state
    back to before the earliest replayed record, skip records older than the journal, set aside the ones
    `reject` names a reason for, apply each other record with `apply_one` through a journaling `Step`
    (a replayed record keeps its original time and gets op "r"), and journal the call."""
    original_ms = current.rewind(records)
    call: list[JournalEntry] = []
    run_date: Any = None
    run = ""
    for record in records:
        if record.partition != current.partition or record.topic != current.topic:
            current.forget_position(record)
        if record.offset <= current.offset:
            continue  # older than the journal: applied, and its events delivered
        event = record.event
        reason = reject(event)
        if reason is not None:
            rejected.append((record, reason))
            continue
        replay = record.offset <= current.replay_until
        source = event["source"]
        if source["run_date"] is not run_date or not run:  # a call's records mostly share one (memoised) run date
            run_date = source["run_date"]
            run = run_day(run_date)
        step = Step(current, person_id=person_id, source=partial(record_source, record),
                    sha=source["file_sha256"], line_no=source["line_no"], run=run,
                    seq=source["sequence"], ms=original_ms.get(record.offset, now_ms) if replay else now_ms,
                    replay=replay, out=out)
        scalars = current.scalars()
        apply_one(step, record)
        call.append(JournalEntry(record.offset, record_identity(event), step.ms, current.offset,
                                 None if current.scalars() == scalars else scalars, step.undo))
        current.offset = record.offset
    current.push_call(call)
