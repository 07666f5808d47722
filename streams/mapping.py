"""The mapping stage's logic: every trust's employees in their trust's mapping. Pure (no Kafka, no clock).

Why a stage of its own, not a partition-local Faust agent: the mapped record of an employee reads the
line manager (another employee, usually on another partition) and the work location, organisation and
position (reference data). So the stage keeps a **directory** of everything: every employee's state from
the compacted `esr.employees` (all partitions; key ``<vpd>:<person_id>``, value the JSON snapshot of
`streams.domain.employee_snapshot`, None = deleted), every reference entity's current version (from the
worker's reference replicas), and each trust's template version.

Convergence. A mapped record is a function of final states only: the employee's snapshot, the snapshot of
the person its primary assignment names as supervisor, the reference rows it points at, and the trust's
template. The directory remembers, per employee, what it read (its supervisor, the reference keys it
looked up, found or not) and marks an employee dirty whenever any of them changes: its own snapshot,
its supervisor's person row (`subordinates` index), or a reference it read (`readers` index). Whatever
the order the partitions are read in, once every input has been read every employee has been mapped
after the last change of everything it depends on. A trust's template and its NHS options (only the
primary home address; the username, home address and display name formats, `nhs_fields`) apply to the
changes mapped after they changed (issue 5); `esr remap` rebuilds a trust with the current ones.

The selections run at the date of the employee's own latest file (`last_run` of its entities): the same
final state gives the same answer whenever and wherever it is mapped.

A new state whose rows the mapping reads are unchanged (a phone, a vehicle or a costing changed) is not
mapped again unless the trust's template or options changed since the employee was last drained.

`drain` maps the dirty employees and returns a mapped change event (schema
``mapped-change-event``) for each one whose record differs from the one emitted before (a delete for a
tombstone); the event id is a function of the record, so a repeated record repeats its id.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, cast

import orjson

from esr.format.values import Value
from esr.mapping.apply import MappedEmployee, apply_template, json_value
from esr.mapping.catalogue import MappedValue
from esr.mapping.versions import TemplateVersion
from esr.mapping.view import EmployeeView, Row, build_view
from esr.profiles import DisplayWithAssignment, NhsOptions
from streams.domain.events import uuid5_of

#: uuid5 namespace of mapped change event ids
MAPPED_EVENT_NAMESPACE = uuid.UUID("6f1c1d2e-54a1-4c8e-9d0b-2b6a8f3e7c41")
_mapped_uuid = uuid5_of(MAPPED_EVENT_NAMESPACE)

EMPLOYEE_MAPPED = "EMPLOYEE_MAPPED"
PERSON_DELETED = "PERSON_DELETED"

REFERENCE_TYPES = ("LOCATION", "ORGANISATION", "POSITION")

#: the primary assignment's field each "display with assignment" option shows. ESR's assignment record has
#: no paypoint field: the payroll it is paid on (payroll name) is the nearest, and what "paypoint" shows.
DISPLAY_FIELD = {
    DisplayWithAssignment.PAYPOINT: "payroll_name",
    DisplayWithAssignment.JOB_NAME: "job_name",
    DisplayWithAssignment.POSITION_NAME: "position_name",
}

DEFAULT_OPTIONS = NhsOptions()

EmployeeKey = tuple[str, str]  # (vpd, person_id)
ReferenceKey = tuple[str, str, str]  # (vpd, LOCATION | ORGANISATION | POSITION, id)


@dataclass(frozen=True, slots=True)
class Source:
    """Where an employee's snapshot was read: the esr.employees message."""

    topic: str | None = None
    partition: int | None = None
    offset: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"topic": self.topic, "partition": self.partition, "offset": self.offset}


@dataclass(frozen=True, slots=True)
class EmployeeRows:
    """The rows of one employee the mapping reads: the current version of each entity."""

    vpd: str
    person_id: str
    person: Row | None
    assignments: tuple[Row, ...]
    addresses: tuple[Row, ...]
    run_date: dt.date  # the run date of the employee's latest file
    source: Source = Source()


def _current_rows(entities: Mapping[str, Any], entity_type: str) -> tuple[Row, ...]:
    """The current version of each entity of a type (the selections do not depend on the order)."""
    bucket = entities.get(entity_type) or {}
    return tuple(entry["current"] for entry in bucket.values() if entry.get("current") is not None)


def employee_rows(snapshot: Mapping[str, Any], source: Source = Source()) -> EmployeeRows:
    """The rows of an `esr.employees` snapshot (JSON of `streams.domain.employee_snapshot`)."""
    entities = snapshot.get("entities") or {}
    person_id = str(snapshot["person_id"])
    people = [row for row in _current_rows(entities, "PERSON") if str(row.get("person_id", person_id)) == person_id]
    runs = [run for bucket in entities.values() for entry in bucket.values() if (run := entry.get("last_run"))]
    run_date = dt.date.fromisoformat(max(runs)[:10]) if runs else dt.date.max
    return EmployeeRows(
        vpd=str(snapshot["vpd"]),
        person_id=person_id,
        person=people[0] if people else None,
        assignments=_current_rows(entities, "ASSIGNMENT"),
        addresses=_current_rows(entities, "ADDRESS"),
        run_date=run_date,
        source=source,
    )


def supervisor_of(primary: Row | None) -> str | None:
    """The person id the primary assignment names as supervisor."""
    value = None if primary is None else primary.get("supervisor_person_id")
    text = "" if value is None else str(value).strip()
    return text or None


def _same_rows(before: EmployeeRows, after: EmployeeRows) -> bool:
    """The two states give the mapping the same rows (wherever they were read)."""
    return (before.person == after.person and before.run_date == after.run_date
            and before.assignments == after.assignments and before.addresses == after.addresses)


@dataclass(slots=True)
class _Reads:
    """What an employee's last mapping read: where a change must send it to be mapped again."""

    supervisor: str | None = None
    references: tuple[ReferenceKey, ...] = ()


_NO_READS = _Reads()


def _stripped(value: object) -> str:
    return "" if value is None else str(value).strip()


def display_name(options: NhsOptions, view: EmployeeView) -> str | None:
    """The person's name (first and last), with " (<paypoint / job name / position name>)" of the primary
    assignment per the trust's "display with assignment" option, so claimants with several assignments can
    be told apart; the name alone when the option is none or the assignment has no such value."""
    name = " ".join(part for part in (_stripped(view.person.get(k)) for k in ("first_name", "last_name")) if part)
    column = DISPLAY_FIELD.get(options.display_with_assignment)
    shown = "" if column is None or view.primary_assignment is None else _stripped(view.primary_assignment.get(column))
    if shown:
        name = f"{name} ({shown})" if name else f"({shown})"
    return name or None


def nhs_fields(options: NhsOptions, view: EmployeeView) -> dict[str, str | None]:
    """The fields the trust's NHS options render: username, home address (of the selected home address) and
    display name; None for an empty one."""
    # the rows hold layout values (or their JSON text): what the formats render
    person = cast(Mapping[str, Value], view.person)
    home = cast(Mapping[str, Value] | None, view.home_address)
    address = "" if home is None else options.render_home_address(home)
    return {
        "username": options.render_username(person) or None,
        "home_address": address or None,
        "display_name": display_name(options, view),
    }


def view_of(
    rows: EmployeeRows,
    people: Callable[[str], Row | None],
    references: Callable[[str, str], Row | None],
    *,
    options: NhsOptions = DEFAULT_OPTIONS,
) -> EmployeeView:
    """The view the employee is mapped from: `people(person_id)` gives another employee's person row,
    `references(TYPE, id)` a location / organisation / position row. `rows.person` must be set."""
    assert rows.person is not None
    return build_view(
        rows.person,
        rows.run_date,
        assignments=rows.assignments,
        addresses=rows.addresses,
        people=people,
        locations=lambda key: references("LOCATION", key),
        organisations=lambda key: references("ORGANISATION", key),
        positions=lambda key: references("POSITION", key),
        only_primary_address=options.only_primary_address,
    )


def _as_text(value: MappedValue) -> str | None:
    return None if value is None else str(json_value(value))


def record_of(template: TemplateVersion, mapped: MappedEmployee, nhs: Mapping[str, str | None]) -> dict[str, Any]:
    """The comparable, JSON-ready record: every value as canonical text, each UDF's kind, and the NHS
    option fields."""
    return {
        "template_version": template.version,
        # (texts, most values, are kept as they are: no call for them)
        "standard": {k: v if v is None or type(v) is str else _as_text(v) for k, v in mapped.standard.items()},
        "nhs": dict(nhs),
        "udf": {k: v if v is None or type(v) is str else _as_text(v) for k, v in mapped.udf.items()},
        "udf_kinds": {u.name: u.kind.value for u in template.template.udfs},
        "problems": [{"target": p.target, "message": p.message} for p in mapped.problems],
    }


def mapped_event_id(vpd: str, person_id: str, event_type: str, record: Mapping[str, Any] | None) -> str:
    # the bytes of json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False), UTF-8
    # (the test pins it): orjson sorts keys by code point and escapes the same characters the same way
    content = orjson.dumps(record, option=orjson.OPT_SORT_KEYS)
    digest = hashlib.sha256(content).hexdigest()
    return _mapped_uuid(f"{vpd}:{person_id}:{event_type}:{digest}")


def _text(value: object) -> str | None:
    if value is None or type(value) is str:
        return value
    return str(value)


def _flat(record: Mapping[str, Any] | None) -> dict[str, Any]:
    if record is None:
        return {}
    values = dict(record["standard"])
    values.update(record.get("nhs", {}))
    values.update({f"udf.{k}": v for k, v in record["udf"].items()})
    return values


def field_changes(old: Mapping[str, Any] | None, new: Mapping[str, Any] | None) -> list[dict[str, str | None]]:
    """{field, old, new} of every standard field, NHS option field and UDF (``udf.<name>``) whose value
    (as text) differs, by field name."""
    before, after = _flat(old), _flat(new)
    if not before:  # a new record: every value it has
        return [{"field": name, "old": None, "new": value if type(value) is str else _text(value)}
                for name, value in sorted(after.items()) if value is not None]
    changed = []
    for name, now in after.items():
        was = before.get(name)
        if was is now:
            continue
        if (was is None or type(was) is str) and (now is None or type(now) is str):  # texts (the usual)
            if was == now:
                continue
        elif _text(was) == _text(now):
            continue
        changed.append(name)
    changed.extend(name for name, was in before.items() if was is not None and name not in after)
    changed.sort()
    return [{"field": name, "old": _text(before.get(name)), "new": _text(after.get(name))} for name in changed]


def mapped_change(
    vpd: str,
    person_id: str,
    previous: Mapping[str, Any] | None,
    record: Mapping[str, Any] | None,
    *,
    template_version: int,
    op: str,
    source: Source,
    now_ms: int,
) -> dict[str, Any]:
    """A mapped change event (record None: the employee was deleted)."""
    event_type = PERSON_DELETED if record is None else EMPLOYEE_MAPPED
    return {
        "event_id": mapped_event_id(vpd, person_id, event_type, record),
        "event_type": event_type,
        "op": op,
        "vpd": vpd,
        "person_id": person_id,
        "template_version": template_version if record is None else record["template_version"],
        "standard": {} if record is None else dict(record["standard"]),
        "nhs": {} if record is None else dict(record["nhs"]),
        "udf": {} if record is None else dict(record["udf"]),
        "udf_kinds": {} if record is None else dict(record["udf_kinds"]),
        "changes": field_changes(previous, record),
        "problems": [] if record is None else list(record["problems"]),
        "source": source.as_dict(),
        "ts_ms": now_ms,
    }


@dataclass
class MappingDirectory:
    """Every trust's employees, reference rows and templates, and what to map again (module doc)."""

    default_template: Callable[[str], TemplateVersion]
    #: each trust's NHS options (absent: the defaults)
    options: dict[str, NhsOptions] = field(default_factory=dict)
    employees: dict[EmployeeKey, EmployeeRows] = field(default_factory=dict)
    references: dict[ReferenceKey, Row] = field(default_factory=dict)
    templates: dict[str, TemplateVersion] = field(default_factory=dict)
    dirty: set[EmployeeKey] = field(default_factory=set)
    _reads: dict[EmployeeKey, _Reads] = field(default_factory=dict)
    _subordinates: dict[EmployeeKey, set[str]] = field(default_factory=dict)
    _readers: dict[ReferenceKey, set[EmployeeKey]] = field(default_factory=dict)
    _emitted: dict[EmployeeKey, dict[str, Any] | None] = field(default_factory=dict)
    _sources: dict[EmployeeKey, Source] = field(default_factory=dict)
    #: employees given a new state whose rows equal the old ones (`put_employee`)
    _touched: set[EmployeeKey] = field(default_factory=set)
    #: the template and options each employee was last drained with
    _drained_with: dict[EmployeeKey, tuple[TemplateVersion, NhsOptions]] = field(default_factory=dict)

    # -- inputs -----------------------------------------------------------------------------------------
    def template(self, vpd: str) -> TemplateVersion:
        found = self.templates.get(vpd)
        return found if found is not None else self.default_template(vpd)

    def set_template(self, version: TemplateVersion) -> None:
        """The trust's current template: used for the changes mapped from now on."""
        self.templates[version.vpd] = version

    def put_employee(self, key: EmployeeKey, snapshot: Mapping[str, Any] | None, source: Source = Source()) -> None:
        """An employee's new state (None: deleted). A state whose rows the mapping reads are those it had
        (a phone, a vehicle or a costing changed) is mapped again only if the trust's template or options
        changed since the employee was last drained (`drain`): the record would be the same."""
        after = None if snapshot is None else employee_rows(snapshot, source)
        before = self.employees.get(key)
        self._sources[key] = source
        if after is None:
            self.employees.pop(key, None)
        else:
            self.employees[key] = after
        if before is not None and after is not None and _same_rows(before, after) and key not in self.dirty:
            self._touched.add(key)
        else:
            self.dirty.add(key)
        if (before.person if before else None) != (after.person if after else None):
            vpd = key[0]
            self.dirty.update((vpd, person_id) for person_id in self._subordinates.get(key, ()))

    @property
    def pending(self) -> bool:
        """Whether `drain` has anything to look at."""
        return bool(self.dirty or self._touched)

    def settle(self) -> None:
        """Take everything read so far as mapped already: nothing is dirty (a directory loaded to map from)."""
        self.dirty.clear()
        self._touched.clear()

    def put_reference(self, key: ReferenceKey, row: Row | None) -> None:
        """A location / organisation / position's current version (None: deleted)."""
        if self.references.get(key) == row:
            return
        if row is None:
            self.references.pop(key, None)
        else:
            self.references[key] = row
        self.dirty.update(self._readers.get(key, ()))

    # -- mapping ----------------------------------------------------------------------------------------
    def _remember(self, key: EmployeeKey, reads: _Reads) -> None:
        old = self._reads.get(key, _NO_READS)
        if old == reads:  # what it read last time: the indexes hold it already
            return
        vpd = key[0]
        if old.supervisor is not None:
            self._discard(self._subordinates, (vpd, old.supervisor), key[1])
        for ref in old.references:
            self._discard(self._readers, ref, key)
        if reads.supervisor is not None:
            self._subordinates.setdefault((vpd, reads.supervisor), set()).add(key[1])
        for ref in reads.references:
            self._readers.setdefault(ref, set()).add(key)
        if reads.supervisor is not None or reads.references:
            self._reads[key] = reads
        else:
            self._reads.pop(key, None)

    @staticmethod
    def _discard(index: dict[Any, set[Any]], key: Any, member: Any) -> None:
        members = index.get(key)
        if members is not None:
            members.discard(member)
            if not members:
                del index[key]

    def map_employee(self, key: EmployeeKey) -> dict[str, Any] | None:
        """The employee's record now (None: deleted or no person yet), remembering what it read."""
        rows = self.employees.get(key)
        if rows is None or rows.person is None:
            self._remember(key, _NO_READS)
            return None
        vpd = key[0]
        read: dict[ReferenceKey, None] = {}  # in the order read: the same view reads the same tuple

        def people(person_id: str) -> Row | None:
            other = self.employees.get((vpd, person_id))
            return None if other is None else other.person

        def references(entity_type: str, entity_id: str) -> Row | None:
            ref = (vpd, entity_type, entity_id)
            read[ref] = None
            return self.references.get(ref)

        version = self.template(vpd)
        options = self.options.get(vpd, DEFAULT_OPTIONS)
        view = view_of(rows, people, references, options=options)
        record = record_of(version, apply_template(version.template, view), nhs_fields(options, view))
        self._remember(key, _Reads(supervisor_of(view.primary_assignment), tuple(read)))
        return record

    def drain(self, now_ms: int, *, op: str | None = None) -> list[dict[str, Any]]:
        """Map every dirty employee; the events of those whose record changed, in key order. `op` forces the
        operation (``r`` for a rebuild), else c / u / d."""
        settings: dict[str, tuple[TemplateVersion, NhsOptions]] = {}  # one tuple per trust, shared

        def settings_of(vpd: str) -> tuple[TemplateVersion, NhsOptions]:
            found = settings.get(vpd)
            if found is None:
                found = settings[vpd] = (self.template(vpd), self.options.get(vpd, DEFAULT_OPTIONS))
            return found

        for key in self._touched - self.dirty:
            if self._drained_with.get(key) != settings_of(key[0]):
                self.dirty.add(key)
        self._touched.clear()
        events = []
        for key in sorted(self.dirty):
            self._drained_with[key] = settings_of(key[0])
            record = self.map_employee(key)
            known = key in self._emitted
            previous = self._emitted.get(key)
            if known and previous == record:
                continue
            if record is None and (key in self.employees or (not known and key not in self._sources)):
                continue  # a state without a person yet, or nothing ever seen
            self._emitted[key] = record
            kind = "d" if record is None else ("u" if previous is not None else "c")
            events.append(mapped_change(
                key[0], key[1], previous, record, template_version=self.template(key[0]).version,
                op=op or kind, source=self._sources.get(key, Source()), now_ms=now_ms,
            ))
        self.dirty.clear()
        return events

    def gone(self, vpd: str) -> list[str]:
        """The trust's person ids whose state was read and is now deleted (a tombstone)."""
        return sorted(k[1] for k in self._sources if k[0] == vpd and k not in self.employees)

    def records(self, vpd: str) -> Iterable[tuple[str, dict[str, Any]]]:
        """Every employee of the trust with a person, mapped now: (person_id, record), by person id."""
        for key in sorted(k for k in self.employees if k[0] == vpd):
            record = self.map_employee(key)
            if record is not None:
                yield key[1], record
