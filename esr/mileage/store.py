"""A trust's NHS mileage rate table in PostgreSQL (`esr.mileage_category`): replaced whole on import."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import psycopg
from psycopg.rows import tuple_row

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


@dataclass(frozen=True, slots=True)
class UnmatchedVehicle:
    """A vehicle whose current row came from a file and that no mileage category of its trust matches."""

    line_no: int
    vehicle_allocation_id: str
    person_id: str | None
    user_rates_table: str | None
    engine_cc: Decimal | None

    def describe(self) -> str:
        engine = "no engine size" if self.engine_cc is None else f"engine {self.engine_cc.normalize():f}"
        table = f"rates table {self.user_rates_table!r}" if self.user_rates_table else "no rates table"
        return (f"line {self.line_no}: vehicle {self.vehicle_allocation_id} of person {self.person_id or '?'} "
                f"matches no mileage category ({table}, {engine})")


def unmatched_vehicles_of_file(conn: psycopg.Connection[Any], sha256: str) -> list[UnmatchedVehicle]:
    """The import log's view of mileage matching: the file's vehicles (rows it wrote last) left unmatched."""
    query = (
        "SELECT v.src_line_no, v.vehicle_allocation_id, v.person_id, v.user_rates_table, v.engine_cc"
        " FROM esr.vehicle v WHERE v.src_file_sha256 = %s AND v.deleted_at IS NULL AND NOT EXISTS"
        " (SELECT 1 FROM esr.vehicle_mileage m"
        "  WHERE m.vpd = v.vpd AND m.vehicle_allocation_id = v.vehicle_allocation_id)"
        " ORDER BY v.src_line_no"
    )
    with conn.cursor(row_factory=tuple_row) as cur:  # whatever row factory the connection has
        rows = cur.execute(query, (sha256,)).fetchall()
    return [UnmatchedVehicle(int(line), str(allocation), person, table, cc)
            for line, allocation, person, table, cc in rows]
