"""`esr users ...` and `esr web` as an operator uses them."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner, Result

from esr.cli import main

pytestmark = pytest.mark.integration


def esr(env: dict[str, str], *args: str, stdin: str | None = None) -> Result:
    return CliRunner().invoke(main, list(args), env=env, input=stdin, catch_exceptions=False)


@pytest.fixture
def env(tmp_path: Path, database_url: str) -> dict[str, str]:
    return {"ESR_DATABASE_URL": database_url, "ESR_DATA_DIR": str(tmp_path / "var")}


def test_first_admin_then_roles_and_a_token(env: dict[str, str], database_url: str) -> None:
    password = "first admin password"
    added = esr(env, "users", "add", "--username", "Boss", "--role", "user_admin", stdin=f"{password}\n{password}\n")
    assert added.exit_code == 0, added.output
    assert "user boss created: user_admin for all trusts" in added.output
    assert password not in added.output

    scoped = esr({**env, "ESR_WEB_PASSWORD": password}, "users", "add", "--username", "clerk", "--role", "viewer",
                 "--role", "imports", "--vpd", "RX1", "--vpd", "RX2")
    assert scoped.exit_code == 0, scoped.output
    assert esr(env, "users", "grant", "--username", "clerk", "--role", "tailoring", "--vpd", "RX1").exit_code == 0

    listed = esr(env, "users", "list").output
    assert "boss  user_admin:*" in listed
    assert "clerk  imports:RX1, imports:RX2, tailoring:RX1, viewer:RX1, viewer:RX2" in listed

    token = esr(env, "users", "token", "--username", "clerk", "--name", "sync", "--days", "7").output.strip()
    assert token.startswith("esr_")
    with psycopg.connect(database_url) as conn:
        stored = conn.execute("SELECT token_hash FROM esr.web_api_token").fetchone()
    assert stored is not None
    assert stored[0] != token

    taken = esr({**env, "ESR_WEB_PASSWORD": password}, "users", "add", "--username", "boss", "--role", "viewer")
    assert taken.exit_code != 0
    assert "taken" in taken.output
    weak = esr({**env, "ESR_WEB_PASSWORD": "short"}, "users", "add", "--username", "weak", "--role", "viewer")
    assert weak.exit_code != 0
    assert "at least 12" in weak.output
    unknown = esr(env, "users", "token", "--username", "ghost", "--name", "x")
    assert unknown.exit_code != 0
    assert "no user" in unknown.output


def test_web_command_help() -> None:
    result = CliRunner().invoke(main, ["web", "--help"])
    assert result.exit_code == 0
    assert "--secure-cookies" in result.output
    assert "OpenAPI" in result.output
