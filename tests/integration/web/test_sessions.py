"""Sign-in, sessions that expire, CSRF on every form, lockout, security headers, and logs without personal data."""

from __future__ import annotations

import logging

import psycopg
import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from esr.web import security
from tests.integration.web.conftest import bearer, csrf_of, login, make_client
from tests.integration.web.seed import PASSWORD, SIAN_NI

pytestmark = pytest.mark.integration


def test_login_sets_a_session_cookie_that_scripts_cannot_read(page_client: TestClient) -> None:
    form = page_client.get("/login")
    assert form.status_code == 200
    response = page_client.post(
        "/login", data={"username": "Viewer ", "password": PASSWORD, "csrf_token": csrf_of(form.text)}
    )
    assert response.status_code == 303
    cookie = next(h for h in response.headers.get_list("set-cookie") if h.startswith("esr_session="))
    assert "HttpOnly" in cookie
    assert "SameSite=lax" in cookie
    assert "Path=/" in cookie
    assert page_client.get("/employees").status_code == 200


def test_wrong_password_and_unknown_user_look_the_same(page_client: TestClient) -> None:
    answers = []
    for username, password in (("viewer", "wrong password!"), ("nosuchuser", PASSWORD)):
        form = page_client.get("/login")
        response = page_client.post(
            "/login", data={"username": username, "password": password, "csrf_token": csrf_of(form.text)}
        )
        assert response.status_code == 401
        answers.append(response.text.split("<main")[1].split('name="csrf_token"')[0])
    assert answers[0] == answers[1]


def test_after_five_failures_the_account_is_locked(fresh_client: TestClient) -> None:
    for _ in range(5):
        form = fresh_client.get("/login")
        fresh_client.post(
            "/login", data={"username": "tailor", "password": "nope nope nope", "csrf_token": csrf_of(form.text)}
        )
    form = fresh_client.get("/login")
    locked = fresh_client.post(
        "/login", data={"username": "tailor", "password": PASSWORD, "csrf_token": csrf_of(form.text)}
    )
    assert locked.status_code == 401


def test_logout_ends_the_session(page_client: TestClient) -> None:
    csrf = login(page_client, "viewer")
    cookie = page_client.cookies.get("esr_session")
    assert page_client.post("/logout", data={"csrf_token": csrf}).status_code == 303
    page_client.cookies.set("esr_session", cookie or "")
    assert page_client.get("/employees").status_code == 303  # the old cookie no longer works
    assert page_client.get("/api/me").status_code == 401


@pytest.mark.parametrize(
    "expire",
    [
        "UPDATE esr.web_session SET last_seen_at = now() - interval '31 minutes'",  # idle too long
        "UPDATE esr.web_session SET expires_at = now() - interval '1 second'",  # past its lifetime
    ],
    ids=["idle", "lifetime"],
)
def test_expired_sessions_are_refused(fresh_url: str, expire: str) -> None:
    with make_client(fresh_url) as browser:
        login(browser, "viewer")
        assert browser.get("/api/me").status_code == 200  # the API accepts the session cookie too
        with psycopg.connect(fresh_url) as conn:
            conn.execute(expire)
        page = browser.get("/employees?q=evans")
        assert page.status_code == 303
        assert page.headers["location"] == "/login?next=%2Femployees%3Fq%3Devans"
        assert browser.get("/api/me").status_code == 401


def test_expired_revoked_and_disabled_tokens_are_refused(fresh_client: TestClient, fresh_url: str,
                                                         tokens: dict[str, str]) -> None:
    assert fresh_client.get("/api/me", headers=bearer(tokens["viewer"])).status_code == 200
    with psycopg.connect(fresh_url) as conn:
        conn.execute("UPDATE esr.web_api_token SET expires_at = now() - interval '1 second'"
                     " WHERE token_hash = %s", (security.digest(tokens["viewer"]),))
        conn.execute("UPDATE esr.web_api_token SET revoked_at = now() WHERE token_hash = %s",
                     (security.digest(tokens["tailor"]),))
        conn.execute("UPDATE esr.web_user SET active = false WHERE username = 'imports'")
    for user in ("viewer", "tailor", "imports"):
        assert fresh_client.get("/api/me", headers=bearer(tokens[user])).status_code == 401, user
    assert fresh_client.get("/api/me", headers=bearer(tokens["admin"])).status_code == 200


def test_secrets_are_stored_hashed(fresh_url: str, tokens: dict[str, str]) -> None:
    with psycopg.connect(fresh_url) as conn:
        hashes = [r[0] for r in conn.execute("SELECT password_hash FROM esr.web_user")]
        stored = [r[0] for r in conn.execute("SELECT token_hash FROM esr.web_api_token")]
    assert all(h.startswith("$argon2id$") for h in hashes)
    assert security.digest(tokens["viewer"]) in stored
    assert tokens["viewer"] not in stored


def test_every_form_post_needs_the_csrf_token(fresh_client: TestClient, user_ids: dict[str, int]) -> None:
    csrf = login(fresh_client, "admin")
    from esr.web.routers import account, auth, employees, imports, tailoring, users

    posts = [
        r.path for module in (account, auth, employees, imports, tailoring, users) for r in module.pages.routes
        if isinstance(r, APIRoute) and "POST" in (r.methods or set())
    ]
    assert {"/login", "/logout", "/users", "/account/tokens", "/account/password"} <= set(posts)
    for path in posts:
        url = path.replace("{user_id}", str(user_ids["viewer"])).replace("{grant_id}", "1").replace("{token_id}", "1")
        for data in ({}, {"csrf_token": "forged"}, {"csrf_token": ""}):
            response = fresh_client.post(url, data={**data, "username": "x", "password": "y" * 12})
            assert response.status_code == 403, (url, data)
    # the same form with the token goes through, and one from another site does not
    ok = fresh_client.post("/account/tokens", data={"csrf_token": csrf, "name": "ci"})
    assert ok.status_code == 200
    assert "esr_" in ok.text
    cross = fresh_client.post("/account/tokens", data={"csrf_token": csrf, "name": "ci"},
                              headers={"Origin": "https://evil.example"})
    assert cross.status_code == 403


def test_api_writes_with_the_session_cookie_need_the_csrf_header(fresh_client: TestClient) -> None:
    csrf = login(fresh_client, "viewer")
    assert fresh_client.post("/api/tokens", json={"name": "x"}).status_code == 403
    assert fresh_client.post("/api/tokens", json={"name": "x"}, headers={"X-CSRF-Token": "nope"}).status_code == 403
    assert fresh_client.post("/api/tokens", json={"name": "x"}, headers={"X-CSRF-Token": csrf}).status_code == 201


@pytest.mark.parametrize(
    "target", ["//evil.example/", "https://evil.example/", "/\\evil.example", "javascript:alert(1)"]
)
def test_login_never_redirects_off_site(page_client: TestClient, target: str) -> None:
    form = page_client.get("/login")
    response = page_client.post(
        "/login", data={"username": "viewer", "password": PASSWORD, "csrf_token": csrf_of(form.text), "next": target}
    )
    assert response.headers["location"] == "/"


def test_security_headers(page_client: TestClient, client: TestClient, tokens: dict[str, str]) -> None:
    for response in (page_client.get("/login"), client.get("/api/me", headers=bearer(tokens["viewer"])),
                     client.get("/nowhere")):
        headers = response.headers
        assert "default-src 'none'" in headers["content-security-policy"]
        assert "frame-ancestors 'none'" in headers["content-security-policy"]
        assert "script-src" not in headers["content-security-policy"]  # no scripts at all
        assert headers["x-frame-options"] == "DENY"
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["cache-control"] == "no-store"
        assert "server" not in headers or "uvicorn" not in headers["server"].lower()


def test_secure_cookies_use_the_host_prefix(shared_url: str) -> None:
    with make_client(shared_url, secure_cookies=True) as browser:
        form = browser.get("https://testserver/login")
        response = browser.post(
            "https://testserver/login",
            data={"username": "viewer", "password": PASSWORD, "csrf_token": csrf_of(form.text)},
        )
        assert response.status_code == 303, response.text
        cookie = next(h for h in response.headers.get_list("set-cookie") if h.startswith("__Host-esr_session="))
        assert "Secure" in cookie
        assert "max-age=31536000" in response.headers["strict-transport-security"]


def test_logs_carry_no_personal_data(client: TestClient, tokens: dict[str, str], page_client: TestClient,
                                     caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    client.get(f"/api/employees?q={SIAN_NI}", headers=bearer(tokens["imports"]))
    client.get("/api/employees?q=evans-price", headers=bearer(tokens["viewer"]))
    client.get("/api/employees/RX1/100001/history", headers=bearer(tokens["imports"]))
    login(page_client, "viewer")
    page_client.get("/employees?q=Siân")
    ours = [r for r in caplog.records if not r.name.startswith("httpx")]  # the test client logs its URLs
    logged = "\n".join(r.getMessage() for r in ours)
    assert "GET /api/employees/{vpd}/{person_id}/history 200" in logged
    for secret in (SIAN_NI, "evans", "Evans", "Siân", "100001", PASSWORD, tokens["viewer"]):
        assert secret not in logged, secret
