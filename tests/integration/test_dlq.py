"""`esr dlq`: dead letters listed, shown decoded, replayed to their topic, discarded — and remembered."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from esr.cli import main
from esr.codec import Encoder, Provenance, record_event
from esr.format.lines import Record
from esr.format.reader import EsrFile
from esr.kafka.producer import Publisher
from esr.kafka.topics import DLQ_PROCESS, RECORDS, ensure_topics
from esr.runtime.broker import EmbeddedBroker
from tests.esr_files import SAMPLE
from tests.kafka_helpers import consume_all

pytestmark = pytest.mark.integration


def dead_letter(broker: EmbeddedBroker, line_no: int, reason: str) -> None:
    """A record event as the worker dead-letters it: the original message plus the dlq headers."""
    with EsrFile(SAMPLE) as esr_file:
        provenance = Provenance.from_scan(esr_file.open())
        parsed = next(p for n, p in esr_file.records() if n == line_no)
    assert isinstance(parsed, Record)
    encoder = Encoder("record-event")
    publisher = Publisher({"bootstrap.servers": broker.bootstrap_servers})
    publisher.send(DLQ_PROCESS, f"999:{parsed.person_id or 'x'}".encode(),
                   encoder.encode(record_event(parsed, provenance, line_no)), [
        *encoder.headers,
        ("esr.dlq.stage", b"process"),
        ("esr.dlq.reason", reason.encode()),
        ("esr.dlq.original.topic", RECORDS.encode()),
        ("esr.dlq.original.partition", b"1"),
        ("esr.dlq.original.offset", str(100 + line_no).encode()),
    ], partition=0)
    publisher.flush()


def test_dead_letters_are_listed_shown_replayed_and_discarded(
    database_url: str, broker: EmbeddedBroker, tmp_path: Path
) -> None:
    ensure_topics({"bootstrap.servers": broker.bootstrap_servers}, 2, 1)
    dead_letter(broker, 5, "domain error for key 999:600001")
    dead_letter(broker, 6, "domain error for key 999:600001")
    env = {"ESR_DATABASE_URL": database_url, "ESR_BOOTSTRAP_SERVERS": broker.bootstrap_servers,
           "ESR_DATA_DIR": str(tmp_path)}

    def esr(*args: str) -> Result:
        return CliRunner().invoke(main, ["dlq", *args], env=env, catch_exceptions=False)

    listed = esr("list")
    assert listed.exit_code == 0, listed.output
    assert "0:0  from esr.records[1]@105  key 999:600001  domain error for key 999:600001" in listed.output
    assert "2 dead letter(s) in process still open" in listed.output

    shown = esr("show", "0:1")
    assert shown.exit_code == 0, shown.output
    assert "reason: domain error for key 999:600001" in shown.output
    assert '"record_code": "ASA"' in shown.output  # the payload, decoded with the original topic's schema

    replayed = esr("replay", "0:0")
    assert replayed.exit_code == 0, replayed.output
    [back] = consume_all(broker.bootstrap_servers, RECORDS, expected=1)
    assert back.key() == b"999:600001"
    assert not any(name.startswith("esr.dlq.") for name in dict(back.headers() or []))

    discarded = esr("discard", "0:1", "--reason", "person left before go-live")
    assert discarded.exit_code == 0, discarded.output
    assert "0 dead letter(s) in process still open" in esr("list").output
    everything = esr("list", "--all").output
    assert "[replayed]" in everything
    assert "[discarded]" in everything

    again = esr("replay", "0:0")
    assert again.exit_code != 0
    assert "already replayed" in again.output
    missing = esr("show", "0:9")
    assert missing.exit_code != 0
    assert "no dead letter at esr.dlq.process[0]@9" in missing.output
