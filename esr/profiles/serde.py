"""Trust profiles <-> JSON: a dict for the jsonb column, canonical bytes for the compacted topic.

The JSON is the dataclasses' field names with enum values as their lowercase text, plus
``"format_version": 1``. Output is canonical (sorted keys, no spaces), so the same profile always gives the
same bytes. Loading validates: a wrong type, a missing required key, an out-of-range value or (when
`strict`, the default) an unknown key raises `ValidationError` naming each offending key. Readers that must
tolerate a newer writer (the stream app) pass ``strict=False`` to skip unknown keys.
"""

from __future__ import annotations

import enum
from typing import Any, TypeVar

from esr.profiles.model import (
    ActivationType,
    ArchiveType,
    DisplayWithAssignment,
    FullFileAbsence,
    ImportFrequency,
    NhsOptions,
    TrustProfile,
    nhs_options_problems,
    profile_problems,
)
from esr.validation import JsonReader, Problem, canonical_json, parse_json, raise_if

FORMAT_VERSION = 1
E = TypeVar("E", bound=enum.Enum)


def nhs_options_to_dict(options: NhsOptions) -> dict[str, Any]:
    return {
        "employee_activation": options.employee_activation.value,
        "employee_archiving": options.employee_archiving.value,
        "archive_grace_days": options.archive_grace_days,
        "username_format": options.username_format,
        "home_address_format": options.home_address_format,
        "only_primary_address": options.only_primary_address,
        "vehicle_automatic_activation": options.vehicle_automatic_activation,
        "display_with_assignment": options.display_with_assignment.value,
        "full_file_absence": options.full_file_absence.value,
    }


def profile_to_dict(profile: TrustProfile) -> dict[str, Any]:
    return {
        "format_version": FORMAT_VERSION,
        "vpd": profile.vpd,
        "name": profile.name,
        "interface_version": profile.interface_version,
        "import_frequency": profile.import_frequency.value,
        "inbox_path": profile.inbox_path,
        "last_sequence": profile.last_sequence,
        "active": profile.active,
        "nhs_options": nhs_options_to_dict(profile.nhs_options),
    }


def _enum(reader: JsonReader, name: str, kind: type[E], default: E) -> E:
    value = reader.take(name, (str,), default.value)
    try:
        return kind(value)
    except ValueError:
        allowed = ", ".join(str(m.value) for m in kind)
        reader.problems.append(Problem(reader.where(name), f"{value!r} is not one of {allowed}"))
        return default


def _nhs_options(data: object, path: str, problems: list[Problem], strict: bool) -> NhsOptions:
    reader = JsonReader(data, path, problems, strict=strict)
    defaults = NhsOptions()
    grace = reader.take("archive_grace_days", (int,), defaults.archive_grace_days)
    username = reader.take("username_format", (str,), defaults.username_format)
    address = reader.take("home_address_format", (str,), defaults.home_address_format)
    only_primary = reader.take("only_primary_address", (bool,), defaults.only_primary_address)
    vehicles = reader.take("vehicle_automatic_activation", (bool,), defaults.vehicle_automatic_activation)
    options = NhsOptions(
        employee_activation=_enum(reader, "employee_activation", ActivationType, defaults.employee_activation),
        employee_archiving=_enum(reader, "employee_archiving", ArchiveType, defaults.employee_archiving),
        archive_grace_days=grace if isinstance(grace, int) else defaults.archive_grace_days,
        username_format=username if isinstance(username, str) else defaults.username_format,
        home_address_format=address if isinstance(address, str) else defaults.home_address_format,
        only_primary_address=only_primary if isinstance(only_primary, bool) else defaults.only_primary_address,
        vehicle_automatic_activation=vehicles if isinstance(vehicles, bool) else False,
        display_with_assignment=_enum(
            reader, "display_with_assignment", DisplayWithAssignment, defaults.display_with_assignment
        ),
        full_file_absence=_enum(reader, "full_file_absence", FullFileAbsence, defaults.full_file_absence),
    )
    reader.finish()
    return options


def nhs_options_from_dict(data: object, *, strict: bool = True) -> NhsOptions:
    problems: list[Problem] = []
    options = _nhs_options(data, "", problems, strict)
    if not problems:
        problems.extend(nhs_options_problems(options, prefix=""))
    raise_if("NHS options", problems)
    return options


def profile_from_dict(data: object, *, strict: bool = True) -> TrustProfile:
    problems: list[Problem] = []
    reader = JsonReader(data, "", problems, strict=strict)
    version = reader.take("format_version", (int,), FORMAT_VERSION)
    if isinstance(version, int) and version > FORMAT_VERSION and strict:
        problems.append(Problem("format_version", f"{version} is newer than this program reads ({FORMAT_VERSION})"))
    vpd = reader.take("vpd", (str,))
    name = reader.take("name", (str,))
    interface_version = reader.take("interface_version", (int,), 2)
    inbox = reader.take("inbox_path", (str, type(None)), None)
    sequence = reader.take("last_sequence", (int,), 0)
    active = reader.take("active", (bool,), True)
    options = _nhs_options(reader.take("nhs_options", (dict,), {}), "nhs_options", problems, strict)
    profile = TrustProfile(
        vpd=vpd if isinstance(vpd, str) else "",
        name=name if isinstance(name, str) else "",
        interface_version=interface_version if isinstance(interface_version, int) else 2,
        import_frequency=_enum(reader, "import_frequency", ImportFrequency, ImportFrequency.DAILY),
        inbox_path=inbox if isinstance(inbox, str) else None,
        last_sequence=sequence if isinstance(sequence, int) else 0,
        active=active if isinstance(active, bool) else True,
        nhs_options=options,
    )
    reader.finish()
    if not problems:
        problems.extend(profile_problems(profile))
    raise_if(f"trust profile {vpd!r}" if isinstance(vpd, str) else "trust profile", problems)
    return profile


def profile_to_json(profile: TrustProfile) -> bytes:
    return canonical_json(profile_to_dict(profile))


def profile_from_json(data: bytes | str, *, strict: bool = True) -> TrustProfile:
    return profile_from_dict(parse_json(data, "trust profile"), strict=strict)
