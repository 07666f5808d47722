"""The `esr` command as an operator uses it: exit codes and what it prints."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from esr.cli import main
from esr.runtime.broker import EmbeddedBroker
from tests.esr_files import SAMPLE, sample_body, write_esr_file

pytestmark = pytest.mark.integration


@pytest.fixture
def env(tmp_path: Path, database_url: str) -> dict[str, str]:
    return {"ESR_DATABASE_URL": database_url, "ESR_DATA_DIR": str(tmp_path / "var"), "ESR_PARTITIONS": "3"}


def esr(env: dict[str, str], *args: str) -> Result:
    return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)


def test_trust_add_and_list(env: dict[str, str]) -> None:
    added = esr(env, "trust", "add", "--vpd", "999", "--name", "Test NHS Trust")
    assert added.exit_code == 0, added.output
    assert "trust 999 registered" in added.output
    again = esr(env, "trust", "add", "--vpd", "999", "--name", "Another")
    assert again.exit_code != 0
    assert "999" in again.output
    bad = esr(env, "trust", "add", "--vpd", "99", "--name", "Short")
    assert bad.exit_code != 0
    assert "not a VPD" in bad.output
    listed = esr(env, "trust", "list")
    assert "999  Test NHS Trust  v2  daily  last sequence -  active" in listed.output


def test_validate_names_the_rejection_code_and_exits_non_zero(env: dict[str, str], tmp_path: Path) -> None:
    unknown = esr(env, "validate", str(SAMPLE))
    assert unknown.exit_code == 1
    assert "REJECTED VPD_NOT_FOUND (6)" in unknown.output

    esr(env, "trust", "add", "--vpd", "999", "--name", "Test NHS Trust")
    valid = esr(env, "validate", str(SAMPLE))
    assert valid.exit_code == 0, valid.output
    assert f"{SAMPLE.name}: VALID" in valid.output
    assert "records 9" in valid.output
    assert "quarantined 1" in valid.output

    short = write_esr_file(tmp_path, sample_body()[:3], trailer_count=4)  # neither 5 lines nor 3 data lines
    counted = esr(env, "validate", str(short), str(SAMPLE))
    assert counted.exit_code == 1
    assert "REJECTED RECORD_COUNT" in counted.output
    assert f"{SAMPLE.name}: VALID" in counted.output  # every file is checked, not just up to the first failure
    lenient = esr(env, "validate", "--lenient-count", str(short))
    assert lenient.exit_code == 0, lenient.output

    listed = esr(env, "imports")
    assert listed.output.strip() == ""  # a dry run leaves no trace in the ledger


def test_ingest_publishes_and_fails_on_rejection(env: dict[str, str], tmp_path: Path) -> None:
    esr(env, "trust", "add", "--vpd", "999", "--name", "Test NHS Trust")
    with EmbeddedBroker.create(tmp_path / "broker") as broker:
        live = {**env, "ESR_BOOTSTRAP_SERVERS": broker.bootstrap_servers}
        published = esr(live, "ingest", str(SAMPLE))
        assert published.exit_code == 0, published.output
        assert f"{SAMPLE.name}: PUBLISHED" in published.output
        duplicate = esr(live, "ingest", str(SAMPLE))
        assert duplicate.exit_code == 0
        assert "DUPLICATE" in duplicate.output
        out_of_order = write_esr_file(tmp_path, sample_body()[:2], sequence=50)
        held = esr(live, "ingest", str(out_of_order))
        assert held.exit_code == 1
        assert "REJECTED WRONG_SEQUENCE" in held.output
        forced = esr(live, "ingest", "--force", str(out_of_order))
        assert forced.exit_code == 0, forced.output
    imports = esr(env, "imports", "--vpd", "999")
    assert "PUBLISHED" not in imports.output  # statuses are lower case in the ledger listing
    assert imports.output.count(" published ") == 2
    assert "line 11 [quarantined] ASD" in imports.output


def test_ingest_without_a_broker_says_how_to_get_one(env: dict[str, str]) -> None:
    result = esr(env, "ingest", str(SAMPLE))
    assert result.exit_code != 0
    assert "esr broker start" in result.output


def test_generate_writes_a_full_file_then_change_files(env: dict[str, str], tmp_path: Path) -> None:
    out = tmp_path / "files"
    result = esr(env, "generate", "--vpd", "431", "--employees", "30", "--days", "2", "--seed", "3",
                 "--out", str(out))
    assert result.exit_code == 0, result.output
    names = sorted(p.name for p in out.iterdir())
    assert names == [
        "GO_431_EXP_GOC_20260106_00000002.DAT",
        "GO_431_EXP_GOC_20260107_00000003.DAT",
        "GO_431_EXP_GOF_20260105_00000001.DAT",
    ]


def test_run_on_embedded_defaults(env: dict[str, str]) -> None:
    result = esr(env, "run", "--employees", "50", "--days", "2")
    assert result.exit_code == 0, result.output
    assert "embedded broker" in result.output
    assert result.output.count(": PUBLISHED") == 3
    assert "3 file(s), 0 not accepted" in result.output


def test_watch_once_ingests_the_inbox(env: dict[str, str], tmp_path: Path) -> None:
    esr(env, "trust", "add", "--vpd", "999", "--name", "Test NHS Trust")
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    write_esr_file(inbox, sample_body()[:4], sequence=1)
    write_esr_file(inbox, sample_body()[:2], vpd="123", sequence=1)
    with EmbeddedBroker.create(tmp_path / "broker") as broker:
        result = esr({**env, "ESR_BOOTSTRAP_SERVERS": broker.bootstrap_servers}, "watch", "--once", str(inbox))
    assert result.exit_code == 1, result.output  # one file was rejected
    assert "GO_999_EXP_GOC_20240301_00000001.DAT: PUBLISHED" in result.output
    assert "GO_123_EXP_GOC_20240301_00000001.DAT: REJECTED VPD_NOT_FOUND" in result.output
    assert (inbox / "archive" / "GO_999_EXP_GOC_20240301_00000001.DAT").exists()
    reason = inbox / "rejected" / "GO_123_EXP_GOC_20240301_00000001.DAT.reason.txt"
    assert reason.read_text().startswith("VPD_NOT_FOUND: no trust is registered for VPD 123")


def test_mileage_import_and_list(env: dict[str, str], tmp_path: Path) -> None:
    esr(env, "trust", "add", "--vpd", "999", "--name", "Test NHS Trust")
    table = tmp_path / "rates.csv"
    table.write_text(
        "code,engine_from,engine_to,rate_per_mile,description\n"
        "NHS_MILEAGE_CASUAL,0,1500,0.5600,Casual up to 1500cc\n"
        "NHS_MILEAGE_CASUAL,1501,,0.6300,Casual over 1500cc\n"
    )
    imported = esr(env, "mileage", "import", "--vpd", "999", str(table))
    assert imported.exit_code == 0, imported.output
    assert "trust 999: 2 mileage categories imported" in imported.output
    listed = esr(env, "mileage", "list", "--vpd", "999")
    assert listed.output.splitlines() == [
        "code,engine_from,engine_to,rate_per_mile,description",
        "NHS_MILEAGE_CASUAL,0,1500,0.5600,Casual up to 1500cc",
        "NHS_MILEAGE_CASUAL,1501,,0.6300,Casual over 1500cc",
    ]

    bad = tmp_path / "bad.csv"
    bad.write_text("code,engine_from,engine_to,rate_per_mile\nNHS_MILEAGE_CASUAL,0,1500,cheap\n")
    refused = esr(env, "mileage", "import", "--vpd", "999", str(bad))
    assert refused.exit_code != 0
    assert "line 2, field rate_per_mile" in refused.output
    unknown = esr(env, "mileage", "import", "--vpd", "123", str(table))
    assert unknown.exit_code != 0
    assert "no trust is registered for VPD 123" in unknown.output
    assert len(esr(env, "mileage", "list", "--vpd", "999").output.splitlines()) == 3  # unchanged by the refusals


def test_trust_profile_and_nhs_options(env: dict[str, str], tmp_path: Path) -> None:
    esr(env, "trust", "add", "--vpd", "999", "--name", "Test NHS Trust")
    shown = esr(env, "trust", "show", "--vpd", "999")
    assert "employee_archiving = none" in shown.output
    updated = esr(env, "trust", "set", "--vpd", "999", "--frequency", "weekly", "--inbox", str(tmp_path),
                  "--option", "employee_archiving=automatic", "--option", "archive_grace_days=30",
                  "--option", "only_primary_address=false")
    assert updated.exit_code == 0, updated.output
    profile = esr(env, "trust", "show", "--vpd", "999").output
    assert f"weekly  active  last sequence -  inbox {tmp_path}" in profile
    assert "employee_archiving = automatic" in profile
    assert "archive_grace_days = 30" in profile
    assert "only_primary_address = False" in profile

    refused = esr(env, "trust", "set", "--vpd", "999", "--option", "employee_archiving=sometimes")
    assert refused.exit_code != 0
    assert "employee_archiving" in refused.output
    assert "employee_archiving = automatic" in esr(env, "trust", "show", "--vpd", "999").output  # unchanged

    archived = esr(env, "trust", "set", "--vpd", "999", "--archive")
    assert archived.exit_code == 0
    assert "archived" in esr(env, "trust", "list").output
    rejected = esr(env, "validate", str(SAMPLE))
    assert "REJECTED VPD_NOT_FOUND" in rejected.output  # an archived trust's files are not accepted
    assert esr(env, "trust", "show", "--vpd", "123").exit_code != 0
