"""The inbox's pure planning: when a file is settled, in which order files go, when a trust is late."""

from __future__ import annotations

import datetime as dt

from hypothesis import given
from hypothesis import strategies as st

from connectors.file_source.inbox import Observation, observe, overdue_message, plan, retry_delay, settled


def test_a_file_is_settled_only_after_it_stops_changing() -> None:
    seen = observe({}, {"a.DAT": (10, 1)}, now=0.0)
    assert settled(seen, now=4.9, settle=5.0) == []
    seen = observe(seen, {"a.DAT": (20, 2)}, now=4.9)  # still growing: the clock starts again
    assert settled(seen, now=9.0, settle=5.0) == []
    seen = observe(seen, {"a.DAT": (20, 2)}, now=9.0)
    assert seen["a.DAT"] == Observation(20, 2, 4.9)
    assert settled(seen, now=9.9, settle=5.0) == ["a.DAT"]


def test_a_file_that_vanishes_is_forgotten() -> None:
    seen = observe({}, {"a.DAT": (10, 1), "b.DAT": (5, 1)}, now=0.0)
    seen = observe(seen, {"b.DAT": (5, 1)}, now=1.0)
    assert set(seen) == {"b.DAT"}


def test_files_go_per_trust_in_sequence_order_full_before_change() -> None:
    names = [
        "GO_999_EXP_GOC_20260107_00000003.DAT",
        "GO_431_EXP_GOC_20260106_00000012.DAT",
        "notes.txt",
        "GO_999_EXP_GOC_20260106_00000002.DAT",
        "GO_999_EXP_GOC_20260105_00000001.DAT",
        "GO_999_EXP_GOF_20260105_00000001.DAT",
    ]
    assert [p.name for p in plan(names)] == [
        "notes.txt",
        "GO_431_EXP_GOC_20260106_00000012.DAT",
        "GO_999_EXP_GOF_20260105_00000001.DAT",
        "GO_999_EXP_GOC_20260105_00000001.DAT",
        "GO_999_EXP_GOC_20260106_00000002.DAT",
        "GO_999_EXP_GOC_20260107_00000003.DAT",
    ]
    assert plan(["notes.txt"])[0].file_name is None


@given(st.lists(st.tuples(st.sampled_from(["999", "431", "AB1"]), st.integers(1, 10**8 - 1)), max_size=30))
def test_plan_orders_every_trust_by_sequence(files: list[tuple[str, int]]) -> None:
    names = {f"GO_{vpd}_EXP_GOC_20260105_{seq:08d}.DAT" for vpd, seq in files}
    planned = plan(names)
    assert sorted(p.name for p in planned) == sorted(names)
    for vpd in ("999", "431", "AB1"):
        sequences = [p.file_name.sequence for p in planned if p.file_name and p.file_name.vpd == vpd]
        assert sequences == sorted(sequences)


def test_a_daily_trust_is_late_after_a_day_and_the_grace() -> None:
    last = dt.date(2026, 1, 5)
    assert overdue_message("999", "daily", last, dt.date(2026, 1, 7)) is None
    message = overdue_message("999", "daily", last, dt.date(2026, 1, 8))
    assert message is not None
    assert "trust 999 (daily): no file since the extract of 2026-01-05 (3 days)" in message
    assert overdue_message("999", "daily", None, dt.date(2026, 1, 8)) is None


def test_a_weekly_trust_is_late_after_a_week_and_the_grace() -> None:
    last = dt.date(2026, 1, 5)
    assert overdue_message("431", "weekly", last, dt.date(2026, 1, 13)) is None
    assert overdue_message("431", "weekly", last, dt.date(2026, 1, 14)) is not None


def test_retries_back_off_to_a_cap() -> None:
    assert [retry_delay(n) for n in (1, 2, 3, 4)] == [5.0, 10.0, 20.0, 40.0]
    assert retry_delay(20) == 300.0
