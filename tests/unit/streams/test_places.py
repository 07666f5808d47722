"""The work-address index (`streams.places`) with the real domain: the same events as a scan of every employee.

Generated files (a full file, then change files that move locations and add organisations) are laid out on
the partitions of esr.records as the ingest job lays them out (reference records on their own partition and
copied to every other one) and run through `EmployeesProcessor` in mixed-partition batches, once with the
index and once with the domain's index helpers removed (every employee of the trust scanned, as before).
"""

from __future__ import annotations

import asyncio
import copy
import dataclasses
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

import pytest

from esr.codec import Encoder
from esr.codec.events import _PAYLOAD_TYPE
from esr.generate import generate_files
from esr.kafka.topics import BROADCAST, CHANGES, FORWARDED, FORWARDED_REFERENCE
from streams.agents import EmployeesProcessor
from streams.partitioner import partition_for
from streams.port import DomainPort, load_domain
from tests.unit.streams.domain.harness import key_of, read_files
from tests.unit.streams.test_shell import PARTITIONS, Event, Log, Output, Table

BATCH = 300


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> list[list[Event]]:
    """Per file, the events of esr.records in the order they were published."""
    paths = generate_files("999", 300, 4, 11, tmp_path_factory.mktemp("places"))
    encoder, log = Encoder("record-event"), Log()
    out: list[list[Event]] = []
    for parsed in read_files(paths):
        events: list[Event] = []
        for record in parsed.events:
            key = key_of(record).encode()
            payload = record["payload"]
            value = encoder.encode({**record, "payload": payload and (_PAYLOAD_TYPE[record["record_code"]], payload)})
            if record["entity_type"] in ("LOCATION", "ORGANISATION", "POSITION"):
                owner = partition_for(key, PARTITIONS)
                events.append(log.event(key, value, headers=[(BROADCAST, b"1")]))
                events.extend(log.event(key, value, partition=p, headers=[(FORWARDED, FORWARDED_REFERENCE)])
                              for p in range(PARTITIONS) if p != owner)
            else:
                events.append(log.event(key, value))
        out.append(events)
    return out


class Counting:
    """A domain port whose decode_state counts its calls."""

    def __init__(self, port: DomainPort) -> None:
        self.calls = 0
        self.port = dataclasses.replace(port, decode_state=self._decode)
        self._inner = port.decode_state

    def _decode(self, raw: bytes) -> object:
        self.calls += 1
        return self._inner(raw)


def processor(port: DomainPort, employees: Table | None = None,
              references: Table | None = None) -> tuple[EmployeesProcessor, Output]:
    output = Output()
    made = EmployeesProcessor(port, employees or Table(), references or Table(), output,  # type: ignore[arg-type]
                              PARTITIONS, clock=lambda: 1_700_000_000.0)
    return made, output


def feed(target: EmployeesProcessor, events: Sequence[Event]) -> None:
    async def go() -> None:
        for start in range(0, len(events), BATCH):
            await target.process(events[start:start + BATCH])
            await target.settle()

    asyncio.run(go())


def changes_by_key(output: Output) -> dict[bytes | None, list[bytes | None]]:
    """esr.changes as the sink sees it: per key, the encoded events in order."""
    by_key: dict[bytes | None, list[bytes | None]] = defaultdict(list)
    for key, value, _, _ in output.to(CHANGES):
        by_key[key].append(value)
    return dict(by_key)


def work_address_events(output: Output) -> int:
    return sum(headers["esr.event_type"] == b"WORK_ADDRESS_CHANGED" for _, _, _, headers in output.to(CHANGES))


def test_the_index_gives_exactly_the_events_of_a_scan_and_decodes_less(files: list[list[Event]]) -> None:
    domain = load_domain()
    scanned, indexed = Counting(dataclasses.replace(domain, work_address_refs=None)), Counting(domain)
    scan, scan_out = processor(scanned.port)
    index, index_out = processor(indexed.port)
    feed(scan, files[0])
    feed(index, files[0])
    scanned.calls = indexed.calls = 0
    for events in files[1:]:
        feed(scan, events)
        feed(index, events)
    assert work_address_events(scan_out) > 20, "the change files moved no one's work address: nothing tested"
    assert changes_by_key(index_out) == changes_by_key(scan_out)
    # both decode each employee once per batch it has records in; the scan also decodes the whole trust per
    # run of moved references, the index only the employees at those places
    assert indexed.calls < scanned.calls / 2, (indexed.calls, scanned.calls)
    assert index.places.builds == 0, "a fresh start is indexed as employees are stored, never read back"


def test_after_recovery_the_index_is_rebuilt_from_the_table(files: list[list[Event]]) -> None:
    """A worker that took over tables filled by changelog recovery (not by its own writes) and one that was
    invalidated by a rebalance build their index from the table and still emit what a scan does."""
    domain = load_domain()
    scan, scan_out = processor(dataclasses.replace(domain, work_address_refs=None))
    first, _ = processor(domain)
    for events in files[:2]:
        feed(scan, events)
        feed(first, events)
    recovered, recovered_out = processor(domain, copy.deepcopy(first.employees),  # type: ignore[arg-type]
                                         copy.deepcopy(first.references))  # type: ignore[arg-type]
    scan_out.sent.clear()
    feed(scan, files[2])
    feed(recovered, files[2])
    assert recovered.places.builds >= 1
    recovered.places.invalidate()
    builds = recovered.places.builds
    feed(scan, files[3])
    feed(recovered, files[3])
    assert recovered.places.builds > builds
    assert work_address_events(scan_out) > 0
    assert changes_by_key(recovered_out) == changes_by_key(scan_out)


def test_a_domain_without_the_index_helpers_is_scanned(files: list[list[Event]], tmp_path: Path) -> None:
    """The shell's test double has no `work_address_refs`: every employee of the trust is offered."""
    double = load_domain("tests.doubles.domain")
    assert double.work_address_refs is None
    shell, _ = processor(double)
    feed(shell, files[0])
    keys = shell.employees.keys_in_partition(0, b"999:")
    assert keys

    async def offered() -> list[bytes]:
        return await shell.places.candidates(0, "999", {"no-such-location"}, set(), shell.view(0))

    assert asyncio.run(offered()) == sorted(keys)
    assert shell.places.builds == 0
    del tmp_path
