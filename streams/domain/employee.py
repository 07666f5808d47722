"""The employees agent's logic: one employee's records -> new state + typed change events.

`apply_employee_batch` is called once per employee (key `<vpd>:<person_id>`) per batch, with that key's
records in offset order. Child rows are resolved by the person id the record event carries (the ingest job
resolves the owner of a child delete row), never by their position in the file (Q9): a child may arrive
before its PRA, and is kept and reported like any other.

Person events. A person's first PRA emits NEW_STARTER (only that: `after` shows a termination date if the
person had already left). A change to the person's view is split by subject into a chain of events, in
this order, each carrying its own fields, each `before` the previous one's `after`:
  LEAVER (Actual Termination Date set where it was blank; with the termination reason),
  SURNAME_CHANGED (Last Name; with Previous Last Name), NAME_CHANGED (title, first, middle, maiden,
  preferred and previous last names), PERSON_UPDATED (everything else).
The date-tracking fields (effective start / end, last update date) go with the first event of the chain;
a change to them alone makes no event: a person ends by a termination date (LEAVER), and ESR end-dates a
person's version just before sending the version that continues it (the change is then in that event).

A PRD removes the person and everything under them: one PERSON_DELETED, nothing else (no child *_DELETED,
no PRIMARY_ASSIGNMENT_CHANGED). A PRD for a person the state does not hold still emits PERSON_DELETED (with
no `before`): it may be the replay of a delete whose tombstone the shell did not keep, and its event id is
the same; a PRD for a person whose tombstone the shell kept emits nothing. A child D row deletes that
entity (all versions, Q12) and emits its *_DELETED; a D row for an entity the state does not hold emits
nothing. An ASD does not cascade: ESR sends the VHD / COD rows itself.

Primary assignment (Q17): `primary_assignment`. The state remembers the primary as last established;
PRIMARY_ASSIGNMENT_CHANGED (entity PERSON) is emitted when an assignment record or delete makes it another
assignment (or none), except during the file in which the person first appeared, where the order of the
ASA rows must not produce events.

Work address (DESIGN §5): the assignment's location, else its organisation's location (`work_address`).
An assignment record that changes the location or organisation of the assignment's view emits
WORK_ADDRESS_CHANGED (entity ASSIGNMENT) when the resolved work address differs; a new assignment emits
ASSIGNMENT_STARTED only. Changes of the locations themselves come through `work_address_changes`.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from streams.domain.apply import (
    CHANGED,
    CREATED,
    SAME,
    Step,
    apply_journaled,
    deleted_event,
    entity_events,
    remove,
    significant,
    upsert,
)
from streams.domain.events import (
    ABSENT_FROM_FULL_FILE,
    CREATE,
    DELETE,
    LEAVER,
    NAME_CHANGED,
    NEW_STARTER,
    PERSON_DELETED,
    PERSON_UPDATED,
    PRIMARY_ASSIGNMENT_CHANGED,
    SURNAME_CHANGED,
    UPDATE,
    WORK_ADDRESS_CHANGED,
    ChangeEvent,
    ChangeSource,
)
from streams.domain.model import (
    PERSON_SCOPED,
    TRACKING,
    InputRecord,
    Values,
    apply_changes,
    as_date,
    canonical,
    diff,
    in_force,
    render,
    run_day,
)
from streams.domain.reference import ReferenceView
from streams.domain.state import EmployeeState, Reconciliation

# The order child entities are reported in (reconciliation), person first.
ENTITY_ORDER = ("PERSON", "ASSIGNMENT", "ADDRESS", "PHONE", "VEHICLE", "COSTING")

LEAVER_FIELDS = frozenset({"termination_date", "termination_reason"})
SURNAME_FIELDS = frozenset({"last_name", "previous_last_name"})
NAME_FIELDS = frozenset({"title", "first_name", "middle_names", "maiden_name", "preferred_name",
                         "previous_last_name"})
COMPANION_FIELDS = frozenset({"effective_start", "effective_end", "last_update_date"})
_COMPANION = "companion"

# Location fields of a work address -> the names of the work_address view (DESIGN §5).
WORK_ADDRESS_FIELDS = (("description", "description"), ("address_line_1", "line1"), ("address_line_2", "line2"),
                       ("address_line_3", "line3"), ("town", "town"), ("county", "county"),
                       ("postcode", "postcode"), ("country", "country"))


@dataclass(slots=True)
class EmployeeOutcome:
    """What one call did to one employee.

    `state` is None when the person is deleted (tombstone on esr.employees); `tombstone` then holds a
    state the shell may keep in its table instead of deleting the key, so that a replay of the delete
    re-emits exactly what it emitted. `rejected`: records not applied, with the reason (for the DLQ).
    """

    state: EmployeeState | None
    changes: list[ChangeEvent]
    tombstone: EmployeeState | None = None
    rejected: list[tuple[InputRecord, str]] = field(default_factory=list)


def employee_key(vpd: str, person_id: str) -> str:
    return f"{vpd}:{person_id}"


def _person_of(event: Mapping[str, Any]) -> str | None:
    person_id = event.get("person_id")
    if person_id is None and event.get("entity_type") == "PERSON":
        person_id = event.get("entity_id")
    return person_id


def _reject_reason(state: EmployeeState, event: Mapping[str, Any]) -> str | None:
    if event.get("entity_type") not in PERSON_SCOPED:
        return f"{event.get('entity_type')} is not person-scoped"
    if _person_of(event) is None:
        return "no person id (the owner of a child delete row was not resolved)"
    if event.get("vpd") != state.vpd or _person_of(event) != state.person_id:
        return f"record for {event.get('vpd')}:{_person_of(event)} in the batch of {state.key}"
    if event.get("action") == "UPSERT" and event.get("payload") is None:
        return "upsert without a payload"
    return None


def apply_employee_batch(state: EmployeeState | None, records: Sequence[InputRecord], reference: ReferenceView, *,
                         now_ms: int) -> EmployeeOutcome:
    """Apply one batch of one employee's records (one key, offset order); never changes `state` itself.

    Records at or below the offset the state was built to are replays: the state is rolled back and they
    are applied again, re-emitting the same events with op "r" (module doc of `state`).
    """
    if not records:
        return EmployeeOutcome(state, [])
    if state is None:
        head = records[0].event
        current = EmployeeState(vpd=str(head.get("vpd")), person_id=str(_person_of(head)))
    else:
        current = state.copy()
    outcome = EmployeeOutcome(current, [])
    apply_journaled(
        current, records, now_ms=now_ms, person_id=current.person_id, reject=partial(_reject_reason, current),
        rejected=outcome.rejected, out=outcome.changes,
        apply_one=lambda step, record: _apply(step, current, record.event, reference),
    )
    return _finish(outcome, current)


def _finish(outcome: EmployeeOutcome, current: EmployeeState) -> EmployeeOutcome:
    """A deleted person: state None (a tombstone on esr.employees), the tombstone kept aside."""
    if current.deleted:
        outcome.state, outcome.tombstone = None, current
    return outcome


def _apply(step: Step, state: EmployeeState, event: Mapping[str, Any], reference: ReferenceView) -> None:
    entity_type, entity_id = event["entity_type"], event["entity_id"]
    if event["action"] == "DELETE":
        if entity_type == "PERSON":
            _delete_person(step, state)
            return
        before = remove(step, entity_type, entity_id)
        if before is not None:
            deleted_event(step, entity_type, entity_id, before)
    else:
        state.deleted = False
        values = canonical(event["payload"])
        what, before, after = upsert(step, entity_type, entity_id, values)
        if entity_type == "PERSON":
            _person_events(step, state, what, before, after)
        else:
            changes = entity_events(step, entity_type, entity_id, what, before, after)
            if entity_type == "ASSIGNMENT" and what == CHANGED and changes:
                assert before is not None
                _work_address_on_change(step, entity_id, before, after, reference)
    if entity_type == "ASSIGNMENT":
        _check_primary(step, state)


# -- person ------------------------------------------------------------------------------------------------

def _person_events(step: Step, state: EmployeeState, what: str, before: Values | None, after: Values) -> None:
    if what == CREATED:
        state.first_sha = step.sha
        step.forget_employee_number()
        step.emit(NEW_STARTER, CREATE, "PERSON", state.person_id, None, after,
                  as_date(after.get("hire_date") or after.get("effective_start")),
                  employee_number=after.get("employee_number"))
        return
    if what == SAME or before is None:
        return
    step.forget_employee_number()
    changes = diff(before, after)
    if not significant(changes):
        return
    chain = person_chain(before, after, changes)
    current = before
    for number, (event_type, group) in enumerate(chain):
        following = after if number == len(chain) - 1 else apply_changes(current, group)
        effective = after.get("termination_date") if event_type == LEAVER else after.get("effective_start")
        step.emit(event_type, UPDATE, "PERSON", state.person_id, current, following, as_date(effective), group,
                  employee_number=following.get("employee_number"))
        current = following


def person_chain(before: Values, after: Values,
                 changes: list[dict[str, str | None]]) -> list[tuple[str, list[dict[str, str | None]]]]:
    """The person events a change of view makes, each with its share of `changes` (module doc)."""
    leaver = before.get("termination_date") is None and after.get("termination_date") is not None
    surname = before.get("last_name") != after.get("last_name")
    groups: dict[str, list[dict[str, str | None]]] = {
        LEAVER: [], SURNAME_CHANGED: [], NAME_CHANGED: [], PERSON_UPDATED: [], _COMPANION: [],
    }
    for change in changes:
        name = change["field"]
        assert name is not None
        if leaver and name in LEAVER_FIELDS:
            groups[LEAVER].append(change)
        elif surname and name in SURNAME_FIELDS:
            groups[SURNAME_CHANGED].append(change)
        elif name in NAME_FIELDS:
            groups[NAME_CHANGED].append(change)
        elif name in COMPANION_FIELDS:
            groups[_COMPANION].append(change)
        else:
            groups[PERSON_UPDATED].append(change)
    chain = [(event_type, groups[event_type]) for event_type in (LEAVER, SURNAME_CHANGED, NAME_CHANGED,
                                                                 PERSON_UPDATED) if groups[event_type]]
    if chain and groups[_COMPANION]:
        chain[0] = (chain[0][0], chain[0][1] + groups[_COMPANION])
    return chain


def _delete_person(step: Step, state: EmployeeState) -> None:
    """PRD: the person and everything under them go; one PERSON_DELETED."""
    if state.deleted and not any(state.entities.values()):
        return  # already deleted
    person = state.entity("PERSON", state.person_id)
    before = None if person is None else in_force(person.versions, step.run, TRACKING["PERSON"].end)
    step.undo.append(["*", "", state.entities])
    state.entities = {}
    state.deleted = True
    state.primary_assignment_id = state.primary_assignment_number = state.first_sha = None
    step.emit(PERSON_DELETED, DELETE, "PERSON", state.person_id, before, None, None,
              employee_number=None if before is None else before.get("employee_number"))


# -- primary assignment ------------------------------------------------------------------------------------

def primary_assignment(state: EmployeeState, run: str) -> str | None:
    """The person's primary assignment at `run` (ISO date), as S1 picks it (Q17).

    The single assignment flagged Primary = Yes (any case) whose effective end is blank or not before the
    run date; several such: the one with the latest effective start. When none is active, the single
    flagged one even though it has ended (one flag is no ambiguity: a leaver keeps their primary, and
    a primary that ended keeps it until ESR flags the one that continues, rather than it moving to
    another assignment and back while the rows of one file arrive one by one). Otherwise (no flag, or
    several ended ones) the latest effective start among the active assignments, else among the flagged,
    else among all. Ties go to the highest id, so the choice never depends on the order records came in.
    """
    assignments = state.entities.get("ASSIGNMENT")
    if not assignments:
        return None
    flagged: list[tuple[str, str, str]] = []
    active: list[tuple[str, str, str]] = []
    every: list[tuple[str, str, str]] = []
    ended_flagged: list[tuple[str, str, str]] = []
    end_field = TRACKING["ASSIGNMENT"].end
    for assignment_id, entity in assignments.items():
        view = in_force(entity.versions, run, end_field)
        assert view is not None
        candidate = (view.get("effective_start", ""), f"{len(assignment_id):04d}{assignment_id}", assignment_id)
        every.append(candidate)
        end = view.get("effective_end")
        yes = view.get("primary_assignment", "").upper() == "YES"
        if end is None or end >= run:
            active.append(candidate)
            if yes:
                flagged.append(candidate)
        elif yes:
            ended_flagged.append(candidate)
    if flagged:
        return max(flagged)[2]
    if len(ended_flagged) == 1:
        return ended_flagged[0][2]
    return max(active or ended_flagged or every)[2]


def _check_primary(step: Step, state: EmployeeState) -> None:
    if state.deleted:
        return
    new_id = primary_assignment(state, step.run)
    view = None if new_id is None else state.view("ASSIGNMENT", new_id, step.run)
    new_number = None if view is None else view.get("assignment_number")
    old_id, old_number = state.primary_assignment_id, state.primary_assignment_number
    if (new_id, new_number) == (old_id, old_number):
        return
    state.primary_assignment_id, state.primary_assignment_number = new_id, new_number
    if new_id == old_id or old_id is None or state.first_sha is None or state.first_sha == step.sha:
        return
    before = _primary_values(old_id, old_number)
    after = _primary_values(new_id, new_number)
    step.emit(PRIMARY_ASSIGNMENT_CHANGED, UPDATE, "PERSON", state.person_id, before, after,
              None if view is None else as_date(view.get("effective_start")))


def _primary_values(assignment_id: str | None, number: str | None) -> Values:
    values: Values = {}
    if assignment_id is not None:
        values["primary_assignment_id"] = assignment_id
    if number is not None:
        values["primary_assignment_number"] = number
    return values


# -- work address ------------------------------------------------------------------------------------------

def work_address(vpd: str, assignment: Mapping[str, Any], reference: ReferenceView) -> Values | None:
    """The work address of an assignment view: its location, else its organisation's location (§3).

    Keys: location_id, via (ASSIGNMENT or ORGANISATION), assignment_number, then the location's address
    as in the work_address view (description, line1..3, town, county, postcode, country), non-null only.
    None when the assignment names no location and its organisation none either (or is unknown).
    """
    location_id = assignment.get("location_id")
    via = "ASSIGNMENT"
    if location_id is None:
        organisation_id = assignment.get("organisation_id")
        organisation = None if organisation_id is None else reference.organisation(vpd, organisation_id)
        location_id = None if organisation is None else organisation.get("location_id")
        if location_id is None:
            return None
        via = "ORGANISATION"
    address: Values = {"location_id": render(location_id) or "", "via": via}
    number = assignment.get("assignment_number")
    if number is not None:
        address["assignment_number"] = number
    location = reference.location(vpd, address["location_id"])
    if location is not None:
        for name, target in WORK_ADDRESS_FIELDS:
            value = render(location.get(name))
            if value is not None:
                address[target] = value
    return address


def _work_address_on_change(step: Step, assignment_id: str, before: Values, after: Values,
                            reference: ReferenceView) -> None:
    if (before.get("location_id") == after.get("location_id")
            and before.get("organisation_id") == after.get("organisation_id")):
        return
    old = work_address(step.vpd, before, reference)
    new = work_address(step.vpd, after, reference)
    if old != new:
        step.emit(WORK_ADDRESS_CHANGED, UPDATE, "ASSIGNMENT", assignment_id, old, new,
                  as_date(after.get("effective_start")))


class _Previous:
    """The reference view as it was before a reference batch: `previous` entries override `current`."""

    def __init__(self, current: ReferenceView, locations: Mapping[str, Mapping[str, Any] | None],
                 organisations: Mapping[str, Mapping[str, Any] | None]) -> None:
        self.current, self.locations, self.organisations = current, locations, organisations

    def location(self, vpd: str, location_id: str) -> Mapping[str, Any] | None:
        if location_id in self.locations:
            return self.locations[location_id]
        return self.current.location(vpd, location_id)

    def organisation(self, vpd: str, organisation_id: str) -> Mapping[str, Any] | None:
        if organisation_id in self.organisations:
            return self.organisations[organisation_id]
        return self.current.organisation(vpd, organisation_id)

    def position(self, vpd: str, position_id: str) -> Mapping[str, Any] | None:
        return self.current.position(vpd, position_id)


def work_address_changes(state: EmployeeState, vpd: str, changed_location_ids: Collection[str],
                         changed_organisation_ids: Collection[str], reference: ReferenceView, *,
                         source: ChangeSource, now_ms: int,
                         previous_locations: Mapping[str, Mapping[str, Any] | None] | None = None,
                         previous_organisations: Mapping[str, Mapping[str, Any] | None] | None = None,
                         ) -> list[ChangeEvent]:
    """WORK_ADDRESS_CHANGED for each of the employee's assignments whose work address goes through a changed
    location or organisation (a reference record's fan-out; `source` is that record's).

    `reference` must already show the new reference data; `previous_locations` / `previous_organisations`
    give the changed entities as they were (a ReferenceOutcome's `previous`; None: did not exist). A
    changed id missing from them makes the event's `before` null (the address is reported whole).
    Assignments in force at the source's run date only (not ended before it). The state is not changed:
    the same call on the same state gives the same events, which is all a replay needs.
    """
    if state.deleted or vpd != state.vpd:
        return []
    assignments = state.entities.get("ASSIGNMENT")
    if not assignments:
        return []
    run = run_day(source.run_date)
    locations = set(changed_location_ids)
    organisations = set(changed_organisation_ids)
    old_view = _Previous(reference, previous_locations or {}, previous_organisations or {})
    known_before = locations <= set(previous_locations or {}) and organisations <= set(previous_organisations or {})
    out: list[ChangeEvent] = []
    step = Step(state, person_id=state.person_id, source=source.as_dict, sha=source.file_sha256,
                line_no=source.line_no, run=run, seq=source.sequence or 0, ms=now_ms, replay=False, out=out)
    end_field = TRACKING["ASSIGNMENT"].end
    for assignment_id, entity in assignments.items():
        view = in_force(entity.versions, run, end_field)
        if view is None or (view.get("effective_end") or run) < run:
            continue
        if not _goes_through(vpd, view, locations, organisations, reference, old_view):
            continue
        new = work_address(vpd, view, reference)
        old = work_address(vpd, view, old_view) if known_before else None
        if old != new:
            step.emit(WORK_ADDRESS_CHANGED, UPDATE, "ASSIGNMENT", assignment_id, old, new, None)
    return out


def _goes_through(vpd: str, view: Values, locations: set[str], organisations: set[str], *views: ReferenceView) -> bool:
    location_id = view.get("location_id")
    if location_id is not None:
        return location_id in locations
    organisation_id = view.get("organisation_id")
    if organisation_id is None:
        return False
    if organisation_id in organisations:
        return True
    for reference in views:
        organisation = reference.organisation(vpd, organisation_id)
        if organisation is not None and organisation.get("location_id") in locations:
            return True
    return False


# -- full files --------------------------------------------------------------------------------------------

def absent_from_full_file(state: EmployeeState, file_sha256: str, source: ChangeSource, *, treat_as_delete: bool,
                          now_ms: int) -> EmployeeOutcome:
    """At the end of a full (F) file, for each employee of its trust: the entities the file did not contain.

    An entity is absent when the last file that contained it is not this one and is not a later one (a
    change file read before this reconciliation ran). Each is reported with ABSENT_FROM_FULL_FILE (before =
    after = its view, no changes), or, when the trust treats absence as a delete (Q13's "snapshot
    reconcile"), deleted: the whole person (one PERSON_DELETED) when the person is absent, else each absent
    child (*_DELETED, and PRIMARY_ASSIGNMENT_CHANGED if that moves the primary). Event ids come from the
    file's SHA-256 with no line number.

    Calling it again for the same file (a replay of the end-of-file trigger) re-emits the same events
    (op "r"): exactly, by undoing the first run, when no record came since; otherwise against the state
    as it now is.
    """
    run, seq = run_day(source.run_date), source.sequence or 0
    done = state.reconciled
    if not state.deleted and (done is None or done.sha != file_sha256) and not any(
        entity.sha != file_sha256 and (entity.run, entity.seq) <= (run, seq)
        for bucket in state.entities.values() for entity in bucket.values()
    ):
        # The common case (the file had everything): nothing to report, so nothing to copy or to mark
        # (the shell writes no state without events, and a replay of the barrier finds nothing again).
        return EmployeeOutcome(state, [])
    current = state.copy()
    replay, ms = False, now_ms
    if done is not None and done.sha == file_sha256:
        replay = True
        if done.offset == current.offset:
            current.undo(done.undo, done.scalars)
            ms = done.now_ms
    outcome = EmployeeOutcome(current, [])
    if current.deleted:
        return _finish(outcome, current)
    step = Step(current, person_id=current.person_id, source=source.as_dict, sha=file_sha256, line_no=None,
                run=run, seq=seq, ms=ms, replay=replay, out=outcome.changes)
    scalars = current.scalars()
    person = current.entity("PERSON", current.person_id)

    def absent(sha: str, file_run: str, file_seq: int) -> bool:
        return sha != file_sha256 and (file_run, file_seq) <= (run, seq)

    if treat_as_delete and person is not None and absent(person.sha, person.run, person.seq):
        _delete_person(step, current)
    else:
        touched_assignments = False
        for entity_type in ENTITY_ORDER:
            bucket = current.entities.get(entity_type)
            for entity_id, entity in list((bucket or {}).items()):
                if not absent(entity.sha, entity.run, entity.seq):
                    continue
                if treat_as_delete:
                    before = remove(step, entity_type, entity_id)
                    deleted_event(step, entity_type, entity_id, before)
                    touched_assignments |= entity_type == "ASSIGNMENT"
                else:
                    view = current.view(entity_type, entity_id, run)
                    step.emit(ABSENT_FROM_FULL_FILE, UPDATE, entity_type, entity_id, view, view, None, [])
        if touched_assignments:
            _check_primary(step, current)
    current.reconciled = Reconciliation(file_sha256, current.offset, ms,
                                        None if current.scalars() == scalars else scalars, step.undo)
    return _finish(outcome, current)


def complete_in_file(state: EmployeeState) -> str | None:
    """The SHA-256 of the one file that last contained every entity of `state`, when `absent_from_full_file`
    for that file has nothing to do with it (not deleted, not already reconciled with it); else None.

    The shell notes it when it writes the state, so that a full file's barrier need not decode the states
    the file itself wrote in full: the common case, nearly every employee of the trust.
    """
    if state.deleted:
        return None
    shas = {entity.sha for bucket in state.entities.values() for entity in bucket.values()}
    if len(shas) != 1:
        return None
    (sha,) = shas
    done = state.reconciled
    return None if done is not None and done.sha == sha else sha


def employee_snapshot(state: EmployeeState, run_date: Any = None) -> dict[str, Any]:
    """The employee as esr.employees shows it: every entity's view at `run_date` (default: the run date of
    the file that last contained each one) and all its versions; no journal. JSON-ready."""
    entities: dict[str, dict[str, Any]] = {}
    for entity_type, bucket in state.entities.items():
        end_field = TRACKING[entity_type].end
        entities[entity_type] = {
            entity_id: {
                "current": in_force(entity.versions, run_day(run_date) if run_date is not None else entity.run,
                                    end_field),
                "versions": entity.versions,
                "last_file_sha256": entity.sha,
                "last_run": entity.run,  # that file's run date: the date the mapping stage selects at
            }
            for entity_id, entity in bucket.items()
        }
    return {
        "vpd": state.vpd,
        "person_id": state.person_id,
        "primary_assignment_id": state.primary_assignment_id,
        "primary_assignment_number": state.primary_assignment_number,
        "entities": entities,
    }
