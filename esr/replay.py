"""`esr replay`: consume `esr.records` again, to re-emit change events or to rebuild the worker's tables.

The worker's tables are a fold of `esr.records`, so a replay always rebuilds them from the start of the log;
what the selector chooses is where change events are emitted again:

1. **Plan** (pure: `Locator`, `plan_streams`, `plan_sink`). Per partition: where consumption restarts (the
   start of the log), where emission resumes (`from`: the selector's offset) and where the replay ends
   (`to`: the real end, read to librdkafka's end-of-partition event; the embedded broker's high watermark is
   wrong, DESIGN §7). Selectors are resolved from provenance, never from broker timestamps
   (`offsets_for_times` returns 0 on Tansu): a file (by name, or trust and ESR sequence) is looked up in the
   ingest ledger and found in each partition by the SHA-256 at the head of its records' `record_id`; a
   partition without any of its records starts at the first record of a file ingested at or after it. A
   timestamp selects the first record of a file the ledger says was received at or after it (a record the
   ledger does not know is timed by its own `ingested_at`).
2. **Execute**, only while the group has no live members:
   a. the plan is written to `esr.streams.replay` (compacted, key = group), which the worker reads when it
      starts (`streams.replay`): below `from` it sends nothing, from `from` to `to` it sends change events
      and employee states (not the forwarded copies and dead letters already in the log), then as usual.
      rebuild-state: nothing is emitted up to `to` (the plan shows the records consumed, `from` = the start);
   b. the group's committed offsets on `esr.records` go back to the start of the log (`esr.control` is left
      alone: the full-file barriers it forwarded are in `esr.records` already, at their place);
   c. both changelogs are cleared (a tombstone for every live key), so the restarted worker recovers empty
      tables and rebuilds them record by record. The state at `from` is then the state those records met
      the first time, so the events re-emitted from there are the same, with the same ids, and the sink
      ignores the ones it holds.
   The order (plan, offsets, changelogs) keeps a command interrupted half-way harmless: run it again.

`--group sink` instead moves the sink's offsets stored in PostgreSQL (`esr.sink_offset`) back to the first
change event of the selection on each partition of `esr.changes` (never forward); the sink reads them again
and its event-id de-duplication and sequence guards leave the database as it was.
"""

from __future__ import annotations

import datetime as dt
import enum
import json
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from connectors.file_source.ledger import PUBLISHED_STATUSES
from connectors.sink.sink import DEFAULT_GROUP
from esr.codec import Decoder, Registry, UndecodableMessage, fingerprint
from esr.codec.framing import SINGLE_OBJECT_HEADER_SIZE, SINGLE_OBJECT_MAGIC
from esr.codec.schemas import load_versions
from esr.kafka.reading import read_to_end, topic_id
from esr.kafka.topics import CHANGES, FORWARDED, FORWARDED_FULL_FILE, RECORDS
from streams.app import APP_ID
from streams.replay import REPLAY_TOPIC
from streams.topics import CHANGELOGS

STREAMS_GROUP = APP_ID  # the stream worker's consumer group
SINK_GROUP = DEFAULT_GROUP  # the sink's (its offsets live in esr.sink_offset)


class ReplayError(RuntimeError):
    """A replay that cannot be planned or must not be carried out; the message says why."""


class Mode(enum.StrEnum):
    RE_EMIT = "re-emit"
    REBUILD_STATE = "rebuild-state"


# -- selectors -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LedgerFile:
    """What the ingest ledger (`esr.import_file`) knows of a file."""

    sha256: str
    vpd: str | None
    file_name: str
    sequence: int | None
    status: str
    received_at: dt.datetime


@dataclass(frozen=True)
class Cut:
    """Where a selection starts on every partition: the first message of one of `files` (SHA-256s), else the
    first message of a file ingested at or after `since`; neither: the start of the log."""

    label: str
    files: frozenset[str] = frozenset()
    since: dt.datetime | None = None

    @property
    def from_beginning(self) -> bool:
        return not self.files and self.since is None


FROM_BEGINNING = Cut("from the beginning")


def from_timestamp(at: dt.datetime) -> Cut:
    """Files ingested at or after `at` (a naive time is taken as UTC)."""
    if at.tzinfo is None:
        at = at.replace(tzinfo=dt.UTC)
    return Cut(f"from files ingested at or after {at.isoformat()}", since=at)


def _file_cut(found: Sequence[LedgerFile], what: str) -> Cut:
    published = [f for f in found if f.status in PUBLISHED_STATUSES]
    if not published:
        statuses = ", ".join(sorted({f.status for f in found}))
        raise ReplayError(f"{what} was never published ({statuses}): it has no records to replay from")
    first = min(published, key=lambda f: f.received_at)
    return Cut(f"from {first.file_name} (trust {first.vpd}, sequence {first.sequence})",
               files=frozenset(f.sha256 for f in published), since=first.received_at)


def from_file(ledger: Sequence[LedgerFile], name: str) -> Cut:
    found = [f for f in ledger if f.file_name == name]
    if not found:
        raise ReplayError(f"no file named {name} in the ingest ledger (esr imports lists them)")
    return _file_cut(found, f"file {name}")


def from_sequence(ledger: Sequence[LedgerFile], vpd: str, sequence: int) -> Cut:
    found = [f for f in ledger if f.vpd == vpd and f.sequence == sequence]
    if not found:
        known = sorted({f.sequence for f in ledger if f.vpd == vpd and f.sequence is not None})
        span = f"its files have sequences {known[0]} to {known[-1]}" if known else "it has no files in the ledger"
        raise ReplayError(f"trust {vpd} has no file with ESR sequence {sequence}: {span}")
    return _file_cut(found, f"sequence {sequence} of trust {vpd}")


# -- locating the cut in a topic -------------------------------------------------------------------------


@dataclass
class Located:
    """One partition read from the start of its log: where it starts and ends and where the cut falls."""

    first: int | None = None  # offset of the first message; None: empty
    end: int = 0
    of_file: int | None = None  # first message of one of the cut's files
    later: int | None = None  # first message of a file ingested at or after the cut's time

    def cut_offset(self, cut: Cut) -> int:
        """Where the selection starts on this partition (the end if nothing here is selected)."""
        if cut.from_beginning:
            return self.first if self.first is not None else self.end
        for found in (self.of_file, self.later):
            if found is not None:
                return found
        return self.end


TimeOf = Callable[[str], "dt.datetime | None"]


class Locator:
    """Fed every message of a topic in log order (its partition, offset and the file SHA-256 of its
    provenance, None if it has none); finds the cut on each partition."""

    def __init__(self, cut: Cut, time_of: TimeOf) -> None:
        self.cut = cut
        self.time_of = time_of
        self.partitions: dict[int, Located] = {}
        self._timed: dict[str, bool] = {}  # sha -> ingested at or after the cut's time

    def start(self, partitions: Iterable[int]) -> None:
        """Name the topic's partitions, so that empty ones are in the plan too."""
        for partition in partitions:
            self.partitions.setdefault(partition, Located())

    def feed(self, partition: int, offset: int, sha256: str | None) -> None:
        located = self.partitions.setdefault(partition, Located())
        if located.first is None:
            located.first = offset
        located.end = offset + 1
        if sha256 is None:
            return
        if located.of_file is None and sha256 in self.cut.files:
            located.of_file = offset
        if located.later is None and self.cut.since is not None and self._is_later(sha256):
            located.later = offset

    def _is_later(self, sha256: str) -> bool:
        later = self._timed.get(sha256)
        if later is None:
            assert self.cut.since is not None
            at = self.time_of(sha256)
            later = self._timed[sha256] = at is not None and at >= self.cut.since
        return later


# -- the plan --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PartitionPlan:
    topic: str
    partition: int
    start: int  # where consumption restarts
    from_offset: int  # where emission resumes
    to_offset: int  # the end of the replay

    @property
    def messages(self) -> int:
        return self.to_offset - self.from_offset


@dataclass(frozen=True)
class ReplayPlan:
    group: str
    mode: Mode
    cut: Cut
    partitions: tuple[PartitionPlan, ...]
    plan_id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])

    @property
    def messages(self) -> int:
        return sum(p.messages for p in self.partitions)

    def describe(self) -> list[str]:
        """The plan for an operator: a table per partition and what will happen."""
        lines = [f"replay plan {self.plan_id}: {self.mode} for consumer group {self.group}, {self.cut.label}",
                 f"  {'topic':<14}{'partition':>10}{'from':>12}{'to':>12}{'messages':>12}"]
        lines += [f"  {p.topic:<14}{p.partition:>10}{p.from_offset:>12}{p.to_offset:>12}{p.messages:>12}"
                  for p in self.partitions]
        lines.append(f"  {'total':<14}{'':>10}{'':>12}{'':>12}{self.messages:>12}")
        if self.group == SINK_GROUP:
            lines.append(f"The sink's stored offsets (esr.sink_offset) go back to 'from': it reads "
                         f"{self.messages:,} change events again; the ones it holds change nothing.")
        elif self.mode is Mode.REBUILD_STATE:
            lines.append(f"The worker's tables are cleared ({', '.join(CHANGELOGS)}) and rebuilt from the start "
                         f"of {RECORDS}; nothing is sent to {CHANGES} or esr.employees for these records.")
        else:
            lines.append(f"The worker's tables are cleared ({', '.join(CHANGELOGS)}) and rebuilt from the start "
                         f"of {RECORDS}, silently up to 'from'; the change events of the {self.messages:,} "
                         "messages from 'from' to 'to' are sent again with the same event ids, and the sink "
                         "ignores the ones it holds.")
        return lines

    def _emit_from(self, partition: PartitionPlan) -> int:
        return partition.to_offset if self.mode is Mode.REBUILD_STATE else partition.from_offset

    def fence(self, records_topic_id: str | None) -> bytes:
        """The plan as the worker reads it (`streams.replay.ReplayFence`)."""
        return json.dumps({
            "plan_id": self.plan_id,
            "group": self.group,
            "mode": str(self.mode),
            "selection": self.cut.label,
            "topic": RECORDS,
            "topic_id": records_topic_id,
            "partitions": {str(p.partition): [self._emit_from(p), p.to_offset] for p in self.partitions},
            "written_at": dt.datetime.now(dt.UTC).isoformat(),
        }).encode()


def _require_selected(cut: Cut, located: Mapping[int, Located]) -> None:
    if cut.files and all(found.of_file is None for found in located.values()):
        raise ReplayError(f"none of the records of the selected file are in the topic ({cut.label}): it was "
                          "re-created or retention removed them; nothing to replay from")


def plan_streams(mode: Mode, cut: Cut, located: Mapping[int, Located]) -> ReplayPlan:
    """The worker group's plan on esr.records (see the module doc)."""
    if mode is Mode.REBUILD_STATE and not cut.from_beginning:
        raise ReplayError("rebuild-state rebuilds the tables from every record, so it takes --from-beginning; "
                          "to emit again from a file or a time, use --mode re-emit")
    _require_selected(cut, located)
    truncated = sorted(p for p, found in located.items() if found.first not in (None, 0))
    if truncated:
        raise ReplayError(
            f"{RECORDS} no longer starts at offset 0 on partition(s) {', '.join(map(str, truncated))} (retention "
            "removed records): tables rebuilt from what is left would be wrong. Re-ingest the trusts' latest "
            "full files instead"
        )
    partitions = []
    for partition, found in sorted(located.items()):
        start = found.first if found.first is not None else 0
        selected = start if mode is Mode.REBUILD_STATE else found.cut_offset(cut)
        partitions.append(PartitionPlan(RECORDS, partition, start, selected, found.end))
    return ReplayPlan(STREAMS_GROUP, mode, cut, tuple(partitions))


def plan_sink(cut: Cut, located: Mapping[int, Located], stored: Mapping[int, int]) -> ReplayPlan:
    """The sink's plan on esr.changes: each stored offset goes back to the selection's start, never forward."""
    _require_selected(cut, located)
    partitions = []
    for partition, found in sorted(located.items()):
        selected = found.cut_offset(cut)
        rewound = min(selected, stored.get(partition, 0))
        partitions.append(PartitionPlan(CHANGES, partition, rewound, rewound, found.end))
    return ReplayPlan(SINK_GROUP, Mode.RE_EMIT, cut, tuple(partitions))


# -- provenance of a message -----------------------------------------------------------------------------

_RECORD_ID_FIRST = frozenset(
    fingerprint(schema) for schema in load_versions("record-event") if schema["fields"][0]["name"] == "record_id"
)


def record_sha(value: bytes | None) -> str | None:
    """The file SHA-256 of a record event, read from its first field (`record_id` = "<sha256>:<line>")
    without decoding the rest; None if `value` is not a single-object record event of a version that starts
    with that field (decode it then)."""
    if not value or value[:2] != SINGLE_OBJECT_MAGIC or value[2:SINGLE_OBJECT_HEADER_SIZE] not in _RECORD_ID_FIRST:
        return None
    position, shift, raw = SINGLE_OBJECT_HEADER_SIZE, 0, 0
    while position < len(value):
        byte = value[position]
        position += 1
        raw |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            break
    else:
        return None
    length = (raw >> 1) ^ -(raw & 1)  # Avro longs are zig-zag encoded
    sha, colon, _line = value[position:position + length].partition(b":")
    return sha.decode("ascii", errors="replace") if colon else None


class Provenance:
    """The file of each message of esr.records or esr.changes, and when that file was ingested."""

    def __init__(self, ledger_times: Mapping[str, dt.datetime], registry: Registry | None = None) -> None:
        self.ledger_times = dict(ledger_times)
        self._own_times: dict[str, dt.datetime | None] = {}
        self.records = Decoder("record-event", registry=registry)
        self.control = Decoder("control-event", registry=registry)
        self.changes = Decoder("change-event", registry=registry)

    def time_of(self, sha256: str) -> dt.datetime | None:
        return self.ledger_times.get(sha256) or self._own_times.get(sha256)

    def of_record(self, value: bytes | None, headers: Mapping[str, bytes]) -> str | None:
        """A record event (or a forwarded copy of one, or a forwarded full-file barrier) of esr.records."""
        if headers.get(FORWARDED) == FORWARDED_FULL_FILE:
            return self._decoded(self.control, value, "file_sha256", "ts")
        sha = record_sha(value)
        if sha is not None and (sha in self.ledger_times or sha in self._own_times):
            return sha
        return self._decoded(self.records, value, ("source", "file_sha256"), "ingested_at")

    def of_change(self, value: bytes | None) -> str | None:
        return self._decoded(self.changes, value, ("source", "file_sha256"), None)

    def _decoded(self, decoder: Decoder, value: bytes | None, sha_at: str | tuple[str, str],
                 time_at: str | None) -> str | None:
        if not value:
            return None
        try:
            event = decoder.decode(value)
        except UndecodableMessage:
            return None
        found = event[sha_at] if isinstance(sha_at, str) else event[sha_at[0]][sha_at[1]]
        if not found:
            return None
        sha = str(found)
        if sha not in self.ledger_times and sha not in self._own_times:
            own = event.get(time_at) if time_at else None
            self._own_times[sha] = own if isinstance(own, dt.datetime) and own.tzinfo is not None else None
        return sha


# -- I/O: the ledger, the topics, the groups -------------------------------------------------------------


def ledger_files(database_url: str) -> list[LedgerFile]:
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT sha256, vpd, file_name, sequence, status, received_at FROM esr.import_file"
        ).fetchall()
    return [LedgerFile(*row) for row in rows]


def _headers(message: Any) -> dict[str, bytes]:
    raw = message.headers() or []
    return {k: v if isinstance(v, bytes) else str(v or "").encode() for k, v in raw}


def _partitions(config: Mapping[str, Any], topic: str) -> list[int]:
    metadata = AdminClient(dict(config)).list_topics(timeout=10).topics.get(topic)
    if metadata is None:
        raise ReplayError(f"topic {topic} does not exist on this broker")
    return sorted(metadata.partitions)


def locate(config: Mapping[str, Any], topic: str, cut: Cut, provenance: Provenance) -> dict[int, Located]:
    """Read `topic` from the start of its log to its real end and find the cut on each partition."""
    partitions = _partitions(config, topic)
    locator = Locator(cut, provenance.time_of)
    locator.start(partitions)
    start = dict.fromkeys(partitions, OFFSET_BEGINNING)
    for message in read_to_end(config, topic, start, timeout=300):
        partition, offset = message.partition(), message.offset()
        assert partition is not None
        assert offset is not None
        if cut.from_beginning:
            sha = None
        elif topic == CHANGES:
            sha = provenance.of_change(message.value())
        else:
            sha = provenance.of_record(message.value(), _headers(message))
        locator.feed(partition, offset, sha)
    return locator.partitions


@dataclass(frozen=True)
class GroupActivity:
    group: str
    state: str
    members: int

    @property
    def idle(self) -> bool:
        # Kafka lists the members of an active group; the embedded broker (Tansu) lists none but reports the
        # group STABLE while any member is in it. Only EMPTY (Tansu, and Kafka for a group with committed
        # offsets) and DEAD (Kafka, unknown group) mean nobody consumes.
        return self.members == 0 and self.state in ("EMPTY", "DEAD")

    def refusal(self) -> str:
        listed = (f"{self.members} active member(s)" if self.members
                  else "active members (the broker does not list them)")
        return (f"consumer group {self.group} has {listed}, state {self.state}: stop every process of the group "
                "first (a replay under a running consumer would be overwritten by its next commit)")


def group_activity(config: Mapping[str, Any], group: str) -> GroupActivity:
    admin = AdminClient(dict(config))
    try:
        described = admin.describe_consumer_groups([group], request_timeout=15)[group].result()
    except KafkaException as exc:
        raise ReplayError(f"cannot tell whether consumer group {group} has live members: {exc}") from None
    state = getattr(described.state, "name", str(described.state))
    return GroupActivity(group, state, len(described.members or []))


def nudge_group(config: Mapping[str, Any], group: str, topic: str, timeout: float = 15.0) -> None:
    """Ask to join `group` with an assignor none of the project's consumers uses, and leave at once.

    Kafka lists a group's members and drops the ones that stop heartbeating, so its answer to
    `describe_consumer_groups` is the truth. The embedded broker (Tansu) lists none (it only says STABLE), and
    keeps a Faust worker that has stopped as a member until someone joins (aiokafka leaves a group only from
    a generation above 0, and Tansu's first generation is 0). A join makes Tansu wait for the members to
    rejoin and drop the ones that do not: afterwards the group is EMPTY unless a live member is in it. The
    join itself is refused (INCONSISTENT_GROUP_PROTOCOL) while the group has members, so it never takes
    partitions from a live consumer; nothing is committed either way.
    """
    done: list[object] = []
    consumer = Consumer({
        **config,
        "group.id": group,
        "enable.auto.commit": False,
        "allow.auto.create.topics": False,
        "partition.assignment.strategy": "cooperative-sticky",  # the worker's is Faust's, the sink's range
        "session.timeout.ms": 6000,
        "heartbeat.interval.ms": 1000,
        "error_cb": done.append,
    })
    try:
        consumer.subscribe([topic], on_assign=lambda _consumer, partitions: done.append(partitions))
        deadline = time.monotonic() + timeout
        while not done and time.monotonic() < deadline:
            message = consumer.poll(0.2)
            if message is not None and message.error() is not None:
                done.append(message.error())
    finally:
        consumer.close()


def require_idle(config: Mapping[str, Any], group: str, topic: str) -> None:
    """Refuse unless `group` has no live member (see `nudge_group` for the embedded broker)."""
    activity = group_activity(config, group)
    if not activity.idle and activity.members == 0:
        nudge_group(config, group, topic)
        activity = group_activity(config, group)
    if not activity.idle:
        raise ReplayError(activity.refusal())


def write_fence(config: Mapping[str, Any], plan: ReplayPlan, replication_factor: int) -> None:
    """Record the plan on the replay topic (created, compacted, one partition, if missing)."""
    admin = AdminClient(dict(config))
    if REPLAY_TOPIC not in admin.list_topics(timeout=10).topics:
        future = admin.create_topics([NewTopic(REPLAY_TOPIC, num_partitions=1, replication_factor=replication_factor,
                                               config={"cleanup.policy": "compact"})])[REPLAY_TOPIC]
        try:
            future.result()
        except KafkaException as exc:
            if "TOPIC_ALREADY_EXISTS" not in str(exc):
                raise
    producer = Producer({**config, "enable.idempotence": True, "acks": "all"})
    producer.produce(REPLAY_TOPIC, plan.fence(topic_id(config, RECORDS)), plan.group.encode())
    if producer.flush(30):
        raise ReplayError(f"the replay plan could not be written to {REPLAY_TOPIC}")


def rewind_group(config: Mapping[str, Any], plan: ReplayPlan) -> None:
    """Commit the plan's start offsets for the group, without joining it (it has no members)."""
    consumer = Consumer({**config, "group.id": plan.group, "enable.auto.commit": False})
    try:
        consumer.commit(offsets=[TopicPartition(p.topic, p.partition, p.start) for p in plan.partitions],
                        asynchronous=False)
    finally:
        consumer.close()


def clear_changelogs(config: Mapping[str, Any]) -> int:
    """A tombstone for every live key of the tables' changelogs, on its partition; returns how many."""
    producer = Producer({**config, "enable.idempotence": True, "acks": "all"})
    cleared = 0
    for changelog in CHANGELOGS:
        live: dict[tuple[int, bytes], bool] = {}
        start = dict.fromkeys(_partitions(config, changelog), OFFSET_BEGINNING)
        for message in read_to_end(config, changelog, start, timeout=300):
            key, partition = message.key(), message.partition()
            if key is not None and partition is not None:
                live[partition, key] = message.value() is not None
        for (partition, key), alive in live.items():
            if alive:
                producer.produce(changelog, None, key, partition)
                producer.poll(0)
                cleared += 1
    if producer.flush(60):
        raise ReplayError("the changelogs' tombstones could not all be delivered; run the replay again")
    return cleared


def sink_offsets(database_url: str) -> dict[int, int]:
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT partition, next_offset FROM esr.sink_offset WHERE consumer_group = %s AND topic = %s",
            (SINK_GROUP, CHANGES),
        ).fetchall()
    return dict(rows)


def rewind_sink(database_url: str, plan: ReplayPlan, changes_topic_id: str | None) -> None:
    """Store the plan's offsets for the sink (in one transaction; the sink seeks to them when it starts)."""
    with psycopg.connect(database_url) as conn, conn.transaction():
        for p in plan.partitions:
            conn.execute(
                "INSERT INTO esr.sink_offset (consumer_group, topic, partition, next_offset, topic_id)"
                " VALUES (%s, %s, %s, %s, %s) ON CONFLICT (consumer_group, topic, partition) DO UPDATE"
                " SET next_offset = LEAST(esr.sink_offset.next_offset, EXCLUDED.next_offset), updated_at = now()",
                (plan.group, p.topic, p.partition, p.from_offset, changes_topic_id),
            )


@dataclass(frozen=True)
class Replay:
    """The I/O around the pure plan: `plan()` reads, `execute()` writes."""

    client_config: Mapping[str, Any]
    database_url: str
    replication_factor: int = 1
    registry: Registry | None = None  # with Confluent framing (ESR_SCHEMA_REGISTRY_URL)

    def _provenance(self) -> Provenance:
        return Provenance({f.sha256: f.received_at for f in ledger_files(self.database_url)}, self.registry)

    def resolve(self, *, file_name: str | None = None, vpd: str | None = None, sequence: int | None = None,
                since: dt.datetime | None = None) -> Cut:
        if file_name is not None:
            return from_file(ledger_files(self.database_url), file_name)
        if sequence is not None:
            if vpd is None:
                raise ReplayError("--from-sequence needs --vpd: sequences are per trust")
            return from_sequence(ledger_files(self.database_url), vpd, sequence)
        if since is not None:
            return from_timestamp(since)
        return FROM_BEGINNING

    def plan(self, group: str, mode: Mode, cut: Cut) -> ReplayPlan:
        if group == SINK_GROUP:
            if mode is not Mode.RE_EMIT:
                raise ReplayError("the sink keeps no state of its own to rebuild: --group sink reads change "
                                  "events again (--mode re-emit)")
            located = locate(self.client_config, CHANGES, cut, self._provenance())
            return plan_sink(cut, located, sink_offsets(self.database_url))
        return plan_streams(mode, cut, locate(self.client_config, RECORDS, cut, self._provenance()))

    def execute(self, plan: ReplayPlan) -> list[str]:
        """Carry the plan out (the group must be idle); returns what was done, for the operator."""
        sink = plan.group == SINK_GROUP
        require_idle(self.client_config, plan.group, CHANGES if sink else RECORDS)
        if sink:
            rewind_sink(self.database_url, plan, topic_id(self.client_config, CHANGES))
            return [f"sink offsets stored for {len(plan.partitions)} partition(s) of {CHANGES}; start the sink"]
        write_fence(self.client_config, plan, self.replication_factor)
        rewind_group(self.client_config, plan)
        cleared = clear_changelogs(self.client_config)
        return [
            f"plan {plan.plan_id} written to {REPLAY_TOPIC}",
            f"{plan.group} rewound to the start of {RECORDS} on {len(plan.partitions)} partition(s)",
            f"{cleared:,} table key(s) cleared from the changelogs",
            "start the worker(s): they rebuild the tables and follow the plan",
        ]
