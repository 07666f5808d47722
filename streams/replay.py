"""The replay fence: how a worker learns, when it starts, that `esr replay` has rewound it (see `esr.replay`).

`esr replay --execute` clears the tables' changelogs, sets the group's offsets on `esr.records` back to the
start of the log and writes its plan to the compacted topic `esr.streams.replay` (key = the group). The
worker reads the latest plan of its group when it starts; per partition of `esr.records` it holds
`emit_from` and `replay_end`:

- below `emit_from` the records rebuild the tables and nothing is sent (rebuild-state: `emit_from` is the
  end of the replay; re-emit: the selector's offset, up to which the state is rebuilt silently);
- from `emit_from` to `replay_end` change events and employee states are sent again (same event ids: the
  state at `emit_from` is the one those records met the first time), but not forwarded copies and dead
  letters, which are in the log already from the first pass;
- from `replay_end` on, everything is sent as usual. An old fence therefore stays harmless.

A fence written for another incarnation of `esr.records` (the embedded broker re-creates its topics on
every start) is ignored.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from confluent_kafka.admin import AdminClient

from esr.kafka.reading import read_to_end, topic_id
from esr.kafka.topics import CHANGES, DLQ_PROCESS, EMPLOYEES, RECORDS

log = logging.getLogger(__name__)

REPLAY_TOPIC = "esr.streams.replay"

#: what is not sent for a record below `emit_from`: everything (the tables are still written)
MUTE_ALL: frozenset[str] = frozenset({CHANGES, EMPLOYEES, RECORDS, DLQ_PROCESS})
#: what is not sent again for a record between `emit_from` and `replay_end`: forwarded copies, dead letters
MUTE_COPIES: frozenset[str] = frozenset({RECORDS, DLQ_PROCESS})
NOTHING: frozenset[str] = frozenset()


@dataclass(frozen=True)
class ReplayFence:
    plan_id: str
    mode: str
    bounds: Mapping[int, tuple[int, int]]  # partition of esr.records -> (emit_from, replay_end)

    @classmethod
    def parse(cls, value: bytes, records_topic_id: str | None) -> ReplayFence | None:
        """The fence in `value` (the JSON `esr replay` writes); None if it belongs to another incarnation of
        esr.records. A value that is not a fence raises ValueError: a worker must not guess."""
        try:
            plan = json.loads(value)
            bounds = {int(p): (int(b[0]), int(b[1])) for p, b in plan["partitions"].items()}
            fence = cls(str(plan["plan_id"]), str(plan["mode"]), bounds)
            written_for = plan.get("topic_id")
        except (ValueError, KeyError, TypeError, IndexError) as exc:
            raise ValueError(f"{REPLAY_TOPIC} holds something that is not a replay plan: {exc}") from None
        if written_for is not None and records_topic_id is not None and written_for != records_topic_id:
            log.warning("replay plan %s was written for another incarnation of %s; ignored", fence.plan_id, RECORDS)
            return None
        return fence

    def split(self, events: Sequence[Any]) -> list[tuple[frozenset[str], list[Any]]]:
        """The batch as segments to process in turn, each with the topics muted for it. Each partition's
        events keep their order (the bounds split a partition's log into consecutive ranges), and the
        processor's result depends only on that order (`streams.agents`)."""
        segments: tuple[list[Any], list[Any], list[Any]] = ([], [], [])
        bounds = self.bounds
        for event in events:
            message = event.message
            bound = bounds.get(message.partition)
            if bound is None or message.offset >= bound[1]:
                segments[2].append(event)
            elif message.offset < bound[0]:
                segments[0].append(event)
            else:
                segments[1].append(event)
        return [(muted, segment) for muted, segment in zip((MUTE_ALL, MUTE_COPIES, NOTHING), segments, strict=True)
                if segment]


def read_fence(client_config: Mapping[str, Any], group: str) -> ReplayFence | None:
    """The latest replay plan of `group`, if `esr replay` ever wrote one for this incarnation of esr.records."""
    admin = AdminClient(dict(client_config))
    if REPLAY_TOPIC not in admin.list_topics(timeout=10).topics:
        return None
    latest: bytes | None = None
    for message in read_to_end(client_config, REPLAY_TOPIC, timeout=30):
        if message.key() == group.encode():
            latest = message.value()
    if latest is None:
        return None
    fence = ReplayFence.parse(latest, topic_id(client_config, RECORDS))
    if fence is not None:  # a warning: this runs before Faust sets up logging, when only warnings get out
        log.warning("replay plan %s (%s) in force: %s", fence.plan_id, fence.mode,
                 ", ".join(f"[{p}] emit from {b[0]}, copies from {b[1]}" for p, b in sorted(fence.bounds.items())))
    return fence
