"""`esr replay`'s pure parts: selectors from the ledger, the cut found per partition, the plans, the fence the
worker reads, and the processor muting what a replayed record already sent."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from typing import Any

import pytest

from esr.codec import Decoder, Encoder, control_event
from esr.kafka.topics import CHANGES, DLQ_PROCESS, EMPLOYEES, FORWARDED, FORWARDED_FULL_FILE, RECORDS
from esr.replay import (
    FROM_BEGINNING,
    Cut,
    GroupActivity,
    LedgerFile,
    Located,
    Locator,
    Mode,
    Provenance,
    Replay,
    ReplayError,
    from_file,
    from_sequence,
    from_timestamp,
    plan_sink,
    plan_streams,
    record_sha,
)
from streams.agents import EmployeesProcessor
from streams.port import load_domain
from streams.replay import MUTE_ALL, MUTE_COPIES, NOTHING, ReplayFence
from tests.unit.streams.test_shell import SHA, Event, Log, Message, Output, Table, person, record

T0 = dt.datetime(2026, 1, 5, 2, 0, tzinfo=dt.UTC)


def ledger_file(sha: str, name: str, sequence: int, hours: int, status: str = "published",
                vpd: str = "999") -> LedgerFile:
    return LedgerFile(sha, vpd, name, sequence, status, T0 + dt.timedelta(hours=hours))


LEDGER = [
    ledger_file("a" * 64, "GO_999_EXP_GOF_20260105_00000001.DAT", 1, 0),
    ledger_file("b" * 64, "GO_999_EXP_GOC_20260106_00000002.DAT", 2, 24),
    ledger_file("c" * 64, "GO_999_EXP_GOC_20260107_00000003.DAT", 3, 48),
    ledger_file("d" * 64, "GO_999_EXP_GOC_20260108_00000004.DAT", 4, 72, status="rejected"),
    ledger_file("e" * 64, "GO_888_EXP_GOF_20260106_00000001.DAT", 1, 30, vpd="888"),
]
TIMES = {f.sha256: f.received_at for f in LEDGER}


def locate(cut: Cut, partitions: dict[int, list[str | None]], time_of: Any = TIMES.get) -> dict[int, Located]:
    """Each partition's log as the SHA-256 of each message's file, offsets from 0."""
    locator = Locator(cut, time_of)
    locator.start(partitions)
    for partition, shas in partitions.items():
        for offset, sha in enumerate(shas):
            locator.feed(partition, offset, None if sha is None else sha * 64)
    return locator.partitions


# -- selectors ----------------------------------------------------------------------------------------------


def test_a_file_is_found_by_name_with_its_ingest_time() -> None:
    cut = from_file(LEDGER, "GO_999_EXP_GOC_20260106_00000002.DAT")
    assert cut.files == {"b" * 64}
    assert cut.since == T0 + dt.timedelta(hours=24)
    assert "sequence 2" in cut.label


def test_an_unknown_file_is_refused() -> None:
    with pytest.raises(ReplayError, match=r"no file named GO_999_NOPE\.DAT in the ingest ledger"):
        from_file(LEDGER, "GO_999_NOPE.DAT")


def test_a_rejected_file_has_nothing_to_replay_from() -> None:
    with pytest.raises(ReplayError, match=r"never published \(rejected\)"):
        from_file(LEDGER, "GO_999_EXP_GOC_20260108_00000004.DAT")


def test_a_sequence_is_per_trust() -> None:
    assert from_sequence(LEDGER, "888", 1).files == {"e" * 64}
    assert from_sequence(LEDGER, "999", 1).files == {"a" * 64}


def test_a_sequence_not_found_names_the_known_range() -> None:
    with pytest.raises(ReplayError, match="trust 999 has no file with ESR sequence 9: its files have sequences 1 to 4"):
        from_sequence(LEDGER, "999", 9)
    with pytest.raises(ReplayError, match="trust 777 has no file with ESR sequence 1: it has no files"):
        from_sequence(LEDGER, "777", 1)


def test_a_naive_timestamp_is_utc() -> None:
    assert from_timestamp(dt.datetime(2026, 1, 6, 1, 0)).since == dt.datetime(2026, 1, 6, 1, 0, tzinfo=dt.UTC)


# -- where the cut falls --------------------------------------------------------------------------------------


def test_from_a_file_each_partition_starts_at_its_first_record_else_at_the_first_later_one() -> None:
    cut = from_sequence(LEDGER, "999", 2)
    located = locate(cut, {
        0: ["a", "a", "b", "b", "c"],  # the file's records from offset 2
        1: ["a", "e", "c", "c"],  # none of them: the first record of a file ingested later (888's, at +30 h)
        2: ["a", "a"],  # nothing later: nothing to do here
        3: [],  # empty
    })
    plan = plan_streams(Mode.RE_EMIT, cut, located)
    assert [(p.partition, p.start, p.from_offset, p.to_offset, p.messages) for p in plan.partitions] == [
        (0, 0, 2, 5, 3), (1, 0, 1, 4, 3), (2, 0, 2, 2, 0), (3, 0, 0, 0, 0)]


def test_the_first_record_of_the_file_wins_over_an_earlier_later_file() -> None:
    cut = from_sequence(LEDGER, "999", 2)  # a concurrent ingest of trust 888 got in first on partition 0
    plan = plan_streams(Mode.RE_EMIT, cut, locate(cut, {0: ["a", "e", "b"]}))
    assert plan.partitions[0].from_offset == 2


def test_from_a_timestamp_the_first_record_of_a_file_received_at_or_after_it() -> None:
    cut = from_timestamp(T0 + dt.timedelta(hours=24))
    plan = plan_streams(Mode.RE_EMIT, cut, locate(cut, {0: ["a", None, "b", "a"], 1: ["a", "e"], 2: ["a"]}))
    assert [p.from_offset for p in plan.partitions] == [2, 1, 1]


def test_a_file_the_ledger_does_not_know_is_timed_by_its_own_provenance() -> None:
    own = {"f" * 64: T0 + dt.timedelta(hours=100)}
    cut = from_timestamp(T0 + dt.timedelta(hours=99))
    located = locate(cut, {0: ["a", "z", "f"]}, lambda sha: TIMES.get(sha) or own.get(sha))
    assert plan_streams(Mode.RE_EMIT, cut, located).partitions[0].from_offset == 2


def test_from_the_beginning_everything_is_emitted_again() -> None:
    plan = plan_streams(Mode.RE_EMIT, FROM_BEGINNING, locate(FROM_BEGINNING, {0: ["a", "b"], 1: []}))
    assert [(p.from_offset, p.to_offset) for p in plan.partitions] == [(0, 2), (0, 0)]
    assert plan.messages == 2


def test_rebuild_state_takes_every_record_and_only_from_the_beginning() -> None:
    plan = plan_streams(Mode.REBUILD_STATE, FROM_BEGINNING, locate(FROM_BEGINNING, {0: ["a", "b", "c"]}))
    assert [(p.start, p.from_offset, p.to_offset) for p in plan.partitions] == [(0, 0, 3)]
    cut = from_sequence(LEDGER, "999", 2)
    with pytest.raises(ReplayError, match=r"rebuild-state .* takes --from-beginning"):
        plan_streams(Mode.REBUILD_STATE, cut, locate(cut, {0: ["a", "b"]}))


def test_a_file_whose_records_are_gone_is_refused() -> None:
    cut = from_sequence(LEDGER, "999", 2)
    with pytest.raises(ReplayError, match="none of the records of the selected file are in the topic"):
        plan_streams(Mode.RE_EMIT, cut, locate(cut, {0: ["a", "c"], 1: []}))


def test_a_log_truncated_by_retention_cannot_rebuild_the_tables() -> None:
    located = {0: Located(first=0, end=5), 1: Located(first=40, end=90)}
    with pytest.raises(ReplayError, match=r"no longer starts at offset 0 on partition\(s\) 1"):
        plan_streams(Mode.REBUILD_STATE, FROM_BEGINNING, located)


def test_the_sink_goes_back_to_the_selection_never_forward() -> None:
    cut = from_sequence(LEDGER, "999", 2)
    located = locate(cut, {0: ["a", "a", "b", "c"], 1: ["a", "b"], 2: ["b"]})
    plan = plan_sink(cut, located, stored={0: 4, 1: 0})  # partition 1 has not got that far; 2 has no row
    assert plan.group == "esr-sink"
    assert [(p.topic, p.from_offset, p.to_offset) for p in plan.partitions] == [
        (CHANGES, 2, 4), (CHANGES, 0, 2), (CHANGES, 0, 1)]


def test_the_plan_reads_as_a_table_and_says_what_happens() -> None:
    cut = from_sequence(LEDGER, "999", 2)
    plan = plan_streams(Mode.RE_EMIT, cut, locate(cut, {0: ["a", "b", "b"], 1: ["a"]}))
    text = "\n".join(plan.describe())
    assert "re-emit for consumer group esr-streams, from GO_999_EXP_GOC_20260106_00000002.DAT" in text
    assert "esr.records            0           1           3           2" in text
    assert "esr.records            1           1           1           0" in text
    assert "sent again with the same event ids" in text


# -- provenance -------------------------------------------------------------------------------------------


def test_the_sha_is_read_from_the_head_of_a_record_event() -> None:
    value = record("PERSON", "1", person("1", "Jones"), person_id="1", line_no=7)
    assert record_sha(value) == SHA == Decoder("record-event").decode(value)["source"]["file_sha256"]
    assert record_sha(b"\x00\x00\x00\x00\x01" + value[10:]) is None  # Confluent framing: decoded instead
    assert record_sha(value[:2] + b"\x00" * 8 + value[10:]) is None  # an unknown writer schema
    assert record_sha(value[:11]) is None  # cut short
    assert record_sha(None) is None


# -- the fence ----------------------------------------------------------------------------------------------


def test_the_worker_reads_the_plan_it_was_given() -> None:
    located = locate(FROM_BEGINNING, {0: ["a", "b", "c"], 1: ["a"]})
    cut = from_sequence(LEDGER, "999", 2)
    re_emit = plan_streams(Mode.RE_EMIT, cut, locate(cut, {0: ["a", "b", "c"], 1: ["a"]}))
    fence = ReplayFence.parse(re_emit.fence("topic-1"), "topic-1")
    assert fence is not None
    assert (fence.mode, dict(fence.bounds)) == ("re-emit", {0: (1, 3), 1: (1, 1)})
    rebuild = ReplayFence.parse(plan_streams(Mode.REBUILD_STATE, FROM_BEGINNING, located).fence(None), "topic-1")
    assert rebuild is not None
    assert dict(rebuild.bounds) == {0: (3, 3), 1: (1, 1)}  # nothing emitted up to the end


def test_a_plan_for_another_incarnation_of_the_topic_is_ignored_and_garbage_refused() -> None:
    plan = plan_streams(Mode.RE_EMIT, FROM_BEGINNING, locate(FROM_BEGINNING, {0: ["a"]}))
    assert ReplayFence.parse(plan.fence("old"), "new") is None
    with pytest.raises(ValueError, match="not a replay plan"):
        ReplayFence.parse(json.dumps({"mode": "re-emit"}).encode(), "new")
    with pytest.raises(ValueError, match="not a replay plan"):
        ReplayFence.parse(b"\xc3\x01garbage", None)


def events_at(partition: int, offsets: range) -> list[Event]:
    return [Event(Message(RECORDS, partition, offset, b"999:1", b"")) for offset in offsets]


def test_a_batch_is_split_at_the_bounds_keeping_each_partitions_order() -> None:
    fence = ReplayFence("p", "re-emit", {0: (2, 4), 1: (0, 0)})
    batch = [*events_at(0, range(6)), *events_at(1, range(3)), *events_at(2, range(2))]
    segments = [(muted, [(e.message.partition, e.message.offset) for e in events])
                for muted, events in fence.split(batch)]
    assert segments == [
        (MUTE_ALL, [(0, 0), (0, 1)]),
        (MUTE_COPIES, [(0, 2), (0, 3)]),
        (NOTHING, [(0, 4), (0, 5), (1, 0), (1, 1), (1, 2), (2, 0), (2, 1)]),
    ]


def test_the_processor_sends_nothing_below_the_fence_but_writes_its_tables() -> None:
    employees, references, output = Table(), Table(), Output()
    processor = EmployeesProcessor(load_domain("tests.doubles.domain"), employees, references,  # type: ignore[arg-type]
                                   output, 3, clock=lambda: 1_700_000_000.0)  # type: ignore[arg-type]
    log = Log()
    events = [log.event(b"999:1", record("PERSON", "1", person("1", f"Jones{n}"), person_id="1", line_no=n + 2))
              for n in range(3)]
    partition = events[0].message.partition
    undecodable = log.event(b"999:1", b"\xc3\x01broken")  # a dead letter the first time: not sent again
    processor.fence = ReplayFence("p", "re-emit", {partition: (1, 4)})

    async def go() -> None:
        await processor.process_fenced([*events, undecodable])
        await processor.settle()

    asyncio.run(go())
    assert len(employees.writes) == 2  # offset 0 alone, then 1-2 together: the table follows every record
    sent = [(topic, headers.get("esr.event_type")) for topic, _, _, _, raw in output.sent
            for headers in [dict(raw)]]
    assert (CHANGES, b"NEW_STARTER") not in sent  # offset 0: muted
    assert [topic for topic, _ in sent].count(CHANGES) == 2  # the surname changes at offsets 1 and 2
    assert EMPLOYEES in {topic for topic, _ in sent}
    assert DLQ_PROCESS not in {topic for topic, _ in sent}
    processor.fence = None
    asyncio.run(go())  # without a fence everything is sent
    assert DLQ_PROCESS in {topic for topic, *_ in output.sent}


# -- the group check ----------------------------------------------------------------------------------------


def test_only_an_empty_or_dead_group_is_idle() -> None:
    assert GroupActivity("esr-streams", "EMPTY", 0).idle
    assert GroupActivity("esr-streams", "DEAD", 0).idle
    stable_on_tansu = GroupActivity("esr-streams", "STABLE", 0)
    assert not stable_on_tansu.idle
    assert "consumer group esr-streams has active members (the broker does not list them)" in (
        stable_on_tansu.refusal())
    on_kafka = GroupActivity("esr-sink", "STABLE", 2)
    assert not on_kafka.idle
    assert on_kafka.refusal().startswith("consumer group esr-sink has 2 active member(s), state STABLE")
    assert not GroupActivity("esr-streams", "PREPARING_REBALANCE", 0).idle


def test_the_sink_has_no_state_to_rebuild() -> None:
    with pytest.raises(ReplayError, match="the sink keeps no state of its own to rebuild"):
        Replay({}, "postgresql://unused").plan("esr-sink", Mode.REBUILD_STATE, FROM_BEGINNING)


def test_a_message_the_ledger_does_not_know_is_decoded_once_for_its_own_time() -> None:
    provenance = Provenance({})
    value = record("PERSON", "1", person("1", "Jones"), person_id="1", line_no=7)
    assert provenance.of_record(value, {}) == SHA
    assert provenance.time_of(SHA) == dt.datetime(2024, 3, 1, tzinfo=dt.UTC)  # its ingested_at
    barrier = Encoder("control-event").encode(control_event(
        "FILE_COMPLETED", vpd="999", file_name="GO_999_EXP_GOF_20240301_00000001.DAT", file_sha256="f" * 64,
        sequence=1, extract_type="F", run_date=dt.datetime(2024, 3, 1)))
    assert provenance.of_record(barrier, {FORWARDED: FORWARDED_FULL_FILE}) == "f" * 64
    assert provenance.of_record(b"\xc3\x01not an event", {}) is None
    assert provenance.of_record(None, {}) is None
    assert Provenance({SHA: T0}).time_of(SHA) == T0  # the ledger's time first
