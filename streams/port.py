"""The seam between the Faust shell and the pure domain logic (`streams.domain`).

The shell never imports the domain directly: it gets a `DomainPort`, a bundle of plain functions, from
`load_domain(module)`. The default module is `streams.domain`; `ESR_STREAMS_DOMAIN=<module>` selects
another one (the shell's tests and the bench can use `tests.doubles.domain`, a deliberately simple test
double with the same signatures, to measure the shell alone). The names looked up in the module:

    InputRecord(event, topic, partition, offset)   (the decoded record event: its payload is an
                         `esr.codec.TextRecord`, the non-null fields as canonical text)
    apply_employee_batch(state | None, records, reference, *, now_ms)
        -> outcome: .state (None: deleted), .changes, .tombstone (optional), .rejected (optional)
    apply_reference_batch(state | None, records, *, now_ms)
        -> outcome: as above + .changed_location_ids, .changed_organisation_ids, .previous, .fanout_source
    work_address_changes(state, vpd, changed_location_ids, changed_organisation_ids, reference, *, source,
                         now_ms, previous_locations, previous_organisations) -> list of change dicts
    absent_from_full_file(state, file_sha256, source, *, treat_as_delete, now_ms) -> outcome
    reference_absent_from_full_file(...)   same, for a reference entity (optional)
    complete_in_file(state) -> the file SHA-256 whose `absent_from_full_file` would find nothing to do with
                         the state, or None (optional: without it every state is decoded at the barrier)
    ChangeSource.of_event(control_event, topic=, partition=, offset=)
    encode_state / decode_state, encode_reference_state / decode_reference_state
    employee_snapshot(state) -> JSON-ready dict for esr.employees (optional: else encode_state's bytes)
    work_address_refs(state) -> (location ids, organisation ids) the state's work addresses go through, and
    organisations_at(vpd, organisation_ids, location_ids, reference) -> those at the locations (optional,
                         both: without them a location change is offered to every employee of the trust)

Change dicts are encoded with `esr.codec.Encoder("change-event")` unless the module exports
`encode_change` / `decode_change`.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

DEFAULT_DOMAIN = "streams.domain"
DOMAIN_ENV = "ESR_STREAMS_DOMAIN"

JSON_HEADERS: tuple[tuple[str, bytes], ...] = (("content-type", b"application/json"),)


@dataclass(frozen=True)
class DomainPort:
    name: str
    input_record: Callable[[dict[str, Any], str, int, int], Any]
    apply_employee_batch: Callable[..., Any]
    apply_reference_batch: Callable[..., Any]
    work_address_changes: Callable[..., list[dict[str, Any]]]
    absent_from_full_file: Callable[..., Any]
    reference_absent_from_full_file: Callable[..., Any] | None
    change_source: Callable[[Mapping[str, Any], str, int, int], Any]
    encode_state: Callable[[Any], bytes]
    decode_state: Callable[[bytes], Any]
    encode_reference_state: Callable[[Any], bytes]
    decode_reference_state: Callable[[bytes], Any]
    reference_entry: Callable[[Any], Mapping[str, Any] | None]
    employee_value: Callable[[Any], bytes]
    employee_headers: tuple[tuple[str, bytes], ...]
    encode_change: Callable[[Mapping[str, Any]], bytes]
    decode_change: Callable[[bytes], dict[str, Any]]
    #: headers sent with every change event (content type of the encoding)
    change_headers: tuple[tuple[str, bytes], ...] = ()
    #: narrow a location / organisation fan-out (`streams.places`); None: every employee of the trust
    work_address_refs: Callable[[Any], tuple[frozenset[str], frozenset[str]]] | None = None
    organisations_at: Callable[..., set[str]] | None = None
    #: the full file a state needs no reconciliation for (`EmployeesProcessor._full_file_completed`)
    complete_in_file: Callable[[Any], str | None] | None = None


def _reference_entry(state: Any) -> Mapping[str, Any] | None:
    """What a ReferenceView returns for a stored reference state: its current version, None if deleted."""
    if state is None or getattr(state, "deleted", False):
        return None
    current = getattr(state, "current", None)
    if callable(current):
        found = current()
        return found if isinstance(found, Mapping) else None
    return state if isinstance(state, Mapping) else None


def _avro_change_codec() -> tuple[Callable[[Mapping[str, Any]], bytes], Callable[[bytes], dict[str, Any]],
                                  tuple[tuple[str, bytes], ...]]:
    from esr.codec import Decoder, Encoder

    encoder = Encoder("change-event")
    decoder = Decoder("change-event")
    return encoder.encode, decoder.decode, tuple(encoder.headers)


def _json_default(value: Any) -> Any:
    """What the json module would make of it: a tuple is an array; anything else unknown, its text."""
    return list(value) if isinstance(value, tuple) else str(value)


#: orjson would write dates and dataclasses its own way: they go through `_json_default` as with json
_SNAPSHOT_OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS


def port_from_module(module: Any) -> DomainPort:
    """Bind the names of `module` (see the module docstring)."""
    encode_change = getattr(module, "encode_change", None)
    decode_change = getattr(module, "decode_change", None)
    change_headers: tuple[tuple[str, bytes], ...] = JSON_HEADERS
    if encode_change is None or decode_change is None:
        encode_change, decode_change, change_headers = _avro_change_codec()
    source_class = module.ChangeSource

    def change_source(event: Mapping[str, Any], topic: str, partition: int, offset: int) -> Any:
        return source_class.of_event(event, topic=topic, partition=partition, offset=offset)

    snapshot = getattr(module, "employee_snapshot", None)
    encode_state = module.encode_state
    if snapshot is not None:
        dumps = orjson.dumps

        def employee_value(state: Any) -> bytes:
            return dumps(snapshot(state), default=_json_default, option=_SNAPSHOT_OPTIONS)

        employee_headers = JSON_HEADERS
    else:
        employee_value, employee_headers = encode_state, ()

    return DomainPort(
        name=module.__name__,
        input_record=module.InputRecord,  # called once per record: the class itself, no wrapper
        apply_employee_batch=module.apply_employee_batch,
        apply_reference_batch=module.apply_reference_batch,
        work_address_changes=module.work_address_changes,
        absent_from_full_file=module.absent_from_full_file,
        reference_absent_from_full_file=getattr(module, "reference_absent_from_full_file", None),
        change_source=change_source,
        encode_state=encode_state,
        decode_state=module.decode_state,
        encode_reference_state=getattr(module, "encode_reference_state", encode_state),
        decode_reference_state=getattr(module, "decode_reference_state", module.decode_state),
        reference_entry=getattr(module, "reference_entry", _reference_entry),
        employee_value=employee_value,
        employee_headers=employee_headers,
        encode_change=encode_change,
        decode_change=decode_change,
        change_headers=change_headers,
        work_address_refs=getattr(module, "work_address_refs", None),
        organisations_at=getattr(module, "organisations_at", None),
        complete_in_file=getattr(module, "complete_in_file", None),
    )


def load_domain(name: str | None = None) -> DomainPort:
    """The domain module `name`, else `$ESR_STREAMS_DOMAIN`, else `streams.domain`."""
    module_name = name or os.environ.get(DOMAIN_ENV) or DEFAULT_DOMAIN
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ImportError(
            f"the stream processor's domain module {module_name!r} cannot be imported ({exc}); "
            f"set {DOMAIN_ENV} to choose another one"
        ) from exc
    return port_from_module(module)
