"""The reference agent's logic: locations, organisations and positions (table key `<vpd>:<TYPE>:<id>`).

Events: LOCATION_ADDED / _CHANGED / _DELETED and the same for ORGANISATION and POSITION (organisations and
positions are date-tracked by Effective From / To; a location has one version). The outcome also says
which locations and organisations changed in a way that can move a work address, so the shell can fan
the change out to the affected employees (`employee.work_address_changes`):

- a location: any of its address fields (`ADDRESS_FIELDS`) changed, or it was deleted;
- an organisation: its Location ID changed, or it was deleted while it had one.

A location or organisation being *added* is not fanned out: an assignment that names it before it arrives
has no address yet, and whether it does depends on which partition is read first, which must not decide
which events exist.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Protocol

from streams.domain.apply import (
    CHANGED,
    CREATED,
    TIMELINE,
    Step,
    apply_journaled,
    deleted_event,
    entity_events,
    remove,
    upsert,
)
from streams.domain.events import ABSENT_FROM_FULL_FILE, UPDATE, ChangeEvent, ChangeSource
from streams.domain.model import REFERENCE_TYPES, InputRecord, Values, canonical, run_day
from streams.domain.state import Reconciliation, ReferenceState

# Location fields that make up a work address (DESIGN §5 work_address view, plus the country).
ADDRESS_FIELDS = ("description", "address_line_1", "address_line_2", "address_line_3", "town", "county",
                  "postcode", "country")


class ReferenceView(Protocol):
    """Read access to a trust's reference data (the current version of each entity), for work addresses."""

    def location(self, vpd: str, location_id: str) -> Mapping[str, Any] | None: ...

    def organisation(self, vpd: str, organisation_id: str) -> Mapping[str, Any] | None: ...

    def position(self, vpd: str, position_id: str) -> Mapping[str, Any] | None: ...


def reference_key(vpd: str, entity_type: str, entity_id: str) -> str:
    return f"{vpd}:{entity_type}:{entity_id}"


class StateReferenceView:
    """A `ReferenceView` over reference states found by key (e.g. a table's `get`), current versions."""

    def __init__(self, get: Callable[[str], ReferenceState | None]) -> None:
        self._get = get

    def _current(self, vpd: str, entity_type: str, entity_id: str) -> Values | None:
        state = self._get(reference_key(vpd, entity_type, entity_id))
        return None if state is None or state.deleted else state.current()

    def location(self, vpd: str, location_id: str) -> Values | None:
        return self._current(vpd, "LOCATION", location_id)

    def organisation(self, vpd: str, organisation_id: str) -> Values | None:
        return self._current(vpd, "ORGANISATION", organisation_id)

    def position(self, vpd: str, position_id: str) -> Values | None:
        return self._current(vpd, "POSITION", position_id)


class NoReference:
    """A `ReferenceView` that knows nothing (work addresses then carry only their location id)."""

    def location(self, _vpd: str, _location_id: str) -> None:
        return None

    def organisation(self, _vpd: str, _organisation_id: str) -> None:
        return None

    def position(self, _vpd: str, _position_id: str) -> None:
        return None


@dataclass(slots=True)
class ReferenceOutcome:
    """What one batch did to one reference entity.

    `state` is None when the entity was deleted (`tombstone` then holds a state the shell may keep instead
    of deleting the key, so that a replay of the delete re-emits it exactly). `previous` is the entity's
    view before the batch (pass it to `work_address_changes` as `previous_locations` /
    `previous_organisations`), `fanout_source` the record whose change is to be fanned out.
    """

    state: ReferenceState | None
    changes: list[ChangeEvent]
    changed_location_ids: set[str] = field(default_factory=set)
    changed_organisation_ids: set[str] = field(default_factory=set)
    previous: Values | None = None
    fanout_source: ChangeSource | None = None
    tombstone: ReferenceState | None = None
    rejected: list[tuple[InputRecord, str]] = field(default_factory=list)


def _address_moved(entity_type: str, before: Values | None, after: Values | None) -> bool:
    if entity_type == "LOCATION":
        if before is None:
            return False
        if after is None:
            return True
        return any(before.get(name) != after.get(name) for name in ADDRESS_FIELDS)
    if entity_type == "ORGANISATION":
        return before is not None and before.get("location_id") != (after or {}).get("location_id")
    return False


def _reject_reason(state: ReferenceState, event: Mapping[str, Any]) -> str | None:
    if (event.get("vpd"), event.get("entity_type"), event.get("entity_id")) != (
            state.vpd, state.entity_type, state.entity_id):
        key = reference_key(event.get("vpd", ""), event.get("entity_type", ""), event.get("entity_id", ""))
        return f"record for {key} in the batch of {state.key}"
    if event.get("action") == "UPSERT" and event.get("payload") is None:
        return "upsert without a payload"
    return None


def apply_reference_batch(state: ReferenceState | None, records: Sequence[InputRecord], *,
                          now_ms: int) -> ReferenceOutcome:
    """Apply one batch of records of one reference entity (key `<vpd>:<TYPE>:<id>`, offset order).

    Replays (offsets at or below the state's) are rolled back and re-applied (see `state`); an LCD / ORD /
    POD deletes every version.
    """
    if not records:
        return ReferenceOutcome(state, [])
    head = records[0].event
    if state is None:
        entity_type = head["entity_type"]
        if entity_type not in REFERENCE_TYPES:
            return ReferenceOutcome(None, [], rejected=[(r, f"{entity_type} is not reference data") for r in records])
        current = ReferenceState(vpd=head["vpd"], entity_type=entity_type, entity_id=head["entity_id"])
    else:
        current = state.copy()
    outcome = ReferenceOutcome(current, [])
    captured = False

    def apply_one(step: Step, record: InputRecord) -> None:
        nonlocal captured
        if not captured:
            outcome.previous = current.view(current.entity_type, current.entity_id, step.run)
            captured = True
        before, after = _apply(step, record.event)
        if _address_moved(current.entity_type, before, after):
            (outcome.changed_location_ids if current.entity_type == "LOCATION"
             else outcome.changed_organisation_ids).add(current.entity_id)
            outcome.fanout_source = ChangeSource.of_record(record)

    apply_journaled(current, records, now_ms=now_ms, person_id=None, reject=partial(_reject_reason, current),
                    rejected=outcome.rejected, out=outcome.changes, apply_one=apply_one)
    if current.deleted:
        outcome.state, outcome.tombstone = None, current
    return outcome


def _apply(step: Step, event: Mapping[str, Any]) -> tuple[Values | None, Values | None]:
    """Apply one record; the entity's views before and after it (for the fan-out decision)."""
    state = step.state
    assert isinstance(state, ReferenceState)
    entity_type, entity_id = state.entity_type, state.entity_id
    if event["action"] == "DELETE":
        before = remove(step, entity_type, entity_id)
        if before is not None:
            deleted_event(step, entity_type, entity_id, before)
            state.deleted = True
        return before, None
    state.deleted = False
    what, before, after = upsert(step, entity_type, entity_id, canonical(event["payload"]))
    entity_events(step, entity_type, entity_id, what, before, after)
    if what == CHANGED:
        return before, after
    if what == CREATED:
        return None, after
    if what == TIMELINE:
        return None, None  # the view did not change
    return None, None


def reference_absent_from_full_file(state: ReferenceState, file_sha256: str, source: ChangeSource, *,
                                    treat_as_delete: bool, now_ms: int) -> ReferenceOutcome:
    """At the end of a full file: report (ABSENT_FROM_FULL_FILE) or delete the entity when the file did not
    contain it; see `employee.absent_from_full_file` for the rules."""
    current = state.copy()
    replay, ms = False, now_ms
    done = current.reconciled
    if done is not None and done.sha == file_sha256:
        replay = True
        if done.offset == current.offset:
            current.undo(done.undo, done.scalars)
            ms = done.now_ms
    outcome = ReferenceOutcome(current, [])
    entity = current.entity(current.entity_type, current.entity_id)
    run, seq = run_day(source.run_date), source.sequence or 0
    step = Step(current, person_id=None, source=source.as_dict, sha=file_sha256, line_no=None, run=run, seq=seq,
                ms=ms, replay=replay, out=outcome.changes)
    scalars = current.scalars()
    if entity is not None and entity.sha != file_sha256 and (entity.run, entity.seq) <= (run, seq):
        view = current.view(current.entity_type, current.entity_id, run)
        outcome.previous = view
        if treat_as_delete:
            remove(step, current.entity_type, current.entity_id)
            deleted_event(step, current.entity_type, current.entity_id, view)
            current.deleted = True
            if _address_moved(current.entity_type, view, None):
                (outcome.changed_location_ids if current.entity_type == "LOCATION"
                 else outcome.changed_organisation_ids).add(current.entity_id)
                outcome.fanout_source = source
        else:
            step.emit(ABSENT_FROM_FULL_FILE, UPDATE, current.entity_type, current.entity_id, view, view, None, [])
    current.reconciled = Reconciliation(file_sha256, current.offset, ms,
                                        None if current.scalars() == scalars else scalars, step.undo)
    if current.deleted:
        outcome.state, outcome.tombstone = None, current
    return outcome
