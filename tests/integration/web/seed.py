"""Test data for the web tests, inserted straight into the read model (DESIGN.md §5), plus one user per role.

Two trusts: RX1 (most people) and RX2. Names and numbers are invented.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from esr.web import accounts
from esr.web.db import Database
from esr.web.roles import Role

PASSWORD = "correct horse battery staple"

RX1, RX2 = "RX1", "RX2"
SIAN = (RX1, "100001")  # two assignments, two vehicles, history
TOMASZ = (RX1, "100002")  # Siân's line manager
AOIFE = (RX1, "100003")  # a leaver
DELETED = (RX1, "100004")
HOSTILE = (RX1, "100005")  # a name made of markup and SQL
GRACE = (RX2, "200001")  # the other trust
SIAN_NI = "QQ123456C"
GRACE_NI = "AB654321D"
SIAN_DOB = dt.date(1984, 3, 12)
SCRIPT = "<script>alert('x')</script>"

_READ_MODEL = {"person", "assignment", "home_address", "phone", "vehicle", "costing", "location", "organisation",
               "position"}
_lines = [0]  # provenance line numbers, counted across inserts


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def insert(conn: psycopg.Connection[Any], table: str, **columns: Any) -> None:
    """One row; read-model tables get the sink's provenance columns filled in."""
    if table in _READ_MODEL:
        _lines[0] += 1
        line = _lines[0]
        columns.setdefault("src_sequence", 1)
        columns.setdefault("src_line_no", line)
        columns.setdefault("last_event_id", f"seed-{table}-{line}")
        columns.setdefault("last_event_type", "SEED")
    names = list(columns)
    conn.execute(
        sql.SQL("INSERT INTO esr.{} ({}) VALUES ({})").format(
            sql.Identifier(table),
            sql.SQL(", ").join(map(sql.Identifier, names)),
            sql.SQL(", ").join(sql.Placeholder() * len(names)),
        ),
        [Jsonb(v) if isinstance(v, dict | list) else v for v in columns.values()],
    )


def seed_read_model(conn: psycopg.Connection[Any]) -> None:
    ins = insert
    ins(conn, "trust", vpd=RX1, name="Northfield Teaching Hospitals NHS Foundation Trust", last_sequence=3)
    ins(conn, "trust", vpd=RX2, name="Westmere Community Health NHS Trust", last_sequence=1,
        import_frequency="weekly")

    # reference data
    for vpd, loc, code, desc, line1, town, pc in [
        (RX1, "L1", "NGH", "Northfield General Hospital", "1 Infirmary Road", "Northfield", "NF1 4GH"),
        (RX1, "L2", "BANK", "Nurse Bank Office", "Unit 4, Riverside Park", "Northfield", "NF3 9RP"),
        (RX2, "L9", "WCH", "Westmere Community Hub", "22 Market Street", "Westmere", "WM2 1AA"),
    ]:
        ins(conn, "location", vpd=vpd, location_id=loc, code=code, description=desc, line1=line1, town=town,
            county="Northshire", postcode=pc, country="GB")
    for vpd, org, name, loc in [
        (RX1, "O1", "Ward 7 Cardiology", "L1"),
        (RX1, "O2", "Nurse Bank", "L2"),
        (RX1, "O3", "Cardiology Directorate", "L1"),
        (RX2, "O9", "District Nursing", "L9"),
    ]:
        ins(conn, "organisation", vpd=vpd, organisation_id=org, name=name, type="Department", location_id=loc,
            cost_centre="CC" + org)
    for vpd, pos, number, name, group in [
        (RX1, "P1", 1001, "Staff Nurse | Cardiology", "Nursing and Midwifery Registered"),
        (RX1, "P2", 1002, "Bank Staff Nurse", "Nursing and Midwifery Registered"),
        (RX1, "P3", 1003, "Ward Manager | Cardiology", "Nursing and Midwifery Registered"),
        (RX1, "P4", 1004, "Physiotherapist", "Allied Health Professionals"),
        (RX2, "P9", 9001, "District Nurse", "Nursing and Midwifery Registered"),
    ]:
        ins(conn, "position", vpd=vpd, position_id=pos, position_number=number, name=name, staff_group=group,
            organisation_id="O1")

    # people
    ins(conn, "person", vpd=RX1, person_id="100001", employee_number="10000123", title="Dr", first_name="Siân",
        middle_names="Mair", last_name="Evans-Price", maiden_name="Evans", preferred_name="Siân", gender="F",
        date_of_birth=SIAN_DOB, ni_number=SIAN_NI, email="sian.evans-price@northfield.nhs.example",
        hire_date=dt.date(2012, 9, 3), effective_start=dt.date(2012, 9, 3))
    ins(conn, "person", vpd=RX1, person_id="100002", employee_number="10000456", title="Mr", first_name="Tomasz",
        last_name="Nowak", gender="M", date_of_birth=dt.date(1975, 7, 1), ni_number="QQ654321A",
        hire_date=dt.date(2005, 1, 10), email="tomasz.nowak@northfield.nhs.example")
    ins(conn, "person", vpd=RX1, person_id="100003", employee_number="10000789", title="Ms", first_name="Aoife",
        last_name="O'Connor", gender="F", date_of_birth=dt.date(1990, 11, 23), ni_number="QQ111222B",
        hire_date=dt.date(2018, 4, 1), termination_date=dt.date(2025, 12, 31))
    ins(conn, "person", vpd=RX1, person_id="100004", employee_number="10000999", title="Mr", first_name="Deleted",
        last_name="Person", deleted_at=dt.datetime(2026, 1, 2, tzinfo=dt.UTC))
    ins(conn, "person", vpd=RX1, person_id="100005", employee_number="10000666", first_name=SCRIPT,
        last_name="Robert'); DROP TABLE esr.person;--", ni_number="QQ999999Z")
    ins(conn, "person", vpd=RX2, person_id="200001", employee_number="20000123", title="Mrs", first_name="Grace",
        last_name="Okafor", gender="F", date_of_birth=dt.date(1988, 2, 29), ni_number=GRACE_NI,
        hire_date=dt.date(2020, 6, 1))

    # Siân: primary and a secondary assignment, line manager Tomasz
    ins(conn, "assignment", vpd=RX1, assignment_id="A1", person_id="100001", assignment_number="20000011",
        is_primary=True, assignment_status="Active Assignment", job_name="Nurse", position_id="P1", grade="Band 6",
        organisation_id="O1", location_id="L1", supervisor_person_id="100002", effective_start=dt.date(2019, 4, 1))
    ins(conn, "assignment", vpd=RX1, assignment_id="A2", person_id="100001", assignment_number="20000011-2",
        is_primary=False, assignment_status="Active Assignment", job_name="Bank Nurse", position_id="P2",
        position_name="Bank Staff Nurse", grade="Band 5", organisation_id="O2", supervisor_person_id="100002",
        effective_start=dt.date(2021, 1, 4))
    ins(conn, "assignment", vpd=RX1, assignment_id="A3", person_id="100002", assignment_number="20000022",
        is_primary=True, assignment_status="Active Assignment", job_name="Ward Manager", position_id="P3",
        grade="Band 7", organisation_id="O3", location_id="L1", effective_start=dt.date(2005, 1, 10))
    ins(conn, "assignment", vpd=RX1, assignment_id="A4", person_id="100003", assignment_number="20000033",
        is_primary=True, assignment_status="Terminate Process", job_name="Physiotherapist", position_id="P4",
        grade="Band 6", organisation_id="O1", effective_start=dt.date(2018, 4, 1),
        effective_end=dt.date(2025, 12, 31), assignment_end_date=dt.date(2025, 12, 31))
    ins(conn, "assignment", vpd=RX2, assignment_id="A9", person_id="200001", assignment_number="90000011",
        is_primary=True, assignment_status="Active Assignment", job_name="District Nurse", position_id="P9",
        grade="Band 6", organisation_id="O9", location_id="L9", effective_start=dt.date(2020, 6, 1))
    for cid, aid, cc, pct in [("C1", "A1", "RX1CARD01", "100"), ("C2", "A2", "RX1BANK01", "60"),
                              ("C3", "A2", "RX1BANK02", "40")]:
        ins(conn, "costing", vpd=RX1, costing_id=cid, person_id="100001", assignment_id=aid, cost_centre=cc,
            subjective="S1100", percentage=Decimal(pct), effective_start=dt.date(2021, 1, 4))

    # addresses and phones
    ins(conn, "home_address", vpd=RX1, address_id="H1", person_id="100001", line1="12 Oak Lane",
        line2="Little Haydon", town="Northfield", county="Northshire", postcode="NF2 7QT", country="GB",
        is_primary=True, effective_start=dt.date(2022, 5, 14))
    ins(conn, "home_address", vpd=RX1, address_id="H2", person_id="100001", line1="Flat 3, 88 Station Road",
        town="Northfield", county="Northshire", postcode="NF1 1AA", country="GB", is_primary=False,
        effective_start=dt.date(2012, 9, 3), effective_end=dt.date(2022, 5, 13))
    ins(conn, "home_address", vpd=RX2, address_id="H9", person_id="200001", line1="5 Mill Close", town="Westmere",
        postcode="WM4 6ZZ", is_primary=True, effective_start=dt.date(2020, 6, 1))
    ins(conn, "phone", vpd=RX1, phone_id="T1", person_id="100001", phone_type="Mobile", phone_number="07700 900123")
    ins(conn, "phone", vpd=RX1, phone_id="T2", person_id="100001", phone_type="Work", phone_number="01632 960456")

    # vehicles and the NHS mileage table
    ins(conn, "vehicle", vpd=RX1, vehicle_allocation_id="V1", person_id="100001", assignment_id="A1",
        registration="NF21 KXD", make="Ford", model="Focus", ownership="Private", fuel_type="Petrol",
        engine_cc=Decimal(1596), user_rates_table="Standard Rate", effective_start=dt.date(2021, 3, 1))
    ins(conn, "vehicle", vpd=RX1, vehicle_allocation_id="V2", person_id="100001", assignment_id="A2",
        registration="LE70 EVN", make="Toyota", model="Yaris Hybrid", ownership="Lease", fuel_type="Hybrid",
        engine_cc=Decimal("1.5"), user_rates_table="standard rate ", effective_start=dt.date(2023, 8, 1))
    for code, lo, hi, rate, desc in [
        ("STANDARD RATE", 0, 1500, "0.5600", "Standard user, up to 1500 cc"),
        ("STANDARD RATE", 1501, None, "0.5600", "Standard user, over 1500 cc"),
        ("REGULAR USER", 0, 1000, "0.3700", "Regular user, up to 1000 cc"),
        ("REGULAR USER", 1001, 1500, "0.4590", "Regular user, 1001-1500 cc"),
    ]:
        ins(conn, "mileage_category", vpd=RX1, code=code, engine_from=lo, engine_to=hi, rate_per_mile=Decimal(rate),
            description=desc)

    # change history
    events = [
        ("NEW_STARTER", "PERSON", "100001", [{"field": "last_name", "old": None, "new": "Evans"}],
         dt.date(2012, 9, 3), 1),
        ("SURNAME_CHANGED", "PERSON", "100001", [{"field": "last_name", "old": "Evans", "new": "Evans-Price"}],
         dt.date(2016, 7, 30), 2),
        ("PERSON_UPDATED", "PERSON", "100001", [{"field": "ni_number", "old": "QQ000000A", "new": SIAN_NI},
                                                {"field": "date_of_birth", "old": "1984-03-21", "new": "1984-03-12"}],
         dt.date(2017, 1, 5), 3),
        ("HOME_ADDRESS_CHANGED", "ADDRESS", "H1", [{"field": "line1", "old": "Flat 3, 88 Station Road",
                                                    "new": "12 Oak Lane"},
                                                   {"field": "postcode", "old": "NF1 1AA", "new": "NF2 7QT"}],
         dt.date(2022, 5, 14), 4),
        ("VEHICLE_ADDED", "VEHICLE", "V2", [{"field": "registration", "old": None, "new": "LE70 EVN"}],
         dt.date(2023, 8, 1), 5),
    ]
    base = dt.datetime(2026, 1, 5, 7, 30, tzinfo=dt.UTC)
    for i, (etype, entity, eid, changes, effective, line) in enumerate(events):
        ins(conn, "change_event", event_id=f"evt-{i:03d}", vpd=RX1, person_id="100001", employee_number="10000123",
            event_type=etype, op="u", entity_type=entity, entity_id=eid, changes=changes, effective_date=effective,
            file_name="GO_RX1_EXP_GOC_20260106_00000002.DAT", line_no=100 + line,
            recorded_at=base + dt.timedelta(minutes=i))

    # import ledger
    files: list[tuple[str, str, int, str, str, str | None, int, int | None, int | None, str | None, int]] = [
        (RX1, "GO_RX1_EXP_GOF_20260105_00000001.DAT", 1, "F", "completed", None, 5120, 5118, 0, None, 0),
        (RX1, "GO_RX1_EXP_GOC_20260106_00000002.DAT", 2, "C", "completed", None, 214, 210, 2, None, 1),
        (RX1, "GO_RX1_EXP_GOC_20260107_00000004.DAT", 4, "C", "rejected", "WRONG_SEQUENCE", 90, None, None,
         "sequence 4 is not 2 or 3 (last accepted 3); ingest with --force to accept it", 2),
        (RX2, "GO_RX2_EXP_GOF_20260105_00000001.DAT", 1, "F", "completed", None, 800, 798, 0, None, 3),
        ("ZZZ", "GO_ZZZ_EXP_GOC_20260105_00000001.DAT", 1, "C", "rejected", "VPD_NOT_FOUND", 10, None, None,
         "trust ZZZ is not registered", 4),
    ]
    for vpd, name, seq, kind, status, rejection, lines, records, errors, message, hours in files:
        ins(conn, "import_file", sha256=sha(name), vpd=vpd, file_name=name, sequence=seq, extract_type=kind,
            extract_date=dt.date(2026, 1, 5), status=status, rejection_code=rejection, line_count=lines,
            record_count=records, error_count=errors, warning_count=1 if errors else 0, message=message,
            counts_by_code={"PRA": 3, "ASA": 4} if records else None,
            received_at=base + dt.timedelta(hours=hours), completed_at=base + dt.timedelta(hours=hours, minutes=1))
    change_file = sha("GO_RX1_EXP_GOC_20260106_00000002.DAT")
    ins(conn, "import_line_error", sha256=change_file, line_no=17, record_code="PRA", severity="quarantined",
        reason="field count 43, expected 44",
        raw_line=f"PRA|100009|Smith|John|{SIAN_NI}|1984-03-12|...truncated")
    ins(conn, "import_line_error", sha256=change_file, line_no=52, record_code="ASA", severity="quarantined",
        reason="unknown assignment status 'X'", raw_line="ASA|A77|100009|X|...")
    ins(conn, "import_line_error", sha256=change_file, line_no=60, record_code="VHA", severity="warning",
        field="engine_cc", reason="not a number: 'abc' (stored empty)", raw_line="VHA|V77|100009|abc|...")


@dataclass
class SeededUsers:
    """Usernames -> user ids and API tokens."""

    ids: dict[str, int] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)


USERS: dict[str, list[tuple[Role, str | None]]] = {
    "admin": [(Role.USER_ADMIN, None)],
    "rx1admin": [(Role.USER_ADMIN, RX1)],
    "viewer": [(Role.VIEWER, None)],
    "viewer_rx2": [(Role.VIEWER, RX2)],
    "imports": [(Role.IMPORTS, None)],
    "imports_rx1": [(Role.IMPORTS, RX1)],
    "tailor": [(Role.TAILORING, None)],
    "tailor_rx2": [(Role.TAILORING, RX2)],
    "nobody": [],
}


def seed_users(db: Database) -> SeededUsers:
    seeded = SeededUsers()
    for name, grants in USERS.items():
        user_id = accounts.create_user(db, name, PASSWORD, display_name=name.replace("_", " ").title(), grants=grants)
        seeded.ids[name] = user_id
        seeded.tokens[name] = accounts.create_token(db, user_id, "tests", 30, None)[1]
    return seeded
