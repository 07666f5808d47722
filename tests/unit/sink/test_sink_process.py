"""The sink's process settings and the change_event timestamps its mapping caches."""

from __future__ import annotations

import datetime as dt
import gc
import sys
from collections.abc import Iterator

import pytest

from connectors.sink.mapping import CHANGE_EVENT_COLUMNS, Consumed, change_event_row
from connectors.sink.sink import tune_process
from tests import sink_events as ev


@pytest.fixture
def restored() -> Iterator[None]:
    threshold, interval = gc.get_threshold(), sys.getswitchinterval()
    yield
    gc.set_threshold(*threshold)
    sys.setswitchinterval(interval)


@pytest.mark.usefixtures("restored")
def test_tune_process_sets_the_collector_and_the_gil_switch() -> None:
    tune_process()
    assert gc.get_threshold() == (10_000, 50, 100)
    assert sys.getswitchinterval() == pytest.approx(0.0005)


def test_event_ts_is_ts_ms_in_utc_for_many_distinct_values() -> None:
    """More distinct ts_ms than the cache keeps: every row still gets its own event's time."""
    event_ts = CHANGE_EVENT_COLUMNS.index("event_ts")
    base = 1_767_600_000_000
    for ts_ms in [*range(base, base + 10_000, 1), base + 123, base + 9_999, 1]:
        event = {**ev.change("PERSON", "1", "NEW_STARTER", after=ev.person("1"), person_id="1"), "ts_ms": ts_ms}
        row = change_event_row(Consumed(event, "esr.changes", 0, 0))
        assert row[event_ts] == dt.datetime.fromtimestamp(ts_ms / 1000, dt.UTC)
    event = {**ev.change("PERSON", "1", "NEW_STARTER", after=ev.person("1"), person_id="1"), "ts_ms": 0}
    assert change_event_row(Consumed(event, "esr.changes", 0, 0))[event_ts] is None
