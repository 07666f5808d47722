"""Template versions in PostgreSQL (esr.mapping.store), the esr.employee table, and `esr mapping ...`."""

from __future__ import annotations

import datetime as dt
import json
import threading
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner, Result

from connectors.file_source.ledger import Ledger
from esr.cli import main
from esr.mapping.catalogue import STANDARD_FIELD_LIST, Kind
from esr.mapping.serde import template_to_dict
from esr.mapping.store import (
    UnknownTrust,
    current_version,
    history,
    latest_versions,
    load_version,
    save_template,
)
from esr.mapping.template import MappingRule, MappingTemplate, UdfDefinition, default_template
from esr.mapping.transforms import Upper
from esr.validation import ValidationError

pytestmark = pytest.mark.integration

T0 = dt.datetime(2026, 1, 1, 9, tzinfo=dt.UTC)
UPPER = MappingTemplate(
    (MappingRule.of("surname", "person.last_name", transforms=(Upper(),)),
     MappingRule.of("udf.band", "primary_assignment.grade")),
    (UdfDefinition("band", Kind.TEXT, "AfC band"),),
    "upper",
)


def _trust(url: str, vpd: str = "999") -> None:
    with Ledger(url) as ledger:
        ledger.add_trust(vpd, f"Trust {vpd}")


def test_versions_are_numbered_kept_attributed_and_an_unchanged_save_makes_none(database_url: str) -> None:
    _trust(database_url)
    with psycopg.connect(database_url) as conn:
        assert current_version(conn, "999").version == 0  # never saved: the default template
        assert current_version(conn, "999").template == default_template()
        first, created = save_template(conn, "999", default_template(), "alice", "start", now=T0)
        assert (first.version, created, first.author) == (1, True, "alice")
        same, created = save_template(conn, "999", default_template(), "bob", now=T0 + dt.timedelta(hours=1))
        assert (same.version, created, same.author) == (1, False, "alice")
        second, created = save_template(conn, "999", UPPER, "bob", "upper-case surnames",
                                        now=T0 + dt.timedelta(days=1))
        assert (second.version, created) == (2, True)
        assert [(v.version, v.author, v.note) for v in history(conn, "999")] == [
            (1, "alice", "start"), (2, "bob", "upper-case surnames")]
        assert current_version(conn, "999").template == UPPER.canonical()
        loaded = load_version(conn, "999", 1)
        assert loaded is not None
        assert loaded.template == default_template()
        assert load_version(conn, "999", 7) is None
        assert [v.version for v in latest_versions(conn)] == [2]
        stored = conn.execute("SELECT template FROM esr.mapping_template_version WHERE version = 2").fetchone()
        assert stored is not None
        assert stored[0] == template_to_dict(UPPER)


def test_an_invalid_template_or_an_unknown_trust_saves_nothing(database_url: str) -> None:
    _trust(database_url)
    bad = MappingTemplate((MappingRule.of("surname", "person.no_such_field"),))
    with psycopg.connect(database_url) as conn:
        with pytest.raises(ValidationError, match="unknown ESR field"):
            save_template(conn, "999", bad, "alice")
        with pytest.raises(ValidationError, match="author"):
            save_template(conn, "999", UPPER, "  ")
        with pytest.raises(UnknownTrust):
            save_template(conn, "123", UPPER, "alice")
        assert history(conn, "999") == []


def test_concurrent_saves_get_distinct_consecutive_versions(database_url: str) -> None:
    _trust(database_url)
    templates = [MappingTemplate((MappingRule.of("surname", "person.last_name"),), (), f"t{i}") for i in range(6)]
    errors: list[BaseException] = []

    def save(template: MappingTemplate) -> None:
        try:
            with psycopg.connect(database_url) as conn:
                save_template(conn, "999", template, "racer")
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=save, args=(t,)) for t in templates]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with psycopg.connect(database_url) as conn:
        assert [v.version for v in history(conn, "999")] == [1, 2, 3, 4, 5, 6]


SQL_TYPE = {Kind.TEXT: "text", Kind.DATE: "date", Kind.DATETIME: "timestamp without time zone",
            Kind.INT: "bigint", Kind.DECIMAL: "numeric"}


def test_the_employee_table_has_a_column_of_the_right_type_per_standard_field(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        columns: dict[str, str] = dict(conn.execute(
            "SELECT column_name, data_type FROM information_schema.columns"
            " WHERE table_schema = 'esr' AND table_name = 'employee'"
        ).fetchall())
    for standard in STANDARD_FIELD_LIST:
        assert columns.get(standard.name) == SQL_TYPE[standard.kind], standard.name
    assert columns["udf"] == "jsonb"
    assert {"vpd", "person_id", "template_version", "activated_at", "archived_at", "deleted_at"} <= set(columns)


# -- the command ------------------------------------------------------------------------------------------


@pytest.fixture
def env(tmp_path: Path, database_url: str) -> dict[str, str]:
    return {"ESR_DATABASE_URL": database_url, "ESR_DATA_DIR": str(tmp_path / "var"), "ESR_AUTHOR": "carol"}


def esr(env: dict[str, str], *args: str) -> Result:
    return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)


def test_mapping_commands(env: dict[str, str], database_url: str, tmp_path: Path) -> None:
    _trust(database_url)
    shown = esr(env, "mapping", "show", "--vpd", "999")
    assert shown.exit_code == 0, shown.output
    assert "version 0  (default template)" in shown.output
    assert "payroll_number <- person.employee_number" in shown.output

    exported = esr(env, "mapping", "show", "--vpd", "999", "--json")
    path = tmp_path / "template.json"
    data = json.loads(exported.output)
    data["name"] = "ours"
    data["udfs"] = [{"name": "band", "kind": "text"}]
    data["rules"].append({"target": "udf.band", "source": "ASA.grade", "transforms": [{"op": "upper"}]})
    path.write_text(json.dumps(data))

    valid = esr(env, "mapping", "validate", "--vpd", "999", str(path))
    assert valid.exit_code == 0, valid.output
    assert "+ udf band (text)" in valid.output

    saved = esr(env, "mapping", "set", "--vpd", "999", str(path), "--note", "add the band")
    assert saved.exit_code == 0, saved.output
    assert "saved template version 1 by carol" in saved.output
    assert "no broker running" in saved.output
    again = esr(env, "mapping", "set", "--vpd", "999", str(path))
    assert "unchanged (version 1)" in again.output

    listed = esr(env, "mapping", "history", "--vpd", "999")
    assert "v1" in listed.output
    assert "carol" in listed.output
    assert "add the band" in listed.output
    diff = esr(env, "mapping", "diff", "--vpd", "999")
    assert "v0 -> v1" in diff.output
    assert "+ udf.band <- primary_assignment.grade | upper" in diff.output
    assert "targets affected: udf.band" in diff.output

    catalogue = esr(env, "mapping", "catalogue", "--vpd", "999", "--scope", "line_manager")
    assert "line_manager.employee_number" in catalogue.output
    assert "person.last_name" not in catalogue.output
    assert "udf.band" in catalogue.output


def test_mapping_set_prints_every_problem_with_its_rule_path(env: dict[str, str], database_url: str,
                                                             tmp_path: Path) -> None:
    _trust(database_url)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"rules": [
        {"target": "surname", "source": "person.last_nam"},
        {"target": "hire_date", "source": "person.last_name"},
        {"target": "surname", "source": "person.first_name"},
    ]}))
    refused = esr(env, "mapping", "set", "--vpd", "999", str(path))
    assert refused.exit_code != 0
    assert "rules[0] (surname).sources[0]: unknown ESR field 'person.last_nam'" in refused.output
    assert "did you mean person.last_name" in refused.output
    assert "rules[1] (hire_date): type mismatch" in refused.output
    assert "rules[2] (surname): duplicate target" in refused.output
    assert esr(env, "mapping", "validate", str(path)).exit_code != 0
    unknown = esr(env, "mapping", "show", "--vpd", "999", "--version", "3")
    assert unknown.exit_code != 0
    assert "no template version 3" in unknown.output
    with psycopg.connect(database_url) as conn:
        assert history(conn, "999") == []
