"""Tailoring: trust profiles and their NHS mileage tables. Read-only until trust profiles and mapping
templates land (DESIGN.md §6); needs TAILORING_READ (the Tailoring role) in the trust."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Request
from starlette.responses import Response

from esr.web import queries
from esr.web.db import Database, Row
from esr.web.deps import DB, csrf_protect, require, requires_api, requires_page
from esr.web.models import Trust, TrustDetail
from esr.web.roles import Permission, Principal
from esr.web.templating import render

pages = APIRouter(dependencies=[Depends(csrf_protect)])
api = APIRouter(prefix="/api", tags=["tailoring"])

Reader = Annotated[Principal, requires_page(Permission.TAILORING_READ)]
ApiReader = Annotated[Principal, requires_api(Permission.TAILORING_READ)]
Vpd = Annotated[str, Path(pattern=r"^[0-9A-Za-z]{3}$")]


def _trust(db: Database, principal: Principal, vpd: str) -> dict[str, Any]:
    require(Permission.TAILORING_READ, principal, vpd)
    row = queries.trust(db, vpd)
    if row is None:
        raise HTTPException(404, "No such trust.")
    row["mileage_categories"] = queries.mileage_categories(db, vpd)
    return row


@pages.get("/tailoring")
def trusts_page(request: Request, principal: Reader, db: DB) -> Response:
    rows = queries.trusts(db, principal.scope(Permission.TAILORING_READ).sql_vpds())
    return render(request, "tailoring/trusts.html", principal, "tailoring", trusts=rows)


@pages.get("/tailoring/{vpd}")
def trust_page(request: Request, principal: Reader, db: DB, vpd: Vpd) -> Response:
    return render(request, "tailoring/trust.html", principal, "tailoring", trust=_trust(db, principal, vpd))


@api.get("/trusts", response_model=list[Trust], summary="Trust profiles")
def trusts_api(principal: ApiReader, db: DB) -> list[Row]:
    return queries.trusts(db, principal.scope(Permission.TAILORING_READ).sql_vpds())


@api.get("/trusts/{vpd}", response_model=TrustDetail, summary="A trust profile with its NHS mileage table")
def trust_api(principal: ApiReader, db: DB, vpd: Vpd) -> dict[str, Any]:
    return _trust(db, principal, vpd)
