"""Fixtures of the web tests: a seeded database (read model rows and one user per role), copied per test
where a test writes, shared where it only reads; FastAPI TestClients; login helpers."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import psycopg
import pytest
from fastapi.testclient import TestClient

from esr.web.app import create_app
from esr.web.db import Database
from esr.web.settings import WebSettings
from tests.conftest import _create_database, _drop_database
from tests.integration.web.seed import PASSWORD, SeededUsers, seed_read_model, seed_users

pytestmark = pytest.mark.integration

_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@dataclass(frozen=True)
class Seeded:
    template: str
    users: SeededUsers


@pytest.fixture(scope="session")
def seeded(admin_database_url: str, template_database: str) -> Iterator[Seeded]:
    name = f"esr_web_seed_{uuid.uuid4().hex[:8]}"
    url = _create_database(admin_database_url, name, template_database)
    with psycopg.connect(url) as conn:
        seed_read_model(conn)
    db = Database(url, min_size=1, max_size=1)
    db.open()
    try:
        users = seed_users(db)
    finally:
        db.close()
    yield Seeded(name, users)
    _drop_database(admin_database_url, name)


def _copy(admin_database_url: str, seeded: Seeded) -> tuple[str, str]:
    name = f"esr_web_{uuid.uuid4().hex[:12]}"
    return name, _create_database(admin_database_url, name, seeded.template)


@pytest.fixture(scope="session")
def shared_url(admin_database_url: str, seeded: Seeded) -> Iterator[str]:
    """A seeded database for tests that only read."""
    name, url = _copy(admin_database_url, seeded)
    yield url
    _drop_database(admin_database_url, name)


@pytest.fixture
def fresh_url(admin_database_url: str, seeded: Seeded) -> Iterator[str]:
    """A seeded database of this test's own."""
    name, url = _copy(admin_database_url, seeded)
    yield url
    _drop_database(admin_database_url, name)


def make_client(url: str, **settings: object) -> TestClient:
    return TestClient(create_app(WebSettings(database_url=url, **settings)), follow_redirects=False)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def client(shared_url: str) -> Iterator[TestClient]:
    with make_client(shared_url) as test_client:
        yield test_client


@pytest.fixture
def fresh_client(fresh_url: str) -> Iterator[TestClient]:
    with make_client(fresh_url) as test_client:
        yield test_client


@pytest.fixture
def tokens(seeded: Seeded) -> dict[str, str]:
    return seeded.users.tokens


@pytest.fixture
def user_ids(seeded: Seeded) -> dict[str, int]:
    return seeded.users.ids


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def csrf_of(html: str) -> str:
    match = _CSRF.search(html)
    assert match, "no CSRF token in the page"
    return match[1]


def login(client: TestClient, username: str, password: str = PASSWORD) -> str:
    """Signs in through the login form; returns the session's CSRF token (from the page after login)."""
    client.cookies.clear()
    form = client.get("/login")
    response = client.post(
        "/login",
        data={"username": username, "password": password, "csrf_token": csrf_of(form.text), "next": "/account"},
    )
    assert response.status_code == 303, response.text
    return csrf_of(client.get("/account").text)


@pytest.fixture
def page_client(shared_url: str) -> Iterator[TestClient]:
    """A browser-like client of its own (cookies) on the shared database."""
    with make_client(shared_url) as test_client:
        yield test_client
