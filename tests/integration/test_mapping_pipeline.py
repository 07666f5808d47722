"""Dynamic mapping end to end: two trusts with their own templates through `esr run`'s pipeline (broker,
worker, mapping stage, sinks) into esr.employee; line managers across partitions; a template change and
`esr remap` give the rows a from-scratch run with the new template gives."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest
from click.testing import CliRunner
from psycopg.types.json import Jsonb

from connectors.file_source.ledger import Ledger
from esr.cli import main
from esr.config import Settings
from esr.generate import generate_files
from esr.mapping.serde import template_from_dict, template_to_json
from esr.mapping.store import save_template
from esr.mapping.template import MappingTemplate
from esr.pipeline import Pipeline
from streams.partitioner import partition_for

pytestmark = pytest.mark.integration

PARTITIONS = 3
CUSTOM = template_from_dict({
    "name": "431 payroll",
    "udfs": [
        {"name": "full_name", "kind": "text"},
        {"name": "hired", "kind": "text", "description": "hire date as dd/mm/yyyy"},
        {"name": "manager_surname", "kind": "text"},
        {"name": "fte", "kind": "decimal"},
    ],
    "rules": [
        {"target": "payroll_number", "source": "PRA.employee_number", "transforms": [{"op": "trim"}]},
        {"target": "surname", "source": "person.last_name", "transforms": [{"op": "upper"}]},
        {"target": "first_name", "source": "person.first_name", "transforms": [{"op": "title"}]},
        {"target": "gender", "source": "person.gender",
         "transforms": [{"op": "lookup", "table": {"M": "Male", "F": "Female"}, "default": "Other"}]},
        {"target": "hire_date", "source": "person.hire_date"},
        {"target": "line_manager", "source": "line_manager.employee_number"},
        {"target": "line_manager_person_id", "source": "primary_assignment.supervisor_person_id"},
        {"target": "work_location", "source": "work_location.description"},
        {"target": "udf.full_name", "sources": ["person.first_name", "person.last_name"],
         "transforms": [{"op": "concat", "separator": " "}]},
        {"target": "udf.hired", "source": "person.hire_date",
         "transforms": [{"op": "date_format", "pattern": "%d/%m/%Y"}]},
        {"target": "udf.manager_surname", "source": "line_manager.last_name", "transforms": [{"op": "upper"}]},
        {"target": "udf.fte", "source": "primary_assignment.fte"},
    ],
})
CHANGED = template_from_dict({
    "name": "431 payroll v2",
    "udfs": [{"name": "full_name", "kind": "text"}, {"name": "grade", "kind": "text"}],
    "rules": [
        {"target": "payroll_number", "source": "person.employee_number"},
        {"target": "surname", "source": "person.last_name", "transforms": [{"op": "lower"}]},
        {"target": "line_manager", "source": "line_manager.employee_number"},
        {"target": "department", "source": "organisation.name"},
        {"target": "udf.full_name", "sources": ["person.last_name", "person.first_name"],
         "transforms": [{"op": "concat", "separator": ", "}]},
        {"target": "udf.grade", "source": "ASA.grade", "transforms": [{"op": "default", "value": "none"}]},
    ],
})
COLUMNS = ("person_id, payroll_number, title, first_name, middle_names, surname, preferred_name, maiden_name, gender,"
           " date_of_birth, ni_number, email, hire_date, termination_date, person_type, assignment_number, job_name,"
           " position_name, grade, department, cost_centre, work_location, line_manager, line_manager_person_id,"
           " username, home_address, display_name, udf, problems, template_version, last_event_id,"
           " deleted_at IS NOT NULL")


def employees(url: str, vpd: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute(f"SELECT {COLUMNS} FROM esr.employee WHERE vpd = %s ORDER BY person_id",
                            (vpd,)).fetchall()


def prepare(url: str, templates: dict[str, list[MappingTemplate]]) -> None:
    with Ledger(url) as ledger:
        for vpd in ("431", "432"):
            ledger.add_trust(vpd, f"Trust {vpd}")
    with psycopg.connect(url) as conn:
        # 431's NHS options: its own username format, and the job name shown with the name (432: the defaults)
        options = {"username_format": "{first_name:1|lower}{last_name|lower}", "display_with_assignment": "job_name"}
        conn.execute("UPDATE esr.trust SET nhs_options = coalesce(nhs_options, '{}') || %s WHERE vpd = '431'",
                     (Jsonb(options),))
        for vpd, versions in templates.items():
            for template in versions:
                save_template(conn, vpd, template, "tester")


def files(tmp_path: Path) -> list[Path]:
    a = generate_files("431", 40, 2, 3, tmp_path / "files-431")
    b = generate_files("432", 30, 2, 5, tmp_path / "files-432")
    return [path for pair in zip(a, b, strict=True) for path in pair]  # the trusts' files interleaved


def check_mapping(url: str) -> None:
    with psycopg.connect(url) as conn:
        for vpd in ("431", "432"):
            live = {r[0] for r in conn.execute(
                "SELECT person_id FROM esr.person WHERE vpd = %s AND deleted_at IS NULL", (vpd,))}
            mapped = {r[0] for r in conn.execute(
                "SELECT person_id FROM esr.employee WHERE vpd = %s AND deleted_at IS NULL", (vpd,))}
            assert live, vpd
            assert mapped == live, vpd
        # a deleted person: a soft-deleted row, its mapped fields cleared
        deleted = conn.execute(
            "SELECT e.surname, e.udf, e.deleted_at IS NOT NULL FROM esr.person p"
            " JOIN esr.employee e USING (vpd, person_id) WHERE p.deleted_at IS NOT NULL"
        ).fetchall()
        assert deleted
        assert all(tuple(row) == (None, {}, True) for row in deleted)
        # the default template (432): the usual mapping
        wrong = conn.execute(
            "SELECT e.person_id FROM esr.employee e JOIN esr.person p USING (vpd, person_id)"
            " WHERE e.vpd = '432' AND e.deleted_at IS NULL"
            " AND (e.payroll_number IS DISTINCT FROM p.employee_number OR e.surname IS DISTINCT FROM p.last_name"
            "      OR e.udf <> '{}' OR e.template_version <> 0 OR e.hire_date IS DISTINCT FROM p.hire_date)"
        ).fetchall()
        assert wrong == []
        # the custom template (431): transforms and UDFs
        wrong = conn.execute(
            "SELECT e.person_id FROM esr.employee e JOIN esr.person p USING (vpd, person_id)"
            " WHERE e.vpd = '431' AND e.deleted_at IS NULL"
            " AND (e.surname IS DISTINCT FROM upper(p.last_name)"
            "      OR e.udf->>'full_name' IS DISTINCT FROM p.first_name || ' ' || p.last_name"
            "      OR e.udf->>'hired' IS DISTINCT FROM to_char(p.hire_date, 'DD/MM/YYYY')"
            "      OR e.gender NOT IN ('Male', 'Female', 'Other') OR e.email IS NOT NULL OR e.template_version <> 1"
            "      OR (SELECT array_agg(k ORDER BY k) FROM jsonb_object_keys(e.udf) k)"
            "         <> ARRAY['fte', 'full_name', 'hired', 'manager_surname'])"
        ).fetchall()
        assert wrong == []
        # the NHS options: each trust's username format (whitespace removed), and 431's job name in the display name
        rendered = conn.execute(
            "SELECT e.vpd, e.username = regexp_replace(CASE e.vpd WHEN '431'"
            "  THEN lower(left(p.first_name, 1) || p.last_name) ELSE p.first_name || '.' || p.last_name END,"
            "  '\\s', '', 'g'),"
            " e.display_name LIKE p.first_name || ' ' || p.last_name || '%', e.display_name LIKE '% (%)',"
            " e.username, e.display_name, p.first_name, p.last_name"
            " FROM esr.employee e JOIN esr.person p USING (vpd, person_id) WHERE e.deleted_at IS NULL"
        ).fetchall()
        assert [row for row in rendered if not (row[1] and row[2])] == []
        assert {row[0] for row in rendered if row[3]} == {"431"}
        # line managers: the supervisor's employee number, wherever the supervisor's partition is
        managed = conn.execute(
            "SELECT e.vpd, e.person_id, m.person_id, e.line_manager, m.employee_number,"
            " e.udf->>'manager_surname', upper(m.last_name), e.vpd = '431'"
            " FROM esr.employee e JOIN esr.person m ON m.vpd = e.vpd AND m.person_id = e.line_manager_person_id"
            " WHERE e.deleted_at IS NULL AND m.deleted_at IS NULL"
        ).fetchall()
        assert len(managed) >= 10
        for _vpd, _pid, _mid, line_manager, manager_number, manager_surname, expected_surname, custom in managed:
            assert line_manager == manager_number
            if custom:
                assert manager_surname == expected_surname
        across = [row for row in managed
                  if partition_for(f"{row[0]}:{row[1]}".encode(), PARTITIONS)
                  != partition_for(f"{row[0]}:{row[2]}".encode(), PARTITIONS)]
        assert across, "no line manager on another partition: the test data do not exercise the stage"
        # work location: the primary assignment's work address
        located = conn.execute(
            "SELECT e.work_location, w.description FROM esr.employee e JOIN esr.work_address w"
            " ON w.vpd = e.vpd AND w.person_id = e.person_id AND w.assignment_number = e.assignment_number"
            " WHERE e.vpd = '432' AND e.deleted_at IS NULL"
        ).fetchall()
        assert located
        assert all(mine == theirs for mine, theirs in located)
        assert any(mine is not None for mine, _ in located)


@pytest.mark.timeout(900)
def test_two_trusts_map_with_their_own_templates_and_a_remap_equals_a_run_from_scratch(
    make_database: Callable[[], str], tmp_path: Path
) -> None:
    paths = files(tmp_path)
    url = make_database()
    prepare(url, {"431": [CUSTOM]})
    with Pipeline.open(Settings(data_dir=tmp_path / "run", partitions=PARTITIONS), url, echo=lambda _: None) as pipe:
        reports = pipe.ingest(paths)
        assert [r.status for r in reports] == ["published"] * len(paths)
        pipe.wait_until_caught_up(timeout=600)
        check_mapping(url)
        untouched = employees(url, "432")

        template_file = tmp_path / "changed.json"
        template_file.write_bytes(template_to_json(CHANGED))
        env = {"ESR_DATABASE_URL": url, "ESR_BOOTSTRAP_SERVERS": pipe.bootstrap_servers,
               "ESR_DATA_DIR": str(tmp_path / "cli"), "ESR_PARTITIONS": str(PARTITIONS)}
        saved = CliRunner().invoke(main, ["mapping", "set", "--vpd", "431", str(template_file), "--note", "v2"],
                                   env=env, catch_exceptions=False)
        assert "saved template version 2" in saved.output
        assert "published to the mapping stage" in saved.output
        remap = CliRunner().invoke(main, ["remap", "--vpd", "431"], env=env, catch_exceptions=False)
        assert remap.exit_code == 0, remap.output
        remapped = employees(url, "431")
        live = sum(1 for row in remapped if not row[-1])
        assert f"trust 431: {live} employee(s) mapped with template version 2, 0 row(s)" in remap.output
        assert employees(url, "432") == untouched

    scratch = make_database()
    prepare(scratch, {"431": [CUSTOM, CHANGED]})
    with Pipeline.open(Settings(data_dir=tmp_path / "scratch", partitions=PARTITIONS), scratch,
                       echo=lambda _: None) as pipe:
        pipe.ingest(paths)
        pipe.wait_until_caught_up(timeout=600)
    from_scratch = employees(scratch, "431")
    assert {row[-3] for row in from_scratch} == {2}
    assert [r[5] for r in from_scratch if not r[-1]] == [r[5].lower() for r in from_scratch if not r[-1]]
    assert remapped == from_scratch
    assert employees(scratch, "432") == untouched
