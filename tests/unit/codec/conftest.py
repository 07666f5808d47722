"""Shared fixtures: the parsed sample file and a schema directory tests may add versions to."""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

import esr.codec.schemas as schemas_module
from esr.codec.events import Provenance, RecordEvent, record_event
from esr.codec.serde import Registry
from esr.format.lines import Delete, Record
from esr.format.reader import EsrFile
from schemas import SCHEMA_DIR

SAMPLE = Path(__file__).parents[2] / "data" / "GO_999_EXP_GOC_20240301_00000042.DAT"
NOW = dt.datetime(2024, 3, 1, 7, 30, 15, 123000, tzinfo=dt.UTC)
OWNER_OF_DELETED = "600001"  # the sample's ASD row: the caller knows the assignment's person


@pytest.fixture(scope="session")
def sample() -> tuple[Provenance, list[tuple[int, Record | Delete]]]:
    with EsrFile(SAMPLE) as esr_file:
        scan = esr_file.open()
        lines = []
        for number, line in esr_file.records():
            assert isinstance(line, Record | Delete), line
            lines.append((number, line))
    return Provenance.from_scan(scan), lines


@pytest.fixture(scope="session")
def sample_events(sample: tuple[Provenance, list[tuple[int, Record | Delete]]]) -> list[RecordEvent]:
    provenance, lines = sample
    return [
        record_event(line, provenance, n, OWNER_OF_DELETED if isinstance(line, Delete) else None, ingested_at=NOW)
        for n, line in lines
    ]


def require_registry_client() -> None:
    """The registry client needs confluent-kafka's [schemaregistry] extra: skip, with the reason, without it."""
    pytest.importorskip(
        "confluent_kafka.schema_registry", reason="the registry tests need confluent-kafka[schemaregistry]"
    )


@pytest.fixture
def make_registry() -> Callable[[str], Registry]:
    require_registry_client()
    return Registry.from_url


@pytest.fixture
def schema_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the committed schemas that the codec reads instead of the real ones."""
    copy = tmp_path / "schemas"
    shutil.copytree(SCHEMA_DIR, copy, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    monkeypatch.setattr(schemas_module, "SCHEMA_DIR", copy)
    return copy
