"""Per-key state of the stream processor: what the tables hold, its journal, and its JSON encoding.

Replay safety (DESIGN §3, the KAFKA-12508 hazard). A table value may be written and the change events of
the same batch never sent (a crash between the two); the input is then re-read from the last committed
offset, and diffing those records against the state they already produced would find nothing to say: the
events would be lost. So the state remembers the input position it was built to (`topic`, `partition`,
`offset`) and keeps a **journal**: for each recent input record, the entities it replaced (the previous
immutable `Entity`, or None when it created one) and the state's own fields before it. A record at or below
the stored offset is a replay: the state is first rolled back, newest record first, to just before the
earliest replayed record, and the replayed records are then applied again. Being applied to the very state
they were first applied to, they produce the very same events (same `event_id`s, same content, `op` = "r"
and the original `ts_ms`), whatever the batch boundaries were the first time or are now.

The journal keeps the records of the last `JOURNAL_CALLS` calls for the key. One would do: the shell
writes the table value and sends the batch's events once per batch, and commits the input offsets only
after sending, so at a crash at most the records of the key's latest batch can be uncommitted. Two more
give room for a commit that lags a batch or two (Faust commits on an interval) at little cost: an entry is
a few dozen bytes for a record that created entities and one entity's previous versions for one that
changed it. A replayed record older than the journal is skipped: its events were delivered before the
offsets past it were committed. A journal entry also carries the record's short identity; if the record
read back at an offset is not the one journalled there (the topic was re-created: Tansu loses topics on a
restart), the state's position is forgotten and the records are applied as new.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Self

import orjson

from streams.domain.model import TRACKING, Entity, InputRecord, Values, in_force, run_day

JOURNAL_CALLS = 3
STATE_FORMAT = 1

Entities = dict[str, dict[str, Entity]]  # entity type -> entity id -> entity
Undo = list[Any]  # [entity type, entity id, Entity before | None]; ["*", "", Entities] for a whole person


class JournalEntry(NamedTuple):
    """How to undo one applied input record (see the module doc)."""

    offset: int
    rid: str  # short identity of the record: "<first 16 hex digits of the file SHA-256>:<line>"
    now_ms: int  # the processing time it was applied with (a replay reuses it: same ts_ms)
    prev_offset: int  # the state's offset before it
    scalars: list[Any] | None  # the state's own fields before it, when it changed them
    undo: list[Undo]  # in the order applied; undone in reverse


class Reconciliation(NamedTuple):
    """The last full-file reconciliation (`absent_from_full_file`), undoable like a journal entry."""

    sha: str
    offset: int  # the state's input offset when it ran: a re-run is exact only when nothing came since
    now_ms: int
    scalars: list[Any] | None
    undo: list[Undo]


def record_identity(event: dict[str, Any]) -> str:
    source = event["source"]
    return f"{source['file_sha256'][:16]}:{source['line_no']}"


@dataclass(slots=True, eq=False, kw_only=True)
class JournaledState:
    """What employee and reference states share: entities, input position, journal."""

    vpd: str
    entities: Entities = field(default_factory=dict)
    deleted: bool = False  # a tombstone: kept only so that a replay of the delete re-emits its events
    topic: str | None = None
    partition: int = -1
    offset: int = -1
    replay_until: int = -1  # records up to this offset are being replayed: their events get op "r"
    journal: list[list[JournalEntry]] = field(default_factory=list)  # per call, oldest first
    reconciled: Reconciliation | None = None

    # -- the subclass's own fields, for the journal ------------------------------------------------------
    def scalars(self) -> list[Any]:
        return [self.deleted]

    def restore_scalars(self, scalars: list[Any]) -> None:
        self.deleted = scalars[0]

    # -- copy-on-write ----------------------------------------------------------------------------------
    def copy(self) -> Self:
        """A copy that can be changed without touching this one (entities are immutable and shared)."""
        return dataclasses.replace(self, entities={t: dict(m) for t, m in self.entities.items()},
                                   journal=list(self.journal))

    def entity(self, entity_type: str, entity_id: str) -> Entity | None:
        bucket = self.entities.get(entity_type)
        return None if bucket is None else bucket.get(entity_id)

    def view(self, entity_type: str, entity_id: str, run: str) -> Values | None:
        """The entity's version in force at `run` (ISO date), see `model.in_force`."""
        found = self.entity(entity_type, entity_id)
        return None if found is None else in_force(found.versions, run, TRACKING[entity_type].end)

    # -- journal ----------------------------------------------------------------------------------------
    def undo(self, undo: list[Undo], scalars: list[Any] | None) -> None:
        for entity_type, entity_id, previous in reversed(undo):
            if entity_type == "*":
                self.entities = {t: dict(m) for t, m in previous.items()}
            elif previous is None:
                bucket = self.entities.get(entity_type)
                if bucket is not None:
                    bucket.pop(entity_id, None)
            else:
                self.entities.setdefault(entity_type, {})[entity_id] = previous
        if scalars is not None:
            self.restore_scalars(scalars)

    def rewind(self, records: Sequence[InputRecord]) -> dict[int, int]:
        """Prepare for `records` (one key, offset order): roll back what a replay of them will redo.

        Returns the original processing time of each rolled-back offset. Afterwards every record at or
        below `self.offset` is one to skip, and every record up to `self.replay_until` a replayed one.
        """
        head = records[0]
        if self.topic != head.topic or self.partition != head.partition:
            self.forget_position(head)
            return {}
        if head.offset > self.offset:
            return {}
        journalled = {entry.offset: entry for call in self.journal for entry in call}
        for record in records:
            if record.offset > self.offset:
                break
            entry = journalled.get(record.offset)
            if entry is not None and entry.rid != record_identity(record.event):
                self.forget_position(head)  # not the log this state was built from
                return {}
        original_ms: dict[int, int] = {}
        self.replay_until = max(self.replay_until, self.offset)
        journal = self.journal
        while journal:
            call = list(journal[-1])
            while call and call[-1].offset >= head.offset:
                entry = call.pop()
                self.undo(entry.undo, entry.scalars)
                self.offset = entry.prev_offset
                original_ms[entry.offset] = entry.now_ms
            if call:
                journal[-1] = call
                break
            journal.pop()
        return original_ms

    def forget_position(self, head: InputRecord) -> None:
        self.topic, self.partition, self.offset, self.replay_until = head.topic, head.partition, -1, -1
        self.journal = []

    def push_call(self, call: list[JournalEntry]) -> None:
        """Journal the entries of one call (at the end of the call)."""
        if self.offset >= self.replay_until:
            self.replay_until = -1  # the replay is over
        if call:
            self.journal.append(call)
            if len(self.journal) > JOURNAL_CALLS:
                del self.journal[:-JOURNAL_CALLS]

    # -- JSON -------------------------------------------------------------------------------------------
    def _common_json(self) -> dict[str, Any]:
        return {
            "format": STATE_FORMAT,
            "vpd": self.vpd,
            "entities": self.entities,
            "deleted": self.deleted,
            "position": [self.topic, self.partition, self.offset, self.replay_until],
            "journal": self.journal,
            "reconciled": self.reconciled,
        }


@dataclass(slots=True, eq=False, kw_only=True)
class EmployeeState(JournaledState):
    """One employee (table key `<vpd>:<person_id>`): the person and every child entity, all versions.

    `entities` maps an entity type (PERSON, ASSIGNMENT, ADDRESS, PHONE, VEHICLE, COSTING) to its entities by
    ESR id; the person is `entities["PERSON"][person_id]` once a PRA has arrived (children may come first).
    """

    person_id: str
    primary_assignment_id: str | None = None  # as last established (Q17), see `employee.primary_assignment`
    primary_assignment_number: str | None = None
    first_sha: str | None = None  # the file in which the person (PRA) first appeared

    def scalars(self) -> list[Any]:
        return [self.deleted, self.primary_assignment_id, self.primary_assignment_number, self.first_sha]

    def restore_scalars(self, scalars: list[Any]) -> None:
        (self.deleted, self.primary_assignment_id, self.primary_assignment_number, self.first_sha) = scalars

    @property
    def key(self) -> str:
        return f"{self.vpd}:{self.person_id}"

    def person(self, run: str) -> Values | None:
        """The person's version in force at `run` (ISO date)."""
        return self.view("PERSON", self.person_id, run)

    def to_json(self) -> dict[str, Any]:
        data = self._common_json()
        data.update(person_id=self.person_id, primary=[self.primary_assignment_id, self.primary_assignment_number],
                    first_sha=self.first_sha)
        return data


@dataclass(slots=True, eq=False, kw_only=True)
class ReferenceState(JournaledState):
    """One reference entity (table key `<vpd>:<TYPE>:<id>`): a location, organisation or position."""

    entity_type: str
    entity_id: str

    @property
    def key(self) -> str:
        return f"{self.vpd}:{self.entity_type}:{self.entity_id}"

    def current(self) -> Values | None:
        """The version in force at the run date of the last file that contained it (None when deleted)."""
        found = self.entity(self.entity_type, self.entity_id)
        if found is None:
            return None
        return in_force(found.versions, run_day(found.run), TRACKING[self.entity_type].end)

    def to_json(self) -> dict[str, Any]:
        data = self._common_json()
        data.update(entity_type=self.entity_type, entity_id=self.entity_id)
        return data


# -- encoding ---------------------------------------------------------------------------------------------

def _as_list(value: Any) -> list[Any]:
    """orjson's fallback for the NamedTuples of a state (Entity, JournalEntry, Reconciliation): a JSON array."""
    if isinstance(value, tuple):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not part of a state")


def _dumps(data: dict[str, Any]) -> bytes:
    # orjson: about 4x as fast as the json module here (a table write per key per batch), and the same
    # bytes: compact separators, UTF-8 text unescaped.
    return orjson.dumps(data, default=_as_list)


def encode_state(state: EmployeeState) -> bytes:
    """Compact JSON. Entity values are canonical text, so the state round-trips exactly."""
    return _dumps(state.to_json())


def encode_reference_state(state: ReferenceState) -> bytes:
    return _dumps(state.to_json())


def _entity(data: list[Any]) -> Entity:
    return Entity(data[0], data[1], data[2], data[3])


def _entities(data: dict[str, dict[str, list[Any]]]) -> Entities:
    return {t: {i: _entity(e) for i, e in m.items()} for t, m in data.items()}


def _undo(data: list[list[Any]]) -> list[Undo]:
    undo: list[Undo] = []
    for entity_type, entity_id, previous in data:
        if entity_type == "*":
            undo.append([entity_type, entity_id, _entities(previous)])
        else:
            undo.append([entity_type, entity_id, None if previous is None else _entity(previous)])
    return undo


def _common(data: dict[str, Any]) -> dict[str, Any]:
    if data.get("format") != STATE_FORMAT:
        raise ValueError(f"unknown state format {data.get('format')!r}")
    topic, partition, offset, replay_until = data["position"]
    reconciled = data["reconciled"]
    return {
        "vpd": data["vpd"],
        "entities": _entities(data["entities"]),
        "deleted": data["deleted"],
        "topic": topic,
        "partition": partition,
        "offset": offset,
        "replay_until": replay_until,
        "journal": [
            [JournalEntry(e[0], e[1], e[2], e[3], e[4], _undo(e[5])) for e in call] for call in data["journal"]
        ],
        "reconciled": None if reconciled is None else Reconciliation(
            reconciled[0], reconciled[1], reconciled[2], reconciled[3], _undo(reconciled[4])
        ),
    }


def decode_state(data: bytes) -> EmployeeState:
    """The inverse of `encode_state`; ValueError for anything else."""
    try:
        raw = orjson.loads(data)
        primary_id, primary_number = raw["primary"]
        return EmployeeState(person_id=raw["person_id"], primary_assignment_id=primary_id,
                             primary_assignment_number=primary_number, first_sha=raw["first_sha"], **_common(raw))
    except (ValueError, KeyError, TypeError, IndexError, AttributeError) as exc:
        raise ValueError(f"not an encoded employee state: {type(exc).__name__}: {exc}") from exc


def decode_reference_state(data: bytes) -> ReferenceState:
    try:
        raw = orjson.loads(data)
        return ReferenceState(entity_type=raw["entity_type"], entity_id=raw["entity_id"], **_common(raw))
    except (ValueError, KeyError, TypeError, IndexError, AttributeError) as exc:
        raise ValueError(f"not an encoded reference state: {type(exc).__name__}: {exc}") from exc
