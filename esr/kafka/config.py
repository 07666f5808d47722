"""librdkafka client configuration shared by every producer and admin client of the project."""

from __future__ import annotations

from typing import Any

from esr.config import Settings


def client_config(settings: Settings, bootstrap_servers: str) -> dict[str, Any]:
    """Base config plus `ESR_KAFKA_*` overrides (TLS, SASL, ...)."""
    config: dict[str, Any] = {"bootstrap.servers": bootstrap_servers}
    config.update(settings.kafka_overrides)
    return config


def producer_config(settings: Settings, bootstrap_servers: str) -> dict[str, Any]:
    return {
        # Idempotent producer: broker-side retries never duplicate or reorder (anchors §5.2).
        "enable.idempotence": True,
        "acks": "all",
        # Java/aiokafka-compatible key placement, so Faust and any replay tool agree (DESIGN §7).
        "partitioner": "murmur2_random",
        # File-driven batch job: larger batches beat latency (librdkafka INTRODUCTION.md).
        "linger.ms": 50,
        "batch.num.messages": 10000,
        "compression.type": "lz4",
        "queue.buffering.max.messages": 200000,
        "queue.buffering.max.kbytes": 262144,
        "message.timeout.ms": 120000,
        **client_config(settings, bootstrap_servers),
    }
