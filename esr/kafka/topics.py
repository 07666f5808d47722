"""The project's topics, created explicitly (never by auto-create), with their partitioning and retention."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

log = logging.getLogger(__name__)

RECORDS = "esr.records"
CONTROL = "esr.control"
CHANGES = "esr.changes"
EMPLOYEES = "esr.employees"
MAPPED_CHANGES = "esr.mapped-changes"
#: compacted, key VPD: the trust's current mapping template version (esr.mapping.serde version JSON)
MAPPING_TEMPLATES = "esr.mapping-templates"
#: compacted, key VPD: the trust's profile (esr.profiles.serde JSON), published on every change and at start
TRUST_PROFILES = "esr.trust-profiles"
DLQ_INGEST = "esr.dlq.ingest"
DLQ_PROCESS = "esr.dlq.process"
DLQ_SINK = "esr.dlq.sink"

# Headers of the copies of a reference record (LCA/ORA/POA) on every partition of esr.records (DESIGN §2:
# a location change must reach the employees of every partition, at the same place in each partition's log
# on every run). The ingest job writes the copies itself, in file order, and marks the original BROADCAST so
# the worker does not forward it again; the worker forwards originals from other producers.
FORWARDED = "esr.forwarded"
FORWARDED_REFERENCE = b"reference"
FORWARDED_FULL_FILE = b"full-file-completed"
ORIGIN_PARTITION = "esr.origin.partition"
ORIGIN_OFFSET = "esr.origin.offset"
BROADCAST = "esr.broadcast"

# Headers a dead letter carries besides the original message's own (worker and sink alike; `esr dlq` reads them).
DLQ_REASON = "esr.dlq.reason"
DLQ_ERROR = "esr.dlq.error"
DLQ_STAGE = "esr.dlq.stage"
DLQ_TOPIC = "esr.dlq.original.topic"
DLQ_PARTITION = "esr.dlq.original.partition"
DLQ_OFFSET = "esr.dlq.original.offset"
DLQ_EVENT_ID = "esr.dlq.event_id"


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitioned: bool  # False: a single partition keeps a global order (control events)
    config: dict[str, str] = field(default_factory=dict)


_COMPACTED = {"cleanup.policy": "compact"}
_KEEP = {"cleanup.policy": "delete", "retention.ms": str(30 * 24 * 3600 * 1000)}

TOPICS: tuple[TopicSpec, ...] = (
    TopicSpec(RECORDS, True, _KEEP),
    TopicSpec(CONTROL, False, _KEEP),
    TopicSpec(CHANGES, True, _KEEP),
    TopicSpec(EMPLOYEES, True, _COMPACTED),
    TopicSpec(MAPPED_CHANGES, True, _KEEP),
    TopicSpec(MAPPING_TEMPLATES, False, _COMPACTED),
    TopicSpec(TRUST_PROFILES, False, _COMPACTED),
    TopicSpec(DLQ_INGEST, False, _KEEP),
    TopicSpec(DLQ_PROCESS, True, _KEEP),
    TopicSpec(DLQ_SINK, True, _KEEP),
)


class TopicMismatch(RuntimeError):
    pass


def ensure_topics(
    admin_config: dict[str, Any], partitions: int, replication_factor: int = 1, timeout: float = 15.0
) -> list[str]:
    """Create the missing topics; refuse to go on if an existing one has the wrong partition count,
    because keys would then land on other partitions than the ones the stream app's state expects."""
    admin = AdminClient(admin_config)
    existing = admin.list_topics(timeout=timeout).topics
    wanted = {spec.name: (partitions if spec.partitioned else 1, spec) for spec in TOPICS}
    for name, (count, _spec) in wanted.items():
        if name in existing and len(existing[name].partitions) != count:
            raise TopicMismatch(
                f"topic {name} has {len(existing[name].partitions)} partitions, the project expects {count} "
                f"(ESR_PARTITIONS); fix the topic or the setting before publishing"
            )
    missing = [
        NewTopic(name, num_partitions=count, replication_factor=replication_factor, config=spec.config)
        for name, (count, spec) in wanted.items()
        if name not in existing
    ]
    return create_topics(admin, missing, timeout)


def create_topics(admin: AdminClient, topics: list[NewTopic], timeout: float) -> list[str]:
    """Create `topics`; one another client created meanwhile counts as there. Returns the names created."""
    if not topics:
        return []
    created = []
    for name, future in admin.create_topics(topics, request_timeout=timeout).items():
        try:
            future.result()
            created.append(name)
        except KafkaException as exc:
            if "TOPIC_ALREADY_EXISTS" not in str(exc):
                raise
    log.info("created topics %s", ", ".join(sorted(created)))
    return created
