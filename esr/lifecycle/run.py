"""`esr lifecycle run`: apply a trust's activation and archiving options to `esr.employee` for one day.

The decisions are `esr.lifecycle.evaluate` (pure) over the mapped employees (hire and termination dates of
the trust's mapping; deleted rows are left alone). Each action, in one transaction with the others:

- sets `activated_at` / `archived_at` of the employee (only where still NULL), and
- records EMPLOYEE_ACTIVATED / EMPLOYEE_ARCHIVED in `esr.change_event` with a deterministic event id,
  uuid5 of (VPD, event, person id, due date): the same action gets the same id however often, or late,
  the run happens (ON CONFLICT DO NOTHING). A second run the same day finds nothing to do.

With the option "vehicle automatic activation" on, the run also sets `activated_at` of the trust's live
vehicles (not deleted, in force on the day) that have none yet; off, activation is left to an
administrator. Nothing is recorded for a vehicle: its activation is not an employee change.

The trust's row is locked for the run, so two runs at once do the work once.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from esr.lifecycle.evaluate import EmployeeFacts, LifecycleAction, LifecycleEvent, evaluate_all
from esr.profiles import NhsOptions, nhs_options_from_dict

#: uuid5 namespace of lifecycle event ids
LIFECYCLE_EVENT_NAMESPACE = uuid.UUID("0b8e4f9a-3c2d-4e71-9a55-7d1e2c6b8f30")

_COLUMN = {LifecycleEvent.EMPLOYEE_ACTIVATED: "activated_at", LifecycleEvent.EMPLOYEE_ARCHIVED: "archived_at"}


class UnknownTrust(LookupError):
    pass


def lifecycle_event_id(vpd: str, action: LifecycleAction) -> str:
    return str(uuid.uuid5(LIFECYCLE_EVENT_NAMESPACE, f"{vpd}:{action.key}"))


@dataclass(frozen=True, slots=True)
class LifecycleReport:
    vpd: str
    day: dt.date
    options: NhsOptions
    employees: int
    actions: tuple[LifecycleAction, ...]
    recorded: int  # change events new in esr.change_event
    vehicles_activated: int = 0

    def count(self, event: LifecycleEvent) -> int:
        return sum(action.event is event for action in self.actions)


def trust_options(conn: psycopg.Connection[Any], vpd: str) -> NhsOptions:
    row = conn.execute("SELECT nhs_options FROM esr.trust WHERE vpd = %s", (vpd,)).fetchone()
    if row is None:
        raise UnknownTrust(f"no trust is registered for VPD {vpd}")
    return NhsOptions() if row[0] is None else nhs_options_from_dict(row[0], strict=False)


def run_lifecycle(conn: psycopg.Connection[Any], vpd: str, day: dt.date) -> LifecycleReport:
    """Evaluate and apply the trust's lifecycle rules for `day` (module doc)."""
    with conn.transaction():
        if conn.execute("SELECT 1 FROM esr.trust WHERE vpd = %s FOR UPDATE", (vpd,)).fetchone() is None:
            raise UnknownTrust(f"no trust is registered for VPD {vpd}")
        options = trust_options(conn, vpd)
        rows = conn.execute(
            "SELECT person_id, payroll_number, hire_date, termination_date, activated_at IS NOT NULL,"
            " archived_at IS NOT NULL FROM esr.employee WHERE vpd = %s AND deleted_at IS NULL ORDER BY person_id",
            (vpd,),
        ).fetchall()
        payroll = {row[0]: row[1] for row in rows}
        facts = [EmployeeFacts(person_id, hire, termination, activated, archived)
                 for person_id, _, hire, termination, activated, archived in rows]
        actions = evaluate_all(options, day, facts)
        recorded = 0
        for action in actions:
            column = _COLUMN[action.event]
            conn.execute(
                f"UPDATE esr.employee SET {column} = now() WHERE vpd = %s AND person_id = %s AND {column} IS NULL",
                (vpd, action.person_id),
            )
            cursor = conn.execute(
                "INSERT INTO esr.change_event (event_id, vpd, person_id, employee_number, event_type, op,"
                " entity_type, entity_id, changes, effective_date, event_ts)"
                " VALUES (%s, %s, %s, %s, %s, 'c', 'PERSON', %s, %s, %s, now()) ON CONFLICT (event_id) DO NOTHING",
                (
                    lifecycle_event_id(vpd, action), vpd, action.person_id, payroll.get(action.person_id),
                    action.event.value, action.person_id,
                    Jsonb([{"field": column, "old": None, "new": action.due_date.isoformat()},
                           {"field": "reason", "old": None, "new": action.reason}]),
                    action.due_date,
                ),
            )
            recorded += max(cursor.rowcount, 0)
        vehicles = activate_vehicles(conn, vpd, day) if options.vehicle_automatic_activation else 0
    return LifecycleReport(vpd, day, options, len(rows), actions, recorded, vehicles)


def activate_vehicles(conn: psycopg.Connection[Any], vpd: str, day: dt.date) -> int:
    """Set `activated_at` of the trust's live vehicles on `day` that have none yet; how many it set."""
    cursor = conn.execute(
        "UPDATE esr.vehicle SET activated_at = now() WHERE vpd = %(vpd)s AND activated_at IS NULL"
        " AND deleted_at IS NULL AND (effective_start IS NULL OR effective_start <= %(day)s)"
        " AND (effective_end IS NULL OR effective_end >= %(day)s)",
        {"vpd": vpd, "day": day},
    )
    return max(cursor.rowcount, 0)
