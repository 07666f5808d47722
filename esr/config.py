"""Settings from the environment. Every knob has an embedded-friendly default."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise SystemExit(f"{name}={raw!r} is not a whole number") from None


def _kafka_overrides() -> dict[str, str]:
    """`ESR_KAFKA_<PROPERTY>` variables, e.g. ESR_KAFKA_SECURITY_PROTOCOL=SASL_SSL -> security.protocol."""
    prefix = "ESR_KAFKA_"
    return {
        key[len(prefix):].lower().replace("_", "."): value
        for key, value in os.environ.items()
        if key.startswith(prefix) and value
    }


@dataclass(frozen=True)
class Settings:
    data_dir: Path = field(default_factory=lambda: Path(os.environ.get("ESR_DATA_DIR", "var")))
    bootstrap_servers: str | None = field(default_factory=lambda: os.environ.get("ESR_BOOTSTRAP_SERVERS") or None)
    database_url: str | None = field(default_factory=lambda: os.environ.get("ESR_DATABASE_URL") or None)
    schema_registry_url: str | None = field(
        default_factory=lambda: os.environ.get("ESR_SCHEMA_REGISTRY_URL") or None
    )
    partitions: int = field(default_factory=lambda: _int("ESR_PARTITIONS", 6))
    replication_factor: int = field(default_factory=lambda: _int("ESR_REPLICATION_FACTOR", 1))
    kafka_overrides: dict[str, str] = field(default_factory=_kafka_overrides)
    metrics_port: int | None = field(
        default_factory=lambda: _int("ESR_METRICS_PORT", 0) or None
    )  # unset: no /metrics endpoint
