"""Shared fixtures: a real PostgreSQL (ESR_DATABASE_URL, else embedded) and a real broker (embedded Tansu)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from hypothesis import settings
from psycopg import sql

from esr.db.migrate import upgrade
from esr.runtime.broker import EmbeddedBroker
from esr.runtime.database import embedded_database_url

TEST_DATA = Path(__file__).parent / "data"

# The suite runs in parallel (pytest-xdist) next to brokers and workers on 2 cores: a wall-clock deadline per
# example would measure the machine's load, not the code (speed is measured in bench/).
settings.register_profile("esr", deadline=None)
settings.load_profile("esr")


@pytest.fixture(scope="session")
def admin_database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    configured = os.environ.get("ESR_DATABASE_URL")
    if configured:
        return configured
    return embedded_database_url(tmp_path_factory.mktemp("embedded-pg"))


def _create_database(admin_url: str, name: str, template: str | None = None) -> str:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        query = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
        if template:
            query = sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(sql.Identifier(name), sql.Identifier(template))
        conn.execute(query)
    info = psycopg.conninfo.conninfo_to_dict(admin_url)
    info["dbname"] = name
    return psycopg.conninfo.make_conninfo(**info)  # type: ignore[arg-type]


def _drop_database(admin_url: str, name: str) -> None:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture(scope="session")
def template_database(admin_database_url: str) -> Iterator[str]:
    """A migrated database that each test's database is copied from."""
    name = f"esr_test_template_{uuid.uuid4().hex[:8]}"
    url = _create_database(admin_database_url, name)
    upgrade(url)
    yield name
    _drop_database(admin_database_url, name)


@pytest.fixture
def database_url(admin_database_url: str, template_database: str) -> Iterator[str]:
    """A fresh, migrated database for one test."""
    name = f"esr_test_{uuid.uuid4().hex[:12]}"
    url = _create_database(admin_database_url, name, template_database)
    yield url
    _drop_database(admin_database_url, name)


@pytest.fixture
def make_database(admin_database_url: str, template_database: str) -> Iterator[Callable[[], str]]:
    """More fresh, migrated databases for one test (to compare two runs of the pipeline, say)."""
    names: list[str] = []

    def make() -> str:
        names.append(f"esr_test_{uuid.uuid4().hex[:12]}")
        return _create_database(admin_database_url, names[-1], template_database)

    yield make
    for name in names:
        _drop_database(admin_database_url, name)


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[EmbeddedBroker]:
    """A fresh embedded broker per test: Tansu starts in milliseconds and keeps nothing."""
    with EmbeddedBroker.create(tmp_path / "broker") as running:
        yield running
