"""Login, logout, the home redirect, and /api/me."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse
from starlette.responses import Response

from esr.web import accounts, security
from esr.web.deps import DB, ApiPrincipal, PagePrincipal, Settings, csrf_protect, optional_page_principal
from esr.web.models import GrantOut, Me
from esr.web.roles import Permission, Principal
from esr.web.templating import nav, render

pages = APIRouter(dependencies=[Depends(csrf_protect)])
api = APIRouter(prefix="/api", tags=["account"])


def _safe_next(target: str | None) -> str:
    """Only a path on this site: no scheme, no host, no `//` or backslash tricks (open-redirect guard)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target or len(target) > 2000:
        return "/"
    return target


@pages.get("/")
def home(principal: PagePrincipal, request: Request) -> Response:
    sections = nav(principal)
    if sections:
        return RedirectResponse(sections[0][2], status_code=303)
    return render(request, "no_roles.html", principal)


@pages.get("/login")
def login_form(
    request: Request, settings: Settings, principal: Annotated[Principal | None, Depends(optional_page_principal)],
    next: str = "/",
) -> Response:
    if principal is not None:
        return RedirectResponse(_safe_next(next), status_code=303)
    return _login_page(request, settings, _safe_next(next))


def _login_page(request: Request, settings: Settings, target: str, error: str | None = None) -> Response:
    csrf = security.new_secret()
    response = render(
        request, "login.html", None, csrf_token=csrf, next=target, error=error, status_code=401 if error else 200
    )
    response.set_cookie(
        settings.login_csrf_cookie, csrf, httponly=True, samesite="strict", secure=settings.secure_cookies, path="/"
    )
    return response


@pages.post("/login")
def login(
    request: Request,
    db: DB,
    settings: Settings,
    username: Annotated[str, Form(max_length=200)],
    password: Annotated[str, Form(max_length=1000)],
    next: Annotated[str, Form(max_length=2000)] = "/",
) -> Response:
    user_id = accounts.authenticate(db, username, password, settings.max_failed_logins, settings.lockout)
    if user_id is None:
        return _login_page(request, settings, _safe_next(next), "Wrong username or password, or the account is locked.")
    session = accounts.start_session(db, user_id, settings.session_lifetime)
    response = RedirectResponse(_safe_next(next), status_code=303)
    response.set_cookie(
        settings.session_cookie,
        session.secret,
        httponly=True,
        samesite="lax",
        secure=settings.secure_cookies,
        path="/",
        max_age=int(settings.session_lifetime.total_seconds()),
    )
    response.delete_cookie(settings.login_csrf_cookie, path="/")
    return response


@pages.post("/logout")
def logout(principal: PagePrincipal, db: DB, settings: Settings) -> Response:
    if principal.session_hash:
        accounts.end_session(db, principal.session_hash)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(settings.session_cookie, path="/")
    return response


def me_of(principal: Principal) -> Me:
    permissions: dict[str, object] = {}
    for permission in Permission:
        scope = principal.scope(permission)
        if scope:
            permissions[permission.value] = "all" if scope.all_trusts else sorted(scope.vpds)
    return Me(
        user_id=principal.user_id,
        username=principal.username,
        display_name=principal.display_name,
        via=principal.via,
        grants=[GrantOut(grant_id=g.grant_id, role=g.role, vpd=g.vpd) for g in principal.grants],
        permissions=permissions,
    )


@api.get("/me", response_model=Me, summary="Who the caller is, with roles and the trusts each permission covers")
def me(principal: ApiPrincipal) -> Me:
    return me_of(principal)
