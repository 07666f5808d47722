"""Trust profiles and their NHS options (DESIGN §6, format reference §4.1 and §4.5). Pure, no I/O.

`TrustProfile` and `NhsOptions` are frozen values. Build them freely; `validate_profile` /
`validate_nhs_options` (also run by the JSON loaders) report every problem at once as a `ValidationError`.
"""

from __future__ import annotations

import enum
import functools
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from esr.format.layouts import ADDRESS, PERSON
from esr.format.values import Value
from esr.profiles.text_template import TextTemplate, parse_text_template, text_fields
from esr.validation import Problem, ValidationError, raise_if

VPD_PATTERN = re.compile(r"[0-9A-Za-z]{3}")
MAX_SEQUENCE = 99_999_999  # 8 digits in the file name
MAX_GRACE_DAYS = 3_660  # ten years: anything longer is a typo
MAX_NAME_LENGTH = 200

DEFAULT_USERNAME_FORMAT = "{first_name}.{last_name}"  # Assure's default, "firstname.surname" (§4.4)
DEFAULT_HOME_ADDRESS_FORMAT = "{line_1}, {line_2}, {line_3}, {town}, {county}, {postcode}"

USERNAME_FIELDS = text_fields(PERSON)
HOME_ADDRESS_FIELDS = text_fields(ADDRESS)


@functools.lru_cache(maxsize=128)
def _parsed(source: str, allowed: frozenset[str], what: str) -> TextTemplate:
    return parse_text_template(source, allowed, what=what)


class ImportFrequency(enum.Enum):
    DAILY = "daily"
    WEEKLY = "weekly"


class ActivationType(enum.Enum):
    """ESR outbound employee activation type."""

    NONE = "none"  # imported employees stay inactive
    MANUAL = "manual"  # an administrator activates them
    AUTOMATIC = "automatic"  # the daily evaluation activates them once the hire date has arrived


class ArchiveType(enum.Enum):
    """ESR outbound employee archive type."""

    NONE = "none"
    MANUAL = "manual"
    AUTOMATIC = "automatic"  # the daily evaluation archives them once termination + grace period has passed


class FullFileAbsence(enum.Enum):
    """What a full (F) file's absence of an entity the trust had means (DESIGN §4, Q13)."""

    REPORT = "report"  # ABSENT_FROM_FULL_FILE: the entity stays, downstream decides
    DELETE = "delete"  # the entity is deleted (PERSON_DELETED for an absent person, *_DELETED for a child)


class DisplayWithAssignment(enum.Enum):
    """What identifies an assignment to claimants who have several."""

    NONE = "none"
    PAYPOINT = "paypoint"
    JOB_NAME = "job_name"
    POSITION_NAME = "position_name"


@dataclass(frozen=True, slots=True)
class NhsOptions:
    employee_activation: ActivationType = ActivationType.NONE
    employee_archiving: ArchiveType = ArchiveType.NONE
    archive_grace_days: int = 0
    username_format: str = DEFAULT_USERNAME_FORMAT
    home_address_format: str = DEFAULT_HOME_ADDRESS_FORMAT
    only_primary_address: bool = True
    vehicle_automatic_activation: bool = False
    display_with_assignment: DisplayWithAssignment = DisplayWithAssignment.NONE
    full_file_absence: FullFileAbsence = FullFileAbsence.REPORT

    @property
    def absence_is_delete(self) -> bool:
        return self.full_file_absence is FullFileAbsence.DELETE

    def username_template(self) -> TextTemplate:
        return _parsed(self.username_format, USERNAME_FIELDS, "username_format")

    def home_address_template(self) -> TextTemplate:
        return _parsed(self.home_address_format, HOME_ADDRESS_FIELDS, "home_address_format")

    def render_username(self, person: Mapping[str, Value]) -> str:
        """The username for a person (PRA fields by name), whitespace removed; "" when every part is empty."""
        return "".join(self.username_template().render(person).split())

    def render_home_address(self, address: Mapping[str, Value]) -> str:
        return self.home_address_template().render(address)


@dataclass(frozen=True, slots=True)
class TrustProfile:
    vpd: str
    name: str
    interface_version: int = 2
    import_frequency: ImportFrequency = ImportFrequency.DAILY
    inbox_path: str | None = None
    last_sequence: int = 0  # 0 = no file processed yet
    active: bool = True  # False = archived: its files are rejected (NhsVpdNotFound)
    nhs_options: NhsOptions = field(default_factory=NhsOptions)

    @property
    def archived(self) -> bool:
        return not self.active


def nhs_options_problems(options: NhsOptions, prefix: str = "nhs_options") -> list[Problem]:
    p = f"{prefix}." if prefix else ""
    problems: list[Problem] = []
    checks: tuple[tuple[str, object, type[enum.Enum]], ...] = (
        ("employee_activation", options.employee_activation, ActivationType),
        ("employee_archiving", options.employee_archiving, ArchiveType),
        ("display_with_assignment", options.display_with_assignment, DisplayWithAssignment),
        ("full_file_absence", options.full_file_absence, FullFileAbsence),
    )
    for name, value, kind in checks:
        if not isinstance(value, kind):
            choices = ", ".join(m.value for m in kind)
            problems.append(Problem(p + name, f"{value!r} is not one of {choices}"))
    grace: object = options.archive_grace_days
    if isinstance(grace, bool) or not isinstance(grace, int):
        problems.append(Problem(p + "archive_grace_days", f"{grace!r} is not a whole number of days"))
    elif not 0 <= grace <= MAX_GRACE_DAYS:
        problems.append(Problem(p + "archive_grace_days", f"{grace} is not between 0 and {MAX_GRACE_DAYS} days"))
    for name in ("only_primary_address", "vehicle_automatic_activation"):
        if not isinstance(getattr(options, name), bool):
            problems.append(Problem(p + name, f"{getattr(options, name)!r} is not true or false"))
    formats = (("username_format", USERNAME_FIELDS), ("home_address_format", HOME_ADDRESS_FIELDS))
    for name, allowed in formats:
        source = getattr(options, name)
        if not isinstance(source, str):
            problems.append(Problem(p + name, f"{source!r} is not text"))
            continue
        try:
            parse_text_template(source, allowed, what=p + name)
        except ValidationError as error:
            problems.extend(error.problems)
    return problems


def profile_problems(profile: TrustProfile) -> list[Problem]:
    problems: list[Problem] = []
    vpd: object = profile.vpd
    if not isinstance(vpd, str) or not VPD_PATTERN.fullmatch(vpd):
        problems.append(Problem("vpd", f"{vpd!r} is not 3 characters of 0-9, A-Z or a-z"))
    name: object = profile.name
    if not isinstance(name, str) or not name.strip():
        problems.append(Problem("name", "must not be empty"))
    elif len(name) > MAX_NAME_LENGTH or name != name.strip():
        problems.append(Problem("name", f"must be at most {MAX_NAME_LENGTH} characters, without outer spaces"))
    version: object = profile.interface_version
    if isinstance(version, bool) or version not in (1, 2):
        problems.append(Problem("interface_version", f"{version!r} is not 1 or 2"))
    frequency: object = profile.import_frequency
    if not isinstance(frequency, ImportFrequency):
        problems.append(Problem("import_frequency", f"{profile.import_frequency!r} is not daily or weekly"))
    inbox: object = profile.inbox_path
    if inbox is not None and (not isinstance(inbox, str) or not inbox.strip() or "\x00" in inbox):
        problems.append(Problem("inbox_path", f"{inbox!r} is not a path (leave it out for none)"))
    sequence: object = profile.last_sequence
    if isinstance(sequence, bool) or not isinstance(sequence, int) or not 0 <= sequence <= MAX_SEQUENCE:
        problems.append(Problem("last_sequence", f"{sequence!r} is not a whole number from 0 to {MAX_SEQUENCE}"))
    active: object = profile.active
    if not isinstance(active, bool):
        problems.append(Problem("active", f"{profile.active!r} is not true or false"))
    options: object = profile.nhs_options
    if isinstance(options, NhsOptions):
        problems.extend(nhs_options_problems(options))
    else:
        problems.append(Problem("nhs_options", "missing NHS options"))
    return problems


def validate_nhs_options(options: NhsOptions) -> NhsOptions:
    raise_if("NHS options", nhs_options_problems(options, prefix=""))
    return options


def validate_profile(profile: TrustProfile) -> TrustProfile:
    raise_if(f"trust profile {profile.vpd!r}", profile_problems(profile))
    return profile


def vpd_conflicts(profiles: Iterable[TrustProfile]) -> list[Problem]:
    """VPDs held by more than one profile. VPDs compare case-insensitively: "a1b" and "A1B" clash."""
    seen: dict[str, str] = {}
    problems: list[Problem] = []
    for profile in profiles:
        key = profile.vpd.casefold()
        if key in seen:
            problems.append(Problem("vpd", f"{profile.vpd!r} is already used by trust {seen[key]!r}"))
        else:
            seen[key] = profile.name
    return problems


def check_new_vpd(vpd: str, existing: Iterable[str]) -> None:
    """Raise when `vpd` is taken (case-insensitively) by one of `existing`."""
    taken = {v.casefold(): v for v in existing}
    if vpd.casefold() in taken:
        problem = Problem("vpd", f"{vpd!r} is already registered ({taken[vpd.casefold()]!r})")
        raise ValidationError("trust profile", [problem])


def unique_username(candidate: str, taken: Iterable[str]) -> str:
    """`candidate`, or `candidate` + the smallest number from 1 that makes it unique (case-insensitively)."""
    used = {name.casefold() for name in taken}
    if candidate.casefold() not in used:
        return candidate
    number = 1
    while f"{candidate}{number}".casefold() in used:
        number += 1
    return f"{candidate}{number}"
