"""`esr run`'s pipeline end to end: broker, worker, sink; and state rebuilt across runs of the embedded broker."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest

from connectors.file_source.ledger import Ledger
from esr.config import Settings
from esr.generate import generate_files
from esr.pipeline import Pipeline, PipelineError

pytestmark = pytest.mark.integration

COMPARED = {
    "person": "person_id, employee_number, last_name, first_name, termination_date, deleted_at IS NULL",
    "assignment": "assignment_id, person_id, assignment_number, is_primary, assignment_status, deleted_at IS NULL",
    "home_address": "address_id, person_id, postcode, deleted_at IS NULL",
    "vehicle": "vehicle_allocation_id, person_id, registration, engine_cc, deleted_at IS NULL",
    "location": "location_id, postcode, deleted_at IS NULL",
    "employee": "person_id, payroll_number, surname, line_manager, work_location, template_version, last_event_id,"
                " deleted_at IS NULL",
}


def read_model(url: str) -> dict[str, Any]:
    with psycopg.connect(url) as conn:
        state: dict[str, Any] = {
            table: sorted(conn.execute(f"SELECT {columns} FROM esr.{table}").fetchall())
            for table, columns in COMPARED.items()
        }
        state["events"] = sorted(conn.execute(
            "SELECT event_id, event_type, person_id, entity_type, entity_id FROM esr.change_event"
        ).fetchall())
    return state


def run(settings: Settings, url: str, paths: list[Path]) -> None:
    with Pipeline.open(settings, url, echo=lambda _: None) as pipeline:
        pipeline.rebuild_state()
        reports = pipeline.ingest(paths)
        assert [r.status for r in reports] == ["published"] * len(paths)
        pipeline.wait_until_caught_up(timeout=240)


def register(url: str) -> None:
    with Ledger(url) as ledger:
        ledger.add_trust("999", "Test NHS Trust")


@pytest.mark.timeout(600)
def test_a_restarted_embedded_broker_yields_the_same_events_as_an_uninterrupted_run(
    make_database: Callable[[], str], tmp_path: Path
) -> None:
    files = generate_files("999", 60, 3, 11, tmp_path / "files")
    assert len(files) == 4

    uninterrupted_url = make_database()
    register(uninterrupted_url)
    run(Settings(data_dir=tmp_path / "a", partitions=3), uninterrupted_url, files)
    expected = read_model(uninterrupted_url)

    restarted_url = make_database()
    register(restarted_url)
    settings = Settings(data_dir=tmp_path / "b", partitions=3)
    run(settings, restarted_url, files[:2])  # first night: full file and one change file
    run(settings, restarted_url, files[2:])  # a new broker: state rebuilt from the archive first
    actual = read_model(restarted_url)

    for table in expected:
        missing = sorted(set(expected[table]) - set(actual[table]))
        extra = sorted(set(actual[table]) - set(expected[table]))
        assert (missing, extra) == ([], []), f"{table}: missing {missing[:5]}, extra {extra[:5]}"
    assert actual == expected
    types = Counter(event_type for _, event_type, *_ in actual["events"])
    people_in_full_file = sum(1 for line in files[0].read_bytes().splitlines() if line.startswith(b"PRA~"))
    assert types["NEW_STARTER"] >= people_in_full_file  # the change files hire a few more
    starters = [person for _, event_type, person, *_ in actual["events"] if event_type == "NEW_STARTER"]
    assert len(starters) == len(set(starters))  # nobody became a new starter twice
    assert len(actual["person"]) >= people_in_full_file


@pytest.mark.timeout(300)
def test_a_rerun_with_nothing_new_changes_nothing(database_url: str, tmp_path: Path) -> None:
    files = generate_files("999", 30, 1, 5, tmp_path / "files")
    register(database_url)
    settings = Settings(data_dir=tmp_path / "var", partitions=2)
    run(settings, database_url, files)
    before = read_model(database_url)
    with Pipeline.open(settings, database_url, echo=lambda _: None) as pipeline:
        assert pipeline.rebuild_state() == 2
        reports = pipeline.ingest(files)
        assert [r.status for r in reports] == ["duplicate", "duplicate"]
        pipeline.wait_until_caught_up(timeout=120)
    assert read_model(database_url) == before


@pytest.mark.timeout(300)
def test_a_mapping_stage_that_dies_stops_the_wait_with_its_log(database_url: str, tmp_path: Path) -> None:
    [full] = generate_files("999", 20, 0, 3, tmp_path / "files")
    register(database_url)
    with Pipeline.open(Settings(data_dir=tmp_path / "var", partitions=2), database_url,
                       echo=lambda _: None) as pipeline:
        mapping = pipeline.mapping
        assert mapping is not None
        assert mapping.process is not None
        mapping.process.kill()
        mapping.process.wait()
        assert [r.status for r in pipeline.ingest([full])] == ["published"]
        with pytest.raises(PipelineError, match="the mapping stage exited; its log:"):
            pipeline.wait_until_caught_up(timeout=120)
