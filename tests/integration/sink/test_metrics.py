"""The sink's Prometheus metrics, read from what the /metrics endpoint serves."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Iterator

import pytest
from prometheus_client import REGISTRY, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from connectors.sink import Sink
from esr.kafka.topics import CHANGES
from tests import sink_events as ev
from tests.integration.sink.conftest import Changes, people, wait_for
from tests.integration.sink.proxy import CuttableProxy

pytestmark = pytest.mark.integration

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape() -> Samples:
    """Every sample of the exposition text, by name and labels."""
    text = generate_latest(REGISTRY).decode()
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def stepped(sink: Sink) -> bool:
    sink.step()
    return True


def reported(samples: Samples, group: str) -> set[str]:
    """The partitions of esr.changes the group's lag is reported for."""
    return {dict(labels)["partition"] for name, labels in samples
            if name == "esr_consumer_lag" and dict(labels)["group"] == group}


def lag(samples: Samples, group: str) -> float:
    return sum(value(samples, "esr_consumer_lag", group=group, topic=CHANGES, partition=str(p)) for p in range(3))


@pytest.fixture
def proxied(database_url: str) -> Iterator[tuple[CuttableProxy, str]]:
    proxy, url = CuttableProxy.to(database_url)
    yield proxy, url
    proxy.close()


def test_rows_latency_lag_dead_letters_and_outages(changes: Changes, proxied: tuple[CuttableProxy, str]) -> None:
    proxy, through_proxy = proxied
    group = "test-sink-metrics"
    before = scrape()
    overflow = ev.change("COSTING", "90", "COSTING_ADDED", after=ev.costing("1", "11", "90", percentage="1000.00"),
                         person_id="1", line_no=50)
    changes.publish([*people(4), overflow])  # 20 events written, one refused by PostgreSQL
    with changes.sink(through_proxy, group=group) as sink:
        sink.drain(idle=0.5, timeout=40)
        proxy.cut()
        changes.publish(people(2, first=5, sequence=2))
        wait_for(lambda: stepped(sink) and sink.stats.outages >= 1, 20, "the outage")
        # the new messages are not in the database: the lag shows them (Tansu's short high watermark
        # makes it a lower bound, DESIGN §7)
        wait_for(lambda: stepped(sink) and lag(scrape(), group) > 0, 10, "the lag of the outage")
        down = scrape()
        proxy.restore()
        sink.drain(idle=0.5, timeout=40)
        wait_for(lambda: stepped(sink) and lag(scrape(), group) == 0, 10, "no lag once caught up")
        caught_up = scrape()
    after = scrape()

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("esr_sink_rows_total", table="change_event") == 30
    assert {table: delta("esr_sink_rows_total", table=table)
            for table in ("person", "assignment", "home_address", "phone", "costing")} == dict.fromkeys(
        ("person", "assignment", "home_address", "phone", "costing"), 6)
    assert delta("esr_sink_latency_seconds_count") == 30
    assert delta("esr_sink_latency_seconds_sum") > 0
    assert delta("esr_dead_letters_total", stage="sink") == 1
    assert delta("esr_sink_outages_total") == 1
    assert value(down, "esr_sink_database_up") == 0
    assert value(after, "esr_sink_database_up") == 1
    assert reported(caught_up, group) == {"0", "1", "2"}
    assert reported(after, group) == set()  # the sink left the group: its partitions are no longer its own


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_python_m_connectors_sink_serves_its_metrics(changes: Changes, database_url: str) -> None:
    port = free_port()
    env = {**os.environ, "ESR_METRICS_PORT": str(port), "ESR_BOOTSTRAP_SERVERS": changes.bootstrap,
           "ESR_DATABASE_URL": database_url, "ESR_PARTITIONS": "3"}
    changes.publish(people(3))
    sink = subprocess.Popen([sys.executable, "-m", "connectors.sink", "--group", "test-sink-served"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        def served() -> str:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as response:
                    return str(response.read().decode())
            except OSError:
                return ""

        lag = 'esr_consumer_lag{group="test-sink-served",partition="0",topic="esr.changes"} 0.0'
        wait_for(lambda: 'esr_sink_rows_total{table="person"} 3.0' in served() and lag in served(), 60,
                 "the sink's rows and lag on /metrics")
        text = served()
        assert 'esr_sink_rows_total{table="change_event"} 15.0' in text
        assert "esr_sink_latency_seconds_count 15.0" in text
    finally:
        sink.send_signal(signal.SIGTERM)
        output, _ = sink.communicate(timeout=30)
    assert sink.returncode == 0, output.decode(errors="replace")
