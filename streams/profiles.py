"""The trust profiles as the stream worker knows them: the latest value per VPD of `esr.trust-profiles`.

Every worker needs every trust's profile (any partition may hold any trust's employees), so this is not a
Faust agent or table (those split a topic's partitions between the workers of the group, and a table
would add a changelog to a topic that is already compacted): a plain librdkafka consumer, *assigned* the
topic's partitions from the beginning (no group, nothing committed), in a daemon thread. It reads the
topic to its end (librdkafka's end-of-partition event: Tansu's high watermark is wrong, DESIGN §7), sets
`loaded`, and goes on following it, so a profile changed while the worker runs applies from the next
lookup on. The employees agent waits for `ready()` before its first batch: a full file's barrier must not
be reconciled with default options only because the worker had just started.

Lookups are dict reads from the agent's thread; the reader replaces values whole (atomic under the GIL).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import uuid
from collections.abc import Mapping
from typing import Any, Protocol

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition

from esr.kafka.topics import TRUST_PROFILES
from esr.profiles import TrustProfile, profile_from_json
from esr.validation import ValidationError

log = logging.getLogger(__name__)


class Record(Protocol):
    """What `TrustProfiles.apply` reads of a message (a confluent_kafka.Message)."""

    def key(self) -> bytes | None: ...
    def value(self) -> bytes | None: ...
    def partition(self) -> int | None: ...
    def offset(self) -> int | None: ...


class TrustProfiles:
    """Follows `esr.trust-profiles` in a thread (see the module docstring)."""

    def __init__(self, client_config: Mapping[str, Any], *, topic: str = TRUST_PROFILES,
                 retry_seconds: float = 5.0) -> None:
        self.config = dict(client_config)
        self.topic = topic
        self.retry_seconds = retry_seconds
        self.loaded = threading.Event()
        self._profiles: dict[str, TrustProfile] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- lookups (any thread) -----------------------------------------------------------------------

    def get(self, vpd: str) -> TrustProfile | None:
        return self._profiles.get(vpd)

    def absence_is_delete(self, vpd: str) -> bool:
        """Does a full file's absence delete for this trust? No profile: the default (report)."""
        profile = self._profiles.get(vpd)
        return profile is not None and profile.nhs_options.absence_is_delete

    async def ready(self) -> None:
        """Until the topic has been read to its end once (a warning every `retry_seconds` meanwhile)."""
        loop = asyncio.get_running_loop()
        while not await loop.run_in_executor(None, self.loaded.wait, self.retry_seconds):
            log.warning("still reading the trust profiles from %s before processing", self.topic)

    # -- the reader ----------------------------------------------------------------------------------

    def start(self) -> TrustProfiles:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="esr-trust-profiles", daemon=True)
            self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def apply(self, message: Record) -> None:
        """Take one message of the topic: a profile, or a tombstone (the trust is gone)."""
        key, value = message.key(), message.value()
        if key is None:
            log.warning("%s[%s]@%s has no key: skipped", self.topic, message.partition(), message.offset())
            return
        vpd = key.decode(errors="replace")
        if value is None:
            self._profiles.pop(vpd, None)
            log.info("trust profile %s removed", vpd)
            return
        try:
            profile = profile_from_json(value, strict=False)
        except ValidationError as exc:
            log.warning("trust profile %s at %s@%s is not valid, the previous one stays: %s", vpd, self.topic,
                        message.offset(), exc)
            return
        if self._profiles.get(vpd) != profile:
            self._profiles[vpd] = profile
            log.info("trust profile %s: full_file_absence=%s", vpd, profile.nhs_options.full_file_absence.value)

    def _partitions(self, consumer: Consumer) -> list[int] | None:
        metadata = consumer.list_topics(self.topic, timeout=10).topics.get(self.topic)
        if metadata is None or metadata.error is not None or not metadata.partitions:
            return None
        return sorted(metadata.partitions)

    def _run(self) -> None:
        consumer = Consumer({
            **self.config,
            "group.id": f"esr-trust-profiles-{uuid.uuid4().hex}",  # never joined: partitions are assigned
            "enable.auto.commit": False,
            "enable.partition.eof": True,
        })
        try:
            partitions = self._partitions(consumer)
            while partitions is None and not self._stop.is_set():
                log.warning("topic %s does not exist: every trust has the default profile until it does",
                            self.topic)
                self.loaded.set()
                self._stop.wait(self.retry_seconds)
                partitions = self._partitions(consumer)
            if partitions is None:
                return
            consumer.assign([TopicPartition(self.topic, p, OFFSET_BEGINNING) for p in partitions])
            pending = set(partitions)
            while not self._stop.is_set():
                for message in consumer.consume(500, 0.5):
                    error = message.error()
                    if error is None:
                        self.apply(message)
                    elif error.code() == KafkaError._PARTITION_EOF:
                        pending.discard(message.partition())
                    else:
                        log.warning("reading %s: %s", self.topic, error)
                if not pending and not self.loaded.is_set():
                    log.info("trust profiles read: %d trust(s)", len(self._profiles))
                    self.loaded.set()
        except Exception:
            log.exception("the trust profile reader stopped; profiles stay as last read")
            self.loaded.set()
        finally:
            consumer.close()
