"""The schemas are generated from the layouts and the committed files follow them."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

from esr.codec import schemas
from esr.codec.__main__ import main
from esr.codec.schemas import (
    CONTROL_EVENT,
    RECORD_EVENT,
    SUBJECTS,
    check_latest,
    dumps,
    generate,
    latest,
    load_versions,
    version_paths,
    write_latest,
)
from esr.format.layouts import LAYOUTS, FieldType


@pytest.mark.parametrize("name", list(SUBJECTS))
def test_generated_schema_is_the_latest_committed_version(name: str) -> None:
    assert check_latest(name) is None
    assert generate(name) == latest(name)


@pytest.mark.parametrize("name", list(SUBJECTS))
def test_committed_files_are_as_written(name: str) -> None:
    """Files are the canonical rendering, so `write` never rewrites a current file with other bytes."""
    for path, schema in zip(version_paths(name), load_versions(name), strict=True):
        assert path.read_text(encoding="utf-8") == dumps(schema)


def test_subjects() -> None:
    assert RECORD_EVENT.topic == "esr.records"
    assert RECORD_EVENT.registry_subject == "esr.records-value"
    assert CONTROL_EVENT.topic == "esr.control"
    assert next(p.name for p in version_paths("record-event")) == "v1.avsc"
    with pytest.raises(KeyError, match="unknown schema subject"):
        latest("nope")


def _fields(schema: dict[str, Any]) -> dict[str, Any]:
    return {f["name"]: f for f in schema["fields"]}


def test_payload_types_follow_the_layouts() -> None:
    payload = _fields(generate("record-event"))["payload"]
    assert payload["default"] is None
    branches = payload["type"]
    assert branches[0] == "null"
    assert [b["name"] for b in branches[1:]] == [layout.avro_name for layout in LAYOUTS]
    for layout, branch in zip(LAYOUTS, branches[1:], strict=True):
        fields = _fields(branch)
        assert list(fields) == [f.name for f in layout.data_fields]  # record_code excluded
        for f in layout.data_fields:
            avro = fields[f.name]
            if f.name in (layout.key_field, layout.owner_field):
                assert avro == {"name": f.name, "type": "string"}
                continue
            assert avro["default"] is None
            null, value = avro["type"]
            assert null == "null"
            expected: Any = {
                FieldType.ID: "string",
                FieldType.TEXT: "string",
                FieldType.INT: "long",
                FieldType.DATE: {"type": "int", "logicalType": "date"},
                FieldType.TIMESTAMP: {"type": "long", "logicalType": "local-timestamp-millis"},
                FieldType.DECIMAL: {
                    "type": "bytes", "logicalType": "decimal", "precision": f.precision, "scale": f.scale,
                },
            }[f.type]
            assert value == expected, f"{layout.code}.{f.name}"


def test_envelopes() -> None:
    record = _fields(generate("record-event"))
    assert list(record) == [
        "record_id", "vpd", "record_code", "entity_type", "action", "entity_id", "person_id", "payload",
        "extra_fields", "issues", "source", "ingested_at",
    ]
    assert record["action"]["type"]["symbols"] == ["UPSERT", "DELETE"]
    assert record["ingested_at"]["type"] == {"type": "long", "logicalType": "timestamp-millis"}
    assert [f["name"] for f in record["source"]["type"]["fields"]] == [
        "file_name", "file_sha256", "line_no", "sequence", "extract_type", "extract_date", "run_date",
        "previous_run_date",
    ]
    control = _fields(generate("control-event"))
    assert all("default" in f for f in control.values()), "FULL_TRANSITIVE needs a default on every field"
    assert control["event_type"]["type"]["default"] == "UNKNOWN"


def _add_field(schema: dict[str, Any], field: dict[str, Any]) -> dict[str, Any]:
    changed: dict[str, Any] = json.loads(json.dumps(schema))
    changed["fields"].append(field)
    return changed


def _patch_generator(monkeypatch: pytest.MonkeyPatch, name: str, schema: dict[str, Any]) -> None:
    subject = dataclasses.replace(SUBJECTS[name], generate=lambda: schema)
    monkeypatch.setitem(schemas.SUBJECTS, name, subject)


def test_a_changed_layout_forces_a_new_version(schema_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert write_latest("control-event") is None  # current: nothing to write
    changed = _add_field(generate("control-event"), {"name": "note", "type": "string", "default": ""})
    _patch_generator(monkeypatch, "control-event", changed)
    assert "add the next version" in (check_latest("control-event") or "")
    assert main(["check", "control-event"]) == 1
    assert write_latest("control-event") == schema_dir / "control-event" / "v2.avsc"
    assert check_latest("control-event") is None
    assert len(load_versions("control-event")) == 2
    # an unreleased version may be rewritten in place
    again = _add_field(changed, {"name": "more", "type": "long", "default": 0})
    _patch_generator(monkeypatch, "control-event", again)
    assert main(["write", "--replace", "control-event"]) == 0
    assert [p.name for p in version_paths("control-event")] == ["v1.avsc", "v2.avsc"]
    assert latest("control-event") == again


@pytest.mark.usefixtures("schema_dir")
def test_write_refuses_an_incompatible_version(monkeypatch: pytest.MonkeyPatch) -> None:
    broken = _add_field(generate("control-event"), {"name": "note", "type": "string"})  # no default
    _patch_generator(monkeypatch, "control-event", broken)
    with pytest.raises(ValueError, match="not FULL_TRANSITIVE compatible"):
        write_latest("control-event")
    assert main(["write", "control-event"]) == 1
    assert [p.name for p in version_paths("control-event")] == ["v1.avsc"]


def test_a_gap_in_version_numbers_is_an_error(schema_dir: Path) -> None:
    (schema_dir / "record-event" / "v3.avsc").write_text("{}")
    with pytest.raises(ValueError, match=r"not numbered 1\.\.N"):
        load_versions("record-event")
    (schema_dir / "record-event" / "v3.avsc").rename(schema_dir / "record-event" / "latest.avsc")
    with pytest.raises(ValueError, match=r"v<N>\.avsc"):
        load_versions("record-event")
