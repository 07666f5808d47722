"""esr.profiles: trust profiles and NHS options, their validation and JSON."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from esr.profiles import (
    ActivationType,
    ArchiveType,
    DisplayWithAssignment,
    FullFileAbsence,
    ImportFrequency,
    NhsOptions,
    TrustProfile,
    check_new_vpd,
    nhs_options_from_dict,
    nhs_options_to_dict,
    profile_from_dict,
    profile_from_json,
    profile_to_dict,
    profile_to_json,
    unique_username,
    validate_nhs_options,
    validate_profile,
    vpd_conflicts,
)
from esr.validation import ValidationError

PROFILE = TrustProfile("999", "Test Trust", inbox_path="/srv/esr/999")


def paths(error: ValidationError) -> set[str]:
    return {p.path for p in error.problems}


def test_defaults_are_valid() -> None:
    assert validate_profile(PROFILE) is PROFILE
    assert PROFILE.active
    assert not PROFILE.archived
    assert validate_nhs_options(NhsOptions()) == NhsOptions()


@pytest.mark.parametrize("vpd", ["999", "RX9", "a1B", "000"])
def test_good_vpds(vpd: str) -> None:
    validate_profile(replace(PROFILE, vpd=vpd))


@pytest.mark.parametrize("vpd", ["", "99", "9999", "9 9", "9-9", "é99", " 99", "٩٩٩"])
def test_bad_vpds(vpd: str) -> None:
    with pytest.raises(ValidationError, match=r"vpd: .* is not 3 characters"):
        validate_profile(replace(PROFILE, vpd=vpd))


@pytest.mark.parametrize(
    ("changes", "path"),
    [
        ({"name": ""}, "name"),
        ({"name": "  "}, "name"),
        ({"name": " padded"}, "name"),
        ({"interface_version": 3}, "interface_version"),
        ({"interface_version": True}, "interface_version"),
        ({"import_frequency": "daily"}, "import_frequency"),
        ({"inbox_path": ""}, "inbox_path"),
        ({"inbox_path": "a\x00b"}, "inbox_path"),
        ({"last_sequence": -1}, "last_sequence"),
        ({"last_sequence": 100_000_000}, "last_sequence"),
        ({"active": 1}, "active"),
    ],
)
def test_bad_profile_fields(changes: dict[str, Any], path: str) -> None:
    with pytest.raises(ValidationError) as raised:
        validate_profile(replace(PROFILE, **changes))
    assert paths(raised.value) == {path}


@pytest.mark.parametrize(
    ("changes", "path"),
    [
        ({"archive_grace_days": -1}, "nhs_options.archive_grace_days"),
        ({"archive_grace_days": 4000}, "nhs_options.archive_grace_days"),
        ({"archive_grace_days": 1.5}, "nhs_options.archive_grace_days"),
        ({"employee_activation": "automatic"}, "nhs_options.employee_activation"),
        ({"employee_archiving": None}, "nhs_options.employee_archiving"),
        ({"display_with_assignment": "job"}, "nhs_options.display_with_assignment"),
        ({"full_file_absence": "delete"}, "nhs_options.full_file_absence"),
        ({"only_primary_address": "yes"}, "nhs_options.only_primary_address"),
        ({"vehicle_automatic_activation": 0}, "nhs_options.vehicle_automatic_activation"),
        ({"username_format": "{surname}"}, "nhs_options.username_format"),
        ({"home_address_format": "{line_1"}, "nhs_options.home_address_format"),
        ({"home_address_format": 5}, "nhs_options.home_address_format"),
    ],
)
def test_bad_nhs_options(changes: dict[str, Any], path: str) -> None:
    with pytest.raises(ValidationError) as raised:
        validate_profile(replace(PROFILE, nhs_options=replace(NhsOptions(), **changes)))
    assert paths(raised.value) == {path}


def test_all_problems_reported_together() -> None:
    bad = TrustProfile("x", "", interface_version=5, nhs_options=NhsOptions(archive_grace_days=-3))
    with pytest.raises(ValidationError) as raised:
        validate_profile(bad)
    assert paths(raised.value) == {"vpd", "name", "interface_version", "nhs_options.archive_grace_days"}


def test_vpd_uniqueness_is_case_insensitive() -> None:
    profiles = [PROFILE, TrustProfile("RX9", "Other"), TrustProfile("rx9", "Clash")]
    problems = vpd_conflicts(profiles)
    assert len(problems) == 1
    assert "'rx9' is already used by trust 'Other'" in str(problems[0])
    check_new_vpd("RX8", ["999", "RX9"])
    with pytest.raises(ValidationError, match="already registered"):
        check_new_vpd("Rx9", ["999", "RX9"])


def test_username_rendering() -> None:
    options = NhsOptions()
    assert options.render_username({"first_name": "Mary Ann", "last_name": "Jones"}) == "MaryAnn.Jones"
    custom = NhsOptions(username_format="{first_name:1|lower}{last_name|lower}")
    assert custom.render_username({"first_name": "Ann", "last_name": "O'Neill"}) == "ao'neill"
    assert options.render_username({}) == ""


def test_home_address_rendering() -> None:
    options = NhsOptions()
    address = {"line_1": "2 Home Street", "town": "Anytown", "county": "Anyshire", "postcode": "AN2 2BB"}
    assert options.render_home_address(address) == "2 Home Street, Anytown, Anyshire, AN2 2BB"


def test_unique_username() -> None:
    assert unique_username("ann.jones", []) == "ann.jones"
    assert unique_username("ann.jones", ["Ann.Jones"]) == "ann.jones1"
    assert unique_username("ann.jones", ["ann.jones", "ann.jones1", "ANN.JONES2"]) == "ann.jones3"


# --- JSON ------------------------------------------------------------------------------------------------


def test_profile_json_shape() -> None:
    data = profile_to_dict(PROFILE)
    assert data == {
        "format_version": 1,
        "vpd": "999",
        "name": "Test Trust",
        "interface_version": 2,
        "import_frequency": "daily",
        "inbox_path": "/srv/esr/999",
        "last_sequence": 0,
        "active": True,
        "nhs_options": {
            "employee_activation": "none",
            "employee_archiving": "none",
            "archive_grace_days": 0,
            "username_format": "{first_name}.{last_name}",
            "home_address_format": "{line_1}, {line_2}, {line_3}, {town}, {county}, {postcode}",
            "only_primary_address": True,
            "vehicle_automatic_activation": False,
            "display_with_assignment": "none",
            "full_file_absence": "report",
        },
    }
    assert json.loads(profile_to_json(PROFILE)) == data


def test_profile_json_is_canonical() -> None:
    assert profile_to_json(PROFILE) == profile_to_json(profile_from_json(profile_to_json(PROFILE)))
    assert b'": ' not in profile_to_json(PROFILE)  # compact separators


def test_missing_optional_keys_take_defaults() -> None:
    assert profile_from_dict({"vpd": "999", "name": "Test Trust"}) == replace(PROFILE, inbox_path=None)
    assert nhs_options_from_dict({}) == NhsOptions()


def test_json_errors_name_the_keys() -> None:
    with pytest.raises(ValidationError) as raised:
        profile_from_dict(
            {
                "vpd": 999,
                "interface_version": "2",
                "import_frequency": "hourly",
                "surprise": 1,
                "nhs_options": {"employee_activation": "sometimes", "archive_grace_days": True, "x": 1},
            }
        )
    assert paths(raised.value) == {
        "vpd",
        "name",
        "interface_version",
        "import_frequency",
        "surprise",
        "nhs_options.employee_activation",
        "nhs_options.archive_grace_days",
        "nhs_options.x",
    }
    assert "hourly' is not one of daily, weekly" in str(raised.value)


def test_json_value_checks_run_after_shape_checks() -> None:
    with pytest.raises(ValidationError, match="vpd: '9999' is not 3 characters"):
        profile_from_dict({"vpd": "9999", "name": "T"})


def test_lenient_reading_skips_unknown_keys() -> None:
    data = profile_to_dict(PROFILE) | {"added_later": True, "format_version": 2}
    data["nhs_options"]["new_option"] = "x"
    assert profile_from_dict(data, strict=False) == PROFILE
    with pytest.raises(ValidationError, match="newer than this program"):
        profile_from_dict(data)


def test_not_json() -> None:
    with pytest.raises(ValidationError, match="not JSON"):
        profile_from_json(b"{nope")
    with pytest.raises(ValidationError, match="expected a JSON object"):
        profile_from_json(b"[]")


def test_full_file_absence_reports_unless_the_trust_says_delete() -> None:
    assert not NhsOptions().absence_is_delete
    assert NhsOptions(full_file_absence=FullFileAbsence.DELETE).absence_is_delete
    assert nhs_options_from_dict({"full_file_absence": "delete"}).full_file_absence is FullFileAbsence.DELETE
    assert nhs_options_from_dict({}).full_file_absence is FullFileAbsence.REPORT  # options stored before it
    with pytest.raises(ValidationError, match="full_file_absence: 'drop' is not one of report, delete"):
        nhs_options_from_dict({"full_file_absence": "drop"})


def test_nhs_options_round_trip() -> None:
    options = NhsOptions(ActivationType.MANUAL, ArchiveType.AUTOMATIC, 30, "{employee_number}")
    assert nhs_options_from_dict(nhs_options_to_dict(options)) == options


_vpds = st.text(alphabet="0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz", min_size=3, max_size=3)
_names = st.text(min_size=1, max_size=40).map(str.strip).filter(bool)
_formats = st.sampled_from(["{first_name}.{last_name}", "{employee_number}", "{first_name:1|lower}{last_name|lower}"])
_options = st.builds(
    NhsOptions,
    employee_activation=st.sampled_from(ActivationType),
    employee_archiving=st.sampled_from(ArchiveType),
    archive_grace_days=st.integers(0, 3660),
    username_format=_formats,
    home_address_format=st.sampled_from(["{line_1}, {postcode}", "{town}"]),
    only_primary_address=st.booleans(),
    vehicle_automatic_activation=st.booleans(),
    display_with_assignment=st.sampled_from(DisplayWithAssignment),
    full_file_absence=st.sampled_from(FullFileAbsence),
)
_profiles = st.builds(
    TrustProfile,
    vpd=_vpds,
    name=_names,
    interface_version=st.sampled_from([1, 2]),
    import_frequency=st.sampled_from(ImportFrequency),
    inbox_path=st.one_of(st.none(), st.text(alphabet="abc/_-.", min_size=1, max_size=20).filter(str.strip)),
    last_sequence=st.integers(0, 99_999_999),
    active=st.booleans(),
    nhs_options=_options,
)


@given(_profiles)
def test_every_valid_profile_round_trips(profile: TrustProfile) -> None:
    validate_profile(profile)
    assert profile_from_json(profile_to_json(profile)) == profile
    assert profile_from_dict(json.loads(json.dumps(profile_to_dict(profile)))) == profile
