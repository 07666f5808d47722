"""The pure half of the PostgreSQL sink: change events (DESIGN §4) -> typed rows of the read model (§5).

No Kafka, no PostgreSQL here: plain functions over the decoded event dicts, tested on their own.

What an event does to the current-state tables depends on its type, never on `op` (a replayed event has
op "r" whatever it was):

* `*_DELETED` (and PERSON_DELETED): soft delete of the entity's row; PERSON_DELETED also soft-deletes every
  row under the person (assignments, home addresses, phones, vehicles, costings);
* WORK_ADDRESS_CHANGED, ABSENT_FROM_FULL_FILE, UNKNOWN: history only (`change_event`); the work address is
  a view over the assignment, organisation and location rows, which their own events keep current;
* any other event whose `after` is the entity itself (it holds the entity's key field = `entity_id`):
  upsert of the row from `after`, every column set (a field absent from `after` is NULL);
* anything else: history only.

Every event, whatever it does to state, becomes one `change_event` row.

The guard position of an event is `(source.sequence, source.line_no)`: the ESR file sequence and line that
caused it. An event no single line causes (line_no null: a full-file absence delete) sits at the end of its
file. Within a batch the event with the highest position wins per row (ties: the later one), which is what
applying them one by one under the guard `row position <= event position` would leave.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from functools import cached_property
from typing import Any
from zoneinfo import ZoneInfo

from esr.format.layouts import (
    ADDRESS,
    ASSIGNMENT,
    COSTING,
    LOCATION,
    ORGANISATION,
    PERSON,
    PHONE,
    POSITION,
    VEHICLE,
    FieldType,
    Layout,
)

Row = tuple[Any, ...]
Position = tuple[int, int]  # (ESR file sequence, line number)

END_OF_FILE = (1 << 63) - 1  # the line of an event caused by a file as a whole
NO_SEQUENCE = -1
UK = ZoneInfo("Europe/London")  # ESR run dates are UK local time, naive (esr-outbound-v2 Q6)

HISTORY_ONLY = frozenset({"WORK_ADDRESS_CHANGED", "ABSENT_FROM_FULL_FILE", "UNKNOWN"})
PERSON_DELETED = "PERSON_DELETED"


class UnmappableEvent(ValueError):
    """A change event that cannot be turned into rows (a value that does not parse, a missing field)."""


# -- value converters: canonical text (DESIGN §4: ISO dates/timestamps, plain decimals) -> typed -----------

def to_text(value: str) -> str:
    return value


# the C functions themselves: a Python wrapper would cost a call per value
to_date: Callable[[str], dt.date] = dt.date.fromisoformat
to_timestamp: Callable[[str], dt.datetime] = dt.datetime.fromisoformat
to_int: Callable[[str], int] = int


def to_decimal(value: str) -> Decimal:
    try:
        number = Decimal(value)
    except InvalidOperation:
        raise ValueError(f"not a decimal: {value!r}") from None
    if not number.is_finite():
        raise ValueError(f"not a finite decimal: {value!r}")
    return number


_TRUE = frozenset({"yes", "y", "true", "t", "1"})
_FALSE = frozenset({"no", "n", "false", "f", "0"})


def to_flag(value: str) -> bool:
    """ESR Yes/No flags (and the true/false of derived fields), case-insensitive."""
    folded = value.strip().lower()
    if folded in _TRUE:
        return True
    if folded in _FALSE:
        return False
    raise ValueError(f"not a Yes/No flag: {value!r}")


CONVERTERS: dict[FieldType, Callable[[str], Any]] = {
    FieldType.ID: to_text,
    FieldType.TEXT: to_text,
    FieldType.DATE: to_date,
    FieldType.TIMESTAMP: to_timestamp,
    FieldType.INT: to_int,
    FieldType.DECIMAL: to_decimal,
}


# -- table specifications -------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Column:
    """One data column: filled from the first of `fields` present in `after`, converted."""

    name: str
    fields: tuple[str, ...]
    convert: Callable[[str], Any]


GUARD_COLUMNS = (
    "src_sequence", "src_line_no", "src_file_name", "src_file_sha256", "src_run_date",
    "last_event_id", "last_event_type",
)


@dataclass(frozen=True)
class TableSpec:
    """A current-state table: `esr.<name>`, keyed (vpd, <key_column>), one row per ESR id."""

    name: str
    layout: Layout
    data_columns: tuple[Column, ...]

    @cached_property
    def entity_type(self) -> str:
        return self.layout.entity.value

    @cached_property
    def key_column(self) -> str:
        return self.layout.key_field

    @cached_property
    def person_scoped(self) -> bool:
        return self.layout.person_scoped

    @cached_property
    def columns(self) -> tuple[str, ...]:
        """The columns a state row fills, in row order."""
        return ("vpd", self.key_column, *(c.name for c in self.data_columns), *GUARD_COLUMNS)

    @property
    def data_column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.data_columns)

    @cached_property
    def build_row(self) -> Callable[[Mapping[str, Any], str, str, str | None, tuple[Any, ...]], Row]:
        """`(after, vpd, entity id, event person_id, guard values) -> the row`: one generated expression per
        table (a loop over 40 columns costs more than the conversions). Raises what a converter raises."""
        env: dict[str, Any] = {}
        parts = []
        for i, column in enumerate(self.data_columns):
            gets = [f"g({name!r})" for name in column.fields]
            raw = gets[-1]
            for get in reversed(gets[:-1]):
                raw = f"(x if (x := {get}) is not None else {raw})"
            if column.name == "person_id" and self.person_index is not None:
                raw = f"(x if (x := {raw}) is not None else person_id)"
            if column.convert is to_text:
                parts.append(raw)
            else:
                env[f"c{i}"] = column.convert
                parts.append(f"(None if (v := {raw}) is None else c{i}(v))")
        source = (
            "def build_row(after, vpd, entity_id, person_id, guard):\n    g = after.get\n"
            "    return (vpd, entity_id, " + ", ".join(parts) + ", *guard)\n"
        )
        exec(compile(source, f"<sink row builder: {self.name}>", "exec"), env)
        function: Callable[[Mapping[str, Any], str, str, str | None, tuple[Any, ...]], Row] = env["build_row"]
        return function

    @cached_property
    def person_index(self) -> int | None:
        """Where a child table's person_id sits in a row (None for the person and reference tables)."""
        if not self.person_scoped or self.key_column == "person_id":
            return None
        return self.columns.index("person_id")


def _spec(name: str, layout: Layout, renames: Mapping[str, str] | None = None,
          derived: Mapping[str, Column] | None = None) -> TableSpec:
    """Every data field of the layout but the key, under its §5 name; a derived column follows its field."""
    renames = renames or {}
    derived = derived or {}
    columns: list[Column] = []
    for f in layout.data_fields:
        if f.name == layout.key_field:
            continue
        if f.name in renames and renames[f.name] == "is_primary":
            columns.append(Column("is_primary", ("is_primary", f.name), to_flag))
            continue
        columns.append(Column(renames.get(f.name, f.name), (f.name,), CONVERTERS[f.type]))
        if f.name in derived:
            columns.append(derived[f.name])
    return TableSpec(name, layout, tuple(columns))


TABLES: tuple[TableSpec, ...] = (
    _spec("person", PERSON),
    # is_primary: the stream app's decision when the event carries it, else the record's own flag (ASA#21)
    _spec("assignment", ASSIGNMENT, {"system_assignment_status": "assignment_status"},
          {"primary_assignment": Column("is_primary", ("is_primary", "primary_assignment"), to_flag)}),
    _spec("home_address", ADDRESS, {"line_1": "line1", "line_2": "line2", "line_3": "line3",
                                    "primary_flag": "is_primary"}),
    _spec("phone", PHONE),
    _spec("vehicle", VEHICLE),
    _spec("costing", COSTING),
    _spec("location", LOCATION, {"location_code": "code", "address_line_1": "line1", "address_line_2": "line2",
                                 "address_line_3": "line3"}),
    _spec("organisation", ORGANISATION, {"organisation_type": "type", "default_cost_centre": "cost_centre"}),
    _spec("position", POSITION, {"position_name": "name", "job_staff_group": "staff_group"}),
)
BY_ENTITY: dict[str, TableSpec] = {spec.entity_type: spec for spec in TABLES}
BY_NAME: dict[str, TableSpec] = {spec.name: spec for spec in TABLES}
PERSON_CHILD_TABLES: tuple[TableSpec, ...] = tuple(s for s in TABLES if s.person_scoped and s.name != "person")

CHANGE_EVENT_COLUMNS = (
    "event_id", "vpd", "person_id", "employee_number", "event_type", "op", "entity_type", "entity_id",
    "changes", "effective_date", "file_name", "file_sha256", "sequence", "extract_type", "run_date",
    "record_code", "line_no", "input_topic", "input_partition", "input_offset", "topic", "partition", "offset",
    "event_ts",
)


# -- events in, rows out --------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Consumed:
    """A decoded change event and where the sink read it."""

    event: Mapping[str, Any]
    topic: str
    partition: int
    offset: int


@dataclass(frozen=True, slots=True)
class Provenance:
    """The guard columns' values: where the row's current content comes from."""

    position: Position
    file_name: str | None
    file_sha256: str | None
    run_date: dt.datetime | None
    event_id: str
    event_type: str

    def values(self) -> Row:
        return (self.position[0], self.position[1], self.file_name, self.file_sha256, self.run_date,
                self.event_id, self.event_type)


@dataclass(slots=True)
class Upsert:
    table: TableSpec
    row: Row  # in `table.columns` order
    position: Position


@dataclass(frozen=True, slots=True)
class Tombstone:
    """A soft delete of one row (inserted as a deleted row if the sink never saw the entity)."""

    table: TableSpec
    vpd: str
    entity_id: str
    person_id: str | None
    provenance: Provenance
    deleted_at: dt.datetime


@dataclass(frozen=True, slots=True)
class Cascade:
    """PERSON_DELETED: soft delete of every row under the person that is older than the delete."""

    vpd: str
    person_id: str
    provenance: Provenance
    deleted_at: dt.datetime


StateWrite = Upsert | Tombstone


@dataclass(frozen=True, slots=True)
class Refusal:
    consumed: Consumed
    reason: str


@dataclass
class Plan:
    """What one batch writes; `consumed` keeps the events in order (for isolating a refused one)."""

    consumed: list[Consumed] = field(default_factory=list)
    change_events: list[Row] = field(default_factory=list)
    upserts: dict[str, list[Row]] = field(default_factory=dict)  # table name -> rows, one per key
    deletes: list[Tombstone | Cascade] = field(default_factory=list)  # in position order, applied after upserts
    refused: list[Refusal] = field(default_factory=list)
    duplicates: int = 0  # events whose event_id came earlier in the same batch

    @property
    def state_rows(self) -> int:
        return sum(map(len, self.upserts.values())) + sum(isinstance(d, Tombstone) for d in self.deletes)


def position_of(source: Mapping[str, Any]) -> Position:
    sequence = source.get("sequence")
    line_no = source.get("line_no")
    return (NO_SEQUENCE if sequence is None else int(sequence), END_OF_FILE if line_no is None else int(line_no))


def deleted_at_of(event: Mapping[str, Any]) -> dt.datetime:
    """When a delete happened: the run date of the file that said so (UK local time), so that a rebuild
    writes the same value; the event's processing time when it has no run date."""
    run_date = event["source"].get("run_date")
    if isinstance(run_date, dt.datetime):
        return run_date.replace(tzinfo=UK) if run_date.tzinfo is None else run_date
    return dt.datetime.fromtimestamp(int(event.get("ts_ms") or 0) / 1000, dt.UTC)


def provenance_of(event: Mapping[str, Any]) -> Provenance:
    source = event["source"]
    return Provenance(position_of(source), source.get("file_name") or None, source.get("file_sha256") or None,
                      source.get("run_date"), event["event_id"], event["event_type"])


def _slow_data_values(spec: TableSpec, after: Mapping[str, Any]) -> list[Any]:
    """Column by column, to name the column whose value does not parse."""
    values: list[Any] = []
    for column in spec.data_columns:
        raw = None
        for name in column.fields:
            raw = after.get(name)
            if raw is not None:
                break
        if raw is None:
            values.append(None)
            continue
        try:
            values.append(column.convert(raw))
        except (ValueError, TypeError, ArithmeticError) as exc:
            raise UnmappableEvent(f"{spec.name}.{column.name}: {raw!r} does not parse ({exc})") from None
    return values


def state_row(spec: TableSpec, event: Mapping[str, Any], after: Mapping[str, Any], guard: tuple[Any, ...]) -> Row:
    """The typed row of `spec` for the entity in `after` (absent fields -> NULL), in `spec.columns` order;
    `guard`: the values of GUARD_COLUMNS."""
    try:
        return spec.build_row(after, event["vpd"], event["entity_id"], event.get("person_id"), guard)
    except (ValueError, TypeError, ArithmeticError):
        _slow_data_values(spec, after)  # raises UnmappableEvent naming the column
        raise


def state_write(event: Mapping[str, Any]) -> tuple[StateWrite | None, Cascade | None]:
    """What `event` does to the current-state tables (module doc); (None, None) = history only."""
    spec = BY_ENTITY.get(event["entity_type"])
    event_type = event["event_type"]
    if spec is None or event_type in HISTORY_ONLY:
        return None, None
    if event_type.endswith("_DELETED"):
        provenance = provenance_of(event)
        deleted_at = deleted_at_of(event)
        tombstone = Tombstone(spec, event["vpd"], event["entity_id"], event.get("person_id"), provenance,
                              deleted_at)
        cascade = None
        if event_type == PERSON_DELETED and spec.name == "person":
            cascade = Cascade(event["vpd"], event["entity_id"], provenance, deleted_at)
        return tombstone, cascade
    after = event.get("after")
    if not after or after.get(spec.key_column) != event["entity_id"]:
        return None, None
    source = event["source"]
    sequence, line_no = source.get("sequence"), source.get("line_no")
    position = (NO_SEQUENCE if sequence is None else sequence, END_OF_FILE if line_no is None else line_no)
    guard = (*position, source.get("file_name") or None, source.get("file_sha256") or None,
             source.get("run_date"), event["event_id"], event_type)
    return Upsert(spec, state_row(spec, event, after, guard), position), None


_escape = json.encoder.encode_basestring  # C-accelerated when available


class JsonText(str):
    """JSON already rendered (the `changes` of a change event): written to jsonb as it is."""


def json_changes(changes: Sequence[Mapping[str, Any]] | str | None) -> JsonText:
    """`changes` as JSON text: [{"field": .., "old": .., "new": ..}] (json.dumps' output, twice as fast).
    Text is taken as already rendered (`connectors.sink.fastread` renders it while decoding)."""
    if isinstance(changes, str):
        return changes if isinstance(changes, JsonText) else JsonText(changes)
    if not changes:
        return JsonText("[]")
    escape = _escape
    return JsonText("[" + ",".join([
        '{"field":' + escape(c["field"])
        + ',"old":' + ("null" if (old := c.get("old")) is None else escape(old))
        + ',"new":' + ("null" if (new := c.get("new")) is None else escape(new)) + "}"
        for c in changes
    ]) + "]")


_event_times: dict[int, dt.datetime] = {}  # ts_ms -> event_ts: a batch's events share a few milliseconds


def _event_ts(ts_ms: int) -> dt.datetime:
    found = _event_times.get(ts_ms)
    if found is None:
        if len(_event_times) > 4096:
            _event_times.clear()
        found = _event_times[ts_ms] = dt.datetime.fromtimestamp(ts_ms / 1000, dt.UTC)
    return found


def change_event_row(consumed: Consumed) -> Row:
    """The `change_event` row (CHANGE_EVENT_COLUMNS order); `changes` as JSON text."""
    event = consumed.event
    source = event["source"]
    ts_ms = event.get("ts_ms")
    return (
        event["event_id"],
        event["vpd"],
        event.get("person_id"),
        event.get("employee_number"),
        event["event_type"],
        event["op"],
        event["entity_type"],
        event["entity_id"],
        json_changes(event.get("changes")),
        event.get("effective_date"),
        source.get("file_name") or None,
        source.get("file_sha256") or None,
        source.get("sequence"),
        source.get("extract_type"),
        source.get("run_date"),
        source.get("record_code"),
        source.get("line_no"),
        source.get("topic"),
        source.get("partition"),
        source.get("offset"),
        consumed.topic,
        consumed.partition,
        consumed.offset,
        _event_ts(ts_ms) if ts_ms else None,
    )


def plan(batch: Iterable[Consumed]) -> Plan:
    """The rows one batch writes, such that writing them gives what writing the events one at a time in
    position order would, whatever the batch boundaries:

    * per row, only the upsert with the highest position (ties: the later event) is written: the guard
      would let each later one overwrite the one before;
    * then every delete (tombstones and PERSON_DELETED cascades) in position order: each one only touches
      rows older than itself, so an upsert written first and newer than a delete survives it, and an older
      one is deleted with its data kept, as one at a time;
    * events that cannot be mapped are refused (they go to the dead letters); an event_id seen earlier in
      the batch is dropped.
    """
    result = Plan()
    seen: set[str] = set()
    winners: dict[tuple[str, str, str], Upsert] = {}
    deletes: list[tuple[Position, int, Tombstone | Cascade]] = []
    for consumed in batch:
        result.consumed.append(consumed)
        event = consumed.event
        try:
            event_id = event["event_id"]
            if event_id in seen:
                result.duplicates += 1
                continue
            row = change_event_row(consumed)
            write, cascade = state_write(event)
        except UnmappableEvent as exc:
            result.refused.append(Refusal(consumed, str(exc)))
            continue
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            result.refused.append(Refusal(consumed, f"malformed change event: {type(exc).__name__}: {exc}"))
            continue
        seen.add(event_id)
        result.change_events.append(row)
        if isinstance(write, Upsert):
            key = (write.table.name, write.row[0], write.row[1])
            held = winners.get(key)
            if held is None or write.position >= held.position:
                winners[key] = write
        elif write is not None:
            deletes.append((write.provenance.position, len(deletes), write))
        if cascade is not None:
            deletes.append((cascade.provenance.position, len(deletes), cascade))
    for upsert in winners.values():
        result.upserts.setdefault(upsert.table.name, []).append(upsert.row)
    deletes.sort(key=lambda d: (d[0], d[1]))
    result.deletes = [d[2] for d in deletes]
    return result
