"""streams.mapping_stage.StageReader.apply_batch: a poll's messages applied with only the last readable state of
each employee or reference entity decoded gives the same directory, and the same mapped changes, as applying
every message in order."""

from __future__ import annotations

import dataclasses
import itertools
from typing import Any

import orjson
from confluent_kafka import Message
from hypothesis import given, settings
from hypothesis import strategies as st

from esr.kafka.topics import EMPLOYEES
from streams.mapping import MappingDirectory
from streams.mapping_stage import StageReader, new_directory
from streams.port import DomainPort, load_domain
from streams.topics import REFERENCES_CHANGELOG
from tests.unit.mapping.test_directory import VPD, snapshot

#: reference replicas as plain JSON rows: what the reader decodes them with here
DOMAIN: DomainPort = dataclasses.replace(load_domain(), decode_reference_state=orjson.loads,
                                         reference_entry=lambda state: state)
UNREADABLE = b"{not json"

EMPLOYEE_VALUES: dict[str, list[bytes | None]] = {
    "1": [orjson.dumps(snapshot("1", supervisor="2", location="L1")), orjson.dumps(snapshot("1", last_name="Jones")),
          None, UNREADABLE],
    "2": [orjson.dumps(snapshot("2", employee_number="M2", organisation="O1")),
          orjson.dumps(snapshot("2", employee_number="M2b", supervisor="3")), None, UNREADABLE],
    "3": [orjson.dumps(snapshot("3", last_name="Boss")),
          orjson.dumps(snapshot("3", last_name="Boss", run="2026-02-01")), UNREADABLE],
}
REFERENCE_VALUES: dict[bytes, list[bytes | None]] = {
    f"{VPD}:LOCATION:L1".encode(): [orjson.dumps({"location_id": "L1", "description": "North"}),
                                    orjson.dumps({"location_id": "L1", "description": "Old north"}), None, UNREADABLE],
    f"{VPD}:ORGANISATION:O1".encode(): [orjson.dumps({"organisation_id": "O1", "name": "Org", "location_id": "L1"}),
                                        None, UNREADABLE],
}


@st.composite
def messages(draw: st.DrawFn) -> list[Message]:
    """Employee states and reference replicas (two partitions each) in any order, some unreadable."""
    choices = ([(EMPLOYEES, f"{VPD}:{p}".encode(), v) for p, values in EMPLOYEE_VALUES.items() for v in values]
               + [(REFERENCES_CHANGELOG, key + f"@{replica}".encode(), v) for key, values in REFERENCE_VALUES.items()
                  for v in values for replica in (0, 1)])
    picked = draw(st.lists(st.sampled_from(choices), max_size=30))
    return [Message(topic=topic, partition=0, offset=offset, key=key, value=value)
            for offset, (topic, key, value) in enumerate(picked)]


def run(polls: list[list[Message]], *, batched: bool) -> tuple[MappingDirectory, list[dict[str, Any]]]:
    directory = new_directory()
    reader = StageReader(directory, DOMAIN)
    events = []
    for number, poll in enumerate(polls):
        if batched:
            reader.apply_batch(poll)
        else:
            for message in poll:
                reader.apply(message)
        events.extend(directory.drain(number))
    return directory, events


@settings(max_examples=150)
@given(messages(), st.lists(st.integers(0, 30), max_size=4))
def test_a_batch_gives_what_its_messages_one_by_one_give(stream: list[Message], cuts: list[int]) -> None:
    bounds = [0, *sorted(cuts), len(stream)]
    polls = [stream[a:b] for a, b in itertools.pairwise(bounds)]
    one_by_one, expected = run(polls, batched=False)
    batched, events = run(polls, batched=True)
    assert events == expected
    assert batched.employees == one_by_one.employees
    assert batched.references == one_by_one.references
    assert list(batched.records(VPD)) == list(one_by_one.records(VPD))


def test_only_the_last_readable_state_of_a_key_is_decoded() -> None:
    decoded: list[bytes] = []

    def decode(value: bytes) -> Any:
        decoded.append(value)
        return orjson.loads(value)

    reader = StageReader(new_directory(), dataclasses.replace(DOMAIN, decode_reference_state=decode))
    location = f"{VPD}:LOCATION:L1".encode()
    first, last = REFERENCE_VALUES[location][:2]
    assert last is not None
    reader.apply_batch([
        Message(topic=REFERENCES_CHANGELOG, partition=0, offset=0, key=location + b"@0", value=first),
        Message(topic=REFERENCES_CHANGELOG, partition=1, offset=0, key=location + b"@1", value=last),
        Message(topic=REFERENCES_CHANGELOG, partition=1, offset=1, key=location + b"@1", value=UNREADABLE),
    ])
    assert decoded == [UNREADABLE, last]  # the unreadable last one, then the one before it
    assert reader.skipped == 1
    assert reader.directory.references == {(VPD, "LOCATION", "L1"): orjson.loads(last)}
