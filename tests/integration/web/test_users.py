"""User Management and API tokens: what a user manager may do, within their trusts, through the API and forms."""

from __future__ import annotations

import psycopg
import pytest
from fastapi.testclient import TestClient

from tests.integration.web.conftest import bearer, login
from tests.integration.web.seed import PASSWORD

pytestmark = pytest.mark.integration

NEW_PASSWORD = "another long password"


def test_admin_creates_a_user_grants_a_trust_role_and_the_user_gets_in(fresh_client: TestClient,
                                                                        tokens: dict[str, str]) -> None:
    admin = bearer(tokens["admin"])
    created = fresh_client.post("/api/users", json={"username": "Nurse.Manager", "password": NEW_PASSWORD,
                                                    "display_name": "Nia Jones"}, headers=admin)
    assert created.status_code == 201, created.text
    user = created.json()
    assert user["username"] == "nurse.manager"
    assert user["grants"] == []
    assert user["active"]
    granted = fresh_client.post(f"/api/users/{user['user_id']}/grants", json={"role": "viewer", "vpd": "rx2"},
                                headers=admin)
    assert granted.status_code == 201
    assert [(g["role"], g["vpd"]) for g in granted.json()["grants"]] == [("viewer", "RX2")]

    login(fresh_client, "nurse.manager", NEW_PASSWORD)
    assert fresh_client.get("/employees/RX2/200001").status_code == 200
    assert fresh_client.get("/employees/RX1/100001").status_code == 403

    duplicate = fresh_client.post("/api/users", json={"username": "nurse.manager", "password": NEW_PASSWORD},
                                  headers=admin)
    assert duplicate.status_code == 409
    weak = fresh_client.post("/api/users", json={"username": "weak", "password": "short"}, headers=admin)
    assert weak.status_code == 422
    bad_name = fresh_client.post("/api/users", json={"username": "no spaces please", "password": NEW_PASSWORD},
                                 headers=admin)
    assert bad_name.status_code == 400


def test_revoke_disable_and_reset(fresh_client: TestClient, tokens: dict[str, str], user_ids: dict[str, int]) -> None:
    admin = bearer(tokens["admin"])
    viewer = user_ids["viewer"]
    grant_id = fresh_client.get(f"/api/users/{viewer}", headers=admin).json()["grants"][0]["grant_id"]
    assert fresh_client.delete(f"/api/users/{viewer}/grants/{grant_id}", headers=admin).status_code == 204
    assert fresh_client.get("/api/employees", headers=bearer(tokens["viewer"])).status_code == 403
    assert fresh_client.delete(f"/api/users/{viewer}/grants/{grant_id}", headers=admin).status_code == 404

    disabled = fresh_client.patch(f"/api/users/{user_ids['tailor']}", json={"active": False}, headers=admin)
    assert disabled.status_code == 200
    assert not disabled.json()["active"]
    assert fresh_client.get("/api/trusts", headers=bearer(tokens["tailor"])).status_code == 401

    assert fresh_client.patch(f"/api/users/{user_ids['imports']}", json={"password": NEW_PASSWORD},
                              headers=admin).status_code == 200
    login(fresh_client, "imports", NEW_PASSWORD)
    assert fresh_client.get("/imports").status_code == 200

    me = fresh_client.patch(f"/api/users/{user_ids['admin']}", json={"active": False}, headers=admin)
    assert me.status_code == 400  # nobody disables themselves


def test_a_trust_limited_manager_stays_within_their_trusts(fresh_client: TestClient, tokens: dict[str, str],
                                                           user_ids: dict[str, int]) -> None:
    rx1admin = bearer(tokens["rx1admin"])
    target = user_ids["viewer_rx2"]  # has viewer for RX2 only
    url = f"/api/users/{target}/grants"
    assert fresh_client.post(url, json={"role": "viewer", "vpd": None}, headers=rx1admin).status_code == 403
    assert fresh_client.post(url, json={"role": "viewer", "vpd": "RX2"}, headers=rx1admin).status_code == 403
    granted = fresh_client.post(url, json={"role": "imports", "vpd": "RX1"}, headers=rx1admin)
    assert granted.status_code == 201
    # the RX2 grant is outside RX1: counted, not shown, not removable, and it protects the user
    assert [(g["role"], g["vpd"]) for g in granted.json()["grants"]] == [("imports", "RX1")]
    admin_view = fresh_client.get(f"/api/users/{target}", headers=bearer(tokens["admin"])).json()
    rx2_grant = next(g for g in admin_view["grants"] if g["vpd"] == "RX2")
    assert fresh_client.delete(f"{url}/{rx2_grant['grant_id']}", headers=rx1admin).status_code == 403
    assert fresh_client.patch(f"/api/users/{target}", json={"active": False}, headers=rx1admin).status_code == 403
    assert fresh_client.patch(f"/api/users/{user_ids['admin']}", json={"password": NEW_PASSWORD},
                              headers=rx1admin).status_code == 403
    # a user whose every grant is in RX1 may be disabled by the RX1 manager
    assert fresh_client.patch(f"/api/users/{user_ids['imports_rx1']}", json={"active": False},
                              headers=rx1admin).status_code == 200


def test_user_management_forms(fresh_client: TestClient) -> None:
    csrf = login(fresh_client, "admin")
    created = fresh_client.post("/users", data={"csrf_token": csrf, "username": "form.user",
                                                "password": NEW_PASSWORD, "display_name": "Form User"})
    assert created.status_code == 303
    user_url = created.headers["location"].split("?")[0]
    page = fresh_client.get(created.headers["location"]).text
    assert "User created." in page
    assert "form.user" in page
    granted = fresh_client.post(f"{user_url}/grants", data={"csrf_token": csrf, "role": "tailoring", "vpd": "RX1"})
    assert granted.status_code == 303
    page = fresh_client.get(granted.headers["location"]).text
    assert "Role granted." in page
    assert "Tailoring" in page
    assert "RX1" in page
    assert fresh_client.post(f"{user_url}/active", data={"csrf_token": csrf, "active": "false"}).status_code == 303
    assert "Disabled" in fresh_client.get(user_url).text
    short = fresh_client.post(f"{user_url}/password", data={"csrf_token": csrf, "password": "short"})
    assert short.status_code == 400
    listing = fresh_client.get("/users").text
    assert "form.user" in listing
    assert "user.create" in listing


def test_tokens_are_created_used_and_revoked(fresh_client: TestClient, tokens: dict[str, str],
                                             fresh_url: str) -> None:
    created = fresh_client.post("/api/tokens", json={"name": "payroll sync", "days": 7},
                                headers=bearer(tokens["viewer"]))
    assert created.status_code == 201
    token, token_id = created.json()["token"], created.json()["token_id"]
    assert token.startswith("esr_")
    assert len(token) > 40
    assert fresh_client.get("/api/me", headers=bearer(token)).json()["username"] == "viewer"
    listed = fresh_client.get("/api/tokens", headers=bearer(token)).json()
    assert {t["name"] for t in listed} == {"tests", "payroll sync"}
    assert all("token" not in t for t in listed)
    assert next(t for t in listed if t["token_id"] == token_id)["usable"]
    # someone else's token cannot be revoked
    assert fresh_client.delete(f"/api/tokens/{token_id}", headers=bearer(tokens["admin"])).status_code == 404
    assert fresh_client.delete(f"/api/tokens/{token_id}", headers=bearer(token)).status_code == 204
    assert fresh_client.get("/api/me", headers=bearer(token)).status_code == 401
    with psycopg.connect(fresh_url) as conn:
        row = conn.execute("SELECT token_prefix FROM esr.web_api_token WHERE token_id = %s", (token_id,)).fetchone()
    assert row is not None
    assert token.startswith(row[0])
    assert len(row[0]) == 10


def test_account_page_changes_the_password_and_issues_tokens(fresh_client: TestClient) -> None:
    csrf = login(fresh_client, "tailor")
    wrong = fresh_client.post(
        "/account/password", data={"csrf_token": csrf, "current": "nope", "password": NEW_PASSWORD}
    )
    assert wrong.status_code == 400
    assert "current password is wrong" in wrong.text
    changed = fresh_client.post("/account/password", data={"csrf_token": csrf, "current": PASSWORD,
                                                           "password": NEW_PASSWORD})
    assert changed.status_code == 303
    assert "Password changed." in fresh_client.get(changed.headers["location"]).text  # a new session was started
    csrf = login(fresh_client, "tailor", NEW_PASSWORD)
    issued = fresh_client.post("/account/tokens", data={"csrf_token": csrf, "name": "<b>bold</b>", "days": "30"})
    assert issued.status_code == 200
    assert 'id="new-token">esr_' in issued.text
    assert "&lt;b&gt;bold&lt;/b&gt;" in issued.text
    token_id = issued.text.split("/account/tokens/")[1].split("/")[0]
    revoked = fresh_client.post(f"/account/tokens/{token_id}/revoke", data={"csrf_token": csrf})
    assert revoked.status_code == 303
    assert "Token revoked." in fresh_client.get(revoked.headers["location"]).text
