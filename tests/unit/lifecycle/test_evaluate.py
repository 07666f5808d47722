"""esr.lifecycle: automatic activation and archiving, with grace periods, pure and idempotent."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from esr.lifecycle import (
    EmployeeFacts,
    LifecycleAction,
    LifecycleEvent,
    apply_actions,
    archive_due,
    evaluate,
    evaluate_all,
)
from esr.profiles import ActivationType, ArchiveType, NhsOptions

D = dt.date
DAY = dt.timedelta(days=1)
AUTO = NhsOptions(ActivationType.AUTOMATIC, ArchiveType.AUTOMATIC, archive_grace_days=30)
HIRE = D(2024, 3, 1)
LEFT = D(2024, 1, 31)


def events(options: NhsOptions, today: dt.date, facts: EmployeeFacts) -> list[LifecycleEvent]:
    return [a.event for a in evaluate(options, today, facts)]


# --- activation ------------------------------------------------------------------------------------------


def test_activation_on_the_hire_date_not_before() -> None:
    starter = EmployeeFacts("1", hire_date=HIRE)
    assert events(AUTO, HIRE - DAY, starter) == []
    assert evaluate(AUTO, HIRE, starter) == (
        LifecycleAction(LifecycleEvent.EMPLOYEE_ACTIVATED, "1", HIRE, "hire date 2024-03-01 has arrived"),
    )
    late = evaluate(AUTO, HIRE + 10 * DAY, starter)
    assert [a.due_date for a in late] == [HIRE]  # a late run gives the same action


def test_no_activation_without_a_hire_date_or_when_already_active_or_archived() -> None:
    assert events(AUTO, HIRE, EmployeeFacts("1")) == []
    assert events(AUTO, HIRE, EmployeeFacts("1", hire_date=HIRE, activated=True)) == []
    assert events(AUTO, HIRE, EmployeeFacts("1", hire_date=HIRE, archived=True)) == []


@pytest.mark.parametrize("activation", [ActivationType.NONE, ActivationType.MANUAL])
def test_no_automatic_activation_unless_the_option_says_so(activation: ActivationType) -> None:
    options = NhsOptions(activation, ArchiveType.AUTOMATIC)
    assert events(options, HIRE, EmployeeFacts("1", hire_date=HIRE)) == []


def test_a_leaver_is_never_activated_after_the_fact() -> None:
    options = NhsOptions(ActivationType.AUTOMATIC, ArchiveType.NONE)
    leaver = EmployeeFacts("1", hire_date=D(2023, 1, 1), termination_date=LEFT)
    assert events(options, LEFT, leaver) == [LifecycleEvent.EMPLOYEE_ACTIVATED]  # still employed that day
    assert events(options, LEFT + DAY, leaver) == []


# --- archiving -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("grace", "first_day"),
    [(0, D(2024, 2, 1)), (1, D(2024, 2, 2)), (29, D(2024, 3, 1)), (30, D(2024, 3, 2)), (366, D(2025, 2, 1))],
)
def test_archiving_after_termination_plus_grace(grace: int, first_day: dt.date) -> None:
    options = NhsOptions(ActivationType.NONE, ArchiveType.AUTOMATIC, archive_grace_days=grace)
    leaver = EmployeeFacts("1", hire_date=D(2020, 1, 1), termination_date=LEFT, activated=True)
    assert archive_due(leaver, grace) == first_day
    assert events(options, first_day - DAY, leaver) == []  # the last day of the grace period
    assert evaluate(options, first_day, leaver) == (
        LifecycleAction(
            LifecycleEvent.EMPLOYEE_ARCHIVED,
            "1",
            first_day,
            f"terminated on 2024-01-31; grace period of {grace} day(s) ended",
        ),
    )
    assert [a.due_date for a in evaluate(options, first_day + 100 * DAY, leaver)] == [first_day]


def test_grace_period_across_a_leap_day() -> None:
    options = NhsOptions(employee_archiving=ArchiveType.AUTOMATIC, archive_grace_days=1)
    leaver = EmployeeFacts("1", termination_date=D(2024, 2, 28))
    assert events(options, D(2024, 2, 29), leaver) == []
    assert events(options, D(2024, 3, 1), leaver) == [LifecycleEvent.EMPLOYEE_ARCHIVED]


@pytest.mark.parametrize("archiving", [ArchiveType.NONE, ArchiveType.MANUAL])
def test_no_automatic_archiving_unless_the_option_says_so(archiving: ArchiveType) -> None:
    options = NhsOptions(ActivationType.AUTOMATIC, archiving)
    leaver = EmployeeFacts("1", termination_date=LEFT, activated=True)
    assert events(options, LEFT + 400 * DAY, leaver) == []


def test_no_archiving_without_a_termination_date_or_when_archived() -> None:
    assert events(AUTO, D(2030, 1, 1), EmployeeFacts("1", hire_date=HIRE, activated=True)) == []
    assert events(AUTO, D(2030, 1, 1), EmployeeFacts("1", termination_date=LEFT, archived=True)) == []


def test_archiving_wins_over_activation() -> None:
    never_activated = EmployeeFacts("1", hire_date=D(2020, 1, 1), termination_date=LEFT)
    assert events(AUTO, D(2024, 6, 1), never_activated) == [LifecycleEvent.EMPLOYEE_ARCHIVED]


def test_far_future_termination_never_overflows() -> None:
    facts = EmployeeFacts("1", termination_date=D(9999, 12, 31))
    assert archive_due(facts, 30) is None
    assert events(AUTO, D(9999, 12, 31), facts) == []


def test_evaluate_all_and_keys() -> None:
    people = [
        EmployeeFacts("1", hire_date=HIRE),
        EmployeeFacts("2", hire_date=D(2020, 1, 1), termination_date=D(2024, 1, 30), activated=True),
        EmployeeFacts("3", hire_date=HIRE + DAY),
        EmployeeFacts("4", hire_date=D(2020, 1, 1), termination_date=LEFT, activated=True),  # due tomorrow
    ]
    actions = evaluate_all(AUTO, HIRE, people)
    assert [(a.person_id, a.event) for a in actions] == [
        ("1", LifecycleEvent.EMPLOYEE_ACTIVATED),
        ("2", LifecycleEvent.EMPLOYEE_ARCHIVED),
    ]
    assert actions[0].key == "EMPLOYEE_ACTIVATED:1:2024-03-01"
    assert actions[1].key == "EMPLOYEE_ARCHIVED:2:2024-03-01"


def test_apply_actions_ignores_other_people() -> None:
    facts = EmployeeFacts("1", hire_date=HIRE)
    other = LifecycleAction(LifecycleEvent.EMPLOYEE_ARCHIVED, "2", HIRE, "x")
    assert apply_actions(facts, [other]) == facts


# --- properties ------------------------------------------------------------------------------------------

_dates = st.one_of(st.none(), st.dates(min_value=D(2000, 1, 1), max_value=D(2040, 12, 31)))
_facts = st.builds(EmployeeFacts, st.just("p"), _dates, _dates, st.booleans(), st.booleans())
_options = st.builds(
    NhsOptions,
    st.sampled_from(ActivationType),
    st.sampled_from(ArchiveType),
    st.integers(0, 3660),
)
_today = st.dates(min_value=D(2000, 1, 1), max_value=D(2045, 12, 31))


@given(_options, _today, _facts)
def test_evaluation_is_pure(options: NhsOptions, today: dt.date, facts: EmployeeFacts) -> None:
    assert evaluate(options, today, facts) == evaluate(options, today, facts)


@given(_options, _today, _facts, st.integers(0, 400))
def test_evaluation_is_idempotent(options: NhsOptions, today: dt.date, facts: EmployeeFacts, later: int) -> None:
    after = apply_actions(facts, evaluate(options, today, facts))
    assert evaluate(options, today, after) == ()
    # Later days may bring a new, different action, never the same one again.
    again = evaluate(options, today + dt.timedelta(days=later), after)
    first = {a.event for a in evaluate(options, today, facts)}
    assert not first & {a.event for a in again}


@given(_options, _today, _facts)
def test_actions_are_never_due_in_the_future(options: NhsOptions, today: dt.date, facts: EmployeeFacts) -> None:
    for action in evaluate(options, today, facts):
        assert action.due_date <= today
        if action.event is LifecycleEvent.EMPLOYEE_ARCHIVED:
            assert options.employee_archiving is ArchiveType.AUTOMATIC
            assert not facts.archived
            assert facts.termination_date is not None
            assert (today - facts.termination_date).days > options.archive_grace_days
        else:
            assert options.employee_activation is ActivationType.AUTOMATIC
            assert not facts.activated
