"""Pure domain logic of the stream processor: per-key state, field-level diffs, typed change events.

No Kafka, no Faust, no database: the Faust shell (`streams.app`, `streams.agents`) reads record events,
groups each batch by key, and calls:

- `apply_employee_batch(state, records, reference, now_ms=...)` per employee key `<vpd>:<person_id>`;
- `apply_reference_batch(state, records, now_ms=...)` per reference key `<vpd>:<TYPE>:<id>`;
- `work_address_changes(...)` for the employees a location / organisation change fans out to;
- `absent_from_full_file(...)` (and `reference_absent_from_full_file`) at the end of a full file, skipping
  the employees `complete_in_file` says the file wrote in full;

then writes the returned state (`encode_state`) and sends the returned change events
(`Encoder("change-event").encode`). See `state` for replay safety, `apply` for the diff semantics,
`employee` and `reference` for the events.

None of these functions changes the state it is given. The events they return share their `before` /
`after` maps with the state they return (no copies, for speed): treat both as read-only.
"""

from streams.domain.apply import assignment_ended
from streams.domain.employee import (
    EmployeeOutcome,
    absent_from_full_file,
    apply_employee_batch,
    complete_in_file,
    employee_key,
    employee_snapshot,
    person_chain,
    primary_assignment,
    work_address,
    work_address_changes,
)
from streams.domain.events import ChangeEvent, ChangeSource, event_id
from streams.domain.model import Entity, InputRecord, Values, apply_changes, canonical, diff, in_force, render
from streams.domain.places import organisations_at, work_address_refs
from streams.domain.reference import (
    ADDRESS_FIELDS,
    NoReference,
    ReferenceOutcome,
    ReferenceView,
    StateReferenceView,
    apply_reference_batch,
    reference_absent_from_full_file,
    reference_key,
)
from streams.domain.state import (
    JOURNAL_CALLS,
    EmployeeState,
    ReferenceState,
    decode_reference_state,
    decode_state,
    encode_reference_state,
    encode_state,
)

__all__ = [
    "ADDRESS_FIELDS",
    "JOURNAL_CALLS",
    "ChangeEvent",
    "ChangeSource",
    "EmployeeOutcome",
    "EmployeeState",
    "Entity",
    "InputRecord",
    "NoReference",
    "ReferenceOutcome",
    "ReferenceState",
    "ReferenceView",
    "StateReferenceView",
    "Values",
    "absent_from_full_file",
    "apply_changes",
    "apply_employee_batch",
    "apply_reference_batch",
    "assignment_ended",
    "canonical",
    "complete_in_file",
    "decode_reference_state",
    "decode_state",
    "diff",
    "employee_key",
    "employee_snapshot",
    "encode_reference_state",
    "encode_state",
    "event_id",
    "in_force",
    "organisations_at",
    "person_chain",
    "primary_assignment",
    "reference_absent_from_full_file",
    "reference_key",
    "render",
    "work_address",
    "work_address_changes",
    "work_address_refs",
]
