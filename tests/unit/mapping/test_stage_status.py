"""The mapping stage's status file: what `esr run` reads to know the stage (a child process) has caught up."""

from __future__ import annotations

from pathlib import Path

from esr.kafka.topics import EMPLOYEES
from streams.mapping_stage import read_status, write_status
from streams.topics import REFERENCES_CHANGELOG


def test_the_positions_come_back_as_written(tmp_path: Path) -> None:
    path = tmp_path / "status.json"
    positions = {EMPLOYEES: {0: 12, 1: 0}, REFERENCES_CHANGELOG: {0: 3}}
    write_status(path, True, positions)
    assert read_status(path) == (True, positions)


def test_a_later_status_replaces_the_earlier_whole(tmp_path: Path) -> None:
    path = tmp_path / "status.json"
    write_status(path, False, {EMPLOYEES: {0: 5, 1: 7}})
    write_status(path, True, {EMPLOYEES: {0: 9}})
    assert read_status(path) == (True, {EMPLOYEES: {0: 9}})
    assert [p.name for p in tmp_path.iterdir()] == ["status.json"]  # the partial file was renamed, not left


def test_no_status_file_yet_is_no_status(tmp_path: Path) -> None:
    assert read_status(tmp_path / "status.json") is None
