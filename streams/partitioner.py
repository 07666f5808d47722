"""Key placement: the murmur2 partitioner shared by every producer of the project's topics.

Java's default partitioner, aiokafka's `DefaultPartitioner` and librdkafka's `murmur2_random` (which the
ingest job configures) all place a non-null key on `(murmur2(key) & 0x7fffffff) % partitions`; the
integration tests check on the broker that confluent-kafka and this function agree.
"""

from __future__ import annotations

import random

from aiokafka.partitioner import murmur2  # type: ignore[import-untyped]


def partition_for(key: bytes, partitions: int) -> int:
    hashed: int = murmur2(key)
    return (hashed & 0x7FFFFFFF) % partitions


def murmur2_partitioner(key: bytes | None, all_partitions: list[int], available: list[int]) -> int:
    """A Faust/aiokafka `producer_partitioner`: murmur2 for keys, random among available without one."""
    if key is None:
        return random.choice(available or all_partitions)
    return all_partitions[partition_for(key, len(all_partitions))]
