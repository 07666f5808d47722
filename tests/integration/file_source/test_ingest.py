"""The ingest job against the real broker (embedded Tansu) and real PostgreSQL: publish, read back, decode."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from connectors.file_source.ingest import FileIngest, IngestSettings
from connectors.file_source.ledger import Ledger
from esr.codec import Decoder
from esr.config import Settings
from esr.format.header import RejectionCode
from esr.kafka.config import producer_config
from esr.kafka.producer import DeliveryFailed, Publisher
from esr.kafka.topics import BROADCAST, CONTROL, FORWARDED, RECORDS, ensure_topics
from esr.runtime.broker import EmbeddedBroker
from tests.esr_files import SAMPLE, sample_body, write_esr_file
from tests.kafka_helpers import consume_all

pytestmark = pytest.mark.integration

PERSON_BLOCK = [
    "PRA~600002~20240101~~20005678~Mr.~Ó Briain~Seán~~~~~M~19850302~QQ654321A~~20240101~~~E~~~~~~~~~~~~~~EMP~"
    "Employee~sean.obriain@example.nhs.uk~20200101~~20240229 101010~N~~Irish~~",
    "ASA~600002~700002~20240101~~20240101~E~20005678~ACTIVE_ASSIGN~Active Assignment~E~999 Monthly~Calendar~"
    "300001~N~~~~~~~Yes~37.5~W~37.5~1~~400001~500001~7000001|Staff Nurse|N7B|Ward 1|~XN05|Band 5~~20240101~"
    "30000~Nursing and Midwifery Registered|Staff Nurse~~~~~~~~~~20240229 101010~~~~~",
]


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "var", partitions=3)


@pytest.fixture
def ledger(database_url: str) -> Iterator[Ledger]:
    with Ledger(database_url) as opened:
        opened.add_trust("999", "Test NHS Trust")
        yield opened


def make_job(
    ledger: Ledger, settings: Settings, broker: EmbeddedBroker, **options: Any
) -> FileIngest:
    ensure_topics({"bootstrap.servers": broker.bootstrap_servers}, settings.partitions, 1)
    config = producer_config(settings, broker.bootstrap_servers)
    config["message.timeout.ms"] = 5000  # a dead broker fails the test in seconds, not minutes
    return FileIngest(ledger, Publisher(config), IngestSettings(**options))


def records(broker: EmbeddedBroker, expected: int) -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    decoder = Decoder("record-event")
    out = []
    for message in consume_all(broker.bootstrap_servers, RECORDS, expected=expected):
        if FORWARDED in dict(message.headers() or []):
            continue  # a reference record's copy for another partition (checked below)
        key = message.key()
        value = message.value()
        assert key is not None
        assert value is not None
        headers = dict(message.headers() or [])
        out.append((key.decode(), decoder.decode(value), headers))
    return out


def controls(broker: EmbeddedBroker, expected: int) -> list[dict[str, Any]]:
    decoder = Decoder("control-event")
    out = []
    for message in consume_all(broker.bootstrap_servers, CONTROL, expected=expected):
        value = message.value()
        assert value is not None
        out.append(decoder.decode(value))
    return out


def file_row(database_url: str, sha256: str) -> dict[str, Any]:
    with psycopg.connect(database_url) as conn, conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
        row = cur.execute("SELECT * FROM esr.import_file WHERE sha256 = %s", (sha256,)).fetchone()
    assert row is not None
    return row


def test_the_sample_file_is_published_read_back_and_decoded(
    ledger: Ledger, settings: Settings, broker: EmbeddedBroker, database_url: str
) -> None:
    report = make_job(ledger, settings, broker).ingest(SAMPLE)

    assert report.status == "published", report.message
    assert (report.record_count, report.quarantined_count, report.warning_count) == (9, 1, 0)
    published = records(broker, 9)
    assert len(published) == 9
    by_code = {event["record_code"]: (key, event, headers) for key, event, headers in published}
    assert set(by_code) == {"LCA", "ORA", "POA", "PRA", "ASA", "PHA", "ADA", "VHA", "COA"}
    # all of a person's records share the person key; reference records are keyed by type and id
    for code in ("PRA", "ASA", "PHA", "ADA", "VHA", "COA"):
        assert by_code[code][0] == "999:600001"
        assert by_code[code][1]["person_id"] == "600001"
    assert by_code["LCA"][0] == "999:LOCATION:300001"
    assert by_code["LCA"][2][BROADCAST] == b"1"
    copies = [m for m in consume_all(broker.bootstrap_servers, RECORDS, expected=15)
              if FORWARDED in dict(m.headers() or [])]
    # each reference record is also copied to the two other partitions, for their employees
    assert sorted((m.key() or b"", m.partition()) for m in copies) == sorted(
        (key.encode(), partition)
        for key, _, headers in published if headers.get(BROADCAST)
        for partition in range(3) if partition != _home(key)
    )
    assert by_code["ORA"][0] == "999:ORGANISATION:400001"
    assert by_code["POA"][0] == "999:POSITION:500001"
    person = by_code["PRA"][1]
    assert person["payload"]["last_name"] == "Jones"
    assert person["payload"]["email"] == "ann.jones@example.nhs.uk"
    assert person["source"]["file_name"] == SAMPLE.name
    assert person["source"]["file_sha256"] == report.sha256
    assert person["source"]["line_no"] == 5
    assert person["source"]["sequence"] == 42
    assert person["source"]["extract_type"] == "C"
    assert by_code["VHA"][1]["payload"]["user_rates_table"] == "NHS_MILEAGE_CASUAL"
    assert by_code["PRA"][2]["content-type"].startswith(b"application/avro")

    # ASD~700099 deletes an assignment no file of this trust has added: quarantined with its text
    errors = ledger.line_errors(report.sha256 or "")
    assert [(e.line_no, e.record_code, e.severity) for e in errors] == [(11, "ASD", "quarantined")]
    assert errors[0].raw_line == "ASD~700099"
    assert "no person to route it to" in errors[0].reason

    row = file_row(database_url, report.sha256 or "")
    assert (row["status"], row["record_count"], row["error_count"], row["sequence"]) == ("published", 9, 1, 42)
    trust = ledger.trust("999")
    assert trust is not None
    assert trust.last_sequence == 42

    started, completed = controls(broker, 2)
    assert started["event_type"] == "FILE_STARTED"
    assert completed["event_type"] == "FILE_COMPLETED"
    assert completed["record_count"] == 9
    assert completed["quarantined_count"] == 1
    assert completed["counts_by_code"]["PRA"] == 1


def test_the_same_file_twice_is_a_no_op_that_says_so(
    ledger: Ledger, settings: Settings, broker: EmbeddedBroker
) -> None:
    job = make_job(ledger, settings, broker)
    assert job.ingest(SAMPLE).status == "published"
    again = job.ingest(SAMPLE)
    assert again.status == "duplicate"
    assert again.ok
    assert again.message is not None
    assert "already ingested" in again.message
    assert len(records(broker, 9)) == 9
    assert len(controls(broker, 2)) == 2


def test_a_file_for_an_unknown_trust_is_rejected_and_announced(
    ledger: Ledger, settings: Settings, broker: EmbeddedBroker, database_url: str, tmp_path: Path
) -> None:
    path = write_esr_file(tmp_path, sample_body()[:4], vpd="123")
    report = make_job(ledger, settings, broker).ingest(path)
    assert report.status == "rejected"
    assert report.rejection_code is RejectionCode.VPD_NOT_FOUND
    assert not report.ok
    assert records(broker, 0) == []
    [rejected] = controls(broker, 1)
    assert rejected["event_type"] == "FILE_REJECTED"
    assert rejected["rejection_code"] == "VPD_NOT_FOUND"
    row = file_row(database_url, report.sha256 or "")
    assert (row["status"], row["rejection_code"], row["vpd"]) == ("rejected", "VPD_NOT_FOUND", "123")


def test_a_wrong_trailer_count_publishes_nothing(
    ledger: Ledger, settings: Settings, broker: EmbeddedBroker, database_url: str, tmp_path: Path
) -> None:
    path = write_esr_file(tmp_path, sample_body()[:4], trailer_count=99)
    report = make_job(ledger, settings, broker).ingest(path)
    assert report.rejection_code is RejectionCode.RECORD_COUNT
    assert records(broker, 0) == []
    assert file_row(database_url, report.sha256 or "")["status"] == "rejected"


def test_an_out_of_sequence_file_is_held_unless_forced(
    ledger: Ledger, settings: Settings, broker: EmbeddedBroker, tmp_path: Path
) -> None:
    job = make_job(ledger, settings, broker)
    first = write_esr_file(tmp_path, sample_body()[:3], sequence=1)
    assert job.ingest(first).status == "published"
    skipping = write_esr_file(tmp_path, sample_body()[3:5], sequence=3)

    held = job.ingest(skipping)
    assert held.rejection_code is RejectionCode.WRONG_SEQUENCE
    assert held.message is not None
    assert "--force" in held.message
    trust = ledger.trust("999")
    assert trust is not None
    assert trust.last_sequence == 1

    forced = make_job(ledger, settings, broker, force=True).ingest(skipping)
    assert forced.status == "published"
    trust = ledger.trust("999")
    assert trust is not None
    assert trust.last_sequence == 3
    # a re-run of the last sequence (same number, new content) is accepted as ESR re-sends do
    (tmp_path / "rerun").mkdir()
    rerun = write_esr_file(tmp_path / "rerun", sample_body()[3:4], sequence=3)
    assert job.ingest(rerun).status == "published"


def test_a_child_delete_is_keyed_by_the_person_that_owns_the_entity(
    ledger: Ledger, settings: Settings, broker: EmbeddedBroker, tmp_path: Path
) -> None:
    job = make_job(ledger, settings, broker)
    body = sample_body()
    adds = [line for line in body if line.split("~")[0] in ("PRA", "ASA", "VHA")]
    assert job.ingest(write_esr_file(tmp_path, adds, sequence=1)).status == "published"
    deletes = write_esr_file(tmp_path, ["VHD~820001", "ASD~700001", "PRD~600001"], sequence=2)
    report = job.ingest(deletes)
    assert (report.status, report.record_count, report.quarantined_count) == ("published", 3, 0)

    published = records(broker, 6)
    deleted = [(key, event) for key, event, _ in published if event["action"] == "DELETE"]
    assert [(key, e["record_code"], e["entity_id"], e["person_id"]) for key, e in deleted] == [
        ("999:600001", "VHD", "820001", "600001"),
        ("999:600001", "ASD", "700001", "600001"),
        ("999:600001", "PRD", "600001", "600001"),
    ]
    assert all(e["payload"] is None for _, e in deleted)


def test_bad_lines_are_quarantined_warned_or_skipped_with_their_text(
    ledger: Ledger, settings: Settings, broker: EmbeddedBroker, tmp_path: Path
) -> None:
    body = [
        *sample_body()[:4],
        "PRA~600003~2024-01-01",  # too few fields
        "XYZ~1~2~3",  # a code this interface does not know
        PERSON_BLOCK[0].replace("19850302", "19851302"),  # impossible date of birth
        PERSON_BLOCK[1],
    ]
    report = make_job(ledger, settings, broker).ingest(write_esr_file(tmp_path, body))
    assert report.status == "published"
    assert (report.record_count, report.quarantined_count, report.warning_count, report.unknown_count) == (
        6, 1, 1, 1,
    )
    errors = {e.line_no: e for e in ledger.line_errors(report.sha256 or "")}
    assert errors[6].severity == "quarantined"
    assert errors[6].raw_line == "PRA~600003~2024-01-01"
    assert errors[7].severity == "skipped"
    assert errors[7].record_code == "XYZ"
    assert errors[8].severity == "warning"
    assert errors[8].field == "date_of_birth"
    assert errors[8].raw_line is not None
    assert "Ó Briain" in errors[8].raw_line
    published = records(broker, 6)
    [person] = [event for _, event, _ in published if event["entity_id"] == "600002" and event["record_code"] == "PRA"]
    assert person["payload"]["date_of_birth"] is None
    assert person["payload"]["last_name"] == "Ó Briain"
    assert [issue["field"] for issue in person["issues"]] == ["date_of_birth"]


def test_a_dead_broker_fails_the_file_loudly(
    ledger: Ledger, settings: Settings, database_url: str, tmp_path: Path
) -> None:
    with EmbeddedBroker.create(tmp_path / "broker") as dying:
        job = make_job(ledger, settings, dying)
    # the broker is gone before the first record is sent
    with pytest.raises(DeliveryFailed):
        job.ingest(SAMPLE)
    row = file_row(database_url, _sha(SAMPLE))
    assert row["status"] == "failed"
    assert "DeliveryFailed" in (row["message"] or "")
    trust = ledger.trust("999")
    assert trust is not None
    assert trust.last_sequence is None


def test_a_dry_run_writes_nothing_and_publishes_nothing(
    ledger: Ledger, broker: EmbeddedBroker, database_url: str
) -> None:
    report = FileIngest(ledger, None, IngestSettings(dry_run=True)).ingest(SAMPLE)
    assert report.status == "valid"
    assert (report.record_count, report.quarantined_count) == (9, 1)
    with psycopg.connect(database_url) as conn:
        counts = conn.execute(
            "SELECT (SELECT count(*) FROM esr.import_file), (SELECT count(*) FROM esr.import_line_error),"
            " (SELECT count(*) FROM esr.entity_owner)"
        ).fetchone()
    assert counts == (0, 0, 0)
    assert not _topic_exists(broker)  # a dry run does not even create topics


def test_generated_files_publish_every_record(
    ledger: Ledger, settings: Settings, broker: EmbeddedBroker, tmp_path: Path
) -> None:
    from esr.generate import generate_files

    paths = generate_files("999", 60, 2, 5, tmp_path / "gen")
    job = make_job(ledger, settings, broker)
    reports = [job.ingest(path) for path in paths]
    assert [r.status for r in reports] == ["published"] * 3
    assert sum(r.quarantined_count for r in reports) == 0
    total = sum(r.record_count for r in reports)
    published = records(broker, total)
    assert len(published) == total
    assert len({event["record_id"] for _, event, _ in published}) == total
    by_file = Counter(event["source"]["file_name"] for _, event, _ in published)
    assert by_file == {r.file_name: r.record_count for r in reports}
    # every person-scoped record, deletes included, is keyed by its person
    for key, event, _ in published:
        if event["person_id"] is not None:
            assert key == f"999:{event['person_id']}"


def _home(key: str) -> int:
    from streams.partitioner import partition_for

    return partition_for(key.encode(), 3)


def _sha(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


def _topic_exists(broker: EmbeddedBroker) -> bool:
    from confluent_kafka.admin import AdminClient

    topics = AdminClient({"bootstrap.servers": broker.bootstrap_servers}).list_topics(timeout=5).topics
    return RECORDS in topics
