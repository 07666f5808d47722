"""The worker's parked keys (`esr.parking`): a Faust table `parked`, key = employee key, value = `Park`.

The table has a changelog like the others (`esr.streams.parked-changelog`), written on behalf of the event
that changed the park, so it is recovered after a restart or a rebalance with the employee it belongs to,
and a re-processing of the same log decides the same again (the decisions depend only on the park, the
message's own coordinates and its release headers). Only ingest records of employee keys are parked;
forwarded copies and full-file barriers never are (`esr.parking`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from esr.kafka.topics import FORWARDED, RECORDS
from esr.parking import RELEASE, Action, Origin, Park, Release, dead_lettered, decide, employee_key
from streams.tables import BatchTable

log = logging.getLogger(__name__)

DeadLetter = Callable[..., None]


def _lookup(event: Any) -> Callable[[str], bytes | None]:
    headers = event.message.headers
    items = (headers.items() if isinstance(headers, Mapping) else headers) if headers else ()
    found = {key: value if isinstance(value, bytes) else str(value).encode() for key, value in items}
    return found.get


def _releases(event: Any) -> bool:
    """Does the message carry release headers? (a scan of its one or two headers, no dict built)"""
    headers = event.message.headers
    if not headers:
        return False
    return any(name == RELEASE for name in (headers.keys() if isinstance(headers, Mapping) else
                                            (pair[0] for pair in headers)))


class WorkerParking:
    def __init__(self, table: BatchTable) -> None:
        self.table = table
        self.skipped = 0  # discarded blockers' release markers seen

    def _park(self, key: bytes) -> Park | None:
        raw = self.table.data.get(key)
        return None if raw is None else Park.decode(raw)

    def _store(self, event: Any, key: bytes, before: Park | None, after: Park | None) -> None:
        if after != before:
            self.table.put(event, key, None if after is None else after.encode())

    def holds(self, event: Any, key: bytes, dead_letter: DeadLetter) -> bool:
        """Called for each ingest record of an employee key before it is grouped: True if it is not to be
        applied (parked: dead-lettered behind the key's blocker; or a discarded blocker's marker)."""
        raw = self.table.data.get(key)
        if raw is None and not _releases(event):  # the common case: nothing parked, nothing released
            return False
        park = None if raw is None else Park.decode(raw)
        release = Release.from_headers(_lookup(event))
        message = event.message
        decision = decide(park, Origin(message.topic, message.partition, message.offset), release)
        self._store(event, key, park, decision.park)
        if decision.action is Action.PARK:
            dead_letter(event, "parked", behind=decision.behind)
            return True
        if decision.action is Action.SKIP:
            self.skipped += 1
            log.info("%s[%s]@%s: discarded dead letter's release marker for %s, not applied", message.topic,
                     message.partition, message.offset, key.decode(errors="replace"))
            return True
        return False

    def dead_lettered(self, event: Any) -> Origin | None:
        """`event` is being dead-lettered: park its key (an ingest record of an employee key) and return the
        blocker it waits behind (None: it is the blocker, or nothing is parked for it)."""
        message = event.message
        key = message.key
        if message.topic != RECORDS or not employee_key(key) or _lookup(event)(FORWARDED) is not None:
            return None
        park = self._park(key)
        after, behind = dead_lettered(park, Origin(message.topic, message.partition, message.offset))
        self._store(event, key, park, after)
        return behind
