"""esr.mapping.view: primary assignment, home address, line manager and work location selection."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from esr.mapping.view import (
    Row,
    build_view,
    is_yes,
    resolve_line_manager,
    resolve_work_location,
    select_home_address,
    select_primary,
)

RUN = dt.date(2024, 3, 1)
EARLY = dt.date(2020, 1, 1)
D = dt.date


def asg(
    assignment_id: str,
    primary: str | None = "Yes",
    start: dt.date | str | None = EARLY,
    end: dt.date | str | None = None,
    **more: object,
) -> dict[str, object]:
    return {
        "assignment_id": assignment_id,
        "assignment_number": f"N-{assignment_id}",
        "primary_assignment": primary,
        "effective_start": start,
        "effective_end": end,
        **more,
    }


def ids(row: Row | None) -> str | None:
    return None if row is None else str(row.get("assignment_id") or row.get("address_id"))


# --- primary assignment ----------------------------------------------------------------------------------


def test_single_active_primary() -> None:
    assignments = [asg("1", "No", D(2023, 1, 1)), asg("2", "Yes", D(2019, 1, 1)), asg("3", "No", D(2024, 1, 1))]
    assert ids(select_primary(assignments, RUN)) == "2"


@pytest.mark.parametrize("flag", ["Yes", "YES", "yes", " Yes "])
def test_flag_is_case_insensitive(flag: str) -> None:
    assert ids(select_primary([asg("1", "No"), asg("2", flag)], RUN)) == "2"


@pytest.mark.parametrize("flag", ["No", "Y", "", None, "True"])
def test_other_flags_are_not_primary(flag: str | None) -> None:
    assert not is_yes(flag)


def test_end_date_on_the_run_date_is_still_active() -> None:
    ended_today = asg("1", "Yes", D(2020, 1, 1), RUN)
    later_secondary = asg("2", "No", D(2023, 1, 1))
    assert ids(select_primary([ended_today, later_secondary], RUN)) == "1"


def test_end_date_before_the_run_date_is_not_active() -> None:
    ended_yesterday = asg("1", "Yes", D(2020, 1, 1), RUN - dt.timedelta(days=1))
    secondary = asg("2", "No", D(2023, 1, 1))
    # No active primary: the latest effective start of all wins.
    assert ids(select_primary([ended_yesterday, secondary], RUN)) == "2"


def test_several_active_primaries_take_the_latest_start() -> None:
    assignments = [asg("1", "Yes", D(2020, 1, 1)), asg("2", "Yes", D(2022, 6, 1)), asg("3", "No", D(2024, 1, 1))]
    assert ids(select_primary(assignments, RUN)) == "2"


def test_ties_go_to_the_highest_assignment_id_numerically() -> None:
    assignments = [asg("9", "Yes", D(2022, 1, 1)), asg("10", "Yes", D(2022, 1, 1))]
    assert ids(select_primary(assignments, RUN)) == "10"
    assert ids(select_primary(list(reversed(assignments)), RUN)) == "10"


def test_no_primary_flag_falls_back_to_the_latest_start() -> None:
    assignments = [asg("1", "No", D(2020, 1, 1)), asg("2", None, D(2021, 1, 1))]
    assert ids(select_primary(assignments, RUN)) == "2"


def test_leaver_keeps_the_latest_assignment_preferring_the_primary_on_a_tie() -> None:
    left = D(2023, 12, 31)
    assignments = [asg("1", "No", D(2021, 1, 1), left), asg("2", "Yes", D(2021, 1, 1), left)]
    assert ids(select_primary(assignments, RUN)) == "2"


def test_future_dated_primary_counts_as_active() -> None:
    starter = asg("1", "Yes", D(2024, 4, 1))
    assert ids(select_primary([starter], RUN)) == "1"


def test_no_assignments() -> None:
    assert select_primary([], RUN) is None


def test_dates_as_text_are_understood() -> None:
    assignments = [asg("1", "Yes", "20200101", "20240229"), asg("2", "Yes", "2021-01-01", "")]
    assert ids(select_primary(assignments, RUN)) == "2"


_flags = st.sampled_from(["Yes", "No", "yes", None])
_dates = st.one_of(st.none(), st.dates(min_value=D(2015, 1, 1), max_value=D(2030, 12, 31)))
_assignments = st.lists(
    st.builds(asg, st.integers(1, 10**6).map(str), _flags, _dates, _dates),
    max_size=6,
    unique_by=lambda a: a["assignment_id"],
)


@given(_assignments, st.randoms(use_true_random=False))
def test_primary_selection_ignores_list_order(assignments: list[dict[str, object]], random: object) -> None:
    shuffled = list(assignments)
    random.shuffle(shuffled)  # type: ignore[attr-defined]
    assert select_primary(assignments, RUN) == select_primary(shuffled, RUN)


@given(_assignments)
def test_primary_selection_follows_the_rule(assignments: list[dict[str, object]]) -> None:
    chosen = select_primary(assignments, RUN)
    active = [
        a for a in assignments
        if is_yes(a["primary_assignment"]) and (a["effective_end"] is None or a["effective_end"] >= RUN)  # type: ignore[operator]
    ]
    if not assignments:
        assert chosen is None
    elif len(active) == 1:
        assert chosen is active[0]
    else:
        pool = active or assignments
        latest = max((a["effective_start"] or D.min) for a in pool)  # type: ignore[type-var]
        assert chosen in pool
        assert chosen is not None
        assert (chosen["effective_start"] or D.min) == latest


# --- home address ----------------------------------------------------------------------------------------


def addr(address_id: str, primary: str = "Yes", start: dt.date | None = EARLY, end: dt.date | None = None) -> Row:
    return {"address_id": address_id, "primary_flag": primary, "effective_start": start, "effective_end": end}


def test_current_primary_address() -> None:
    addresses = [addr("1", "No", D(2023, 1, 1)), addr("2", "Yes"), addr("3", "Yes", D(2010, 1, 1), D(2019, 12, 31))]
    assert ids(select_home_address(addresses, RUN)) == "2"


def test_latest_current_primary_wins() -> None:
    addresses = [addr("1", "Yes", D(2020, 1, 1)), addr("2", "Yes", D(2023, 5, 1))]
    assert ids(select_home_address(addresses, RUN)) == "2"


def test_address_edges() -> None:
    assert ids(select_home_address([addr("1", "Yes", RUN, RUN)], RUN)) == "1"  # starts and ends today
    assert select_home_address([addr("1", "Yes", RUN + dt.timedelta(days=1))], RUN) is None  # not yet
    assert select_home_address([addr("1", "Yes", D(2020, 1, 1), RUN - dt.timedelta(days=1))], RUN) is None


def test_only_primary_address_option() -> None:
    addresses = [addr("1", "No")]
    assert select_home_address(addresses, RUN) is None
    assert ids(select_home_address(addresses, RUN, only_primary=False)) == "1"
    both = [addr("1", "No", D(2023, 1, 1)), addr("2", "Yes", D(2020, 1, 1))]
    assert ids(select_home_address(both, RUN, only_primary=False)) == "2"  # the primary still comes first


# --- line manager and work location ----------------------------------------------------------------------

PEOPLE: dict[str, Row] = {"600002": {"person_id": "600002", "employee_number": "20009999"}}
LOCATIONS: dict[str, Row] = {"300001": {"location_id": "300001", "description": "Main Hospital"}}
ORGANISATIONS: dict[str, Row] = {
    "400001": {"organisation_id": "400001", "location_id": "300001"},
    "400002": {"organisation_id": "400002", "location_id": None},
}


def test_line_manager_is_the_supervisor_person() -> None:
    primary = asg("1", supervisor_person_id="600002")
    assert resolve_line_manager(primary, PEOPLE.get) == PEOPLE["600002"]
    assert resolve_line_manager(asg("1", supervisor_person_id="600003"), PEOPLE.get) is None
    assert resolve_line_manager(asg("1", supervisor_person_id=None), PEOPLE.get) is None
    assert resolve_line_manager(None, PEOPLE.get) is None


def test_line_manager_comes_from_the_primary_not_a_secondary() -> None:
    assignments = [
        asg("1", "Yes", supervisor_person_id="600002"),
        asg("2", "No", D(2023, 1, 1), supervisor_person_id="600003"),
    ]
    view = build_view({"person_id": "600001"}, RUN, assignments=assignments, people={**PEOPLE, "600003": {}}.get)
    assert view.primary_assignment is not None
    assert view.primary_assignment["assignment_id"] == "1"
    assert view.line_manager == PEOPLE["600002"]


def test_work_location_falls_back_to_the_organisation() -> None:
    own = asg("1", location_id="300001", organisation_id="400002")
    via_org = asg("1", location_id=None, organisation_id="400001")
    unknown_location = asg("1", location_id="399999", organisation_id="400001")
    nothing = asg("1", location_id=None, organisation_id="400002")
    assert resolve_work_location(own, LOCATIONS.get, ORGANISATIONS.get) == LOCATIONS["300001"]
    assert resolve_work_location(via_org, LOCATIONS.get, ORGANISATIONS.get) == LOCATIONS["300001"]
    assert resolve_work_location(unknown_location, LOCATIONS.get, ORGANISATIONS.get) == LOCATIONS["300001"]
    assert resolve_work_location(nothing, LOCATIONS.get, ORGANISATIONS.get) is None
    assert resolve_work_location(None, LOCATIONS.get, ORGANISATIONS.get) is None


def test_build_view() -> None:
    person = {"person_id": "600001"}
    vehicles = [{"vehicle_allocation_id": "820001"}]
    view = build_view(
        person,
        RUN,
        assignments=[asg("1", location_id="300001", organisation_id="400001", position_id="500001")],
        addresses=[addr("810001")],
        vehicles=vehicles,
        locations=LOCATIONS.get,
        organisations=ORGANISATIONS.get,
        positions={"500001": {"position_id": "500001"}}.get,
    )
    assert view.person is person
    assert view.home_address is not None
    assert view.home_address["address_id"] == "810001"
    assert view.work_location == LOCATIONS["300001"]
    assert view.organisation == ORGANISATIONS["400001"]
    assert view.position == {"position_id": "500001"}
    assert view.vehicles == tuple(vehicles)
    assert view.line_manager is None
    bare = build_view(person, RUN)
    assert bare.primary_assignment is None
    assert bare.organisation is None
    assert bare.position is None
