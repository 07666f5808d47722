"""Operations under faults, through the whole pipeline (issue 7): the sink process killed mid-batch, and an
inbox that receives its files out of sequence and one of them twice. Each ends with the read model of an
undisturbed run and nothing lost."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner, Result

from connectors.file_source.ledger import Ledger
from connectors.sink.database import APPLICATION_NAME
from esr.cli import main
from esr.codec import Decoder
from esr.config import Settings
from esr.generate import generate_files
from esr.kafka.topics import CHANGES
from esr.pipeline import Pipeline
from tests.integration.sink.conftest import read_model, wait_for
from tests.integration.test_pipeline_faults import IGNORED, change_events, differing_columns, register, undisturbed
from tests.kafka_helpers import consume_all

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
PARTITIONS = 3


def assert_same_read_model(url: str, expected: dict[str, list[dict[str, object]]]) -> None:
    actual = read_model(url, ignore=IGNORED)
    for table, rows in expected.items():
        assert len(actual[table]) == len(rows), f"{table}: {len(actual[table])} rows, undisturbed {len(rows)}"
    assert differing_columns(actual, expected) == {}
    assert actual == expected


# -- the sink killed mid-batch -----------------------------------------------------------------------


@contextmanager
def sink_process(bootstrap: str, url: str, data_dir: Path, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """`python -m connectors.sink` in small batches (many transactions to be killed in); SIGTERM on exit. The
    pipeline's own employee sink thread writes esr.employee, so this one writes only esr.changes."""
    env = {**os.environ, "ESR_BOOTSTRAP_SERVERS": bootstrap, "ESR_DATABASE_URL": url,
           "ESR_DATA_DIR": str(data_dir), "ESR_PARTITIONS": str(PARTITIONS)}
    env.pop("ESR_METRICS_PORT", None)
    with log.open("ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "connectors.sink", "--batch-size", "50", "--batch-wait", "0.05", "--no-employees"],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
        )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)


def writing(url: str) -> bool:
    """A sink transaction that has written rows and not committed yet is open in the database."""
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND application_name = %s"
            " AND backend_xid IS NOT NULL AND pid <> pg_backend_pid()", (APPLICATION_NAME,)
        ).fetchone()
    return bool(row and row[0])


def alive(process: subprocess.Popen[bytes], log: Path) -> bool:
    assert process.poll() is None, f"the sink exited ({process.returncode}):\n{log.read_text()[-3000:]}"
    return True


@pytest.mark.timeout(600)
def test_the_sink_killed_mid_batch_and_restarted_ends_as_an_undisturbed_run(
    make_database: Callable[[], str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = generate_files("999", 150, 1, 11, tmp_path / "files")
    expected = undisturbed(make_database(), tmp_path / "undisturbed", files)
    total = len(expected["change_event"])

    url = make_database()
    register(url)
    # the sink runs as a process of its own, to be killed; the pipeline keeps its worker, mapping stage and
    # employee sink, and waits on the sink's offsets in PostgreSQL as ever
    monkeypatch.setattr(Pipeline, "_run_sink", lambda _pipeline: None)
    log = tmp_path / "sink.log"
    with Pipeline.open(Settings(data_dir=tmp_path / "faulted", partitions=PARTITIONS), url,
                       echo=lambda _: None) as pipeline:
        bootstrap = pipeline.bootstrap_servers
        assert [r.status for r in pipeline.ingest(files)] == ["published"] * len(files)
        with sink_process(bootstrap, url, tmp_path / "sink", log) as victim:
            wait_for(lambda: alive(victim, log) and change_events(url) > 0 and writing(url), 120,
                     "the sink to be writing a batch after its first commits")
            victim.send_signal(signal.SIGKILL)
            assert victim.wait(30) == -signal.SIGKILL
        # PostgreSQL rolls the killed sink's open transaction back once it sees the connection gone
        wait_for(lambda: not writing(url), 60, "the killed sink's transaction to be rolled back")
        at_kill = change_events(url)
        with sink_process(bootstrap, url, tmp_path / "sink", log) as restarted:
            pipeline.wait_until_caught_up(timeout=240)
            assert alive(restarted, log)
        decode = Decoder("change-event").decode
        published = [decode(m.value() or b"")["event_id"] for m in consume_all(bootstrap, CHANGES)]

    assert 0 < at_kill < total, f"killed at {at_kill} of {total} change events: not mid-load"
    assert_same_read_model(url, expected)
    with psycopg.connect(url) as conn:
        rows = [event_id for (event_id,) in conn.execute("SELECT event_id FROM esr.change_event")]
    assert sorted(rows) == sorted(set(published)), "every event id on esr.changes, exactly once"


# -- the inbox: out of sequence, and a file twice ----------------------------------------------------


def watch_once(bootstrap: str, url: str, data_dir: Path, inbox: Path) -> Result:
    env = {"ESR_BOOTSTRAP_SERVERS": bootstrap, "ESR_DATABASE_URL": url, "ESR_DATA_DIR": str(data_dir),
           "ESR_PARTITIONS": str(PARTITIONS)}
    return CliRunner().invoke(main, ["watch", "--once", str(inbox)], env=env, catch_exceptions=False)


def ledger_state(url: str) -> tuple[dict[str, tuple[str, str | None]], int | None]:
    """The trust's files in the ledger (name -> status, rejection code) and its last sequence."""
    with Ledger(url) as ledger:
        files = {row.file_name: (row.status, row.rejection_code) for row in ledger.import_files("999")}
        trust = ledger.trust("999")
    assert trust is not None
    return files, trust.last_sequence


@pytest.mark.timeout(600)
def test_an_inbox_out_of_sequence_with_a_file_twice_ends_as_an_in_order_run(
    make_database: Callable[[], str], tmp_path: Path
) -> None:
    first, second, third = files = generate_files("999", 100, 2, 13, tmp_path / "files")
    expected = undisturbed(make_database(), tmp_path / "undisturbed", files)

    url = make_database()
    register(url)
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    archive, rejected = inbox / "archive", inbox / "rejected"
    with Pipeline.open(Settings(data_dir=tmp_path / "faulted", partitions=PARTITIONS), url,
                       echo=lambda _: None) as pipeline:
        bootstrap = pipeline.bootstrap_servers

        def watch() -> Result:
            return watch_once(bootstrap, url, tmp_path / "watch", inbox)

        # change file 3 arrives before 2, with the full file 1
        shutil.copy(third, inbox)
        shutil.copy(first, inbox)
        held = watch()
        assert held.exit_code == 1, held.output  # 3 is not accepted (yet)
        assert f"{first.name}: PUBLISHED" in held.output
        assert f"{third.name}: REJECTED WRONG_SEQUENCE" in held.output
        assert (inbox / third.name).exists(), "the held file must wait in the inbox"
        assert not (rejected / third.name).exists()
        pipeline.wait_until_caught_up(timeout=240)
        after_first = change_events(url)

        # file 1 again, renamed (as if re-sent with the next day's date): the same SHA-256
        again = inbox / first.name.replace("_20260105_", "_20260106_")
        assert again.name != first.name
        shutil.copy(first, again)
        duplicate = watch()
        assert duplicate.exit_code == 1, duplicate.output  # 3 is still held
        assert f"{again.name}: DUPLICATE" in duplicate.output
        assert (archive / again.name).exists()
        reason = (archive / f"{again.name}.reason.txt").read_text()
        assert reason.startswith(f"DUPLICATE: already ingested as {first.name}"), reason
        assert (inbox / third.name).exists()
        assert change_events(url) == after_first, "a duplicate publishes nothing"
        assert ledger_state(url) == ({first.name: ("published", None), third.name: ("rejected", "WRONG_SEQUENCE")}, 1)

        # file 2 arrives: 2, then the held 3
        shutil.copy(second, inbox)
        caught_up = watch()
        assert caught_up.exit_code == 0, caught_up.output
        assert caught_up.output.index(f"{second.name}: PUBLISHED") < caught_up.output.index(f"{third.name}: PUBLISHED")
        pipeline.wait_until_caught_up(timeout=240)
        decode = Decoder("change-event").decode
        published = {decode(m.value() or b"")["event_id"] for m in consume_all(bootstrap, CHANGES)}

    assert 0 < after_first < len(expected["change_event"])
    assert sorted(p.name for p in inbox.iterdir() if p.is_file()) == []
    assert sorted(p.name for p in rejected.iterdir()) == []
    assert sorted(p.name for p in archive.iterdir()) == sorted(
        [*(f.name for f in files), again.name, f"{again.name}.reason.txt"])
    assert ledger_state(url) == ({f.name: ("published", None) for f in files}, 3)
    assert_same_read_model(url, expected)
    assert published == {r["event_id"] for r in read_model(url)["change_event"]}, "events lost on the way"
