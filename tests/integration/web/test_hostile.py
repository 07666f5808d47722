"""Hostile input is harmless: SQL metacharacters are data, markup is escaped, over-long values are refused,
malformed cursors and paths are 4xx, never 500."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from tests.integration.web.conftest import bearer, login, make_client

pytestmark = pytest.mark.integration

SQL_ATTACKS = [
    "'; DROP TABLE esr.person; --",
    "' OR '1'='1",
    "\" OR 1=1 --",
    "1; SELECT pg_sleep(5)",
    "%",
    "_",
    "\\",
    "%' OR vpd LIKE '%",
    "' UNION SELECT username, password_hash FROM esr.web_user --",
    "$1",
    "%(vpds)s",
    "{where}",
]


@pytest.fixture(scope="module")
def viewer_page(shared_url: str) -> Iterator[TestClient]:
    with make_client(shared_url) as browser:
        login(browser, "viewer")
        yield browser


@pytest.mark.parametrize("text", SQL_ATTACKS)
def test_sql_metacharacters_are_only_data(client: TestClient, tokens: dict[str, str], viewer_page: TestClient,
                                          text: str) -> None:
    for param in ("q", "name", "employee_number", "assignment_number"):
        response = client.get("/api/employees", params={param: text}, headers=bearer(tokens["viewer"]))
        if len(text) > 30 and param in ("employee_number", "assignment_number"):
            assert response.status_code == 422  # longer than any number
            continue
        assert response.status_code == 200, (param, response.text)
        assert response.json()["items"] == [], (param, text)  # nothing matches; nothing leaks
    assert viewer_page.get("/employees", params={"q": text}).status_code == 200
    imports = client.get("/api/imports", params={"status": text}, headers=bearer(tokens["imports"]))
    assert imports.status_code == 422
    # and the tables are still there
    assert len(client.get("/api/employees", headers=bearer(tokens["viewer"])).json()["items"]) == 6


def test_sql_text_in_stored_data_is_only_data(client: TestClient, tokens: dict[str, str]) -> None:
    found = client.get("/api/employees", params={"q": "drop table"}, headers=bearer(tokens["viewer"])).json()
    assert [e["last_name"] for e in found["items"]] == ["Robert'); DROP TABLE esr.person;--"]


def test_script_tags_are_escaped(viewer_page: TestClient) -> None:
    listing = viewer_page.get("/employees").text
    assert "<script>" not in listing
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in listing
    searched = viewer_page.get("/employees", params={"q": "<script>alert(1)</script>"}).text
    assert "<script>" not in searched
    assert 'value="&lt;script&gt;alert(1)&lt;/script&gt;"' in searched
    record = viewer_page.get("/employees/RX1/100005").text
    assert "<script>" not in record
    assert "&lt;script&gt;" in record
    attribute = viewer_page.get("/employees", params={"q": '"><img src=x onerror=alert(1)>'}).text
    assert "<img src=x" not in attribute


def test_script_tags_in_json_stay_strings(client: TestClient, tokens: dict[str, str]) -> None:
    response = client.get("/api/employees/RX1/100005", headers=bearer(tokens["viewer"]))
    assert response.headers["content-type"] == "application/json"
    assert response.json()["first_name"] == "<script>alert('x')</script>"


def test_over_long_values_are_refused(client: TestClient, tokens: dict[str, str], viewer_page: TestClient,
                                      page_client: TestClient) -> None:
    long = "a" * 101
    for param in ("q", "name"):
        assert client.get("/api/employees", params={param: long}, headers=bearer(tokens["viewer"])).status_code == 422
    assert client.get("/api/employees", params={"q": "a" * 100}, headers=bearer(tokens["viewer"])).status_code == 200
    page = viewer_page.get("/employees", params={"q": "x" * 5000})
    assert page.status_code == 400
    assert "not valid" in page.text
    assert client.get("/api/employees/RX1/" + "9" * 31, headers=bearer(tokens["viewer"])).status_code == 422
    cursor = client.get("/api/employees", params={"after": "A" * 2000}, headers=bearer(tokens["viewer"]))
    assert cursor.status_code == 422
    huge_login = page_client.post("/login", data={"username": "u" * 10_000, "password": "p", "csrf_token": "x"})
    assert huge_login.status_code in (400, 403)
    # a bearer token of any length is just refused
    assert client.get("/api/me", headers=bearer("esr_" + "x" * 100_00)).status_code == 401


@pytest.mark.parametrize("path", [
    "/api/employees/RX1/1' OR '1'='1",
    "/api/employees/R%3CX/100001",
    "/api/employees/RX1/..%2F..%2Fetc%2Fpasswd",
    "/api/imports/not-a-sha",
    "/api/imports/" + "G" * 64,
    "/api/trusts/<script>",
    "/api/users/-1",
    "/api/users/99999999999999999999999",
])
def test_malformed_paths_are_422_or_404(client: TestClient, tokens: dict[str, str], path: str) -> None:
    who = "admin" if "/users" in path else ("tailor" if "/trusts" in path else "imports")
    assert client.get(path, headers=bearer(tokens[who])).status_code in (404, 422)


@pytest.mark.parametrize("cursor", ["garbage", "'; DROP TABLE esr.person; --", "W10", "WyJhIl0", "eyJhIjoxfQ",
                                    "WzEsMiwzLDRd", "WyJ4IiwieCIsIngiLDFd"])
def test_malformed_cursors_are_400(client: TestClient, tokens: dict[str, str], viewer_page: TestClient,
                                   cursor: str) -> None:
    for url, who in (("/api/employees", "viewer"), ("/api/imports", "imports"),
                     ("/api/employees/RX1/100001/history", "imports"),
                     ("/api/imports/" + "0" * 64 + "/lines", "imports")):
        response = client.get(url, params={"after": cursor}, headers=bearer(tokens[who]))
        assert response.status_code in (400, 404), (url, response.text)
    assert viewer_page.get("/employees", params={"after": cursor}).status_code == 400


def test_nul_bytes_and_control_characters_are_refused_not_crashing(
    client: TestClient, tokens: dict[str, str], viewer_page: TestClient, page_client: TestClient
) -> None:
    assert client.get("/api/employees", params={"q": "ev\x00ans"}, headers=bearer(tokens["viewer"])).status_code == 400
    assert viewer_page.get("/employees", params={"q": "\x00"}).status_code == 400
    form = page_client.get("/login")
    from tests.integration.web.conftest import csrf_of

    response = page_client.post(
        "/login", data={"username": "vie\x00wer", "password": "x", "csrf_token": csrf_of(form.text)}
    )
    assert response.status_code in (400, 401)
