"""What every API endpoint returns, and keyset pagination through each list."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from tests.integration.web.conftest import bearer, login, make_client
from tests.integration.web.seed import insert, sha

pytestmark = pytest.mark.integration

CHANGE_FILE = sha("GO_RX1_EXP_GOC_20260106_00000002.DAT")


def get(client: TestClient, token: str, url: str, **params: Any) -> Any:
    response = client.get(url, params=params, headers=bearer(token))
    assert response.status_code == 200, response.text
    return response.json()


def test_openapi_document_lists_every_endpoint(client: TestClient) -> None:
    document = client.get("/openapi.json").json()
    paths = set(document["paths"])
    assert {
        "/api/me", "/api/employees", "/api/employees/{vpd}/{person_id}", "/api/employees/{vpd}/{person_id}/assignments",
        "/api/employees/{vpd}/{person_id}/addresses", "/api/employees/{vpd}/{person_id}/vehicles",
        "/api/employees/{vpd}/{person_id}/history", "/api/imports", "/api/imports/{sha256}",
        "/api/imports/{sha256}/lines", "/api/trusts", "/api/trusts/{vpd}", "/api/users", "/api/users/{user_id}",
        "/api/users/{user_id}/grants", "/api/users/{user_id}/grants/{grant_id}", "/api/tokens",
        "/api/tokens/{token_id}", "/api/trusts/{vpd}/mapping", "/api/trusts/{vpd}/mapping/versions",
        "/api/trusts/{vpd}/mapping/versions/{number}", "/api/trusts/{vpd}/mileage", "/api/mapping/catalogue",
    } == paths
    assert not any(p.startswith("/employees") or p == "/login" for p in paths)  # pages are not API
    assert client.get("/docs").status_code == 404  # no third-party script UI


def test_me(client: TestClient, tokens: dict[str, str]) -> None:
    me = get(client, tokens["imports_rx1"], "/api/me")
    assert me["username"] == "imports_rx1"
    assert me["via"] == "token"
    assert me["grants"][0]["role"] == "imports"
    assert me["grants"][0]["vpd"] == "RX1"
    assert me["permissions"] == {"employees.read": ["RX1"], "employees.personal_identifiers": ["RX1"],
                                 "imports.read": ["RX1"]}


def test_search_by_name_number_and_assignment(client: TestClient, tokens: dict[str, str]) -> None:
    token = tokens["viewer"]

    def ids(**params: Any) -> list[str]:
        return [e["person_id"] for e in get(client, token, "/api/employees", **params)["items"]]

    assert ids(q="sian") == ["100001"]  # accents do not matter
    assert ids(q="SIÂN evans-price") == ["100001"]
    assert ids(q="evans") == ["100001"]  # maiden name too
    assert ids(q="mair") == ["100001"]  # middle names too
    assert ids(q="nowak tomasz") == ["100002"]  # any order
    assert ids(q="o'connor") == ["100003"]
    assert ids(q="10000123") == ["100001"]  # employee number
    assert ids(q="1000045") == ["100002"]  # employee number prefix
    assert ids(q="20000011-2") == ["100001"]  # assignment number
    assert ids(q="9000") == ["200001"]  # assignment number prefix
    assert ids(name="grace", vpd="RX2") == ["200001"]
    assert ids(employee_number="1000078") == ["100003"]
    assert ids(assignment_number="20000022") == ["100002"]
    assert ids(q="nobody by this name") == []
    first = get(client, token, "/api/employees", q="evans")["items"][0]
    assert first["assignment_number"] == "20000011"
    assert first["organisation_name"] == "Ward 7 Cardiology"


def test_employee_and_work(client: TestClient, tokens: dict[str, str]) -> None:
    person = get(client, tokens["imports"], "/api/employees/RX1/100001")
    assert person["trust_name"] == "Northfield Teaching Hospitals NHS Foundation Trust"
    assert (person["first_name"], person["last_name"], person["employee_number"]) == ("Siân", "Evans-Price", "10000123")
    work = get(client, tokens["imports"], "/api/employees/RX1/100001/assignments")
    assert [a["assignment_number"] for a in work] == ["20000011", "20000011-2"]  # primary first
    primary, secondary = work
    assert primary["is_primary"]
    assert not secondary["is_primary"]
    assert primary["position_name"] == "Staff Nurse | Cardiology"  # from the position when ASA has none
    assert secondary["position_name"] == "Bank Staff Nurse"
    assert primary["grade"] == "Band 6"
    assert primary["organisation_name"] == "Ward 7 Cardiology"
    assert primary["line_manager"] == {"person_id": "100002", "employee_number": "10000456", "name": "Tomasz Nowak"}
    assert primary["effective_start"] == "2019-04-01"
    assert primary["current"]
    assert [c["percentage"] for c in secondary["costings"]] == ["60.00", "40.00"]
    ended = get(client, tokens["viewer"], "/api/employees/RX1/100003/assignments")[0]
    assert not ended["current"]
    assert ended["assignment_end_date"] == "2025-12-31"


def test_addresses(client: TestClient, tokens: dict[str, str]) -> None:
    addresses = get(client, tokens["viewer"], "/api/employees/RX1/100001/addresses")
    assert [h["line1"] for h in addresses["home"]] == ["12 Oak Lane", "Flat 3, 88 Station Road"]
    assert addresses["home"][0]["is_primary"]
    assert addresses["home"][1]["effective_end"] == "2022-05-13"
    work = {w["assignment_number"]: w for w in addresses["work"]}
    assert work["20000011"]["description"] == "Northfield General Hospital"
    assert work["20000011"]["location_source"] == "assignment"
    assert work["20000011-2"]["description"] == "Nurse Bank Office"  # the organisation's location
    assert work["20000011-2"]["location_source"] == "organisation"
    assert {p["phone_type"] for p in addresses["phones"]} == {"Mobile", "Work"}


def test_vehicles_with_nhs_mileage(client: TestClient, tokens: dict[str, str]) -> None:
    vehicles = {v["registration"]: v for v in get(client, tokens["viewer"], "/api/employees/RX1/100001/vehicles")}
    focus, hybrid = vehicles["NF21 KXD"], vehicles["LE70 EVN"]
    assert focus["assignment_number"] == "20000011"
    assert focus["engine_cc"] == "1596.000"
    assert [(m["code"], m["engine_from"], m["rate_per_mile"]) for m in focus["mileage"]] == [
        ("STANDARD RATE", 1501, "0.5600")
    ]
    # "1.5" is litres; the rates table matches whatever its case and spacing
    assert [(m["engine_to"], m["engine_size_cc"]) for m in hybrid["mileage"]] == [(1500, 1500)]
    assert hybrid["assignment_number"] == "20000011-2"


def test_history_newest_first_with_before_and_after(client: TestClient, tokens: dict[str, str]) -> None:
    history = get(client, tokens["imports"], "/api/employees/RX1/100001/history")
    types = [e["event_type"] for e in history["items"]]
    assert types == ["VEHICLE_ADDED", "HOME_ADDRESS_CHANGED", "PERSON_UPDATED", "SURNAME_CHANGED", "NEW_STARTER"]
    surname = history["items"][3]
    assert surname["changes"] == [{"field": "last_name", "old": "Evans", "new": "Evans-Price"}]
    assert surname["file_name"] == "GO_RX1_EXP_GOC_20260106_00000002.DAT"
    assert surname["line_no"] == 102


def test_imports_and_quarantined_lines(client: TestClient, tokens: dict[str, str]) -> None:
    files = get(client, tokens["imports"], "/api/imports")["items"]
    assert [f["file_name"][:6] for f in files] == ["GO_ZZZ", "GO_RX2", "GO_RX1", "GO_RX1", "GO_RX1"]  # newest first
    rejected = get(client, tokens["imports"], "/api/imports", status="rejected")["items"]
    assert {(f["vpd"], f["rejection_code"]) for f in rejected} == {("RX1", "WRONG_SEQUENCE"), ("ZZZ", "VPD_NOT_FOUND")}
    assert [f["sequence"] for f in get(client, tokens["imports"], "/api/imports", vpd="RX1")["items"]] == [4, 2, 1]
    detail = get(client, tokens["imports"], f"/api/imports/{CHANGE_FILE}")
    assert detail["record_count"] == 210
    assert detail["error_count"] == 2
    assert detail["counts_by_code"] == {"PRA": 3, "ASA": 4}
    lines = get(client, tokens["imports"], f"/api/imports/{CHANGE_FILE}/lines")["items"]
    assert [(line["line_no"], line["severity"]) for line in lines] == [(17, "quarantined"), (52, "quarantined"),
                                                                       (60, "warning")]
    assert lines[0]["raw_line"].startswith("PRA|100009|")
    assert client.get("/api/imports/" + "0" * 64, headers=bearer(tokens["imports"])).status_code == 404


def test_an_import_reports_its_vehicles_without_a_mileage_rate(
    fresh_client: TestClient, fresh_url: str, tokens: dict[str, str]
) -> None:
    """NHS mileage: a vehicle the file brought that no category of the trust matches is in the import log."""
    with psycopg.connect(fresh_url) as conn:
        insert(conn, "vehicle", vpd="RX1", vehicle_allocation_id="V9", person_id="100001", assignment_id="A1",
               engine_cc=Decimal("2.4"), user_rates_table="Casual <b>", src_file_sha256=CHANGE_FILE,
               src_line_no=77)
        insert(conn, "vehicle", vpd="RX1", vehicle_allocation_id="V8", person_id="100001", engine_cc=Decimal(1200),
               user_rates_table="standard rate", src_file_sha256=CHANGE_FILE, src_line_no=78)  # matched
    detail = get(fresh_client, tokens["imports"], f"/api/imports/{CHANGE_FILE}")
    assert detail["unmatched_vehicles"] == [{"line_no": 77, "vehicle_allocation_id": "V9", "person_id": "100001",
                                             "user_rates_table": "Casual <b>", "engine_cc": "2.400"}]
    login(fresh_client, "imports")
    page = fresh_client.get(f"/imports/{CHANGE_FILE}")
    assert page.status_code == 200, page.text
    assert 'id="unmatched-vehicles"' in page.text
    assert "Casual &lt;b&gt;" in page.text
    assert "2.4 litres" in page.text
    assert get(fresh_client, tokens["imports"], f"/api/imports/{sha('GO_RX1_EXP_GOF_20260105_00000001.DAT')}")[
        "unmatched_vehicles"] == []


def test_trusts(client: TestClient, tokens: dict[str, str]) -> None:
    trusts = get(client, tokens["tailor"], "/api/trusts")
    assert [(t["vpd"], t["import_frequency"], t["last_sequence"]) for t in trusts] == [("RX1", "daily", 3),
                                                                                      ("RX2", "weekly", 1)]
    assert trusts[0]["last_file_at"] is not None
    assert client.get("/api/trusts/ZZ9", headers=bearer(tokens["tailor"])).status_code == 404


def _walk(client: TestClient, token: str, url: str, limit: int, **params: Any) -> list[list[Any]]:
    pages: list[list[Any]] = []
    after = None
    while True:
        query = {**params, "limit": limit, **({"after": after} if after else {})}
        page = get(client, token, url, **query)
        pages.append(page["items"])
        after = page["next_cursor"]
        if after is None:
            return pages
        assert len(pages) < 50


@pytest.mark.parametrize(
    ("who", "url", "key"),
    [
        ("viewer", "/api/employees", "person_id"),
        ("imports", "/api/imports", "sha256"),
        ("imports", f"/api/imports/{CHANGE_FILE}/lines", "line_no"),
        ("imports", "/api/employees/RX1/100001/history", "event_id"),
    ],
)
def test_keyset_pagination_visits_every_row_once(client: TestClient, tokens: dict[str, str], who: str, url: str,
                                                 key: str) -> None:
    everything = [row[key] for row in get(client, tokens[who], url)["items"]]
    assert len(everything) >= 3
    pages = _walk(client, tokens[who], url, 2)
    assert all(len(p) == 2 for p in pages[:-1])
    assert 1 <= len(pages[-1]) <= 2
    assert [row[key] for page in pages for row in page] == everything


def test_page_size_is_bounded(client: TestClient, tokens: dict[str, str]) -> None:
    for limit in (0, -1, 201, 10**9):
        response = client.get("/api/employees", params={"limit": limit}, headers=bearer(tokens["viewer"]))
        assert response.status_code == 422


def test_pages_link_to_the_next_page(shared_url: str) -> None:
    with make_client(shared_url, page_size=2) as browser:
        login(browser, "viewer")
        first = browser.get("/employees").text
        assert "Next page" in first
        assert "First page" not in first
        assert "Evans-Price" in first
        assert "Nowak" in first
        cursor = first.split("after=")[1].split('"')[0]
        second = browser.get(f"/employees?q=&vpd=&after={cursor}").text
        assert "First page" in second
        assert "Nowak" not in second
        assert "O&#39;Connor" in second
