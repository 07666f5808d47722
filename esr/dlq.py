"""Dead letters: what the worker (`esr.dlq.process`) and the sink (`esr.dlq.sink`) could not handle.

Each dead letter is the original message (key, value, headers) plus headers naming the stage, the reason,
the error and where it came from (`esr.dlq.original.topic/partition/offset`). `esr dlq` lists them, shows
one with its payload decoded, sends one back to its original topic (`replay`, after the cause is fixed) or
records that it is dropped on purpose (`discard`). Both decisions are kept in PostgreSQL
(`esr.dead_letter_resolution`) with who made them; the topics stay append-only.
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
from esr.kafka.topics import CHANGES, DLQ_INGEST, DLQ_PROCESS, DLQ_SINK, RECORDS

STAGES = {"ingest": DLQ_INGEST, "process": DLQ_PROCESS, "sink": DLQ_SINK}
_DLQ_PREFIX = "esr.dlq."
_SUBJECT_OF_TOPIC = {RECORDS: "record-event", CHANGES: "change-event"}


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
        return self.headers.get("esr.dlq.reason", b"").decode(errors="replace")

    @property
    def error(self) -> str:
        return self.headers.get("esr.dlq.error", b"").decode(errors="replace")

    @property
    def origin(self) -> tuple[str, int, int] | None:
        try:
            return (
                self.headers["esr.dlq.original.topic"].decode(),
                int(self.headers["esr.dlq.original.partition"]),
                int(self.headers["esr.dlq.original.offset"]),
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

    def get(self, stage: str, partition: int, offset: int) -> DeadLetter:
        for letter in self.read(stage):
            if (letter.partition, letter.offset) == (partition, offset):
                return letter
        raise DeadLetterError(f"no dead letter at {STAGES[stage]}[{partition}]@{offset}")

    def _resolve(self, letter: DeadLetter, action: str, reason: str | None) -> None:
        current_id = topic_id(self.config, STAGES[letter.stage]) or ""
        with psycopg.connect(self.database_url) as conn:
            inserted = conn.execute(
                'INSERT INTO esr.dead_letter_resolution (stage, topic_id, partition, "offset", action, reason,'
                " resolved_by) VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
                (letter.stage, current_id, letter.partition, letter.offset, action, reason, getpass.getuser()),
            ).rowcount
        if not inserted:
            raise DeadLetterError(f"{STAGES[letter.stage]}[{letter.partition}]@{letter.offset} is already resolved")

    def replay(self, letter: DeadLetter, publisher: Publisher) -> tuple[str, int, int]:
        """Send the message back to its original topic with its key and original headers."""
        if letter.resolution is not None:
            raise DeadLetterError(f"already {letter.resolution}")
        origin = letter.origin
        if origin is None:
            raise DeadLetterError("the dead letter does not name its original topic")
        headers = [(k, v) for k, v in letter.headers.items() if not k.startswith(_DLQ_PREFIX)]
        # sent first: a replay that is sent twice is absorbed downstream (deterministic event ids), one that
        # is marked replayed but never sent would be lost
        publisher.send(origin[0], letter.key, letter.value, headers)
        publisher.flush()
        self._resolve(letter, "replayed", None)
        return origin

    def discard(self, letter: DeadLetter, reason: str) -> None:
        if letter.resolution is not None:
            raise DeadLetterError(f"already {letter.resolution}")
        self._resolve(letter, "discarded", reason)
