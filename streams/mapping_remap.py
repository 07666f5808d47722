"""`esr remap --vpd VPD`: rebuild a trust's `esr.employee` from the current state with its current template.

The current state is what the mapping stage maps from: the compacted `esr.employees` and the worker's
reference replicas, read to their real end (`streams.mapping_stage.load_directory`); nothing is
re-ingested. Each employee is mapped with the same function as the stage (`streams.mapping`), so a remap
gives exactly the rows a from-scratch run with that template gives. The rows are written in one
transaction: every employee of the trust upserted (the sink's guard: never back to an older template
version), and the people deleted from the state (or no longer in it) left as the employee sink leaves
them: soft-deleted, mapped fields cleared.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import psycopg

from connectors.sink.employee import EmployeeRow, employee_row, write_rows
from esr.mapping.store import current_version
from streams.mapping import Source, mapped_change
from streams.mapping_stage import load_directory
from streams.port import DomainPort


@dataclass(frozen=True, slots=True)
class RemapReport:
    vpd: str
    template_version: int
    mapped: int
    deleted: int
    with_problems: int


def remap_trust(config: Mapping[str, Any], database_url: str, vpd: str, *, now_ms: int = 0,
                domain: DomainPort | None = None) -> RemapReport:
    with psycopg.connect(database_url) as conn:
        version = current_version(conn, vpd)
    directory = load_directory(config, domain)
    directory.set_template(version)

    def row(person_id: str, record: dict[str, Any] | None) -> EmployeeRow:
        return employee_row(mapped_change(vpd, person_id, None, record, template_version=version.version, op="r",
                                          source=Source(), now_ms=now_ms))

    rows = [row(person_id, record) for person_id, record in directory.records(vpd)]
    alive = {r.person_id for r in rows}
    with psycopg.connect(database_url) as conn, conn.transaction():
        conn.execute("SELECT 1 FROM esr.trust WHERE vpd = %s FOR UPDATE", (vpd,))
        live_rows = {r[0] for r in conn.execute(
            "SELECT person_id FROM esr.employee WHERE vpd = %s AND deleted_at IS NULL", (vpd,))}
        # what a from-scratch run leaves for a deleted employee: a soft-deleted row (the employee sink's)
        gone = sorted((set(directory.gone(vpd)) | live_rows) - alive)
        write_rows(conn, rows + [row(person_id, None) for person_id in gone])
    deleted = len(live_rows - alive)
    return RemapReport(vpd, version.version, len(rows), deleted, sum(bool(r.problems) for r in rows))
