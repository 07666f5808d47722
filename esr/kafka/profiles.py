"""Trust profiles on the compacted topic `esr.trust-profiles` (key VPD, value the profile's canonical JSON).

The ledger (PostgreSQL) is where profiles live; the topic is how the stream workers learn them without a
restart (DESIGN §6). A profile is published whenever it is added or changed (`Ledger(on_profile_change=
ProfilePublisher(...))`) and all of them once when the pipeline starts, so that a fresh embedded broker,
which keeps nothing, gets them too. The workers read the topic with `streams.profiles.TrustProfiles`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from confluent_kafka import KafkaError, Message, Producer
from confluent_kafka.admin import AdminClient

from esr.kafka.topics import TRUST_PROFILES
from esr.profiles import TrustProfile, profile_to_json


class ProfilePublishError(RuntimeError):
    pass


def publish_profiles(producer_config: Mapping[str, Any], profiles: Iterable[TrustProfile],
                     timeout: float = 30.0) -> int:
    """Publish `profiles` and wait until the broker has them all; the number published. The topic must exist
    (created with the project's topics): a producer would have a broker auto-create it, uncompacted."""
    # kept until the answer is in: a dropped client cancels its requests
    admin = AdminClient(dict(producer_config))
    if TRUST_PROFILES not in admin.list_topics(timeout=timeout).topics:
        raise ProfilePublishError(f"topic {TRUST_PROFILES} does not exist (yet): `esr topics` creates it")
    producer = Producer({**producer_config, "linger.ms": 0})
    errors: list[str] = []

    def delivered(error: KafkaError | None, message: Message) -> None:
        if error is not None:
            errors.append(f"{message.key()!r}: {error.str()}")

    count = 0
    for profile in profiles:
        producer.produce(TRUST_PROFILES, profile_to_json(profile), profile.vpd.encode(), on_delivery=delivered)
        count += 1
    left = producer.flush(timeout)
    if left or errors:
        detail = "; ".join(errors) or f"{left} not acknowledged within {timeout:.0f} s"
        raise ProfilePublishError(f"trust profiles not published to {TRUST_PROFILES}: {detail}")
    return count


class ProfilePublisher:
    """`publish_profiles` of one profile, as the ledger's `on_profile_change` callback."""

    def __init__(self, producer_config: Mapping[str, Any], timeout: float = 30.0) -> None:
        self.producer_config = dict(producer_config)
        self.timeout = timeout

    def __call__(self, profile: TrustProfile) -> None:
        publish_profiles(self.producer_config, [profile], self.timeout)
