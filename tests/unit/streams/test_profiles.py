"""The worker's view of the trust profiles (`streams.profiles.TrustProfiles`), fed messages directly."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, replace

import pytest

from esr.profiles import FullFileAbsence, NhsOptions, TrustProfile, profile_to_json
from streams.profiles import TrustProfiles

PROFILE = TrustProfile("999", "Test Trust")
DELETING = replace(PROFILE, nhs_options=NhsOptions(full_file_absence=FullFileAbsence.DELETE))


@dataclass
class Message:
    _key: bytes | None
    _value: bytes | None
    _offset: int = 0

    def key(self) -> bytes | None:
        return self._key

    def value(self) -> bytes | None:
        return self._value

    def partition(self) -> int:
        return 0

    def offset(self) -> int:
        return self._offset


def test_the_latest_profile_of_a_trust_decides_what_absence_means() -> None:
    profiles = TrustProfiles({})
    assert not profiles.absence_is_delete("999")  # no profile: the default, report
    profiles.apply(Message(b"999", profile_to_json(PROFILE)))
    assert not profiles.absence_is_delete("999")
    profiles.apply(Message(b"999", profile_to_json(DELETING)))
    assert profiles.absence_is_delete("999")
    assert not profiles.absence_is_delete("998")
    assert profiles.get("999") == DELETING


def test_a_tombstone_forgets_the_trust_and_a_bad_value_keeps_the_last_good_one(
        caplog: pytest.LogCaptureFixture) -> None:
    profiles = TrustProfiles({})
    profiles.apply(Message(b"999", profile_to_json(DELETING)))
    profiles.apply(Message(b"999", b'{"vpd": "999"}', 7))  # no name: not a valid profile
    assert profiles.absence_is_delete("999")
    assert "not valid, the previous one stays" in caplog.text
    profiles.apply(Message(None, profile_to_json(PROFILE)))
    assert profiles.get("999") == DELETING
    profiles.apply(Message(b"999", None))
    assert profiles.get("999") is None


def test_a_newer_writer_s_unknown_options_are_skipped() -> None:
    profiles = TrustProfiles({})
    newer = profile_to_json(DELETING).replace(b'"active":true', b'"active":true,"added_later":1')
    profiles.apply(Message(b"999", newer))
    assert profiles.absence_is_delete("999")


def test_ready_waits_for_the_first_read_to_the_end() -> None:
    profiles = TrustProfiles({}, retry_seconds=0.05)

    async def go() -> bool:
        waiting = asyncio.ensure_future(profiles.ready())
        await asyncio.sleep(0.2)
        early = waiting.done()
        profiles.loaded.set()
        await asyncio.wait_for(waiting, 5)
        return early

    assert asyncio.run(go()) is False
