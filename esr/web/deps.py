"""Who is asking, and may they: authentication and access checks shared by every page and endpoint.

Pages authenticate with the session cookie; the API with a Bearer token, or the session cookie (then every
unsafe method must carry the session's CSRF token in X-CSRF-Token). Page routers check CSRF on every POST
through a router-level dependency (`csrf_protect`), so no form can be added without it.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request

from esr.web import accounts, security
from esr.web.db import Database
from esr.web.roles import Permission, Principal
from esr.web.settings import WebSettings

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class LoginRequired(Exception):
    """Raised by page dependencies; answered with a redirect to the login page."""


class Forbidden(HTTPException):
    def __init__(self, detail: str = "Your roles do not allow this.") -> None:
        super().__init__(status_code=403, detail=detail)


def get_db(request: Request) -> Database:
    db: Database = request.app.state.db
    return db


def get_settings(request: Request) -> WebSettings:
    settings: WebSettings = request.app.state.settings
    return settings


def _session_principal(request: Request) -> Principal | None:
    if not hasattr(request.state, "session_principal"):
        settings = get_settings(request)
        secret = request.cookies.get(settings.session_cookie)
        found = accounts.session_principal(get_db(request), secret, settings.session_idle) if secret else None
        request.state.session_principal = found
    principal: Principal | None = request.state.session_principal
    return principal


def page_principal(request: Request) -> Principal:
    principal = _session_principal(request)
    if principal is None:
        raise LoginRequired
    request.state.principal = principal
    return principal


def optional_page_principal(request: Request) -> Principal | None:
    return _session_principal(request)


def api_principal(request: Request) -> Principal:
    header = request.headers.get("authorization")
    if header is not None:
        scheme, _, token = header.partition(" ")
        principal = (
            accounts.token_principal(get_db(request), token.strip()) if scheme.lower() == "bearer" else None
        )
        if principal is None:
            raise HTTPException(
                401, "Invalid or expired token.", headers={"WWW-Authenticate": 'Bearer error="invalid_token"'}
            )
    else:
        principal = _session_principal(request)
        if principal is None:
            raise HTTPException(401, "Authentication required.", headers={"WWW-Authenticate": "Bearer"})
        if request.method not in SAFE_METHODS and not security.same(
            request.headers.get("x-csrf-token"), principal.csrf_token
        ):
            raise Forbidden("A request authenticated by the session cookie needs the X-CSRF-Token header.")
    request.state.principal = principal
    return principal


async def csrf_protect(request: Request) -> None:
    """Every unsafe request to a page route carries the CSRF token: the session's once logged in, the
    double-submit login cookie before. Cross-origin form posts are refused outright."""
    if request.method in SAFE_METHODS:
        return
    origin = request.headers.get("origin")
    if origin is not None and origin != f"{request.url.scheme}://{request.url.netloc}":
        raise Forbidden("Cross-origin form submission refused.")
    form = await request.form()
    submitted = form.get("csrf_token")
    token = submitted if isinstance(submitted, str) else None
    principal = _session_principal(request)
    if principal is not None:
        expected = principal.csrf_token
    else:
        expected = request.cookies.get(get_settings(request).login_csrf_cookie)
    if not security.same(token, expected):
        raise Forbidden("The form has expired or did not come from this site. Reload the page and try again.")


def require(permission: Permission, principal: Principal, vpd: str | None = None) -> None:
    """403 unless the principal has the permission (in that trust, when given)."""
    if not principal.can(permission, vpd):
        raise Forbidden()


def requires_page(permission: Permission) -> object:
    def dependency(principal: Annotated[Principal, Depends(page_principal)]) -> Principal:
        require(permission, principal)
        return principal

    return Depends(dependency)


def requires_api(permission: Permission) -> object:
    def dependency(principal: Annotated[Principal, Depends(api_principal)]) -> Principal:
        require(permission, principal)
        return principal

    return Depends(dependency)


DB = Annotated[Database, Depends(get_db)]
Settings = Annotated[WebSettings, Depends(get_settings)]
PagePrincipal = Annotated[Principal, Depends(page_principal)]
ApiPrincipal = Annotated[Principal, Depends(api_principal)]
