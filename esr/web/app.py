"""The application factory: routers, security headers, error pages, and a request log without personal data."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from urllib.parse import quote

import psycopg
from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler, request_validation_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from esr.web.db import Database
from esr.web.deps import LoginRequired, optional_page_principal
from esr.web.pagination import BadCursor
from esr.web.settings import WebSettings
from esr.web.templating import HERE, render

log = logging.getLogger("esr.web")

# No scripts at all; styles and images only from this site; no framing; forms post only here.
CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self' data:; font-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=()",
}


def _is_api(request: Request) -> bool:
    return request.url.path.startswith("/api/") or request.url.path == "/api"


def create_app(settings: WebSettings, db: Database | None = None) -> FastAPI:
    database = db or Database(
        settings.database_url,
        min_size=settings.pool_min_size,
        max_size=settings.pool_max_size,
        timezone=settings.timezone,
    )

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        database.open()
        try:
            yield
        finally:
            database.close()

    app = FastAPI(
        title="ESR Outbound — employee records API",
        version="1",
        description=(
            "The data imported from NHS ESR Outbound Interface v2 files: employee records, import logs, trust "
            "profiles and users. Authenticate with `Authorization: Bearer <token>` (create a token on the "
            "Account page or with `esr users token`). Every endpoint checks the caller's roles and trusts."
        ),
        docs_url=None,
        redoc_url=None,
        openapi_url="/openapi.json",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.db = database
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")

    from esr.web.routers import account, auth, employees, imports, tailoring, users

    for module in (auth, employees, imports, tailoring, users, account):
        app.include_router(module.pages, include_in_schema=False)
        app.include_router(module.api)

    @app.middleware("http")
    async def security_headers(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        started = time.perf_counter()
        response = await call_next(request)
        for name, value in _HEADERS.items():
            response.headers.setdefault(name, value)
        if not request.url.path.startswith("/static/"):
            response.headers["Cache-Control"] = "no-store"
        if settings.secure_cookies:
            response.headers["Strict-Transport-Security"] = "max-age=31536000; includeSubDomains"
        # The route's template, never the path or query: those carry VPDs, person ids and search text.
        route = getattr(request.scope.get("route"), "path", None)
        if route is None:
            path = request.url.path
            route = "/static/*" if path.startswith("/static/") else path if path == "/openapi.json" else "-"
        log.info(
            "%s %s %d %.1f ms",
            request.method,
            route,
            response.status_code,
            (time.perf_counter() - started) * 1000,
        )
        return response

    @app.exception_handler(LoginRequired)
    async def login_required(request: Request, _exc: LoginRequired) -> Response:
        target = request.url.path
        if request.url.query:
            target += "?" + request.url.query
        return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if _is_api(request):
            return await http_exception_handler(request, exc)
        return _error_page(request, exc.status_code, str(exc.detail))

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> Response:
        if _is_api(request):
            return await request_validation_exception_handler(request, exc)
        return _error_page(request, 400, "The request was not valid (a value is missing, malformed or too long).")

    @app.exception_handler(BadCursor)
    async def bad_cursor(request: Request, _exc: BadCursor) -> Response:
        if _is_api(request):
            return await http_exception_handler(request, StarletteHTTPException(400, "Malformed cursor."))
        return _error_page(request, 400, "That page link is not valid.")

    @app.exception_handler(psycopg.DataError)
    async def bad_data(request: Request, _exc: psycopg.DataError) -> Response:
        # e.g. a NUL byte, which PostgreSQL text cannot hold: the input is refused, not a server error.
        if _is_api(request):
            return await http_exception_handler(request, StarletteHTTPException(400, "Invalid characters in input."))
        return _error_page(request, 400, "The request contained characters that cannot be used.")

    return app


_TITLES = {400: "Bad request", 401: "Sign in required", 403: "Not allowed", 404: "Not found", 405: "Not allowed"}


def _error_page(request: Request, status: int, detail: str) -> Response:
    try:
        principal = optional_page_principal(request)
    except Exception:  # the database may be the reason for the error
        principal = None
    return render(
        request,
        "error.html",
        principal,
        status_code=status,
        title=_TITLES.get(status, "Error"),
        status=status,
        detail=detail,
    )
