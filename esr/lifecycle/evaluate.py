"""The daily lifecycle evaluation: automatic activation and archiving (format reference §4.5). Pure.

Given a trust's NHS options, today's date and what is known of an employee, decide what happens today:

- **Activation** (option ``automatic``): an employee not yet activated and not archived is activated once
  the hire date has arrived (hire date <= today), unless they have already left (termination date before
  today): a leaver is never activated after the fact. No hire date, no activation.
- **Archiving** (option ``automatic``): an employee not yet archived is archived once the grace period
  after the termination date has passed: today > termination date + grace days. The termination date is
  the last day of employment, so with 0 grace days the employee is archived the day after it; with 30, on
  the 31st day after it. No termination date (or a termination date cleared by a later ESR row), no
  archiving.
- ``none`` and ``manual`` decide nothing: manual activation and archiving are an administrator's action.

The answer depends only on the arguments (pure), and it is idempotent: applying the actions to the facts
(`apply_actions`) and evaluating again the same day, or any later day, gives no action. Each action
carries the date it is due (hire date; termination date + grace + 1) so its event id can be derived from
(VPD, person id, event type, due date) and stays the same however often, or late, the evaluation runs.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Iterable
from dataclasses import dataclass, replace

from esr.profiles.model import ActivationType, ArchiveType, NhsOptions


class LifecycleEvent(enum.Enum):
    EMPLOYEE_ACTIVATED = "EMPLOYEE_ACTIVATED"
    EMPLOYEE_ARCHIVED = "EMPLOYEE_ARCHIVED"


@dataclass(frozen=True, slots=True)
class EmployeeFacts:
    person_id: str
    hire_date: dt.date | None = None
    termination_date: dt.date | None = None
    activated: bool = False
    archived: bool = False


@dataclass(frozen=True, slots=True)
class LifecycleAction:
    event: LifecycleEvent
    person_id: str
    due_date: dt.date  # the date the rule made it due, not the evaluation date
    reason: str

    @property
    def key(self) -> str:
        """Stable identity of the action for deterministic event ids: ``<event>:<person_id>:<due date>``."""
        return f"{self.event.value}:{self.person_id}:{self.due_date.isoformat()}"


def activation_due(facts: EmployeeFacts) -> dt.date | None:
    return facts.hire_date


def archive_due(facts: EmployeeFacts, grace_days: int) -> dt.date | None:
    """The first day the employee may be archived: the day after termination date + grace days."""
    if facts.termination_date is None:
        return None
    try:
        return facts.termination_date + dt.timedelta(days=grace_days + 1)
    except OverflowError:
        return None  # past the last representable date: never due


def evaluate(options: NhsOptions, today: dt.date, facts: EmployeeFacts) -> tuple[LifecycleAction, ...]:
    if facts.archived:
        return ()
    archive_on = archive_due(facts, options.archive_grace_days)
    if options.employee_archiving is ArchiveType.AUTOMATIC and archive_on is not None and today >= archive_on:
        assert facts.termination_date is not None
        reason = (
            f"terminated on {facts.termination_date.isoformat()}; "
            f"grace period of {options.archive_grace_days} day(s) ended"
        )
        return (LifecycleAction(LifecycleEvent.EMPLOYEE_ARCHIVED, facts.person_id, archive_on, reason),)
    hire = activation_due(facts)
    left = facts.termination_date is not None and facts.termination_date < today
    if (
        options.employee_activation is ActivationType.AUTOMATIC
        and not facts.activated
        and hire is not None
        and hire <= today
        and not left
    ):
        reason = f"hire date {hire.isoformat()} has arrived"
        return (LifecycleAction(LifecycleEvent.EMPLOYEE_ACTIVATED, facts.person_id, hire, reason),)
    return ()


def evaluate_all(
    options: NhsOptions, today: dt.date, employees: Iterable[EmployeeFacts]
) -> tuple[LifecycleAction, ...]:
    """Every employee's actions, in input order."""
    return tuple(action for facts in employees for action in evaluate(options, today, facts))


def apply_actions(facts: EmployeeFacts, actions: Iterable[LifecycleAction]) -> EmployeeFacts:
    """The facts after the actions for this employee took effect (others' actions are ignored)."""
    for action in actions:
        if action.person_id != facts.person_id:
            continue
        if action.event is LifecycleEvent.EMPLOYEE_ACTIVATED:
            facts = replace(facts, activated=True)
        else:
            facts = replace(facts, archived=True)
    return facts
