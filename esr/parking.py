"""Parking behind dead letters: once an employee has a dead letter, its later events wait behind it.

Issue 7: ordering per employee is never broken. When the worker (`esr.dlq.process`) or the sink
(`esr.dlq.sink`) dead-letters a message of an employee key `<vpd>:<person_id>`, that message becomes the
key's *blocker* and the key is *parked*: every later message of the key at that stage is not applied but
dead-lettered too, as *parked* behind the blocker (reason "parked behind <origin>", header
`esr.dlq.parked_behind`), until an operator resolves the blocker.

Identities are the original coordinates (`Origin`, e.g. `esr.records[1]@105`), not the dead-letter topic's:
they are known when the decision is made, and a re-processing after a crash (at-least-once) decides the
same again. A key's messages are all on one partition of one topic, so origins of a key are in log order.

Resolution travels through the log, so that it is ordered with the key's other messages:

* `esr dlq replay` of a blocker republishes it and its parked followers, in their original order, to the
  original topic with `esr.dlq.release: <blocker>` (the last one also `esr.dlq.release.end`);
* `esr dlq discard` of a blocker republishes the blocker itself marked `esr.dlq.release.discarded` (never
  applied: it only carries the release) followed by its followers as in a replay; `--with-followers`
  discards them too (one marker, with the end flag).

The stage applies released messages while the key stays parked, so a message of the key that arrives in
the middle of a release (a file ingested at that moment) is parked, not applied before older released ones;
once the release ends, the first such straggler becomes the key's blocker. A released message that fails
again blocks the key anew, and the rest of the release waits behind it. A release naming another blocker
than the stage's (an operator acting on a stale listing) is parked again, never applied out of order.

Reference data (`<vpd>:<TYPE>:<id>`), forwarded copies and full-file barriers are never parked: a location
is broadcast to every partition and every employee there reads it, so parking it would hold (or reorder
against) the records of every employee of the trust; their dead letters stand alone. What they do to a
parked employee happens where they are in the log, on the state applied before its blocker: the
work-address events of a moved location (history only: the work address is resolved from the reference data
when it is read) and a full file's absence report. Parking them per employee would need them replayed with
the employee's own records, and a location's change is not the employee's to hold back.

Everything here is pure: the worker keeps `Park` values in its `parked` table, the sink in PostgreSQL
(`esr.sink_parked`), and `esr dlq` groups letters with `group_letters`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from enum import Enum
from typing import Generic, Protocol, TypeVar

PARKED_BEHIND = "esr.dlq.parked_behind"
RELEASE = "esr.dlq.release"
RELEASE_END = "esr.dlq.release.end"
RELEASE_DISCARDED = "esr.dlq.release.discarded"

_ORIGIN = re.compile(r"^(?P<topic>[^\[\]]+)\[(?P<partition>\d+)\]@(?P<offset>\d+)$")


@dataclass(frozen=True, slots=True)
class Origin:
    """Where a message is (or was, before it was dead-lettered): topic, partition, offset."""

    topic: str
    partition: int
    offset: int

    def __str__(self) -> str:
        return f"{self.topic}[{self.partition}]@{self.offset}"

    @classmethod
    def parse(cls, text: str | bytes) -> Origin:
        raw = text.decode(errors="replace") if isinstance(text, bytes) else text
        found = _ORIGIN.match(raw)
        if found is None:
            raise ValueError(f"{raw!r} is not TOPIC[PARTITION]@OFFSET")
        return cls(found["topic"], int(found["partition"]), int(found["offset"]))

    def before(self, other: Origin) -> bool:
        """Earlier in the same partition's log."""
        return (self.topic, self.partition) == (other.topic, other.partition) and self.offset < other.offset


def employee_key(key: bytes | None) -> bool:
    """`<vpd>:<person_id>`: the keys that are parked (references have three parts)."""
    return key is not None and key.count(b":") == 1 and not key.startswith(b":") and not key.endswith(b":")


@dataclass(frozen=True, slots=True)
class Park:
    """A parked key: the blocker it waits behind; during a release, the first message that arrived
    meanwhile (it becomes the blocker once the release ends)."""

    blocker: Origin
    releasing: bool = False
    straggler: Origin | None = None

    def encode(self) -> bytes:
        return json.dumps({"blocker": str(self.blocker), "releasing": self.releasing,
                           "straggler": None if self.straggler is None else str(self.straggler)},
                          separators=(",", ":")).encode()

    @classmethod
    def decode(cls, raw: bytes | str) -> Park:
        value = json.loads(raw)
        straggler = value.get("straggler")
        return cls(Origin.parse(value["blocker"]), bool(value.get("releasing")),
                   None if straggler is None else Origin.parse(straggler))


@dataclass(frozen=True, slots=True)
class Release:
    """The release headers of a republished message."""

    blocker: Origin
    end: bool = False
    discarded: bool = False

    def headers(self) -> list[tuple[str, bytes]]:
        headers = [(RELEASE, str(self.blocker).encode())]
        if self.end:
            headers.append((RELEASE_END, b"1"))
        if self.discarded:
            headers.append((RELEASE_DISCARDED, b"1"))
        return headers

    @classmethod
    def from_headers(cls, header: Callable[[str], bytes | None]) -> Release | None:
        """From a header lookup (name -> value or None); None if the message releases nothing (or names
        no readable blocker)."""
        blocker = header(RELEASE)
        if blocker is None:
            return None
        try:
            origin = Origin.parse(blocker)
        except ValueError:
            return None
        return cls(origin, header(RELEASE_END) is not None, header(RELEASE_DISCARDED) is not None)


class Action(Enum):
    APPLY = "apply"
    PARK = "park"  # dead-letter it behind `Decision.behind`
    SKIP = "skip"  # a discarded blocker's release marker: never applied


@dataclass(frozen=True, slots=True)
class Decision:
    action: Action
    park: Park | None  # the key's park after this message
    behind: Origin | None = None  # PARK: the blocker it waits behind


def decide(park: Park | None, at: Origin, release: Release | None) -> Decision:
    """What to do with a message of an employee key at `at`, given the key's park and the message's
    release headers (module doc)."""
    action = Action.SKIP if release is not None and release.discarded else Action.APPLY
    if park is None or at.before(park.blocker):
        # not parked, or an earlier message processed again after a restart (it was applied then)
        return Decision(action, park)
    if at == park.blocker:
        # the blocker processed again after a restart: tried again (a failure parks the key again)
        return Decision(action, None)
    if release is not None and release.blocker == park.blocker:
        if not release.end:
            return Decision(action, replace(park, releasing=True))
        return Decision(action, None if park.straggler is None else Park(park.straggler))
    if release is not None and release.discarded:
        return Decision(Action.SKIP, park)
    if park.releasing and park.straggler is None:
        return Decision(Action.PARK, replace(park, straggler=at), park.blocker)
    return Decision(Action.PARK, park, park.blocker)


def dead_lettered(park: Park | None, at: Origin) -> tuple[Park, Origin | None]:
    """The key's park once its message at `at` is dead-lettered, and the blocker that message waits
    behind (None: it is the blocker itself)."""
    if park is None or at == park.blocker or park.releasing:
        # a released message that fails again blocks the key anew; the rest of the release waits behind it
        return Park(at), None
    return park, park.blocker


def parked_reason(behind: Origin) -> str:
    return f"parked behind {behind}"


# -- grouping dead letters for `esr dlq` ---------------------------------------------------------------


class Letter(Protocol):
    @property
    def key(self) -> bytes | None: ...

    @property
    def origin(self) -> tuple[str, int, int] | None: ...

    @property
    def resolution(self) -> str | None: ...


L = TypeVar("L", bound=Letter)


@dataclass
class Group(Generic[L]):
    """A blocker and the letters parked behind it (original order), each with the other dead-letter
    copies of the same original message (a re-processing after a crash dead-letters it again)."""

    blocker: L
    followers: list[L] = field(default_factory=list)
    copies: dict[int, list[L]] = field(default_factory=dict)  # id(representative) -> every copy

    def letters(self) -> list[L]:
        return [self.blocker, *self.followers]

    def all_copies(self) -> list[L]:
        return [copy for letter in self.letters() for copy in self.copies.get(id(letter), [letter])]


def group_letters(letters: Sequence[L]) -> tuple[list[Group[L]], list[L]]:
    """The open letters of employee keys as groups (per key: the open letter earliest in the original log
    is the blocker, the others its followers, in log order; a message is open unless one of its copies is
    resolved), and every other letter (resolved ones, references, letters without a readable origin) on
    its own, in the order given."""
    resolved: set[tuple[str, int, int]] = {
        letter.origin for letter in letters if letter.resolution is not None and letter.origin is not None
    }
    by_key: dict[bytes, dict[tuple[str, int, int], list[L]]] = {}
    alone: list[L] = []
    for letter in letters:
        origin, key = letter.origin, letter.key
        if origin is None or key is None or not employee_key(key) or origin in resolved:
            alone.append(letter)
            continue
        by_key.setdefault(key, {}).setdefault(origin, []).append(letter)
    groups: list[Group[L]] = []
    for copies in by_key.values():
        ordered = [copies[origin] for origin in sorted(copies, key=lambda o: (o[0], o[1], o[2]))]
        group = Group(ordered[0][0], [found[0] for found in ordered[1:]])
        group.copies = {id(found[0]): found for found in ordered}
        groups.append(group)
    return groups, alone


def release_plan(group: Group[L], *, discard_blocker: bool, discard_followers: bool) -> list[tuple[L, Release]]:
    """What to republish to resolve `group`, in order, with each message's release headers: the blocker
    (replayed, or as a discarded marker) then the followers (replayed) unless they are discarded too."""
    origin = group.blocker.origin
    assert origin is not None
    blocker = Origin(*origin)
    sent: list[tuple[L, bool]] = [(group.blocker, discard_blocker)]
    if not discard_followers:
        sent.extend((follower, False) for follower in group.followers)
    last = len(sent) - 1
    return [(letter, Release(blocker, end=index == last, discarded=discarded))
            for index, (letter, discarded) in enumerate(sent)]
