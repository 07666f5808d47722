"""Who may do what: 401 without valid credentials, 403 for every role that must not pass, trust limits, and
masking of NI numbers and dates of birth. One row per endpoint and page; every seeded user tries each."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from tests.integration.web.conftest import bearer, login, make_client
from tests.integration.web.seed import GRACE_NI, SIAN_NI, USERS, sha

pytestmark = pytest.mark.integration

RX1_FILE = sha("GO_RX1_EXP_GOC_20260106_00000002.DAT")
RX2_FILE = sha("GO_RX2_EXP_GOF_20260105_00000001.DAT")
UNKNOWN_TRUST_FILE = sha("GO_ZZZ_EXP_GOC_20260105_00000001.DAT")

EMPLOYEE_READERS = {"viewer", "viewer_rx2", "imports", "imports_rx1"}
RX1_EMPLOYEE_READERS = {"viewer", "imports", "imports_rx1"}
IMPORTERS = {"imports", "imports_rx1"}
TAILORS = {"tailor", "tailor_rx2"}
ADMINS = {"admin", "rx1admin"}
EVERYONE = set(USERS)

# (path, who gets 200; everyone else 403). {admin_id} is filled in per test.
API_READS = [
    ("/api/me", EVERYONE),
    ("/api/tokens", EVERYONE),
    ("/api/employees", EMPLOYEE_READERS),
    ("/api/employees?vpd=RX1", RX1_EMPLOYEE_READERS),
    ("/api/employees/RX1/100001", RX1_EMPLOYEE_READERS),
    ("/api/employees/RX1/100001/assignments", RX1_EMPLOYEE_READERS),
    ("/api/employees/RX1/100001/addresses", RX1_EMPLOYEE_READERS),
    ("/api/employees/RX1/100001/vehicles", RX1_EMPLOYEE_READERS),
    ("/api/employees/RX1/100001/history", RX1_EMPLOYEE_READERS),
    ("/api/employees/RX2/200001", {"viewer", "viewer_rx2", "imports"}),
    ("/api/imports", IMPORTERS),
    ("/api/imports?vpd=RX1", IMPORTERS),
    (f"/api/imports/{RX1_FILE}", IMPORTERS),
    (f"/api/imports/{RX1_FILE}/lines", IMPORTERS),
    ("/api/trusts", TAILORS),
    ("/api/trusts/RX1", {"tailor"}),
    ("/api/trusts/RX2", TAILORS),
    ("/api/users", ADMINS),
    ("/api/users/{admin_id}", ADMINS),
]
# Writes: only the refusals are tried here (successes are in test_users.py), so the shared data stays put.
API_WRITES = [
    ("POST", "/api/users", {"username": "newbie", "password": "a long enough password"}, ADMINS),
    ("PATCH", "/api/users/{admin_id}", {"active": True}, ADMINS),
    ("POST", "/api/users/{admin_id}/grants", {"role": "viewer", "vpd": "RX1"}, ADMINS),
    ("DELETE", "/api/users/{admin_id}/grants/1", None, ADMINS),
    ("POST", "/api/tokens", {"name": "x"}, EVERYONE),
    ("DELETE", "/api/tokens/999999", None, EVERYONE),
]
PAGES = [
    ("/employees", EMPLOYEE_READERS),
    ("/employees/RX1/100001", RX1_EMPLOYEE_READERS),
    ("/employees/RX1/100001/addresses", RX1_EMPLOYEE_READERS),
    ("/employees/RX1/100001/vehicles", RX1_EMPLOYEE_READERS),
    ("/employees/RX1/100001/vehicles/mileage", RX1_EMPLOYEE_READERS),
    ("/employees/RX1/100001/history", RX1_EMPLOYEE_READERS),
    ("/imports", IMPORTERS),
    (f"/imports/{RX1_FILE}", IMPORTERS),
    ("/tailoring", TAILORS),
    ("/tailoring/RX1", {"tailor"}),
    ("/users", ADMINS),
    ("/users/{admin_id}", ADMINS),
    ("/account", EVERYONE),
]


def _fill(path: str, ids: dict[str, int]) -> str:
    return path.replace("{admin_id}", str(ids["admin"]))


@pytest.mark.parametrize(("path", "allowed"), API_READS, ids=[p for p, _ in API_READS])
def test_api_reads(client: TestClient, tokens: dict[str, str], user_ids: dict[str, int], path: str,
                   allowed: set[str]) -> None:
    url = _fill(path, user_ids)
    assert client.get(url).status_code == 401
    assert client.get(url, headers=bearer("esr_not-a-real-token")).status_code == 401
    assert client.get(url, headers={"Authorization": "Basic YWRtaW46YWRtaW4="}).status_code == 401
    for user in USERS:
        response = client.get(url, headers=bearer(tokens[user]))
        expected = 200 if user in allowed else 403
        assert response.status_code == expected, (user, response.text)


@pytest.mark.parametrize(
    ("method", "path", "body", "allowed"), API_WRITES, ids=[f"{m} {p}" for m, p, _, _ in API_WRITES]
)
def test_api_writes_refused(client: TestClient, tokens: dict[str, str], user_ids: dict[str, int], method: str,
                            path: str, body: dict[str, object] | None, allowed: set[str]) -> None:
    url = _fill(path, user_ids)
    assert client.request(method, url, json=body).status_code == 401
    assert client.request(method, url, json=body, headers=bearer("esr_nope")).status_code == 401
    for user in EVERYONE - allowed:
        response = client.request(method, url, json=body, headers=bearer(tokens[user]))
        assert response.status_code == 403, (user, response.text)


@pytest.fixture(scope="module")
def sessions(shared_url: str) -> Iterator[dict[str, TestClient]]:
    """One signed-in browser-like client per seeded user."""
    clients = {user: make_client(shared_url) for user in USERS}
    for user, test_client in clients.items():
        test_client.__enter__()
        login(test_client, user)
    yield clients
    for test_client in clients.values():
        test_client.__exit__(None, None, None)


@pytest.mark.parametrize(("path", "allowed"), PAGES, ids=[p for p, _ in PAGES])
def test_pages(page_client: TestClient, sessions: dict[str, TestClient], user_ids: dict[str, int], path: str,
               allowed: set[str]) -> None:
    url = _fill(path, user_ids)
    anonymous = page_client.get(url)
    assert anonymous.status_code == 303
    assert anonymous.headers["location"].startswith("/login?next=")
    for user, session in sessions.items():
        response = session.get(url)
        expected = 200 if user in allowed else 403
        assert response.status_code == expected, (user, url)
        if expected == 403:
            assert "Not allowed" in response.text


def test_navigation_shows_only_what_the_roles_allow(sessions: dict[str, TestClient]) -> None:
    home = {user: session.get("/").headers.get("location") for user, session in sessions.items()}
    assert home["viewer"] == "/employees"
    assert home["imports"] == "/employees"
    assert home["tailor"] == "/tailoring"
    assert home["admin"] == "/users"
    assert home["nobody"] is None
    assert "No roles yet" in sessions["nobody"].get("/").text
    page = sessions["viewer"].get("/employees").text
    assert 'href="/employees"' in page
    assert 'href="/imports"' not in page
    assert 'href="/users"' not in page


# -- trusts --------------------------------------------------------------------------------------------


def test_search_is_limited_to_the_granted_trusts(client: TestClient, tokens: dict[str, str]) -> None:
    rx2 = client.get("/api/employees", headers=bearer(tokens["viewer_rx2"])).json()["items"]
    assert {e["vpd"] for e in rx2} == {"RX2"}
    everyone = client.get("/api/employees", headers=bearer(tokens["viewer"])).json()["items"]
    assert {e["vpd"] for e in everyone} == {"RX1", "RX2"}
    assert client.get("/api/employees?vpd=RX1", headers=bearer(tokens["viewer_rx2"])).status_code == 403


def test_imports_are_limited_to_the_granted_trusts(client: TestClient, tokens: dict[str, str]) -> None:
    rx1 = client.get("/api/imports", headers=bearer(tokens["imports_rx1"])).json()["items"]
    assert {f["vpd"] for f in rx1} == {"RX1"}
    every = client.get("/api/imports", headers=bearer(tokens["imports"])).json()["items"]
    assert {f["vpd"] for f in every} == {"RX1", "RX2", "ZZZ"}
    # another trust's file, or a file of no known trust, is "not found" for a trust-limited importer
    for digest in (RX2_FILE, UNKNOWN_TRUST_FILE):
        assert client.get(f"/api/imports/{digest}", headers=bearer(tokens["imports_rx1"])).status_code == 404
        assert client.get(f"/api/imports/{digest}/lines", headers=bearer(tokens["imports_rx1"])).status_code == 404
        assert client.get(f"/api/imports/{digest}", headers=bearer(tokens["imports"])).status_code == 200


def test_tailoring_is_limited_to_the_granted_trusts(client: TestClient, tokens: dict[str, str]) -> None:
    trusts = client.get("/api/trusts", headers=bearer(tokens["tailor_rx2"])).json()
    assert [t["vpd"] for t in trusts] == ["RX2"]
    detail = client.get("/api/trusts/RX1", headers=bearer(tokens["tailor"])).json()
    assert [m["code"] for m in detail["mileage_categories"]].count("STANDARD RATE") == 2


def test_unknown_employee_is_404_but_a_foreign_trust_is_403_whether_or_not_it_exists(
    client: TestClient, tokens: dict[str, str]
) -> None:
    assert client.get("/api/employees/RX1/999999", headers=bearer(tokens["viewer"])).status_code == 404
    assert client.get("/api/employees/RX1/999999", headers=bearer(tokens["viewer_rx2"])).status_code == 403
    assert client.get("/api/employees/RX1/100001", headers=bearer(tokens["viewer_rx2"])).status_code == 403


# -- masking -------------------------------------------------------------------------------------------


def test_viewer_gets_ni_number_and_date_of_birth_masked(client: TestClient, tokens: dict[str, str]) -> None:
    person = client.get("/api/employees/RX1/100001", headers=bearer(tokens["viewer"])).json()
    assert person["ni_number"] is None
    assert person["date_of_birth"] is None
    assert sorted(person["masked"]) == ["date_of_birth", "ni_number"]
    found = client.get("/api/employees?q=evans", headers=bearer(tokens["viewer"])).json()["items"]
    assert found[0]["ni_number"] is None
    assert found[0]["date_of_birth"] is None
    history = client.get("/api/employees/RX1/100001/history", headers=bearer(tokens["viewer"])).text
    assert SIAN_NI not in history
    assert "QQ000000A" not in history
    assert "1984-03-12" not in history
    assert "••••••••" in history


def test_imports_role_sees_them(client: TestClient, tokens: dict[str, str]) -> None:
    person = client.get("/api/employees/RX1/100001", headers=bearer(tokens["imports"])).json()
    assert person["ni_number"] == SIAN_NI
    assert person["date_of_birth"] == "1984-03-12"
    assert person["masked"] == []
    history = client.get("/api/employees/RX1/100001/history", headers=bearer(tokens["imports"])).text
    assert SIAN_NI in history


def test_masking_follows_the_trust_of_the_grant(client: TestClient, tokens: dict[str, str]) -> None:
    # imports_rx1 may not read RX2 at all; a viewer of all trusts sees no NI anywhere
    assert client.get("/api/employees/RX2/200001", headers=bearer(tokens["imports_rx1"])).status_code == 403
    grace = client.get("/api/employees/RX2/200001", headers=bearer(tokens["viewer"])).json()
    assert grace["ni_number"] is None


def test_viewer_pages_never_contain_the_ni_number_or_birth_date(sessions: dict[str, TestClient]) -> None:
    for path in ("/employees", "/employees?q=evans", "/employees/RX1/100001", "/employees/RX1/100001/history"):
        html = sessions["viewer"].get(path).text
        for secret in (SIAN_NI, "12 Mar 1984", "1984-03-12"):
            assert secret not in html, (path, secret)
    html = sessions["imports"].get("/employees/RX1/100001").text
    assert SIAN_NI in html
    assert "12 Mar 1984" in html


def test_ni_number_search_needs_the_imports_role(client: TestClient, tokens: dict[str, str]) -> None:
    assert client.get(f"/api/employees?ni_number={SIAN_NI}", headers=bearer(tokens["viewer"])).status_code == 403
    # typed into the search box by a viewer it is just text, and finds nobody
    assert client.get(f"/api/employees?q={SIAN_NI}", headers=bearer(tokens["viewer"])).json()["items"] == []
    for query in (f"ni_number={SIAN_NI}", "q=qq 12 34 56 c"):
        found = client.get(f"/api/employees?{query}", headers=bearer(tokens["imports"])).json()["items"]
        assert [(e["vpd"], e["person_id"]) for e in found] == [("RX1", "100001")], query
    # within the trusts where the role holds only
    assert client.get(f"/api/employees?q={GRACE_NI}", headers=bearer(tokens["imports_rx1"])).json()["items"] == []
    assert len(client.get(f"/api/employees?q={GRACE_NI}", headers=bearer(tokens["imports"])).json()["items"]) == 1
