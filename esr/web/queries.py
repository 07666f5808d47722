"""Read-model queries (DESIGN.md §5) for the screens and the API.

Every query is static SQL with parameters; filters are assembled from fixed fragments with psycopg.sql.
Trust scoping is applied here: each function takes the VPDs the caller may see (None = every trust).
At the end: the Tailoring writes of mapping templates and mileage tables, through their domain stores.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, cast

import psycopg
from psycopg import sql
from psycopg.rows import dict_row, tuple_row
from psycopg.types.json import Jsonb

from esr.mapping import store as mapping_store
from esr.mapping.template import MappingTemplate
from esr.mapping.versions import TemplateVersion
from esr.mileage.model import MileageCategory
from esr.mileage.store import UnmatchedVehicle, replace_categories, unmatched_vehicles_of_file
from esr.web.db import Database, Row
from esr.web.pagination import Page, decode_cursor, page_of
from esr.web.security import normalise_ni

# These expressions are the ones indexed by migration 0004 (web_person_name_trgm, web_person_sort).
_NAME_EXPR = (
    "esr.web_fold(coalesce(p.first_name, '') || ' ' || coalesce(p.middle_names, '') || ' ' || coalesce(p.last_name, '')"
    " || ' ' || coalesce(p.preferred_name, '') || ' ' || coalesce(p.maiden_name, '') || ' '"
    " || coalesce(p.previous_last_name, ''))"
)
_SORT_COLUMNS = "lower(coalesce(p.last_name, '')), lower(coalesce(p.first_name, '')), p.vpd, p.person_id"

MAX_SEARCH_LENGTH = 100
_NUMBER = re.compile(r"^[0-9][0-9-]*$")


def like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


@dataclass(frozen=True)
class EmployeeSearch:
    """Search criteria. `text` is the single search box: an employee or assignment number (digits, prefix
    match), or words of a name (each must appear, in any name field). `ni_number` is an exact match; the
    caller decides whether the user may search by it."""

    text: str = ""
    name: str = ""
    employee_number: str = ""
    assignment_number: str = ""
    ni_number: str = ""
    vpd: str | None = None


def search_employees(
    db: Database, criteria: EmployeeSearch, vpds: list[str] | None, limit: int, after: str | None
) -> Page[Row]:
    query, params = search_query(criteria, vpds, limit, after)
    with db.connection() as conn:
        rows = conn.execute(query, params).fetchall()
    return page_of(rows, limit, lambda r: [r["sort_last"], r["sort_first"], r["vpd"], r["person_id"]])


def search_query(
    criteria: EmployeeSearch, vpds: list[str] | None, limit: int, after: str | None
) -> tuple[sql.Composed, dict[str, Any]]:
    """The search as SQL and parameters (fetching limit + 1 rows: the extra one says there is a next page)."""
    where: list[sql.Composable] = []
    params: dict[str, Any] = {}
    if vpds is not None:
        where.append(sql.SQL("p.vpd = ANY(%(vpds)s)"))
        params["vpds"] = vpds
    if criteria.vpd:
        where.append(sql.SQL("p.vpd = %(vpd)s"))
        params["vpd"] = criteria.vpd

    names = criteria.name
    employee_number = criteria.employee_number.strip()
    assignment_number = criteria.assignment_number.strip()
    ni = criteria.ni_number
    text = criteria.text.strip()
    if text:
        if _NUMBER.match(text):
            # A union of two index lookups; an OR of the two would scan every person.
            where.append(
                sql.SQL(
                    "(p.vpd, p.person_id) IN ("
                    "SELECT n.vpd, n.person_id FROM esr.person n WHERE n.employee_number LIKE %(number)s"
                    " UNION SELECT a.vpd, a.person_id FROM esr.assignment a WHERE a.assignment_number LIKE %(number)s)"
                )
            )
            params["number"] = like_escape(text) + "%"
        else:
            names = f"{names} {text}"
    for i, word in enumerate(names.split()[:8]):
        key = f"name{i}"
        where.append(sql.SQL(_NAME_EXPR + " LIKE '%%' || esr.web_fold({}) || '%%'").format(sql.Placeholder(key)))
        params[key] = like_escape(word)
    if employee_number:
        where.append(sql.SQL("p.employee_number LIKE %(employee_number)s"))
        params["employee_number"] = like_escape(employee_number) + "%"
    if assignment_number:
        where.append(
            sql.SQL(
                "(p.vpd, p.person_id) IN (SELECT a.vpd, a.person_id FROM esr.assignment a"
                " WHERE a.assignment_number LIKE %(assignment_number)s)"
            )
        )
        params["assignment_number"] = like_escape(assignment_number) + "%"
    if ni:
        where.append(sql.SQL("upper(replace(p.ni_number, ' ', '')) = %(ni)s"))
        params["ni"] = normalise_ni(ni) or ni.upper()
    if after:
        sort_key = decode_cursor(after, (str, str, str, str))
        where.append(sql.SQL("(" + _SORT_COLUMNS + ") > (%(k0)s, %(k1)s, %(k2)s, %(k3)s)"))
        params.update({f"k{i}": v for i, v in enumerate(sort_key)})
    params["limit"] = limit + 1

    condition: sql.Composable = sql.SQL(" AND ").join(where) if where else sql.SQL("true")
    words = names.split()
    selective = bool(text and _NUMBER.match(text)) or bool(employee_number or assignment_number or ni)
    if selective or (words and all(len(w) >= 3 for w in words)):
        # A number, or name words of three letters or more: look the matches up through their index first,
        # then sort them. Left to itself the planner may walk the sorted index instead, testing every person
        # until it has a page (slow when few match), so the filter is fenced off in a materialised CTE.
        # Only short name words (no trigrams to look up; they match many people) walk the sorted index.
        source: sql.Composable = sql.SQL(
            "(WITH matched AS MATERIALIZED (SELECT p.* FROM esr.person p WHERE {condition})"
            " SELECT * FROM matched) p"
        ).format(condition=condition)
        condition = sql.SQL("true")
    else:
        source = sql.SQL("esr.person p")
    # The page of people first; their primary assignment is looked up for those rows only.
    query = sql.SQL(
        """
        SELECT p.*, pa.assignment_number, pa.position_name, pa.organisation_name
        FROM (
            SELECT p.vpd, p.person_id, p.employee_number, p.title, p.first_name, p.middle_names, p.last_name,
                   p.preferred_name, p.date_of_birth, p.ni_number, p.hire_date, p.termination_date, p.deleted_at,
                   lower(coalesce(p.last_name, '')) AS sort_last, lower(coalesce(p.first_name, '')) AS sort_first
            FROM {source}
            WHERE {condition}
            ORDER BY """
        + _SORT_COLUMNS
        + """
            LIMIT %(limit)s
        ) p
        LEFT JOIN LATERAL (
            SELECT a.assignment_number, coalesce(a.position_name, pos.name) AS position_name,
                   o.name AS organisation_name
            FROM esr.assignment a
            LEFT JOIN esr.position pos ON pos.vpd = a.vpd AND pos.position_id = a.position_id
            LEFT JOIN esr.organisation o ON o.vpd = a.vpd AND o.organisation_id = a.organisation_id
            WHERE a.vpd = p.vpd AND a.person_id = p.person_id
            ORDER BY a.deleted_at NULLS FIRST, a.is_primary DESC NULLS LAST, a.effective_start DESC NULLS LAST
            LIMIT 1
        ) pa ON true
        ORDER BY p.sort_last, p.sort_first, p.vpd, p.person_id
        """
    ).format(source=source, condition=condition)
    return query, params


_PERSON_COLUMNS = """
    p.vpd, p.person_id, p.employee_number, p.title, p.first_name, p.middle_names, p.last_name, p.maiden_name,
    p.preferred_name, p.previous_last_name, p.gender, p.date_of_birth, p.ni_number, p.email, p.hire_date,
    p.termination_date, p.effective_start, p.effective_end, p.deleted_at, t.name AS trust_name
"""


def person(db: Database, vpd: str, person_id: str) -> Row | None:
    return db.one(
        "SELECT" + _PERSON_COLUMNS + "FROM esr.person p LEFT JOIN esr.trust t ON t.vpd = p.vpd"
        " WHERE p.vpd = %s AND p.person_id = %s",
        (vpd, person_id),
    )


def assignments(db: Database, vpd: str, person_id: str) -> list[Row]:
    rows = db.all(
        """
        SELECT a.assignment_id, a.assignment_number, a.is_primary, a.assignment_status, a.job_name,
               a.position_id, coalesce(a.position_name, pos.name) AS position_name,
               pos.position_number, pos.staff_group, a.grade, a.organisation_id, o.name AS organisation_name,
               a.location_id, l.description AS location_description, a.supervisor_person_id,
               sup.employee_number AS manager_employee_number, sup.title AS manager_title,
               sup.first_name AS manager_first_name, sup.last_name AS manager_last_name,
               a.effective_start, a.effective_end, a.assignment_end_date, a.deleted_at
        FROM esr.assignment a
        LEFT JOIN esr.position pos ON pos.vpd = a.vpd AND pos.position_id = a.position_id
        LEFT JOIN esr.organisation o ON o.vpd = a.vpd AND o.organisation_id = a.organisation_id
        LEFT JOIN esr.location l ON l.vpd = a.vpd AND l.location_id = a.location_id
        LEFT JOIN esr.person sup ON sup.vpd = a.vpd AND sup.person_id = a.supervisor_person_id
        WHERE a.vpd = %s AND a.person_id = %s
        ORDER BY a.deleted_at NULLS FIRST, a.is_primary DESC NULLS LAST, a.effective_start, a.assignment_number
        """,
        (vpd, person_id),
    )
    costings = db.all(
        """
        SELECT c.costing_id, c.assignment_id, c.cost_centre, c.subjective, c.percentage, c.effective_start,
               c.effective_end, c.deleted_at
        FROM esr.costing c WHERE c.vpd = %s AND c.person_id = %s
        ORDER BY c.deleted_at NULLS FIRST, c.effective_start, c.costing_id
        """,
        (vpd, person_id),
    )
    today = dt.date.today()
    for row in rows:
        row["costings"] = [c for c in costings if c["assignment_id"] == row["assignment_id"]]
        row["current"] = row["deleted_at"] is None and (row["effective_end"] is None or row["effective_end"] >= today)
    return rows


def home_addresses(db: Database, vpd: str, person_id: str) -> list[Row]:
    return db.all(
        """
        SELECT h.address_id, h.line1, h.line2, h.line3, h.town, h.county, h.postcode, h.country, h.is_primary,
               h.effective_start, h.effective_end, h.deleted_at
        FROM esr.home_address h WHERE h.vpd = %s AND h.person_id = %s
        ORDER BY h.deleted_at NULLS FIRST, h.is_primary DESC NULLS LAST, h.effective_start DESC NULLS LAST,
                 h.address_id
        """,
        (vpd, person_id),
    )


def work_addresses(db: Database, vpd: str, person_id: str) -> list[Row]:
    return db.all(
        """
        SELECT w.assignment_id, w.assignment_number, w.location_id, w.code, w.description, w.line1, w.line2,
               w.line3, w.town, w.county, w.postcode, w.country, w.location_source, a.is_primary
        FROM esr.work_address w
        LEFT JOIN esr.assignment a ON a.vpd = w.vpd AND a.assignment_id = w.assignment_id
        WHERE w.vpd = %s AND w.person_id = %s
        ORDER BY a.is_primary DESC NULLS LAST, w.assignment_number
        """,
        (vpd, person_id),
    )


def phones(db: Database, vpd: str, person_id: str) -> list[Row]:
    return db.all(
        """
        SELECT ph.phone_id, ph.phone_type, ph.phone_number, ph.effective_start, ph.effective_end, ph.deleted_at
        FROM esr.phone ph WHERE ph.vpd = %s AND ph.person_id = %s
        ORDER BY ph.deleted_at NULLS FIRST, ph.phone_type, ph.phone_id
        """,
        (vpd, person_id),
    )


def vehicles(db: Database, vpd: str, person_id: str) -> list[Row]:
    rows = db.all(
        """
        SELECT v.vehicle_allocation_id, v.assignment_id, a.assignment_number, v.registration, v.make, v.model,
               v.ownership, v.fuel_type, v.engine_cc, v.user_rates_table, v.effective_start, v.effective_end,
               v.deleted_at
        FROM esr.vehicle v
        LEFT JOIN esr.assignment a ON a.vpd = v.vpd AND a.assignment_id = v.assignment_id
        WHERE v.vpd = %s AND v.person_id = %s
        ORDER BY v.deleted_at NULLS FIRST, v.effective_start DESC NULLS LAST, v.vehicle_allocation_id
        """,
        (vpd, person_id),
    )
    mileage = db.all(
        """
        SELECT vm.vehicle_allocation_id, vm.code, vm.engine_from, vm.engine_to, vm.rate_per_mile, vm.description,
               vm.engine_size_cc
        FROM esr.vehicle_mileage vm
        WHERE vm.vpd = %s AND vm.person_id = %s
        ORDER BY vm.vehicle_allocation_id, vm.code, vm.engine_from
        """,
        (vpd, person_id),
    )
    for row in rows:
        row["mileage"] = [m for m in mileage if m["vehicle_allocation_id"] == row["vehicle_allocation_id"]]
    return rows


def change_history(db: Database, vpd: str, person_id: str, limit: int, after: str | None) -> Page[Row]:
    params: dict[str, Any] = {"vpd": vpd, "person_id": person_id, "limit": limit + 1}
    keyset = sql.SQL("")
    if after:
        recorded_at, event_id = decode_cursor(after, (dt.datetime, str))
        keyset = sql.SQL("AND (e.recorded_at, e.event_id) < (%(recorded_at)s, %(event_id)s)")
        params.update(recorded_at=recorded_at, event_id=event_id)
    query = sql.SQL(
        """
        SELECT e.event_id, e.event_type, e.entity_type, e.entity_id, e.changes, e.effective_date, e.file_name,
               e.line_no, e.recorded_at
        FROM esr.change_event e
        WHERE e.vpd = %(vpd)s AND e.person_id = %(person_id)s {keyset}
        ORDER BY e.recorded_at DESC, e.event_id DESC
        LIMIT %(limit)s
        """
    ).format(keyset=keyset)
    with db.connection() as conn:
        rows = conn.execute(query, params).fetchall()
    return page_of(rows, limit, lambda r: [r["recorded_at"], r["event_id"]])


IMPORT_STATUSES = ("received", "rejected", "published", "completed", "failed")


def import_files(
    db: Database, vpds: list[str] | None, vpd: str | None, status: str | None, limit: int, after: str | None
) -> Page[Row]:
    where: list[sql.Composable] = []
    params: dict[str, Any] = {"limit": limit + 1}
    if vpds is not None:
        where.append(sql.SQL("f.vpd = ANY(%(vpds)s)"))
        params["vpds"] = vpds
    if vpd:
        where.append(sql.SQL("f.vpd = %(vpd)s"))
        params["vpd"] = vpd
    if status:
        where.append(sql.SQL("f.status = %(status)s"))
        params["status"] = status
    if after:
        received_at, sha = decode_cursor(after, (dt.datetime, str))
        where.append(sql.SQL("(f.received_at, f.sha256) < (%(received_at)s, %(sha)s)"))
        params.update(received_at=received_at, sha=sha)
    query = sql.SQL(
        """
        SELECT f.sha256, f.vpd, t.name AS trust_name, f.file_name, f.sequence, f.extract_type, f.extract_date,
               f.status, f.rejection_code, f.line_count, f.record_count, f.error_count, f.warning_count,
               f.message, f.received_at, f.completed_at
        FROM esr.import_file f LEFT JOIN esr.trust t ON t.vpd = f.vpd
        WHERE {where}
        ORDER BY f.received_at DESC, f.sha256 DESC
        LIMIT %(limit)s
        """
    ).format(where=sql.SQL(" AND ").join(where) if where else sql.SQL("true"))
    with db.connection() as conn:
        rows = conn.execute(query, params).fetchall()
    return page_of(rows, limit, lambda r: [r["received_at"], r["sha256"]])


def import_file(db: Database, sha256: str) -> Row | None:
    return db.one(
        """
        SELECT f.sha256, f.vpd, t.name AS trust_name, f.file_name, f.sequence, f.extract_type, f.extract_date,
               f.run_date, f.status, f.rejection_code, f.line_count, f.record_count, f.error_count,
               f.warning_count, f.unknown_count, f.counts_by_code, f.size_bytes, f.message, f.forced, f.attempts,
               f.received_at, f.completed_at
        FROM esr.import_file f LEFT JOIN esr.trust t ON t.vpd = f.vpd
        WHERE f.sha256 = %s
        """,
        (sha256,),
    )


def unmatched_vehicles(db: Database, sha256: str) -> list[UnmatchedVehicle]:
    """The file's vehicles that match no mileage category of the trust (the import log reports them)."""
    with db.connection() as conn:
        return unmatched_vehicles_of_file(conn, sha256)


def line_errors(db: Database, sha256: str, limit: int, after: str | None) -> Page[Row]:
    after_line = decode_cursor(after, (int,))[0] if after else -1
    rows = db.all(
        """
        SELECT e.line_no, e.record_code, e.severity, e.field, e.reason, e.raw_line
        FROM esr.import_line_error e
        WHERE e.sha256 = %s AND e.line_no > %s
        ORDER BY e.line_no
        LIMIT %s
        """,
        (sha256, after_line, limit + 1),
    )
    return page_of(rows, limit, lambda r: [r["line_no"]])


def trusts(db: Database, vpds: list[str] | None) -> list[Row]:
    return db.all(
        """
        SELECT t.vpd, t.name, t.interface_version, t.import_frequency, t.last_sequence, t.active, t.created_at,
               t.updated_at,
               (SELECT max(f.received_at) FROM esr.import_file f WHERE f.vpd = t.vpd) AS last_file_at
        FROM esr.trust t
        WHERE %(vpds)s::text[] IS NULL OR t.vpd = ANY(%(vpds)s::text[])
        ORDER BY t.vpd
        """,
        {"vpds": vpds},
    )


def trust(db: Database, vpd: str) -> Row | None:
    return db.one(
        """
        SELECT t.vpd, t.name, t.interface_version, t.import_frequency, t.last_sequence, t.active, t.created_at,
               t.updated_at, t.inbox_path, t.nhs_options
        FROM esr.trust t WHERE t.vpd = %s
        """,
        (vpd,),
    )


def mileage_categories(db: Database, vpd: str) -> list[Row]:
    return db.all(
        """
        SELECT m.code, m.engine_from, m.engine_to, m.rate_per_mile, m.description
        FROM esr.mileage_category m WHERE m.vpd = %s ORDER BY m.code, m.engine_from
        """,
        (vpd,),
    )


def trust_vpds(db: Database, vpds: list[str] | None) -> list[str]:
    """The registered trusts within a scope, for trust pickers."""
    return [r["vpd"] for r in trusts(db, vpds)]


# -- tailoring writes: mapping templates and mileage tables through their domain stores -------------------


@contextmanager
def _store_connection(db: Database) -> Iterator[psycopg.Connection[Any]]:
    """A pooled connection as the domain stores expect it (rows as tuples), back to dict rows for the pool."""
    with db.connection() as pooled:
        conn = cast("psycopg.Connection[Any]", pooled)
        conn.row_factory = tuple_row
        try:
            yield conn
        finally:
            conn.row_factory = dict_row


def _audit(conn: psycopg.Connection[Any], actor_id: int, action: str, detail: dict[str, Any]) -> None:
    conn.execute(
        "INSERT INTO esr.web_audit (actor_id, action, detail) VALUES (%s, %s, %s)", (actor_id, action, Jsonb(detail))
    )


def audit_trust_change(db: Database, actor_id: int, action: str, detail: dict[str, Any]) -> None:
    with _store_connection(db) as conn:
        _audit(conn, actor_id, action, detail)


def mapping_current(db: Database, vpd: str) -> TemplateVersion:
    with _store_connection(db) as conn:
        return mapping_store.current_version(conn, vpd)


def mapping_history(db: Database, vpd: str) -> list[TemplateVersion]:
    with _store_connection(db) as conn:
        return mapping_store.history(conn, vpd)


def mapping_version(db: Database, vpd: str, number: int) -> TemplateVersion | None:
    with _store_connection(db) as conn:
        return mapping_store.load_version(conn, vpd, number)


def save_mapping(
    db: Database, vpd: str, template: MappingTemplate, author: str, note: str, actor_id: int
) -> tuple[TemplateVersion, bool]:
    """`esr.mapping.store.save_template`, audited when it makes a new version (same transaction)."""
    with _store_connection(db) as conn, conn.transaction():
        version, created = mapping_store.save_template(conn, vpd, template, author, note)
        if created:
            _audit(conn, actor_id, "mapping.save", {"vpd": vpd, "version": version.version})
    return version, created


def replace_mileage(db: Database, vpd: str, categories: Sequence[MileageCategory], actor_id: int) -> int:
    """Replace the trust's mileage table (validated by the store), audited in the same transaction."""
    with _store_connection(db) as conn, conn.transaction():
        count = replace_categories(conn, vpd, categories)
        _audit(conn, actor_id, "mileage.replace", {"vpd": vpd, "categories": count})
    return count
