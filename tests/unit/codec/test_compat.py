"""Every committed version can follow the earlier ones under its subject's mode, and the checker does
catch what breaks compatibility."""

from __future__ import annotations

import copy
import io
from collections.abc import Callable
from typing import Any

import pytest
from fastavro import parse_schema, schemaless_reader

from esr.codec.compat import Compatibility, incompatibilities, resolution_problem, sample_data
from esr.codec.framing import confluent_header
from esr.codec.schemas import SUBJECTS, latest, load_versions
from esr.codec.serde import Decoder, Registry
from esr.codec.writer import compile_writer


@pytest.mark.parametrize("name", list(SUBJECTS))
def test_every_version_follows_all_earlier_ones(name: str) -> None:
    versions = load_versions(name)
    mode = SUBJECTS[name].compatibility
    for n in range(1, len(versions) + 1):
        assert incompatibilities(versions[n - 1], versions[: n - 1], mode) == [], f"{name} v{n}"


def test_modes() -> None:
    assert SUBJECTS["record-event"].compatibility is Compatibility.BACKWARD_TRANSITIVE
    assert SUBJECTS["control-event"].compatibility is Compatibility.FULL_TRANSITIVE
    assert Compatibility.FULL_TRANSITIVE.backward
    assert Compatibility.FULL_TRANSITIVE.forward
    assert Compatibility.BACKWARD.backward
    assert not Compatibility.BACKWARD.forward
    assert Compatibility.FORWARD.forward
    assert not Compatibility.FORWARD.backward
    assert not Compatibility.FULL.transitive


def _fields(schema: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {f["name"]: f for f in schema["fields"]}


def _evolve(name: str) -> dict[str, Any]:
    return copy.deepcopy(latest(name))


def test_sample_data_takes_every_payload_branch_and_symbol() -> None:
    data = sample_data(latest("record-event"))
    payload_types = {d["payload"][0] for d in data if d["payload"] is not None}
    assert len(payload_types) == 9
    assert {d["entity_type"] for d in data} >= {"LOCATION", "COSTING"}
    assert any(d["payload"] is None for d in data)
    persons = [d["payload"][1] for d in data if d["payload"] and d["payload"][0] == "nhs.esr.Person"]
    assert {p["hire_date"] is None for p in persons} == {True, False}


def test_a_new_field_without_default_is_caught() -> None:
    new = _evolve("control-event")
    new["fields"].append({"name": "operator", "type": "string"})
    problems = incompatibilities(new, load_versions("control-event"), Compatibility.FULL_TRANSITIVE)
    assert problems
    assert "cannot be read with the new schema" in problems[0]
    assert "operator" in problems[0]


def test_a_new_field_with_default_is_compatible_both_ways() -> None:
    new = _evolve("control-event")
    new["fields"].append({"name": "operator", "type": ["null", "string"], "default": None})
    assert incompatibilities(new, load_versions("control-event"), Compatibility.FULL_TRANSITIVE) == []


def test_a_removed_field_without_default_breaks_forward_only() -> None:
    new = _evolve("record-event")
    new["fields"] = [f for f in new["fields"] if f["name"] != "vpd"]
    versions = load_versions("record-event")
    assert incompatibilities(new, versions, Compatibility.BACKWARD_TRANSITIVE) == []
    forward = incompatibilities(new, versions, Compatibility.FORWARD_TRANSITIVE)
    assert forward
    assert "cannot be read with v1" in forward[0]


def test_a_removed_enum_symbol_is_caught_where_no_default_saves_it() -> None:
    old = latest("record-event")
    new = _evolve("record-event")
    _fields(new)["entity_type"]["type"]["symbols"].remove("COSTING")
    assert incompatibilities(new, [old], Compatibility.BACKWARD)
    control = _evolve("control-event")
    _fields(control)["event_type"]["type"]["symbols"].remove("FILE_REJECTED")  # readers fall back to UNKNOWN
    assert incompatibilities(control, [latest("control-event")], Compatibility.BACKWARD) == []


def test_a_payload_change_deep_in_one_branch_is_caught() -> None:
    new = _evolve("record-event")
    costing = _fields(new)["payload"]["type"][-1]
    assert costing["name"] == "Costing"
    _fields(costing)["element_number"]["type"] = ["null", "string"]  # long -> string: no promotion
    problems = incompatibilities(new, load_versions("record-event"), Compatibility.BACKWARD_TRANSITIVE)
    assert problems, "the Costing branch must be exercised by the sample data"


def test_a_dropped_union_branch_is_caught() -> None:
    new = _evolve("record-event")
    _fields(new)["payload"]["type"].pop()  # no Costing any more
    assert resolution_problem(latest("record-event"), new) is not None


def test_transitive_checks_every_version_plain_checks_the_last() -> None:
    v1 = latest("control-event")
    v2 = copy.deepcopy(v1)
    v2["fields"] = [f for f in v2["fields"] if f["name"] != "message"]
    v3 = copy.deepcopy(v2)  # re-adds "message" as a long: fine against v2, not against v1
    v3["fields"].append({"name": "message", "type": ["null", "long"], "default": None})
    assert incompatibilities(v3, [v1, v2], Compatibility.BACKWARD) == []
    problems = incompatibilities(v3, [v1, v2], Compatibility.BACKWARD_TRANSITIVE)
    assert len(problems) == 1
    assert "v1" in problems[0]


def test_registry_path_reads_every_version_with_the_latest(make_registry: Callable[[str], Registry]) -> None:
    """The same versions through a mock:// registry: registered in order, written with each, read by
    id with the latest schema.

    confluent-kafka 2.16.1's MockSchemaRegistryClient does not implement compatibility levels
    (`set_compatibility` / `test_compatibility` make HTTP calls that fail on mock://, and it registers
    incompatible schemas silently), so registry-side enforcement can only be tested on a real registry;
    `incompatibilities` is the gate either way.
    """
    registry = make_registry("mock://compat")
    for name, subject in SUBJECTS.items():
        decoder = Decoder(name, registry=registry)
        reader = parse_schema(latest(name))
        for schema in load_versions(name):
            schema_id = registry.id_for(subject.registry_subject, schema)
            write = compile_writer(schema, confluent_header(schema_id))
            for datum in sample_data(schema):
                data = write(datum)
                expected = schemaless_reader(io.BytesIO(data[5:]), parse_schema(schema), reader)
                assert decoder.decode(data) == expected
