"""The signed-in user's own account: password and API tokens. Any signed-in user, whatever their roles; a token
carries exactly its owner's roles."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, HTTPException, Path, Request
from fastapi.responses import RedirectResponse
from starlette.responses import Response

from esr.web import accounts, security
from esr.web.db import Row
from esr.web.deps import DB, ApiPrincipal, PagePrincipal, Settings, csrf_protect
from esr.web.models import TokenCreate, TokenCreated, TokenOut
from esr.web.templating import render

pages = APIRouter(dependencies=[Depends(csrf_protect)])
api = APIRouter(prefix="/api", tags=["account"])
TokenId = Annotated[int, Path(ge=1, le=2**62)]

MESSAGES = {"revoked": "Token revoked.", "password": "Password changed."}


@pages.get("/account")
def account_page(request: Request, principal: PagePrincipal, db: DB, done: str = "") -> Response:
    return render(
        request, "account.html", principal, "account", tokens=accounts.tokens(db, principal.user_id),
        message=MESSAGES.get(done),
    )


@pages.post("/account/password")
def password_form(
    request: Request,
    principal: PagePrincipal,
    db: DB,
    settings: Settings,
    current: Annotated[str, Form(max_length=256)],
    password: Annotated[str, Form(max_length=256)],
) -> Response:
    row = db.one("SELECT password_hash FROM esr.web_user WHERE user_id = %s", (principal.user_id,))
    error = None
    if row is None or not security.verify_password(row["password_hash"], current):
        error = "The current password is wrong."
    else:
        error = security.password_problem(password)
    if error:
        return render(
            request, "account.html", principal, "account", tokens=accounts.tokens(db, principal.user_id),
            error=error, status_code=400,
        )
    accounts.set_password(db, principal.user_id, password, principal.user_id)
    # Every session ended with the change, this one too: start a fresh one.
    session = accounts.start_session(db, principal.user_id, settings.session_lifetime)
    response = RedirectResponse("/account?done=password", status_code=303)
    response.set_cookie(
        settings.session_cookie, session.secret, httponly=True, samesite="lax", secure=settings.secure_cookies,
        path="/", max_age=int(settings.session_lifetime.total_seconds()),
    )
    return response


@pages.post("/account/tokens")
def token_form(
    request: Request,
    principal: PagePrincipal,
    db: DB,
    name: Annotated[str, Form(max_length=100)],
    days: Annotated[int, Form(ge=1, le=accounts.MAX_TOKEN_DAYS)] = 90,
) -> Response:
    try:
        _, token = accounts.create_token(db, principal.user_id, name, days, principal.user_id)
    except accounts.AccountError as exc:
        raise HTTPException(400, str(exc)) from None
    # Shown once, in this response only.
    return render(
        request, "account.html", principal, "account", tokens=accounts.tokens(db, principal.user_id), new_token=token
    )


@pages.post("/account/tokens/{token_id}/revoke")
def revoke_form(principal: PagePrincipal, db: DB, token_id: TokenId) -> Response:
    if not accounts.revoke_token(db, principal.user_id, token_id, principal.user_id):
        raise HTTPException(404, "No such token.")
    return RedirectResponse("/account?done=revoked", status_code=303)


@api.get("/tokens", response_model=list[TokenOut], summary="The caller's API tokens")
def tokens_api(principal: ApiPrincipal, db: DB) -> list[Row]:
    return accounts.tokens(db, principal.user_id)


@api.post("/tokens", response_model=TokenCreated, status_code=201, summary="Create an API token for the caller")
def create_token_api(principal: ApiPrincipal, db: DB, body: TokenCreate) -> dict[str, Any]:
    try:
        token_id, token = accounts.create_token(db, principal.user_id, body.name, body.days, principal.user_id)
    except accounts.AccountError as exc:
        raise HTTPException(400, str(exc)) from None
    return {"token_id": token_id, "token": token}


@api.delete("/tokens/{token_id}", status_code=204, summary="Revoke one of the caller's tokens")
def revoke_token_api(principal: ApiPrincipal, db: DB, token_id: TokenId) -> Response:
    if not accounts.revoke_token(db, principal.user_id, token_id, principal.user_id):
        raise HTTPException(404, "No such token.")
    return Response(status_code=204)
