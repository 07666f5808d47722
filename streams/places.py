"""Per-partition index of the employees' work-address references, for the location fan-out.

A location or organisation change reaches the employees whose work address goes through it
(`EmployeesProcessor._work_addresses`). Finding them by decoding every employee of the trust on the
partition costs a whole-trust scan per run of moved reference records, which made a change file as slow
as a full one. `WorkPlaces` keeps, per partition of the employees table, location id -> employee keys and
organisation id -> employee keys (from the domain's `work_address_refs`), so a fan-out decodes only the
employees it can reach. The domain still decides what is emitted: the index may offer an employee that
gets no event (an over-approximation, see `streams.domain.places`), never leave out one that would.
Candidates are visited in key order; per employee the events are exactly those of a scan.

Keeping it right
    `stored` (called by `EmployeesProcessor.store_employee` after every table write) updates the index of
    a built partition. The only other writer of the table is Faust itself: changelog recovery (after an
    assignment, before the agents get events again) and standby replicas (continuously, but only for
    partitions this worker does not process; one becomes a processed partition only through a rebalance).
    The app therefore calls `invalidate` on every revocation and assignment, which drops all indexes. A
    partition is then rebuilt lazily: at its first `stored` if the table holds no other key of that
    partition (a fresh start: nothing to read), else at its first fan-out, from the table as recovery left
    it plus every write since (those went to the table before `stored` was called). Builds and writes
    both run in the one employees agent, so no write can slip between a build's reads; a rebalance during
    a build (it awaits between chunks) bumps the generation and the build starts again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Collection
from typing import Any

from streams.port import DomainPort

Refs = tuple[frozenset[str], frozenset[str]]

_NO_REFS: Refs = (frozenset(), frozenset())

#: yield to the event loop every this many decoded states while building an index
_BUILD_YIELD = 500


class _Index:
    """One partition: (vpd, id) -> employee keys, for locations and for organisations."""

    __slots__ = ("by_location", "by_organisation", "refs")

    def __init__(self) -> None:
        self.refs: dict[bytes, Refs] = {}
        self.by_location: dict[tuple[str, str], set[bytes]] = {}
        self.by_organisation: dict[tuple[str, str], set[bytes]] = {}

    def put(self, key: bytes, refs: Refs) -> None:
        old = self.refs.get(key, _NO_REFS)
        if old == refs:
            return
        vpd = key.split(b":", 1)[0].decode()
        for ids, index in zip(old, (self.by_location, self.by_organisation), strict=True):
            for entity_id in ids:
                keys = index[vpd, entity_id]
                keys.discard(key)
                if not keys:
                    del index[vpd, entity_id]
        if refs == _NO_REFS:
            self.refs.pop(key, None)
            return
        self.refs[key] = refs
        for ids, index in zip(refs, (self.by_location, self.by_organisation), strict=True):
            for entity_id in ids:
                index.setdefault((vpd, entity_id), set()).add(key)


class WorkPlaces:
    """The index of every partition this worker processes (see the module docstring)."""

    def __init__(self, table: Any, domain: DomainPort) -> None:
        #: the employees table (a `BatchTable`: `data`, `keys_in_partition`)
        self.table = table
        self._decode: Callable[[bytes], Any] = domain.decode_state
        self._refs = domain.work_address_refs
        self._organisations_at = domain.organisations_at
        self._built: dict[int, _Index] = {}
        self._stale: set[int] = set()  # partitions whose table has data the index has not seen
        self._generation = 0
        self.builds = 0  # indexes built from the table (for tests and logs)

    def invalidate(self) -> None:
        """Forget every index: the table may have been changed by recovery or standby replicas."""
        self._generation += 1
        self._built.clear()
        self._stale.clear()

    def stored(self, partition: int, key: bytes, state: Any) -> None:
        """`key` of `partition` was just written with `state` (None: deleted)."""
        refs = self._refs
        if refs is None:
            return
        index = self._built.get(partition)
        if index is None:
            if partition in self._stale:
                return
            if any(other != key for other in self.table.keys_in_partition(partition)):
                self._stale.add(partition)  # recovered data: read it all at the first fan-out
                return
            index = self._built[partition] = _Index()
        index.put(key, _NO_REFS if state is None else refs(state))

    async def candidates(self, partition: int, vpd: str, locations: Collection[str],
                         organisations: Collection[str], reference: Any) -> list[bytes]:
        """The keys of `partition` whose work addresses may go through the changed locations or
        organisations of trust `vpd` (`reference`: the partition's view, already showing the change)."""
        if self._refs is None:
            return sorted(self.table.keys_in_partition(partition, f"{vpd}:".encode()))
        index = self._built.get(partition)
        if index is None:
            index = await self._build(partition)
        found: set[bytes] = set()
        for location_id in locations:
            found.update(index.by_location.get((vpd, location_id), ()))
        routed = set(organisations)
        if locations:
            known = [organisation_id for trust, organisation_id in index.by_organisation if trust == vpd]
            organisations_at = self._organisations_at
            routed.update(known if organisations_at is None
                          else organisations_at(vpd, known, locations, reference))
        for organisation_id in routed:
            found.update(index.by_organisation.get((vpd, organisation_id), ()))
        return sorted(found)

    async def _build(self, partition: int) -> _Index:
        refs = self._refs
        assert refs is not None
        data, decode = self.table.data, self._decode
        while True:  # again if a rebalance came while it was being read
            generation = self._generation
            index = _Index()
            for number, key in enumerate(self.table.keys_in_partition(partition)):
                if number % _BUILD_YIELD == _BUILD_YIELD - 1:
                    await asyncio.sleep(0)
                raw = data.get(key)
                if raw is not None:
                    index.put(key, refs(decode(raw)))
            if generation == self._generation:
                self._built[partition] = index
                self._stale.discard(partition)
                self.builds += 1
                return index
