"""`esr dlq`: dead letters listed, shown decoded, replayed to their topic, discarded — and remembered."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from esr.cli import main
from esr.codec import Decoder, Encoder, Provenance, record_event
from esr.dlq import STAGES, DeadLetters
from esr.format.lines import Record
from esr.format.reader import EsrFile
from esr.kafka.producer import Publisher
from esr.kafka.topics import DLQ_PROCESS, RECORDS, ensure_topics
from esr.observability import metrics
from esr.parking import PARKED_BEHIND, RELEASE, RELEASE_DISCARDED, RELEASE_END
from esr.runtime.broker import EmbeddedBroker
from tests.esr_files import SAMPLE
from tests.kafka_helpers import consume_all

pytestmark = pytest.mark.integration


def record_value(line_no: int) -> bytes:
    with EsrFile(SAMPLE) as esr_file:
        provenance = Provenance.from_scan(esr_file.open())
        parsed = next(p for n, p in esr_file.records() if n == line_no)
    assert isinstance(parsed, Record)
    return Encoder("record-event").encode(record_event(parsed, provenance, line_no))


def line_of(value: bytes | None) -> int:
    assert value is not None
    line_no: int = Decoder("record-event").decode(value)["source"]["line_no"]
    return line_no


def dead_letter(broker: EmbeddedBroker, line_no: int, reason: str, *, key: bytes = b"999:600001",
                offset: int | None = None, behind: int | None = None) -> None:
    """A record event as the worker dead-letters it: the original message (from esr.records[1]@`offset`,
    100 + line by default) plus the dlq headers; `behind`: parked behind the one from that offset."""
    encoder = Encoder("record-event")
    publisher = Publisher({"bootstrap.servers": broker.bootstrap_servers})
    parked = [] if behind is None else [(PARKED_BEHIND, f"{RECORDS}[1]@{behind}".encode())]
    publisher.send(DLQ_PROCESS, key, record_value(line_no), [
        *encoder.headers,
        ("esr.dlq.stage", b"process"),
        ("esr.dlq.reason", reason.encode()),
        ("esr.dlq.original.topic", RECORDS.encode()),
        ("esr.dlq.original.partition", b"1"),
        ("esr.dlq.original.offset", str(100 + line_no if offset is None else offset).encode()),
        *parked,
    ], partition=0)
    publisher.flush()


def cli(broker: EmbeddedBroker, database_url: str, tmp_path: Path) -> Callable[..., Result]:
    env = {"ESR_DATABASE_URL": database_url, "ESR_BOOTSTRAP_SERVERS": broker.bootstrap_servers,
           "ESR_DATA_DIR": str(tmp_path)}

    def esr(*args: str) -> Result:
        return CliRunner().invoke(main, ["dlq", *args], env=env, catch_exceptions=False)

    return esr


def test_dead_letters_are_listed_shown_replayed_and_discarded(
    database_url: str, broker: EmbeddedBroker, tmp_path: Path
) -> None:
    ensure_topics({"bootstrap.servers": broker.bootstrap_servers}, 2, 1)
    dead_letter(broker, 5, "domain error for key 999:600001")
    dead_letter(broker, 6, "domain error for key 999:600002", key=b"999:600002")
    esr = cli(broker, database_url, tmp_path)

    listed = esr("list")
    assert listed.exit_code == 0, listed.output
    assert "0:0  from esr.records[1]@105  key 999:600001  domain error for key 999:600001" in listed.output
    assert "2 dead letter(s) in process still open" in listed.output
    letters = DeadLetters({"bootstrap.servers": broker.bootstrap_servers}, database_url)
    metrics.dead_letters_open(letters.open_counts())
    assert {stage: metrics.DLQ_SIZE.labels(stage)._value.get() for stage in STAGES} == {
        "ingest": 0, "process": 2, "sink": 0}

    shown = esr("show", "0:1")
    assert shown.exit_code == 0, shown.output
    assert "reason: domain error for key 999:600002" in shown.output
    assert '"record_code": "ASA"' in shown.output  # the payload, decoded with the original topic's schema

    replayed = esr("replay", "0:0")
    assert replayed.exit_code == 0, replayed.output
    [back] = consume_all(broker.bootstrap_servers, RECORDS, expected=1)
    assert back.key() == b"999:600001"
    assert back.partition() == 1  # where the employee's records (and its park) are
    headers = dict(back.headers() or [])
    assert {name for name in headers if name.startswith("esr.dlq.")} == {RELEASE, RELEASE_END}
    assert headers[RELEASE] == b"esr.records[1]@105"

    discarded = esr("discard", "0:1", "--reason", "person left before go-live")
    assert discarded.exit_code == 0, discarded.output
    assert "0 dead letter(s) in process still open" in esr("list").output
    assert letters.open_counts()["process"] == 0
    everything = esr("list", "--all").output
    assert "[replayed]" in everything
    assert "[discarded]" in everything

    again = esr("replay", "0:0")
    assert again.exit_code != 0
    assert "already replayed" in again.output
    missing = esr("show", "0:9")
    assert missing.exit_code != 0
    assert "no dead letter at esr.dlq.process[0]@9" in missing.output


def test_parked_letters_are_listed_behind_their_blocker_and_replayed_with_it_in_order(
    database_url: str, broker: EmbeddedBroker, tmp_path: Path
) -> None:
    ensure_topics({"bootstrap.servers": broker.bootstrap_servers}, 2, 1)
    dead_letter(broker, 5, "rejected by the domain: upsert without a payload")
    dead_letter(broker, 7, "parked", behind=105)
    dead_letter(broker, 6, "parked", behind=105)  # dead-lettered in another order than the original log's
    dead_letter(broker, 5, "rejected by the domain: upsert without a payload")  # again, after a restart
    esr = cli(broker, database_url, tmp_path)

    listed = esr("list").output
    assert "0:0  from esr.records[1]@105  key 999:600001  rejected by the domain: upsert without a payload" \
        "  (2 parked behind it)" in listed
    assert listed.index("    parked: 0:2  from esr.records[1]@106") < listed.index(
        "    parked: 0:1  from esr.records[1]@107")
    assert "dead-lettered again (same messages): 0:3" in listed
    assert "4 dead letter(s) in process still open" in listed

    follower = esr("replay", "0:1")
    assert follower.exit_code != 0
    assert "parked behind 0:0 (from esr.records[1]@105)" in follower.output

    replayed = esr("replay", "0:0")
    assert replayed.exit_code == 0, replayed.output
    assert "with 2 parked letter(s) behind it, in order" in replayed.output
    back = consume_all(broker.bootstrap_servers, RECORDS, expected=3)
    assert [line_of(m.value()) for m in back] == [5, 6, 7]
    assert {m.partition() for m in back} == {1}
    releases = [dict(m.headers() or []) for m in back]
    assert [h[RELEASE] for h in releases] == [b"esr.records[1]@105"] * 3
    assert [RELEASE_END in h for h in releases] == [False, False, True]
    assert not any(RELEASE_DISCARDED in h or PARKED_BEHIND in h for h in releases)
    assert "0 dead letter(s) in process still open" in esr("list").output
    assert esr("list", "--all").output.count("[replayed]") == 4


def test_discarding_a_blocker_releases_its_employee_and_replays_or_drops_the_parked_letters(
    database_url: str, broker: EmbeddedBroker, tmp_path: Path
) -> None:
    ensure_topics({"bootstrap.servers": broker.bootstrap_servers}, 2, 1)
    dead_letter(broker, 5, "rejected by the domain: upsert without a payload")
    dead_letter(broker, 6, "parked", behind=105)
    dead_letter(broker, 8, "rejected by the domain: upsert without a payload", key=b"999:600002")
    dead_letter(broker, 9, "parked", key=b"999:600002", behind=108)
    esr = cli(broker, database_url, tmp_path)

    alone = esr("discard", "0:1", "--reason", "x", "--with-followers")
    assert alone.exit_code != 0
    assert "--with-followers is for a blocker" in alone.output

    discarded = esr("discard", "0:0", "--reason", "wrong person on the line")
    assert discarded.exit_code == 0, discarded.output
    assert "1 parked letter(s) behind it sent back in order" in discarded.output
    dropped = esr("discard", "0:2", "--reason", "both wrong", "--with-followers")
    assert dropped.exit_code == 0, dropped.output
    back = consume_all(broker.bootstrap_servers, RECORDS, expected=3)
    seen = [(m.key(), line_of(m.value()), dict(m.headers() or [])) for m in back]
    assert [(key, line, RELEASE_DISCARDED in h, RELEASE_END in h) for key, line, h in seen] == [
        (b"999:600001", 5, True, False),  # the marker: releases, never applied
        (b"999:600001", 6, False, True),
        (b"999:600002", 8, True, True),  # one marker for the whole group
    ]
    everything = esr("list", "--all").output
    assert everything.count("[discarded]") == 3
    assert everything.count("[replayed]") == 1
    assert "0 dead letter(s) in process still open" in esr("list").output
