"""`esr replay` on the embedded broker with the real worker and sink: the dry run, re-emit end to end (the
database unchanged), the sink rewound, rebuild-state (tables rebuilt, nothing emitted) and the refusal while
a group has live members."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from click.testing import CliRunner, Result
from confluent_kafka.admin import AdminClient

from connectors.file_source.ledger import Ledger
from connectors.sink.sink import DEFAULT_GROUP
from esr.cli import main
from esr.codec import Decoder
from esr.config import Settings
from esr.generate import generate_files
from esr.kafka.reading import committed_offsets, read_to_end
from esr.kafka.topics import CHANGES, EMPLOYEES, RECORDS
from esr.pipeline import Pipeline
from esr.runtime.broker import EmbeddedBroker
from streams.app import APP_ID
from streams.replay import REPLAY_TOPIC
from streams.topics import CHANGELOGS
from tests.integration.test_pipeline import read_model

pytestmark = pytest.mark.integration

PARTITIONS = 3


@pytest.fixture
def files(tmp_path: Path) -> list[Path]:
    found = generate_files("999", 40, 3, 17, tmp_path / "files")
    assert len(found) == 4  # a full file and three change files
    return found


@pytest.fixture
def settings(broker: EmbeddedBroker, database_url: str, tmp_path: Path) -> Settings:
    with Ledger(database_url) as ledger:
        ledger.add_trust("999", "Test NHS Trust")
    return Settings(data_dir=tmp_path / "var", bootstrap_servers=broker.bootstrap_servers,
                    database_url=database_url, partitions=PARTITIONS)


@pytest.fixture
def pipeline(settings: Settings) -> Iterator[Pipeline]:
    with Pipeline.open(settings, str(settings.database_url), echo=lambda _: None) as running:
        yield running


def run(settings: Settings, paths: list[Path]) -> None:
    """Worker and sink up, `paths` ingested, everything in PostgreSQL, worker and sink stopped."""
    with Pipeline.open(settings, str(settings.database_url), echo=lambda _: None) as running:
        reports = running.ingest(paths)
        assert [r.status for r in reports] == ["published"] * len(paths)
        running.wait_until_caught_up(timeout=240)


def esr(settings: Settings, *args: str) -> Result:
    env = {"ESR_BOOTSTRAP_SERVERS": str(settings.bootstrap_servers), "ESR_DATABASE_URL": str(settings.database_url),
           "ESR_DATA_DIR": str(settings.data_dir), "ESR_PARTITIONS": str(PARTITIONS)}
    return CliRunner().invoke(main, ["replay", *args], env=env, catch_exceptions=False)


def total(result: Result) -> int:
    """The plan's total of messages."""
    [line] = [line for line in result.output.splitlines() if line.startswith("  total")]
    return int(line.split()[-1])


def config(settings: Settings) -> dict[str, Any]:
    return {"bootstrap.servers": settings.bootstrap_servers}


def _topics(settings: Settings) -> set[str]:
    return set(AdminClient(config(settings)).list_topics(timeout=10).topics)


def topic_events(settings: Settings, topic: str) -> list[Any]:
    return list(read_to_end(config(settings), topic, dict.fromkeys(range(PARTITIONS), 0)))


def change_events(settings: Settings, after: dict[int, int] | None = None) -> list[dict[str, Any]]:
    """The change events on esr.changes (only those beyond `after`: partition -> offset), each with its place."""
    decode = Decoder("change-event").decode
    found = []
    for message in topic_events(settings, CHANGES):
        if message.offset() >= (after or {}).get(message.partition(), 0):
            found.append({**decode(message.value()), "at": (message.partition(), message.offset())})
    return found


def ends(events: list[dict[str, Any]]) -> dict[int, int]:
    found = dict.fromkeys(range(PARTITIONS), 0)
    for event in events:
        partition, offset = event["at"]
        found[partition] = max(found[partition], offset + 1)
    return found


def change_event_count(settings: Settings) -> int:
    with psycopg.connect(str(settings.database_url)) as conn:
        row = conn.execute("SELECT count(*) FROM esr.change_event").fetchone()
    assert row is not None
    return int(row[0])


def live_state(settings: Settings) -> dict[tuple[str, bytes], dict[str, Any]]:
    """The tables as their changelogs hold them, without processing times (journal, last reconciliation's)."""
    live: dict[tuple[str, bytes], dict[str, Any] | None] = {}
    for changelog in CHANGELOGS:
        for message in topic_events(settings, changelog):
            value = message.value()
            state = None if value is None else json.loads(value)
            if state is not None:
                state.pop("journal", None)
                if state.get("reconciled"):
                    state["reconciled"][2] = None
            live[changelog, message.key()] = state
    return {key: state for key, state in live.items() if state is not None}


@pytest.mark.timeout(600)
def test_re_emit_from_a_file_sends_the_same_events_again_and_changes_nothing(
    settings: Settings, files: list[Path]
) -> None:
    run(settings, files)
    before, recorded = read_model(str(settings.database_url)), change_event_count(settings)
    first_pass = change_events(settings)
    committed = committed_offsets(config(settings), APP_ID, RECORDS, PARTITIONS)

    dry = esr(settings, "--from-sequence", "2", "--vpd", "999")
    assert dry.exit_code == 0, dry.output
    assert f"re-emit for consumer group esr-streams, from {files[1].name} (trust 999, sequence 2)" in dry.output
    assert "topic          partition        from          to    messages" in dry.output
    assert sum(line.startswith("  esr.records") for line in dry.output.splitlines()) == PARTITIONS
    assert "dry run: nothing changed" in dry.output
    assert committed_offsets(config(settings), APP_ID, RECORDS, PARTITIONS) == committed
    assert REPLAY_TOPIC not in _topics(settings)

    done = esr(settings, "--from-sequence", "2", "--vpd", "999", "--execute")
    assert done.exit_code == 0, done.output
    assert "table key(s) cleared from the changelogs" in done.output
    assert set(committed_offsets(config(settings), APP_ID, RECORDS, PARTITIONS).values()) == {0}
    assert live_state(settings) == {}

    run(settings, [])
    assert read_model(str(settings.database_url)) == before
    assert change_event_count(settings) == recorded
    again = change_events(settings, after=ends(first_pass))
    original = {event["event_id"] for event in first_pass}
    later_files = {event["event_id"] for event in first_pass if (event["source"]["sequence"] or 0) >= 2}
    re_emitted = {event["event_id"] for event in again}
    assert later_files  # the change files changed something
    assert later_files <= re_emitted <= original  # every event of files 2-4 again, with the same ids
    assert len(again) == len(re_emitted)  # each once
    assert not any(event["event_type"] == "NEW_STARTER" and event["source"]["sequence"] == 1 for event in again)

    # the sink, rewound to sequence 3, reads those events again and changes nothing
    sink = esr(settings, "--group", "sink", "--from-sequence", "3", "--vpd", "999", "--execute")
    assert sink.exit_code == 0, sink.output
    assert "consumer group esr-sink, from" in sink.output
    with psycopg.connect(str(settings.database_url)) as conn:
        stored: dict[int, int] = dict(conn.execute(
            "SELECT partition, next_offset FROM esr.sink_offset WHERE consumer_group = %s", (DEFAULT_GROUP,)
        ).fetchall())
    events = change_events(settings)
    for partition in range(PARTITIONS):  # back to the first event of that file, or not moved if it was before
        of_file = [e["at"][1] for e in events if e["at"][0] == partition and e["source"]["sequence"] == 3]
        if of_file:
            assert stored[partition] == min(of_file)
    assert any(stored[p] < ends(events)[p] for p in range(PARTITIONS))
    run(settings, [])
    assert read_model(str(settings.database_url)) == before
    assert change_event_count(settings) == recorded


@pytest.mark.timeout(600)
def test_rebuild_state_rebuilds_the_tables_and_emits_nothing(settings: Settings, files: list[Path]) -> None:
    run(settings, files)
    tables = live_state(settings)
    assert tables
    changes, employees = len(topic_events(settings, CHANGES)), len(topic_events(settings, EMPLOYEES))

    refused = esr(settings, "--from-sequence", "2", "--vpd", "999", "--mode", "rebuild-state")
    assert refused.exit_code == 1
    assert "rebuild-state rebuilds the tables from every record" in refused.output

    done = esr(settings, "--from-beginning", "--mode", "rebuild-state", "--execute")
    assert done.exit_code == 0, done.output
    assert "rebuild-state for consumer group esr-streams, from the beginning" in done.output
    assert live_state(settings) == {}

    run(settings, [])
    assert live_state(settings) == tables
    assert len(topic_events(settings, CHANGES)) == changes  # nothing emitted
    assert len(topic_events(settings, EMPLOYEES)) == employees


@pytest.mark.timeout(300)
def test_refused_while_the_groups_have_live_members(settings: Settings, files: list[Path],
                                                   pipeline: Pipeline) -> None:
    pipeline.ingest(files[:1])
    pipeline.wait_until_caught_up(timeout=120)
    committed = committed_offsets(config(settings), APP_ID, RECORDS, PARTITIONS)

    refused = esr(settings, "--from-beginning", "--execute")
    assert refused.exit_code == 1
    assert "consumer group esr-streams has active members" in refused.output
    assert "stop every process of the group first" in refused.output
    assert committed_offsets(config(settings), APP_ID, RECORDS, PARTITIONS) == committed
    assert REPLAY_TOPIC not in _topics(settings)
    assert live_state(settings)

    sink = esr(settings, "--group", "sink", "--from-beginning", "--execute")
    assert sink.exit_code == 1
    assert "consumer group esr-sink has active members" in sink.output

    every = esr(settings, "--from-timestamp", "2000-01-01T00:00:00")  # dry runs need no idle group
    assert every.exit_code == 0, every.output
    assert total(every) == len(topic_events(settings, RECORDS))
    nothing = esr(settings, "--from-timestamp", "2999-01-01T00:00:00+00:00")
    assert nothing.exit_code == 0, nothing.output
    assert total(nothing) == 0

    unknown = esr(settings, "--from-file", "GO_999_EXP_GOC_20990101_00000099.DAT")
    assert unknown.exit_code == 1
    assert "no file named GO_999_EXP_GOC_20990101_00000099.DAT in the ingest ledger" in unknown.output
