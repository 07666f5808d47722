"""`esr lifecycle run`: the trust's activation and archiving options applied to esr.employee, recorded as
change events with deterministic ids, idempotent; its vehicle automatic activation applied to esr.vehicle.
And the employee sink's columns of the NHS options the mapping renders."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import psycopg
import pytest
from click.testing import CliRunner
from psycopg.types.json import Jsonb

from connectors.file_source.ledger import Ledger
from connectors.sink.employee import STANDARD_COLUMNS, EmployeeRow, employee_row, write_rows
from esr.cli import main
from esr.lifecycle.run import UnknownTrust, run_lifecycle

pytestmark = pytest.mark.integration

VPD = "999"
DAY = dt.date(2026, 3, 10)


def employee(person_id: str, hire: dt.date | None, termination: dt.date | None) -> EmployeeRow:
    values: dict[str, Any] = dict.fromkeys(STANDARD_COLUMNS)
    values.update(payroll_number=f"E{person_id}", hire_date=hire, termination_date=termination)
    return EmployeeRow(VPD, person_id, False, 1, f"ev{person_id}", tuple(values[c] for c in STANDARD_COLUMNS))


@pytest.fixture
def trust(database_url: str) -> str:
    with Ledger(database_url) as ledger:
        ledger.add_trust(VPD, "Test NHS Trust")
    with psycopg.connect(database_url) as conn:
        conn.execute("UPDATE esr.trust SET nhs_options = %s WHERE vpd = %s", (Jsonb({
            "employee_activation": "automatic", "employee_archiving": "automatic", "archive_grace_days": 30,
        }), VPD))
        write_rows(conn, [
            employee("1", dt.date(2026, 3, 10), None),  # hired today: activated
            employee("2", dt.date(2026, 4, 1), None),  # hired next month: not yet
            employee("3", dt.date(2020, 1, 1), dt.date(2026, 2, 7)),  # left 31 days ago: archived
            employee("4", dt.date(2020, 1, 1), dt.date(2026, 2, 8)),  # 30 days ago: still in grace
            employee("5", dt.date(2020, 1, 1), None),
        ])
        conn.execute("UPDATE esr.employee SET deleted_at = now() WHERE person_id = '5'")  # deleted: left alone
    return database_url


def state(url: str) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    with psycopg.connect(url) as conn:
        employees = conn.execute(
            "SELECT person_id, activated_at IS NOT NULL, archived_at IS NOT NULL FROM esr.employee ORDER BY person_id"
        ).fetchall()
        events = conn.execute(
            "SELECT event_id, person_id, employee_number, event_type, effective_date FROM esr.change_event"
            " ORDER BY person_id, event_type"
        ).fetchall()
    return employees, events


def test_due_employees_are_activated_and_archived_once(trust: str) -> None:
    with psycopg.connect(trust) as conn:
        report = run_lifecycle(conn, VPD, DAY)
    assert report.employees == 4
    assert report.recorded == 2
    employees, events = state(trust)
    assert employees == [("1", True, False), ("2", False, False), ("3", False, True), ("4", False, False),
                         ("5", False, False)]
    assert [(p, n, t, d) for _, p, n, t, d in events] == [
        ("1", "E1", "EMPLOYEE_ACTIVATED", dt.date(2026, 3, 10)),
        ("3", "E3", "EMPLOYEE_ARCHIVED", dt.date(2026, 3, 10)),
    ]

    with psycopg.connect(trust) as conn:
        again = run_lifecycle(conn, VPD, DAY)
    assert (again.actions, again.recorded) == ((), 0)
    assert state(trust) == (employees, events)

    with psycopg.connect(trust) as conn:  # the facts forgotten: the same actions get the same ids
        conn.execute("UPDATE esr.employee SET activated_at = NULL, archived_at = NULL")
        conn.commit()
        replayed = run_lifecycle(conn, VPD, DAY + dt.timedelta(days=1))
    assert len(replayed.actions) == 3
    assert replayed.recorded == 1
    assert {e[0] for e in events} <= {e[0] for e in state(trust)[1]}


def test_no_options_decide_nothing_and_an_unknown_trust_is_refused(database_url: str) -> None:
    with Ledger(database_url) as ledger:
        ledger.add_trust(VPD, "Test NHS Trust")
    with psycopg.connect(database_url) as conn:
        write_rows(conn, [employee("1", dt.date(2020, 1, 1), dt.date(2021, 1, 1))])
        assert run_lifecycle(conn, VPD, DAY).actions == ()
        with pytest.raises(UnknownTrust):
            run_lifecycle(conn, "123", DAY)


def test_the_command(trust: str, tmp_path: Path) -> None:
    env = {"ESR_DATABASE_URL": trust, "ESR_DATA_DIR": str(tmp_path / "var")}
    result = CliRunner().invoke(main, ["lifecycle", "run", "--vpd", VPD, "--date", "2026-03-10"], env=env)
    assert result.exit_code == 0, result.output
    assert "1 activated, 1 archived, 2 event(s) recorded" in result.output
    again = CliRunner().invoke(main, ["lifecycle", "run", "--date", "2026-03-10"], env=env)
    assert "0 activated, 0 archived, 0 event(s) recorded; 0 vehicle(s) activated" in again.output
    unknown = CliRunner().invoke(main, ["lifecycle", "run", "--vpd", "123"], env=env)
    assert unknown.exit_code != 0
    assert "no trust is registered for VPD 123" in unknown.output


def vehicle(conn: psycopg.Connection[Any], allocation: str, *, start: dt.date | None = None,
            end: dt.date | None = None, vpd: str = VPD) -> None:
    conn.execute(
        "INSERT INTO esr.vehicle (vpd, vehicle_allocation_id, person_id, effective_start, effective_end,"
        " src_sequence, src_line_no, last_event_id, last_event_type) VALUES (%s, %s, '1', %s, %s, 1, 1, %s, 'x')",
        (vpd, allocation, start, end, f"ev{allocation}"),
    )


def activated(url: str) -> dict[str, dt.datetime | None]:
    with psycopg.connect(url) as conn:
        return dict(conn.execute("SELECT vpd || ':' || vehicle_allocation_id, activated_at FROM esr.vehicle"
                                 ).fetchall())


@pytest.mark.parametrize("automatic", [True, False])
def test_the_trusts_live_vehicles_are_activated_once_when_the_option_is_on(trust: str, automatic: bool) -> None:
    earlier = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    with Ledger(trust) as ledger:
        ledger.add_trust("888", "Other NHS Trust")
    with psycopg.connect(trust) as conn:
        conn.execute("UPDATE esr.trust SET nhs_options = coalesce(nhs_options, '{}') || %s WHERE vpd IN (%s, '888')",
                     (Jsonb({"vehicle_automatic_activation": automatic}), VPD))
        vehicle(conn, "V1", start=dt.date(2025, 1, 1))  # in force: activated
        vehicle(conn, "V2", end=DAY)  # its last day: activated
        vehicle(conn, "V3", end=DAY - dt.timedelta(days=1))  # ended: left alone
        vehicle(conn, "V4", start=DAY + dt.timedelta(days=1))  # not yet: left alone
        vehicle(conn, "V5")
        conn.execute("UPDATE esr.vehicle SET deleted_at = now() WHERE vehicle_allocation_id = 'V5'")  # deleted
        vehicle(conn, "V6")
        conn.execute("UPDATE esr.vehicle SET activated_at = %s WHERE vehicle_allocation_id = 'V6'", (earlier,))
        vehicle(conn, "V7", vpd="888")  # another trust's
    with psycopg.connect(trust) as conn:
        report = run_lifecycle(conn, VPD, DAY)
    state_after = activated(trust)
    assert report.vehicles_activated == (2 if automatic else 0)
    assert {key for key, at in state_after.items() if at is not None} == (
        {f"{VPD}:V1", f"{VPD}:V2", f"{VPD}:V6"} if automatic else {f"{VPD}:V6"})
    assert state_after[f"{VPD}:V6"] == earlier  # an earlier activation is kept
    with psycopg.connect(trust) as conn:
        assert run_lifecycle(conn, VPD, DAY).vehicles_activated == 0  # idempotent
    assert activated(trust) == state_after


def test_the_command_reports_the_vehicles_activated(trust: str, tmp_path: Path) -> None:
    with psycopg.connect(trust) as conn:
        conn.execute("UPDATE esr.trust SET nhs_options = coalesce(nhs_options, '{}') || %s WHERE vpd = %s",
                     (Jsonb({"vehicle_automatic_activation": True}), VPD))
        vehicle(conn, "V1")
    env = {"ESR_DATABASE_URL": trust, "ESR_DATA_DIR": str(tmp_path / "var")}
    result = CliRunner().invoke(main, ["lifecycle", "run", "--vpd", VPD, "--date", "2026-03-10"], env=env)
    assert result.exit_code == 0, result.output
    assert "2 event(s) recorded; 1 vehicle(s) activated" in result.output


def test_the_employee_sink_writes_and_clears_the_nhs_option_fields(database_url: str) -> None:
    event = {"event_type": "EMPLOYEE_MAPPED", "vpd": VPD, "person_id": "1", "template_version": 1,
             "event_id": "e1", "standard": {"payroll_number": "E1"}, "udf": {}, "udf_kinds": {}, "problems": [],
             "nhs": {"username": "ann.smith", "home_address": "1 Road, LS1 1AA", "display_name": "Ann Smith (Porter)"}}
    deleted = {**event, "event_type": "PERSON_DELETED", "event_id": "e2", "standard": {}, "nhs": {}}
    query = "SELECT username, home_address, display_name, deleted_at IS NOT NULL FROM esr.employee"
    with psycopg.connect(database_url) as conn:
        write_rows(conn, [employee_row(event)])
        assert conn.execute(query).fetchall() == [("ann.smith", "1 Road, LS1 1AA", "Ann Smith (Porter)", False)]
        write_rows(conn, [employee_row({**event, "event_id": "e3", "nhs": {"username": "ann.smith"}})])
        assert conn.execute(query).fetchall() == [("ann.smith", None, None, False)]
        write_rows(conn, [employee_row(deleted)])
        assert conn.execute(query).fetchall() == [(None, None, None, True)]
