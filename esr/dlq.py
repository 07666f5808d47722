"""Dead letters: what the worker (`esr.dlq.process`) and the sink (`esr.dlq.sink`) could not handle.

Each dead letter is the original message (key, value, headers) plus headers naming the stage, the reason,
the error and where it came from (`esr.dlq.original.topic/partition/offset`). `esr dlq` lists them, shows
one with its payload decoded, sends one back to its original topic (`replay`, after the cause is fixed) or
records that it is dropped on purpose (`discard`). Both decisions are kept in PostgreSQL
(`esr.dead_letter_resolution`) with who made them; the topics stay append-only.

Parking (`esr.parking`): at the worker and the sink, the open letters of one employee form a group, the
earliest in the original log (the blocker) first, then the letters parked behind it. A group is resolved
as a whole, through the log, so that the employee's order holds:

* `replay BLOCKER` sends the blocker and its parked letters back, in their original order, with headers
  that release the employee (the stage applies them and clears the park);
* `discard BLOCKER` drops the blocker and sends its parked letters back in order (they were only waiting);
  the blocker itself is sent once more, marked discarded, to release the employee where it was parked;
  `--with-followers` drops them all (one discarded marker releases the employee);
* a parked letter cannot be replayed on its own (it would overtake its blocker); it can be discarded on
  its own (it is then left out when its group is resolved).
"""

from __future__ import annotations

import getpass
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import psycopg

from esr.codec import Decoder, UndecodableMessage
from esr.kafka.producer import Publisher
from esr.kafka.reading import TopicReadError, read_to_end, topic_id
from esr.kafka.topics import (
    CHANGES,
    DLQ_ERROR,
    DLQ_INGEST,
    DLQ_OFFSET,
    DLQ_PARTITION,
    DLQ_PROCESS,
    DLQ_REASON,
    DLQ_SINK,
    DLQ_TOPIC,
    RECORDS,
)
from esr.parking import Group, Release, group_letters, release_plan

STAGES = {"ingest": DLQ_INGEST, "process": DLQ_PROCESS, "sink": DLQ_SINK}
_DLQ_PREFIX = "esr.dlq."
_SUBJECT_OF_TOPIC = {RECORDS: "record-event", CHANGES: "change-event"}
#: the stages whose dead letters park the employee's later messages (esr.parking)
PARKING_STAGES = frozenset({"process", "sink"})


class DeadLetterError(RuntimeError):
    pass


@dataclass(frozen=True)
class DeadLetter:
    stage: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: dict[str, bytes]
    resolution: str | None  # replayed | discarded | None (open)

    @property
    def reason(self) -> str:
        return self.headers.get(DLQ_REASON, b"").decode(errors="replace")

    @property
    def location(self) -> str:
        """PARTITION:OFFSET in the dead-letter topic, as the commands take it."""
        return f"{self.partition}:{self.offset}"

    @property
    def error(self) -> str:
        return self.headers.get(DLQ_ERROR, b"").decode(errors="replace")

    @property
    def origin(self) -> tuple[str, int, int] | None:
        try:
            return (
                self.headers[DLQ_TOPIC].decode(),
                int(self.headers[DLQ_PARTITION]),
                int(self.headers[DLQ_OFFSET]),
            )
        except (KeyError, ValueError):
            return None

    def payload(self) -> dict[str, Any] | str | None:
        """The value decoded with its original topic's schema, else a note on why it cannot be."""
        if self.value is None:
            return None
        origin = self.origin
        subject = _SUBJECT_OF_TOPIC.get(origin[0]) if origin else None
        if subject is None:
            return f"<{len(self.value)} bytes of an unknown kind>"
        try:
            return Decoder(subject).decode(self.value)
        except UndecodableMessage as exc:
            return f"<undecodable: {exc}>"


class DeadLetters:
    def __init__(self, client_config: dict[str, Any], database_url: str) -> None:
        self.config = client_config
        self.database_url = database_url

    def _resolutions(self, stage: str, dlq_topic_id: str) -> dict[tuple[int, int], str]:
        with psycopg.connect(self.database_url) as conn:
            rows = conn.execute(
                'SELECT partition, "offset", action FROM esr.dead_letter_resolution WHERE stage = %s AND topic_id = %s',
                (stage, dlq_topic_id),
            ).fetchall()
        return {(partition, offset): action for partition, offset, action in rows}

    def read(self, stage: str) -> Iterator[DeadLetter]:
        """Every dead letter of the stage, oldest first per partition, read to the real end of the topic
        (end-of-partition events: the embedded broker's high watermark is wrong)."""
        topic = STAGES[stage]
        resolutions = self._resolutions(stage, topic_id(self.config, topic) or "")
        try:
            for message in read_to_end(self.config, topic):
                partition, offset = message.partition(), message.offset()
                assert partition is not None
                assert offset is not None
                raw_headers = message.headers() or []
                pairs = raw_headers.items() if isinstance(raw_headers, dict) else raw_headers
                headers = {k: v if isinstance(v, bytes) else str(v or "").encode() for k, v in pairs}
                yield DeadLetter(stage, partition, offset, message.key(), message.value(), headers,
                                 resolutions.get((partition, offset)))
        except TopicReadError as exc:
            raise DeadLetterError(str(exc)) from None

    def open_counts(self) -> dict[str, int]:
        """Per stage: the dead letters neither replayed nor discarded (metric `esr_dlq_messages`)."""
        return {stage: sum(1 for letter in self.read(stage) if letter.resolution is None) for stage in STAGES}

    def get(self, stage: str, partition: int, offset: int) -> DeadLetter:
        for letter in self.read(stage):
            if (letter.partition, letter.offset) == (partition, offset):
                return letter
        raise DeadLetterError(f"no dead letter at {STAGES[stage]}[{partition}]@{offset}")

    def groups(self, stage: str) -> tuple[list[Group[DeadLetter]], list[DeadLetter]]:
        """The stage's open letters grouped behind their blockers, and every other letter (`esr.parking`)."""
        letters = list(self.read(stage))
        if stage not in PARKING_STAGES:
            return [], letters
        return group_letters(letters)

    def _group_of(self, letter: DeadLetter) -> Group[DeadLetter] | None:
        groups, _ = self.groups(letter.stage)
        here = (letter.partition, letter.offset)
        for group in groups:
            if any((copy.partition, copy.offset) == here for copy in group.all_copies()):
                return group
        return None

    def _resolve(self, resolved: list[tuple[DeadLetter, str, str | None]]) -> None:
        """Record the decisions in one transaction; the first letter is the one the operator named: an error
        if someone resolved it meanwhile."""
        named = resolved[0][0]
        current_id = topic_id(self.config, STAGES[named.stage]) or ""
        with psycopg.connect(self.database_url) as conn:
            counts = [conn.execute(
                'INSERT INTO esr.dead_letter_resolution (stage, topic_id, partition, "offset", action, reason,'
                " resolved_by) VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
                (letter.stage, current_id, letter.partition, letter.offset, action, reason, getpass.getuser()),
            ).rowcount for letter, action, reason in resolved]
        if not counts[0]:
            raise DeadLetterError(f"{STAGES[named.stage]}[{named.partition}]@{named.offset} is already resolved")

    def _release(self, group: Group[DeadLetter], publisher: Publisher, *, discard_blocker: bool,
                 discard_followers: bool) -> list[tuple[DeadLetter, Release]]:
        """Send the group back to its original topic in order, with its release headers (`esr.parking`)."""
        plan = release_plan(group, discard_blocker=discard_blocker, discard_followers=discard_followers)
        for letter, release in plan:
            origin = letter.origin
            assert origin is not None  # grouped letters have one
            headers = [*((k, v) for k, v in letter.headers.items() if not k.startswith(_DLQ_PREFIX)),
                       *release.headers()]
            publisher.send(origin[0], letter.key, letter.value, headers, partition=origin[1])
        publisher.flush()
        return plan

    def replay(self, letter: DeadLetter, publisher: Publisher) -> tuple[tuple[str, int, int], int]:
        """Send the message back to its original topic with its key and original headers; a blocker with
        the letters parked behind it (module doc). Returns the origin and the number of messages sent."""
        if letter.resolution is not None:
            raise DeadLetterError(f"already {letter.resolution}")
        origin = letter.origin
        if origin is None:
            raise DeadLetterError("the dead letter does not name its original topic")
        group = self._group_of(letter) if letter.stage in PARKING_STAGES else None
        if group is not None:
            if group.blocker.origin != origin:
                raise DeadLetterError(
                    f"parked behind {group.blocker.location} (from {_where(group.blocker)}): replay or discard "
                    "that one, its parked letters follow it in order")
            # sent first: a replay that is sent twice is absorbed downstream (deterministic event ids), one
            # that is marked replayed but never sent would be lost
            plan = self._release(group, publisher, discard_blocker=False, discard_followers=False)
            self._resolve([(letter, "replayed", None), *((copy, "replayed", None) for copy in group.all_copies()
                                                         if copy.location != letter.location)])
            return origin, len(plan)
        headers = [(k, v) for k, v in letter.headers.items() if not k.startswith(_DLQ_PREFIX)]
        # sent first, as above
        publisher.send(origin[0], letter.key, letter.value, headers)
        publisher.flush()
        self._resolve([(letter, "replayed", None)])
        return origin, 1

    def discard(self, letter: DeadLetter, reason: str, publisher: Publisher | None = None, *,
                with_followers: bool = False) -> int:
        """Record that the letter is dropped on purpose. A blocker's employee is released through the log
        (`publisher` required) and its parked letters are replayed, or discarded too (`with_followers`).
        Returns the number of parked letters sent back."""
        if letter.resolution is not None:
            raise DeadLetterError(f"already {letter.resolution}")
        group = self._group_of(letter) if letter.stage in PARKING_STAGES else None
        if group is None or group.blocker.origin != letter.origin:
            if with_followers:
                raise DeadLetterError("--with-followers is for a blocker; this letter has no parked letters")
            self._resolve([(letter, "discarded", reason)])
            return 0
        if publisher is None:
            raise DeadLetterError("discarding a blocker releases its employee: a publisher is needed")
        plan = self._release(group, publisher, discard_blocker=True, discard_followers=with_followers)
        replayed = {id(sent) for sent, release in plan if not release.discarded}
        decisions: list[tuple[DeadLetter, str, str | None]] = [(letter, "discarded", reason)]
        decisions.extend((copy, "discarded", reason) for copy in group.copies.get(id(group.blocker), [])
                         if copy.location != letter.location)
        for follower in group.followers:
            action = "replayed" if id(follower) in replayed else "discarded"
            decisions.extend((copy, action, None if action == "replayed" else reason)
                             for copy in group.copies.get(id(follower), [follower]))
        self._resolve(decisions)
        return len(replayed)


def _where(letter: DeadLetter) -> str:
    origin = letter.origin
    return f"{origin[0]}[{origin[1]}]@{origin[2]}" if origin else "?"
