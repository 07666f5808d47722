"""A trust's NHS mileage rate table in PostgreSQL (`esr.mileage_category`): replaced whole on import."""

from __future__ import annotations

from collections.abc import Iterable

import psycopg

from esr.mileage.model import MileageCategory, validate_table


def replace_categories(conn: psycopg.Connection, vpd: str, categories: Iterable[MileageCategory]) -> int:
    """Replace the trust's table in one transaction (validated first: no overlapping bands)."""
    table = validate_table(categories)
    with conn.transaction():
        conn.execute("DELETE FROM esr.mileage_category WHERE vpd = %s", (vpd,))
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO esr.mileage_category (vpd, code, engine_from, engine_to, rate_per_mile, description)"
                " VALUES (%s, %s, %s, %s, %s, %s)",
                [(vpd, c.code, c.engine_from, c.engine_to, c.rate_per_mile, c.description or None) for c in table],
            )
    return len(table)


def load_categories(conn: psycopg.Connection, vpd: str) -> tuple[MileageCategory, ...]:
    rows = conn.execute(
        "SELECT code, engine_from, engine_to, rate_per_mile, coalesce(description, '')"
        " FROM esr.mileage_category WHERE vpd = %s ORDER BY lower(code), engine_from",
        (vpd,),
    ).fetchall()
    return tuple(MileageCategory(*row) for row in rows)


def unmatched_vehicles(conn: psycopg.Connection, vpd: str) -> list[tuple[str, str, str | None, object]]:
    """Current vehicles of the trust that no category matches: (allocation id, person id, rates table, cc)."""
    rows = conn.execute(
        "SELECT v.vehicle_allocation_id, v.person_id, v.user_rates_table, v.engine_cc FROM esr.vehicle v"
        " WHERE v.vpd = %s AND v.deleted_at IS NULL AND NOT EXISTS (SELECT 1 FROM esr.vehicle_mileage m"
        " WHERE m.vpd = v.vpd AND m.vehicle_allocation_id = v.vehicle_allocation_id)"
        " ORDER BY v.vehicle_allocation_id",
        (vpd,),
    ).fetchall()
    return [(str(a), str(p), r, cc) for a, p, r, cc in rows]
