"""`esr remap` and the mapping stage against a broker holding hand-made employee states."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner
from confluent_kafka import Producer

from connectors.file_source.ledger import Ledger
from connectors.sink.employee import employee_row, write_rows
from esr.cli import main
from esr.kafka.profiles import publish_profiles
from esr.kafka.topics import EMPLOYEES, MAPPED_CHANGES
from esr.mapping.catalogue import Kind
from esr.mapping.store import save_template
from esr.mapping.template import MappingRule, MappingTemplate, UdfDefinition
from esr.mapping.transforms import Upper
from esr.profiles import NhsOptions, TrustProfile
from esr.runtime.broker import EmbeddedBroker
from streams.mapping_remap import remap_trust
from streams.mapping_stage import MappingProcess, MappingStage, MappingStageError, publish_templates, read_status
from streams.topics import ensure_stream_topics
from tests.integration.mapping.test_employee_sink import mapped
from tests.kafka_helpers import consume_all
from tests.unit.mapping.test_directory import snapshot

pytestmark = pytest.mark.integration

VPD = "999"
SHOUT = MappingTemplate(
    (MappingRule.of("surname", "person.last_name", transforms=(Upper(),)),
     MappingRule.of("udf.postcode", "home_address.postcode")),
    (UdfDefinition("postcode", Kind.TEXT),),
    "shout",
)


def publish_states(bootstrap: str, states: dict[str, dict[str, object] | None]) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "partitioner": "murmur2_random"})
    for person_id, state in states.items():
        value = None if state is None else json.dumps(state).encode()
        producer.produce(EMPLOYEES, key=f"{VPD}:{person_id}".encode(), value=value)
    producer.flush(10)


@pytest.fixture
def world(broker: EmbeddedBroker, database_url: str) -> dict[str, str]:
    ensure_stream_topics({"bootstrap.servers": broker.bootstrap_servers}, 2)
    with Ledger(database_url) as ledger:
        ledger.add_trust(VPD, "Test NHS Trust")
    with_address = snapshot("3")
    with_address["entities"]["ADDRESS"] = {"9": {"current": {"address_id": "9", "primary_flag": "No",
                                                             "postcode": "LS1 1AA"}, "last_run": "2026-01-05"}}
    publish_states(broker.bootstrap_servers, {"1": snapshot("1", supervisor="2"), "2": snapshot("2", last_name="Boss"),
                                              "3": with_address, "4": None})
    options = NhsOptions(only_primary_address=False)  # any current address will do
    publish_profiles({"bootstrap.servers": broker.bootstrap_servers},
                     [TrustProfile(VPD, "Test NHS Trust", nhs_options=options)])
    with psycopg.connect(database_url) as conn:
        write_rows(conn, [employee_row(mapped("7"))])  # no longer in the state
    return {"bootstrap": broker.bootstrap_servers, "url": database_url}


def test_remap_rebuilds_the_trust_from_the_state_with_its_current_template(world: dict[str, str]) -> None:
    with psycopg.connect(world["url"]) as conn:
        save_template(conn, VPD, SHOUT, "tester")
    report = remap_trust({"bootstrap.servers": world["bootstrap"]}, world["url"], VPD)
    assert (report.template_version, report.mapped, report.deleted) == (1, 3, 1)
    with psycopg.connect(world["url"]) as conn:
        rows = conn.execute("SELECT person_id, surname, udf, template_version, deleted_at IS NOT NULL"
                            " FROM esr.employee ORDER BY person_id").fetchall()
    assert rows == [
        ("1", "SMITH", {"postcode": None}, 1, False),
        ("2", "BOSS", {"postcode": None}, 1, False),
        ("3", "SMITH", {"postcode": "LS1 1AA"}, 1, False),  # the trust's option, read from esr.trust-profiles
        ("4", None, {}, 1, True),  # a tombstone in the state
        ("7", None, {}, 1, True),  # no longer in the state
    ]


def test_remap_needs_the_broker(database_url: str, tmp_path: Path) -> None:
    with Ledger(database_url) as ledger:
        ledger.add_trust(VPD, "Test NHS Trust")
    env = {"ESR_DATABASE_URL": database_url, "ESR_DATA_DIR": str(tmp_path / "var")}
    result = CliRunner().invoke(main, ["remap", "--vpd", VPD], env=env)
    assert result.exit_code != 0
    assert "no Kafka broker" in result.output


def test_the_stage_maps_after_reading_everything_and_follows_later_changes(world: dict[str, str]) -> None:
    config = {"bootstrap.servers": world["bootstrap"]}
    publish_templates(config, [])  # nothing saved: the default template
    stage = MappingStage(config)
    stop = threading.Event()
    thread = threading.Thread(target=stage.run, args=(stop,), daemon=True)
    thread.start()
    try:
        wait(stage.caught_up)
        first = {m.key(): m for m in consume_all(world["bootstrap"], MAPPED_CHANGES)}
        assert set(first) == {f"{VPD}:{p}".encode() for p in ("1", "2", "3", "4")}
        producer = Producer({"bootstrap.servers": world["bootstrap"]})
        producer.produce(EMPLOYEES, key=f"{VPD}:8".encode(), value=b"{not json")  # skipped, not fatal
        producer.flush(10)
        publish_states(world["bootstrap"], {"2": snapshot("2", employee_number="M2")})  # the manager changes
        wait(lambda: stage.published >= 6)  # 2 itself and its subordinate 1
        wait(stage.caught_up)
        assert stage.published == 6
        assert stage.reader.skipped == 1
    finally:
        stop.set()
        thread.join(30)


def test_the_stage_refuses_to_start_without_its_topics(broker: EmbeddedBroker) -> None:
    with pytest.raises(MappingStageError, match="templates"):
        MappingStage({"bootstrap.servers": broker.bootstrap_servers}).start()


def test_the_stage_in_a_child_process_is_seen_catching_up_from_outside(world: dict[str, str], tmp_path: Path) -> None:
    config = {"bootstrap.servers": world["bootstrap"]}
    publish_templates(config, [])
    stage = MappingProcess(world["bootstrap"], data_dir=tmp_path / "mapping").start()
    try:
        wait(lambda: stage.caught_up(config), 60)
        assert {m.key() for m in consume_all(world["bootstrap"], MAPPED_CHANGES)} == {
            f"{VPD}:{p}".encode() for p in ("1", "2", "3", "4")}
        publish_states(world["bootstrap"], {"2": snapshot("2", employee_number="M2")})
        wait(lambda: stage.caught_up(config), 60)
        status = read_status(stage.status_path)
        assert status is not None
        assert sum(status[1][EMPLOYEES].values()) == 5, "caught up means the fifth state is mapped"
        assert len(consume_all(world["bootstrap"], MAPPED_CHANGES)) == 6  # 2 itself and its subordinate 1
    finally:
        returncode = stage.stop()
    assert returncode == 0, stage.log_tail()  # SIGTERM: a clean stop
    assert "mapping stage bootstrapped" in stage.log_tail()


def test_a_child_stage_that_cannot_start_exits_with_the_reason_in_its_log(broker: EmbeddedBroker,
                                                                          tmp_path: Path) -> None:
    config = {"bootstrap.servers": broker.bootstrap_servers}
    stage = MappingProcess(broker.bootstrap_servers, data_dir=tmp_path / "mapping").start()
    wait(lambda: not stage.alive(), 60)
    assert stage.stop() != 0
    assert "cannot read the templates" in stage.log_tail()
    assert not stage.caught_up(config)


def wait(condition: Callable[[], bool], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)
