"""The stream app's own topics: the table changelogs, created explicitly like every project topic.

Faust would name a changelog `<app id>-<table>-changelog` and auto-create it; we never let it create
anything (`topic_allow_declare=False`), so the changelogs are declared here, compacted, with exactly the
partition count of `esr.records`: a table key is written to the changelog partition of the input
partition it came from, and recovery hands partition N of the changelog to the owner of partition N of
the input. A mismatch is refused loudly, as in `esr.kafka.topics.ensure_topics`.
"""

from __future__ import annotations

from typing import Any

from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from esr.kafka.topics import TopicMismatch, create_topics, ensure_topics

#: per-employee state (EmployeeState bytes), key "<vpd>:<person_id>"
EMPLOYEES_CHANGELOG = "esr.streams.employees-changelog"
#: reference state replicas (one copy per input partition), key "<vpd>:<TYPE>:<id>@<partition>"
REFERENCES_CHANGELOG = "esr.streams.references-changelog"

#: employee keys parked behind a dead letter (esr.parking.Park JSON), key "<vpd>:<person_id>"
PARKED_CHANGELOG = "esr.streams.parked-changelog"

CHANGELOGS: tuple[str, ...] = (EMPLOYEES_CHANGELOG, REFERENCES_CHANGELOG, PARKED_CHANGELOG)

_CHANGELOG_CONFIG = {"cleanup.policy": "compact"}


def ensure_stream_topics(
    admin_config: dict[str, Any], partitions: int, replication_factor: int = 1, timeout: float = 15.0
) -> list[str]:
    """Create the project topics and the stream app's changelogs that are missing; return the created ones."""
    created = ensure_topics(admin_config, partitions, replication_factor, timeout)
    admin = AdminClient(admin_config)
    existing = admin.list_topics(timeout=timeout).topics
    for name in CHANGELOGS:
        if name in existing and len(existing[name].partitions) != partitions:
            raise TopicMismatch(
                f"changelog {name} has {len(existing[name].partitions)} partitions but esr.records has "
                f"{partitions}; the tables would be recovered from the wrong partitions. Delete the changelog "
                "(state is rebuilt from esr.records by a replay) or fix ESR_PARTITIONS"
            )
    missing = [
        NewTopic(name, num_partitions=partitions, replication_factor=replication_factor, config=_CHANGELOG_CONFIG)
        for name in CHANGELOGS
        if name not in existing
    ]
    return created + create_topics(admin, missing, timeout)
