"""Trust profiles reach a running worker through esr.trust-profiles: a full file's absence is reported or
deleted as the trust's profile says at the time the file is reconciled."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from connectors.file_source.ledger import Ledger
from esr.cli import main
from esr.config import Settings
from esr.kafka.config import client_config, producer_config
from esr.kafka.profiles import ProfilePublisher
from esr.kafka.topics import TRUST_PROFILES
from esr.profiles import FullFileAbsence, nhs_options_from_dict, nhs_options_to_dict, profile_from_json
from esr.runtime.broker import EmbeddedBroker
from streams.topics import ensure_stream_topics
from streams.worker import WorkerProcess
from tests.esr_files import sample_body, write_esr_file
from tests.integration.streams.conftest import PARTITIONS, VPD, messages, publish_files, wait_processed, workers
from tests.integration.streams.test_worker import _changes

pytestmark = pytest.mark.integration


def full_file(directory: Path, sequence: int, people: list[int]) -> Path:
    """A full file of the format reference's location, organisation and position and `people` (1, 2, 3: person
    60000n with assignment 70000n)."""
    body = sample_body()
    reference = [line for line in body if line[:3] in ("LCA", "ORA", "POA")]
    person = next(line for line in body if line.startswith("PRA"))
    assignment = next(line for line in body if line.startswith("ASA"))
    lines = list(reference)
    for n in people:
        for line in (person, assignment):
            lines.append(line.replace("600001", f"60000{n}").replace("700001", f"70000{n}")
                         .replace("20001234", f"2000123{n}"))
    return write_esr_file(directory, lines, vpd=VPD, sequence=sequence, extract="F",
                          date=dt.date(2024, 3, sequence))


def wait_for_log(worker: WorkerProcess, text: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while text not in worker.log_text():
        assert worker.alive(), worker.log_tail()
        assert time.monotonic() < deadline, f"{text!r} not in the worker's log:\n{worker.log_tail()}"
        time.sleep(0.1)


def test_absence_is_reported_or_deleted_as_the_profile_changed_while_the_worker_runs(
        broker: EmbeddedBroker, database_url: str, tmp_path: Path) -> None:
    bootstrap = broker.bootstrap_servers
    settings = Settings(partitions=PARTITIONS)
    ensure_stream_topics(client_config(settings, bootstrap), PARTITIONS)
    publisher = ProfilePublisher(producer_config(settings, bootstrap))
    files = [full_file(tmp_path, 1, [1, 2, 3]), full_file(tmp_path, 2, [1, 3]), full_file(tmp_path, 3, [1])]
    with Ledger(database_url, on_profile_change=publisher) as ledger:
        ledger.add_trust(VPD, "Test NHS Trust")  # published: the default, report
    with workers(bootstrap, tmp_path / "workers") as group:
        wait_for_log(group[0], "trust profiles read: 1 trust(s)")
        records = publish_files(bootstrap, database_url, files[:2])
        wait_processed(group, records)

        with Ledger(database_url, on_profile_change=publisher) as ledger:
            stored = ledger.trust_profile(VPD)
            assert stored is not None
            options = nhs_options_to_dict(nhs_options_from_dict(stored[1] or {}))
            ledger.update_trust(VPD, nhs_options={**options, "full_file_absence": "delete"})
        wait_for_log(group[0], f"trust profile {VPD}: full_file_absence=delete")

        records += publish_files(bootstrap, database_url, files[2:])
        wait_processed(group, records)
        changes = [event for _, _, event, _ in _changes(bootstrap)]

    def of(path: Path) -> set[tuple[str, str, str | None]]:
        return {(e["event_type"], e["entity_type"], e["person_id"]) for e in changes
                if e["source"]["file_name"] == path.name}

    # the second file, under "report": person 2 and their assignment reported absent, nothing deleted
    assert of(files[1]) == {
        ("ABSENT_FROM_FULL_FILE", "PERSON", "600002"), ("ABSENT_FROM_FULL_FILE", "ASSIGNMENT", "600002")}
    # the third, under "delete": persons 2 and 3 deleted, nothing merely reported
    assert of(files[2]) == {("PERSON_DELETED", "PERSON", "600002"), ("PERSON_DELETED", "PERSON", "600003")}

    # the topic holds the profile as it was each time it was saved (compacted: the last one counts)
    values = [m.value() for m in messages(bootstrap, TRUST_PROFILES, idle=0.5)]
    profiles = [profile_from_json(value) for value in values if value is not None]
    assert [p.nhs_options.full_file_absence for p in profiles] == [FullFileAbsence.REPORT, FullFileAbsence.DELETE]
    assert all(p.vpd == VPD for p in profiles)


def test_the_ledger_tells_its_listener_of_each_profile_it_adds_or_changes(database_url: str) -> None:
    published: list[str] = []
    with Ledger(database_url, on_profile_change=lambda profile: published.append(profile.vpd)) as ledger:
        ledger.update_trust("ABC", name="Nobody")
        ledger.add_trust("ABD", "Somebody")
        ledger.update_trust("ABD", inbox_path="/srv/abd")
        assert ledger.profile("ABD") is not None
        assert [p.vpd for p in ledger.profiles()] == ["ABD"]
    assert published == ["ABD", "ABD"]


def test_esr_trust_add_and_set_publish_to_a_running_broker(
        broker: EmbeddedBroker, database_url: str, tmp_path: Path) -> None:
    bootstrap = broker.bootstrap_servers
    env = {"ESR_DATABASE_URL": database_url, "ESR_DATA_DIR": str(tmp_path / "var"), "ESR_BOOTSTRAP_SERVERS": bootstrap}

    def esr(*args: str, environment: dict[str, str] = env) -> Result:
        result = CliRunner().invoke(main, list(args), env=environment, catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return result

    # no topics on the broker yet: saved, with a warning that running workers do not know
    assert "does not exist (yet)" in esr("trust", "add", "--vpd", "998", "--name", "Early Trust").output
    ensure_stream_topics(client_config(Settings(), bootstrap), PARTITIONS)
    esr("trust", "add", "--vpd", VPD, "--name", "Test NHS Trust")
    esr("trust", "set", "--vpd", VPD, "--option", "full_file_absence=delete")
    # without a broker (none configured, none started in the background) nothing is published, nothing fails
    esr("trust", "set", "--vpd", VPD, "--name", "Renamed", environment={**env, "ESR_BOOTSTRAP_SERVERS": ""})
    published = [profile_from_json(m.value() or b"") for m in messages(bootstrap, TRUST_PROFILES, idle=0.5)]
    assert [(p.vpd, p.name, p.nhs_options.full_file_absence) for p in published] == [
        (VPD, "Test NHS Trust", FullFileAbsence.REPORT), (VPD, "Test NHS Trust", FullFileAbsence.DELETE)]
    assert "full_file_absence = delete" in esr("trust", "show", "--vpd", VPD).output
