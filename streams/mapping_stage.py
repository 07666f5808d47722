"""The mapping stage's process: Kafka in and out around `streams.mapping.MappingDirectory`.

One stage for the whole cluster (`python -m streams mapping`, or `esr run`'s child `MappingProcess`): it is not a
member of the worker's consumer group, it *assigns* itself every partition of

- `esr.employees` (compacted: each employee's full state, the worker's output),
- the worker's reference replicas (`esr.streams.references-changelog`, key ``<vpd>:<TYPE>:<id>@<p>``,
  decoded with the domain port; every replica of an entity converges to the same current version, so the
  last one read stands for it), and
- `esr.mapping-templates` (compacted, key VPD: the trust's current template version, published by
  `esr mapping set` and at pipeline start; a trust with none maps with the default template), and
  `esr.trust-profiles` (the NHS option "only the primary home address"),

from the beginning: a restart rebuilds the directory from the compacted topics, with nothing stored
elsewhere. The templates and profiles are read to their end before anything else, so no employee of the
first pass is mapped with a template that is about to be replaced. The first mapping waits until every partition
has been read to its end once (no churn from a half-read directory) and is published with op ``r`` (a
rebuild: the sink may already hold it); from then on each poll's batch of inputs is mapped (of the
messages of one employee or reference entity in a poll only the last is decoded: `StageReader.apply_batch`)
and its mapped changes (`esr.mapped-changes`, key ``<vpd>:<person_id>``, Avro ``mapped-change-event``) are flushed
before the positions move past it. Every output is a function of the inputs (deterministic event ids),
so a crash at any point only repeats outputs.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import orjson
from confluent_kafka import Consumer, KafkaError, Message, Producer, TopicPartition

from esr.codec import Encoder
from esr.kafka.reading import TopicReadError, coordinates, end_offsets, read_to_end
from esr.kafka.topics import EMPLOYEES, MAPPED_CHANGES, MAPPING_TEMPLATES, TRUST_PROFILES
from esr.mapping.serde import version_from_json, version_to_json
from esr.mapping.store import default_version
from esr.mapping.versions import TemplateVersion
from esr.profiles import profile_from_json
from esr.runtime.children import stop_child
from streams.mapping import REFERENCE_TYPES, MappingDirectory, Source
from streams.port import DomainPort, load_domain
from streams.topics import REFERENCES_CHANGELOG

log = logging.getLogger(__name__)

MAPPED_SUBJECT = "mapped-change-event"
#: the topics the stage reads (besides the templates): their positions say whether it has caught up
STATE_TOPICS = (EMPLOYEES, REFERENCES_CHANGELOG)
#: what the stage maps with: read to their end before anything is mapped
SETTINGS_TOPICS = (MAPPING_TEMPLATES, TRUST_PROFILES)
#: messages `load_directory` applies at a time (`StageReader.apply_batch`)
LOAD_CHUNK = 5000


class MappingStageError(RuntimeError):
    pass


def publish_templates(config: Mapping[str, Any], versions: Iterable[TemplateVersion], timeout: float = 30.0) -> int:
    """Publish each trust's current template version on `esr.mapping-templates` (key VPD); returns how many.
    Raises `MappingStageError` when a message is not delivered."""
    producer = Producer({**config, "enable.idempotence": True, "acks": "all"})
    errors: list[str] = []

    def on_delivery(error: KafkaError | None, _message: Message) -> None:
        if error is not None:
            errors.append(error.str())

    count = 0
    for version in versions:
        producer.produce(MAPPING_TEMPLATES, key=version.vpd.encode(), value=version_to_json(version),
                         on_delivery=on_delivery)
        count += 1
    if producer.flush(timeout) or errors:
        raise MappingStageError(f"the template(s) could not be published: {errors[0] if errors else 'timed out'}")
    return count


def reference_key(key: bytes) -> tuple[str, str, str] | None:
    """(vpd, TYPE, id) of a reference replica key ``<vpd>:<TYPE>:<id>@<partition>``; None for other keys."""
    text = key.decode(errors="replace").rsplit("@", 1)[0]
    vpd, _, rest = text.partition(":")
    entity_type, _, entity_id = rest.partition(":")
    if entity_type not in REFERENCE_TYPES or not entity_id:
        return None
    return vpd, entity_type, entity_id


def employee_key(key: bytes) -> tuple[str, str] | None:
    vpd, sep, person_id = key.decode(errors="replace").partition(":")
    return (vpd, person_id) if sep and person_id else None


def _state_key(message: Message) -> tuple[str, bytes] | None:
    """What a message of a state topic is the state of: an employee, or a reference entity (whichever
    partition's replica); None for the other topics."""
    topic, key = message.topic(), message.key()
    if key is None:
        return None
    if topic == EMPLOYEES:
        return topic, key
    if topic == REFERENCES_CHANGELOG:
        return topic, key.rsplit(b"@", 1)[0]
    return None


class StageReader:
    """Applies messages of the stage's topics to a directory (decoding as the worker encoded them)."""

    def __init__(self, directory: MappingDirectory, domain: DomainPort) -> None:
        self.directory = directory
        self.domain = domain
        self.skipped = 0

    def apply_batch(self, messages: Iterable[Message]) -> None:
        """Apply a poll's messages. The directory keeps only the last state of an employee or a reference
        entity and maps after the poll (`MappingDirectory.drain`), so of a state's messages only the last
        readable one is decoded and applied; the states before it would change nothing the drain sees
        (a readable state hides the unreadable ones before it: they are neither decoded nor counted)."""
        order: list[Message | list[Message]] = []
        states: dict[tuple[str, bytes], list[Message]] = {}
        for message in messages:
            state = _state_key(message)
            if state is None:
                order.append(message)
                continue
            found = states.get(state)
            if found is None:
                found = states[state] = []
                order.append(found)
            found.append(message)
        for item in order:
            if not isinstance(item, list):
                self.apply(item)
                continue
            for message in reversed(item):
                if self.apply(message):
                    break

    def apply(self, message: Message) -> bool:
        """Apply one message; whether it was. One that cannot be decoded is logged and counted in `skipped`,
        never fatal (the worker wrote it; the employee keeps the mapping of its last readable state)."""
        try:
            applied = self._apply(message)
        except (ValueError, KeyError, TypeError) as exc:  # ValidationError is a ValueError
            applied = False
            log.warning("mapping stage: skipped an unreadable message at %s[%s]@%s: %s", message.topic(),
                        message.partition(), message.offset(), exc)
        if not applied:
            self.skipped += 1
        return applied

    def _apply(self, message: Message) -> bool:
        topic, key, value = message.topic(), message.key(), message.value()
        if key is None:
            return False
        if topic == EMPLOYEES:
            person = employee_key(key)
            if person is None:
                return False
            snapshot = None if value is None else orjson.loads(value)
            self.directory.put_employee(person, snapshot, Source(topic, message.partition(), message.offset()))
        elif topic == REFERENCES_CHANGELOG:
            ref = reference_key(key)
            if ref is None:
                return False
            row = None if value is None else self.domain.reference_entry(self.domain.decode_reference_state(value))
            self.directory.put_reference(ref, None if row is None else dict(row))
        elif topic == MAPPING_TEMPLATES:
            vpd = key.decode()
            if value is None:
                self.directory.templates.pop(vpd, None)
            else:
                self.directory.set_template(version_from_json(value, strict=False))
        elif topic == TRUST_PROFILES:
            vpd = key.decode()
            if value is None:
                self.directory.options.pop(vpd, None)
            else:
                self.directory.options[vpd] = profile_from_json(value, strict=False).nhs_options
        return True


def new_directory() -> MappingDirectory:
    return MappingDirectory(default_template=default_version)


def load_directory(config: Mapping[str, Any], domain: DomainPort | None = None, *, timeout: float = 120.0
                   ) -> MappingDirectory:
    """A directory of everything the stage's topics hold now (read to their real end): what `esr remap`
    maps from. Templates are not read: the caller sets the ones it wants."""
    directory = new_directory()
    reader = StageReader(directory, domain or load_domain())
    for topic in (TRUST_PROFILES, *STATE_TOPICS):
        messages = read_to_end(config, topic, timeout=timeout)
        while chunk := list(itertools.islice(messages, LOAD_CHUNK)):
            reader.apply_batch(chunk)
    directory.settle()
    return directory


def positions_caught_up(config: Mapping[str, Any], positions: Mapping[str, Mapping[int, int]]) -> bool:
    """Every state topic has been read to its real end from `positions` (topic -> partition -> next offset)."""
    return all(end_offsets(config, topic, dict(positions.get(topic, {}))) == positions.get(topic, {})
               for topic in STATE_TOPICS)


def write_status(path: Path, bootstrapped: bool, positions: Mapping[str, Mapping[int, int]]) -> None:
    """The stage's progress as JSON, replaced atomically: what `MappingProcess.caught_up` reads."""
    status = {"bootstrapped": bootstrapped,
              "positions": {topic: {str(p): o for p, o in offsets.items()} for topic, offsets in positions.items()}}
    partial = path.with_name(path.name + ".tmp")
    partial.write_text(json.dumps(status))
    os.replace(partial, path)


def read_status(path: Path) -> tuple[bool, dict[str, dict[int, int]]] | None:
    """(bootstrapped, positions) from a status file; None when there is none yet."""
    try:
        status = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    positions = {topic: {int(p): int(o) for p, o in offsets.items()} for topic, offsets in status["positions"].items()}
    return bool(status["bootstrapped"]), positions


class MappingStage:
    """The stage's consume-map-produce loop (module doc). `run` until `stop` is set. With `status_path`, each
    step that moves the positions also writes them there (`write_status`) for a parent process to read."""

    def __init__(self, config: Mapping[str, Any], *, domain: DomainPort | None = None, poll_batch: int = 2000,
                 clock: Callable[[], float] = time.time, status_path: Path | None = None) -> None:
        self.config = dict(config)
        self.directory = new_directory()
        self.reader = StageReader(self.directory, domain or load_domain())
        self.encoder = Encoder(MAPPED_SUBJECT)
        self.poll_batch = poll_batch
        self.clock = clock
        self.status_path = status_path
        self.bootstrapped = False
        self.published = 0
        #: next offset per (topic, partition) whose inputs are mapped and whose outputs are delivered
        self.positions: dict[str, dict[int, int]] = {}
        self._lock = threading.Lock()
        self._consumer: Consumer | None = None
        self._producer: Producer | None = None
        self._pending_eof: set[tuple[str, int]] = set()
        self._errors: list[str] = []

    # -- lifecycle ------------------------------------------------------------------------------------
    def start(self) -> None:
        start: dict[str, dict[int, int]] = {}
        for topic in SETTINGS_TOPICS:
            try:
                for message in read_to_end(self.config, topic):
                    self.reader.apply(message)
                    partition, offset = coordinates(message)
                    start.setdefault(topic, {})[partition] = offset + 1
            except TopicReadError as exc:
                raise MappingStageError(f"cannot read the templates and profiles: {exc}") from exc
        consumer = Consumer({
            **self.config,
            "group.id": f"esr-mapping-{uuid.uuid4().hex[:8]}",  # never joined: partitions are assigned
            "enable.auto.commit": False,
            "enable.partition.eof": True,
            "auto.offset.reset": "earliest",
        })
        assignment = []
        for topic in (*STATE_TOPICS, *SETTINGS_TOPICS):
            metadata = consumer.list_topics(topic, timeout=10).topics.get(topic)
            if metadata is None or metadata.error is not None:
                consumer.close()
                raise MappingStageError(f"topic {topic} does not exist (the worker's topics are created first)")
            for partition in metadata.partitions:
                offset = start.get(topic, {}).get(partition, 0)
                assignment.append(TopicPartition(topic, partition, offset))
                self._pending_eof.add((topic, partition))
                with self._lock:
                    self.positions.setdefault(topic, {})[partition] = offset
        consumer.assign(assignment)
        self._consumer = consumer
        # delivery reports of failures only: a Python callback per delivered message cost more than producing it
        self._producer = Producer({**self.config, "enable.idempotence": True, "acks": "all",
                                   "partitioner": "murmur2_random", "linger.ms": 5, "compression.type": "lz4",
                                   "delivery.report.only.error": True})
        log.info("mapping stage reading %d partitions; %d trust template(s)", len(assignment),
                 len(self.directory.templates))

    def close(self) -> None:
        if self._consumer is not None:
            self._consumer.close()
            self._consumer = None
        if self._producer is not None:
            self._producer.flush(30)
            self._producer = None

    def run(self, stop: threading.Event) -> None:
        if self._consumer is None:
            self.start()
        try:
            while not stop.is_set():
                self.step()
        finally:
            self.close()

    # -- one poll -------------------------------------------------------------------------------------
    def step(self, timeout: float = 0.2) -> int:
        """Consume what is there, map, publish, move the positions; returns the events published."""
        assert self._consumer is not None
        messages = self._consumer.consume(self.poll_batch, timeout)
        moved: dict[tuple[str, int], int] = {}
        data = []
        for message in messages:
            error = message.error()
            if error is not None:
                if error.code() == KafkaError._PARTITION_EOF:
                    self._pending_eof.discard((message.topic(), message.partition()))
                    continue
                raise MappingStageError(f"consuming {message.topic()}: {error.str()}")
            data.append(message)
            partition, offset = coordinates(message)
            moved[(str(message.topic()), partition)] = offset + 1
        self.reader.apply_batch(data)
        published = 0
        bootstrapping = not self.bootstrapped and not self._pending_eof
        if bootstrapping:
            self.bootstrapped = True
            published = self._publish(self.directory.drain(self._now_ms(), op="r"))
            log.info("mapping stage bootstrapped: %d employees, %d reference rows, %d mapped changes",
                     len(self.directory.employees), len(self.directory.references), published)
        elif self.bootstrapped and self.directory.pending:
            published = self._publish(self.directory.drain(self._now_ms()))
        with self._lock:
            for (topic, partition), offset in moved.items():
                self.positions.setdefault(topic, {})[partition] = offset
            if self.status_path is not None and (moved or bootstrapping):
                write_status(self.status_path, self.bootstrapped, self.positions)
        return published

    def _now_ms(self) -> int:
        return int(self.clock() * 1000)

    def _publish(self, events: list[dict[str, Any]]) -> int:
        assert self._producer is not None
        errors = self._errors

        def on_delivery(error: KafkaError | None, _message: Message) -> None:
            if error is not None:
                errors.append(error.str())

        headers: list[tuple[str, str | bytes | None]] = list(self.encoder.headers)
        for event in events:
            key = f"{event['vpd']}:{event['person_id']}".encode()
            while True:
                try:
                    self._producer.produce(MAPPED_CHANGES, key=key, value=self.encoder.encode(event),
                                           headers=headers, on_delivery=on_delivery)
                    break
                except BufferError:
                    self._producer.poll(0.05)
        if events and self._producer.flush(120):
            raise MappingStageError("mapped changes still undelivered after 120 s")
        if errors:
            raise MappingStageError(f"{len(errors)} mapped change(s) not delivered; first: {errors[0]}")
        self.published += len(events)
        return len(events)

    # -- progress -------------------------------------------------------------------------------------
    def caught_up(self) -> bool:
        """Bootstrapped, and every input up to the real end of the state topics is mapped and published."""
        if not self.bootstrapped:
            return False
        with self._lock:
            positions = {topic: dict(self.positions.get(topic, {})) for topic in STATE_TOPICS}
        return positions_caught_up(self.config, positions)


class MappingProcess:
    """The stage in a child process (`python -m streams mapping --status-file`), as `esr run` runs it: its own
    interpreter, so that its mapping does not compete for the GIL with the sinks. Stopped with SIGTERM (the
    stage finishes its step and flushes), SIGKILL after a timeout; its log goes to `<data_dir>/mapping.log`.
    Like the worker it takes its configuration from the environment (ESR_KAFKA_*, ESR_STREAMS_DOMAIN)."""

    def __init__(self, bootstrap_servers: str, *, data_dir: Path, loglevel: str = "info") -> None:
        self.data_dir = data_dir
        self.log_path = data_dir / "mapping.log"
        self.status_path = data_dir / "mapping-status.json"
        self.loglevel = loglevel
        self.env = {**os.environ, "ESR_BOOTSTRAP_SERVERS": bootstrap_servers, "PYTHONUNBUFFERED": "1"}
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> MappingProcess:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.status_path.unlink(missing_ok=True)  # a previous run's positions say nothing about this one
        with open(self.log_path, "ab") as log_file:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "streams", "mapping", "--loglevel", self.loglevel,
                 "--status-file", str(self.status_path)],
                stdout=log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=self.env,
                cwd=Path(__file__).resolve().parent.parent,
            )
        return self

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log_tail(self, lines: int = 40) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def caught_up(self, config: Mapping[str, Any]) -> bool:
        """What `MappingStage.caught_up` says inside the child, from the positions it last wrote."""
        status = read_status(self.status_path)
        return status is not None and status[0] and positions_caught_up(config, status[1])

    def stop(self, timeout: float = 30.0) -> int | None:
        return stop_child(self.process, timeout)
