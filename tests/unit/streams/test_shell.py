"""The Faust shell's batch logic without Kafka: `EmployeesProcessor` over fake events, tables and producer.

The domain is the test double (`tests.doubles.domain`), so these tests pin down what the shell does with
whatever the domain returns: grouping, table writes, keys and partitions of the outputs, forwarding,
ordering at forwarded messages, dead letters.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiokafka.partitioner import DefaultPartitioner  # type: ignore[import-untyped]

from esr.codec import Encoder, control_event
from esr.codec.events import _PAYLOAD_TYPE
from esr.kafka.topics import (
    CHANGES,
    DLQ_OFFSET,
    DLQ_PARTITION,
    DLQ_PROCESS,
    DLQ_REASON,
    DLQ_TOPIC,
    EMPLOYEES,
    FORWARDED,
    FORWARDED_FULL_FILE,
    FORWARDED_REFERENCE,
    ORIGIN_OFFSET,
    ORIGIN_PARTITION,
    RECORDS,
)
from streams.agents import EmployeesProcessor
from streams.partitioner import murmur2_partitioner, partition_for
from streams.port import load_domain

PARTITIONS = 3
SHA = "ab" * 32
RUN = dt.datetime(2024, 3, 1)


@dataclass
class Message:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]] = field(default_factory=list)


@dataclass
class Event:
    message: Message


class Table:
    """What the processor uses of a BatchTable."""

    def __init__(self) -> None:
        self.data: dict[bytes, bytes] = {}
        self.partition_of: dict[bytes, int] = {}
        self.writes: list[tuple[int, bytes, bytes | None]] = []

    def put(self, event: Event, key: bytes, value: bytes | None) -> None:
        self.writes.append((event.message.partition, key, value))
        if value is None:
            self.data.pop(key, None)
        else:
            self.data[key] = value
            self.partition_of[key] = event.message.partition

    def keys_in_partition(self, partition: int, prefix: bytes = b"") -> list[bytes]:
        return [k for k, p in self.partition_of.items() if p == partition and k.startswith(prefix) and k in self.data]


class Output:
    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes | None, bytes | None, int | None, list[tuple[str, bytes]]]] = []

    def send(self, topic: str, key: bytes | None, value: bytes | None, partition: int | None = None,
             headers: Any = None) -> None:
        self.sent.append((topic, key, value, partition, list(headers or [])))

    def seal(self) -> asyncio.Future[None]:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        future.set_result(None)
        return future

    def to(self, topic: str) -> list[tuple[bytes | None, bytes | None, int | None, dict[str, bytes]]]:
        return [(k, v, p, dict(h)) for t, k, v, p, h in self.sent if t == topic]


ENCODER = Encoder("record-event")


def record(entity_type: str, entity_id: str, payload: dict[str, Any] | None, *, person_id: str | None,
           line_no: int, sequence: int = 1) -> bytes:
    code = {"PERSON": "PRA", "ASSIGNMENT": "ASA", "LOCATION": "LCA"}[entity_type]
    if payload is None:
        code = code[:2] + "D"
    return ENCODER.encode({
        "record_id": f"{SHA}:{line_no}", "vpd": "999", "record_code": code, "entity_type": entity_type,
        "action": "DELETE" if payload is None else "UPSERT", "entity_id": entity_id, "person_id": person_id,
        "payload": None if payload is None else (_PAYLOAD_TYPE[code], payload),
        "extra_fields": [], "issues": [],
        "source": {"file_name": "GO_999_EXP_GOF_20240301_00000001.DAT", "file_sha256": SHA, "line_no": line_no,
                   "sequence": sequence, "extract_type": "F", "extract_date": RUN.date(), "run_date": RUN,
                   "previous_run_date": None},
        "ingested_at": dt.datetime(2024, 3, 1, tzinfo=dt.UTC),
    })


def person(person_id: str, last_name: str) -> dict[str, Any]:
    from esr.format.layouts import LAYOUTS

    layout = next(layout for layout in LAYOUTS if layout.code == "PRA")
    values: dict[str, Any] = {f.name: None for f in layout.data_fields}
    values.update(person_id=person_id, last_name=last_name)
    return values


def assignment(assignment_id: str, person_id: str, location_id: str) -> dict[str, Any]:
    from esr.format.layouts import LAYOUTS

    layout = next(layout for layout in LAYOUTS if layout.code == "ASA")
    values: dict[str, Any] = {f.name: None for f in layout.data_fields}
    values.update(assignment_id=assignment_id, person_id=person_id, location_id=location_id)
    return values


def location(location_id: str, postcode: str) -> dict[str, Any]:
    from esr.format.layouts import LAYOUTS

    layout = next(layout for layout in LAYOUTS if layout.code == "LCA")
    values: dict[str, Any] = {f.name: None for f in layout.data_fields}
    values.update(location_id=location_id, postcode=postcode)
    return values


class Log:
    """esr.records as the processor sees it: offsets per partition."""

    def __init__(self) -> None:
        self.offsets = [0] * PARTITIONS

    def event(self, key: bytes, value: bytes | None, *, partition: int | None = None,
              headers: Sequence[tuple[str, bytes]] = ()) -> Event:
        partition = partition_for(key, PARTITIONS) if partition is None else partition
        offset = self.offsets[partition]
        self.offsets[partition] += 1
        return Event(Message(RECORDS, partition, offset, key, value, list(headers)))


@pytest.fixture
def shell() -> tuple[EmployeesProcessor, Table, Table, Output]:
    employees, references, output = Table(), Table(), Output()
    processor = EmployeesProcessor(load_domain("tests.doubles.domain"), employees, references,  # type: ignore[arg-type]
                                   output, PARTITIONS, clock=lambda: 1_700_000_000.0)  # type: ignore[arg-type]
    return processor, employees, references, output


def run(processor: EmployeesProcessor, events: list[Event]) -> None:
    async def go() -> None:
        await processor.process(events)
        await processor.settle()

    asyncio.run(go())


def test_partitioner_is_aiokafkas_default_for_keys() -> None:
    default = DefaultPartitioner()
    for n in range(500):
        key = f"999:{n * 7919}".encode()
        assert murmur2_partitioner(key, list(range(6)), list(range(6))) == default(key, list(range(6)), [])
        assert partition_for(key, 6) == default(key, list(range(6)), [])


def test_one_call_one_table_write_per_key_per_batch(shell: tuple[EmployeesProcessor, Table, Table, Output]) -> None:
    processor, employees, _, output = shell
    log = Log()
    events = [
        log.event(b"999:1", record("PERSON", "1", person("1", "Jones"), person_id="1", line_no=2)),
        log.event(b"999:2", record("PERSON", "2", person("2", "Evans"), person_id="2", line_no=3)),
        log.event(b"999:1", record("ASSIGNMENT", "10", assignment("10", "1", "L1"), person_id="1", line_no=4)),
    ]
    run(processor, events)
    assert sorted(key for _, key, _ in employees.writes) == [b"999:1", b"999:2"]
    for partition, key, value in employees.writes:
        assert partition == partition_for(key, PARTITIONS)
        assert value is not None
    changes = output.to(CHANGES)
    assert [(k, h["esr.event_type"]) for k, _, _, h in changes if k == b"999:1"] == [
        (b"999:1", b"NEW_STARTER"), (b"999:1", b"ASSIGNMENT_ADDED")]
    assert all(p == partition_for(k or b"", PARTITIONS) for k, _, p, _ in changes)
    states = {k: v for k, v, _, _ in output.to(EMPLOYEES)}
    assert set(states) == {b"999:1", b"999:2"}


def test_undecodable_record_is_dead_lettered_and_the_rest_goes_on(
        shell: tuple[EmployeesProcessor, Table, Table, Output]) -> None:
    processor, employees, _, output = shell
    log = Log()
    bad = log.event(b"999:7", b"\x00garbage")
    good = log.event(b"999:8", record("PERSON", "8", person("8", "Hughes"), person_id="8", line_no=2))
    run(processor, [bad, good])
    (dead,) = output.to(DLQ_PROCESS)
    key, value, _, headers = dead
    assert (key, value) == (b"999:7", b"\x00garbage")
    assert headers[DLQ_TOPIC] == RECORDS.encode()
    assert headers[DLQ_PARTITION] == str(bad.message.partition).encode()
    assert headers[DLQ_OFFSET] == str(bad.message.offset).encode()
    assert b"undecodable" in headers[DLQ_REASON]
    assert [key for _, key, _ in employees.writes] == [b"999:8"]
    assert processor.stats.dead_letters == 1


def test_reference_record_is_applied_by_its_owner_and_forwarded_to_the_other_partitions(
        shell: tuple[EmployeesProcessor, Table, Table, Output]) -> None:
    processor, _, references, output = shell
    log = Log()
    key = b"999:LOCATION:L1"
    owner = partition_for(key, PARTITIONS)
    event = log.event(key, record("LOCATION", "L1", location("L1", "AB1 2CD"), person_id=None, line_no=2))
    run(processor, [event])
    forwarded = output.to(RECORDS)
    assert sorted(p or 0 for _, _, p, _ in forwarded) == [p for p in range(PARTITIONS) if p != owner]
    for k, v, _, headers in forwarded:
        assert (k, v) == (key, event.message.value)
        assert headers[FORWARDED] == FORWARDED_REFERENCE
        assert headers[ORIGIN_PARTITION] == str(owner).encode()
        assert headers[ORIGIN_OFFSET] == b"0"
    assert [(p, k) for p, k, _ in references.writes] == [(owner, key + f"@{owner}".encode())]
    assert [h["esr.event_type"] for _, _, _, h in output.to(CHANGES)] == [b"LOCATION_ADDED"]


def test_forwarded_reference_updates_the_replica_and_fans_out_without_reference_events(
        shell: tuple[EmployeesProcessor, Table, Table, Output]) -> None:
    processor, _, references, output = shell
    log = Log()
    employee = b"999:1"
    here = partition_for(employee, PARTITIONS)
    ref_key = b"999:LOCATION:L1"
    origin = (here + 1) % PARTITIONS
    first = record("LOCATION", "L1", location("L1", "AB1 2CD"), person_id=None, line_no=2)
    moved = record("LOCATION", "L1", location("L1", "ZZ9 9ZZ"), person_id=None, line_no=9, sequence=2)

    def forwarded(value: bytes, origin_offset: int) -> Event:
        return log.event(ref_key, value, partition=here, headers=[
            (FORWARDED, FORWARDED_REFERENCE), (ORIGIN_PARTITION, str(origin).encode()),
            (ORIGIN_OFFSET, str(origin_offset).encode())])

    events = [
        forwarded(first, 0),
        log.event(employee, record("PERSON", "1", person("1", "Jones"), person_id="1", line_no=3)),
        log.event(employee, record("ASSIGNMENT", "10", assignment("10", "1", "L1"), person_id="1", line_no=4)),
        forwarded(moved, 1),
    ]
    run(processor, events)
    replica = ref_key + f"@{here}".encode()
    assert [k for p, k, _ in references.writes] == [replica, replica]
    types = [h["esr.event_type"] for _, _, _, h in output.to(CHANGES)]
    # no LOCATION_* events here (the owner emits them); the move reaches the employee's assignment
    assert types == [b"NEW_STARTER", b"ASSIGNMENT_ADDED", b"WORK_ADDRESS_CHANGED"]


def test_full_file_barrier_reconciles_only_this_partitions_employees(
        shell: tuple[EmployeesProcessor, Table, Table, Output]) -> None:
    processor, _, _, output = shell
    log = Log()
    keys = [f"999:{n}".encode() for n in range(12)]
    run(processor, [log.event(k, record("PERSON", k.decode()[4:], person(k.decode()[4:], "X"),
                                        person_id=k.decode()[4:], line_no=2 + i)) for i, k in enumerate(keys)])
    output.sent.clear()
    completed = Encoder("control-event").encode(control_event(
        "FILE_COMPLETED", vpd="999", file_name="GO_999_EXP_GOF_20240302_00000002.DAT", file_sha256="cd" * 32,
        sequence=2, extract_type="F", run_date=RUN, ts=dt.datetime(2024, 3, 2, tzinfo=dt.UTC)))
    barrier = log.event(b"999:FILE_COMPLETED", completed, partition=0, headers=[
        (FORWARDED, FORWARDED_FULL_FILE), (ORIGIN_PARTITION, b"0"), (ORIGIN_OFFSET, b"5")])
    run(processor, [barrier])
    absent = {k for k, _, _, h in output.to(CHANGES) if h["esr.event_type"] == b"ABSENT_FROM_FULL_FILE"}
    assert absent == {k for k in keys if partition_for(k, PARTITIONS) == 0}


def test_the_barrier_skips_the_states_its_own_file_wrote_in_full() -> None:
    """With the real domain: at the barrier of the file that wrote every employee in full nothing is decoded
    (`complete_in_file`), and nothing is emitted, as the domain would have decided; another file's barrier, or
    the same one after a rebalance forgot what was noted, decodes them."""
    from dataclasses import replace

    domain = load_domain()
    decoded: list[bytes] = []

    def decode_state(raw: bytes) -> Any:
        decoded.append(raw)
        return domain.decode_state(raw)

    output = Output()
    processor = EmployeesProcessor(replace(domain, decode_state=decode_state), Table(), Table(),  # type: ignore[arg-type]
                                   output, PARTITIONS, clock=lambda: 1_700_000_000.0)  # type: ignore[arg-type]
    log = Log()
    keys = [f"999:{n}".encode() for n in range(12)]
    run(processor, [log.event(k, record("PERSON", k.decode()[4:], person(k.decode()[4:], "X"),
                                        person_id=k.decode()[4:], line_no=2 + i)) for i, k in enumerate(keys)])
    on_partition_0 = {k for k in keys if partition_for(k, PARTITIONS) == 0}
    assert on_partition_0

    def barrier(sha: str) -> set[bytes]:
        completed = Encoder("control-event").encode(control_event(
            "FILE_COMPLETED", vpd="999", file_name="GO_999_EXP_GOF_20240301_00000001.DAT", file_sha256=sha,
            sequence=1, extract_type="F", run_date=RUN, ts=dt.datetime(2024, 3, 2, tzinfo=dt.UTC)))
        output.sent.clear()
        decoded.clear()
        run(processor, [log.event(b"999:FILE_COMPLETED", completed, partition=0, headers=[
            (FORWARDED, FORWARDED_FULL_FILE), (ORIGIN_PARTITION, b"0"), (ORIGIN_OFFSET, b"5")])])
        return {k for k, _, _, h in output.to(CHANGES) if k and h["esr.event_type"] == b"ABSENT_FROM_FULL_FILE"}

    assert barrier(SHA) == set()
    assert decoded == []
    assert barrier("cd" * 32) == on_partition_0
    assert len(decoded) == len(on_partition_0)
    processor.forget_partitions()
    assert barrier(SHA) == set()
    assert len(decoded) == len(on_partition_0)
