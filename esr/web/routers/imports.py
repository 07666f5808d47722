"""Imports: the files received per trust with status, counts and rejection reason, and the lines that were
quarantined, warned about or skipped. Needs IMPORTS_READ (the Imports/Exports role) in the file's trust;
files of unknown trusts are visible to holders of the role for every trust only."""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from starlette.responses import Response

from esr.web import queries
from esr.web.db import Database, Row
from esr.web.deps import DB, Forbidden, Settings, csrf_protect, requires_api, requires_page
from esr.web.models import ImportFileDetail, ImportFilePage, LineErrorPage
from esr.web.roles import Permission, Principal
from esr.web.templating import render

pages = APIRouter(dependencies=[Depends(csrf_protect)])
api = APIRouter(prefix="/api", tags=["imports"])

Reader = Annotated[Principal, requires_page(Permission.IMPORTS_READ)]
ApiReader = Annotated[Principal, requires_api(Permission.IMPORTS_READ)]
Sha = Annotated[str, Path(pattern=r"^[0-9a-f]{64}$", description="The file's SHA-256")]
After = Annotated[str | None, Query(max_length=1000)]
Limit = Annotated[int, Query(ge=1, le=500)]
Status = Annotated[str | None, Query(pattern="^(" + "|".join(queries.IMPORT_STATUSES) + ")$")]
LINES_PAGE = 50


def _files(
    db: Database, principal: Principal, vpd: str | None, status: str | None, limit: int, after: str | None
) -> Any:
    scope = principal.scope(Permission.IMPORTS_READ)
    if vpd is not None and not scope.allows(vpd):
        raise Forbidden("You may not see that trust's imports.")
    return queries.import_files(db, scope.sql_vpds(), vpd, status, limit, after)


def _file(db: Database, principal: Principal, sha256: str) -> Row:
    row = queries.import_file(db, sha256)
    scope = principal.scope(Permission.IMPORTS_READ)
    if row is None:
        raise HTTPException(404, "No such file.")
    if not scope.allows(row["vpd"]):
        # The same answer as for a file that does not exist: a digest is no secret worth confirming.
        raise HTTPException(404, "No such file.")
    return row


@pages.get("/imports")
def imports_page(
    request: Request,
    principal: Reader,
    db: DB,
    settings: Settings,
    vpd: Annotated[str, Query(max_length=3)] = "",
    status: Annotated[str, Query(max_length=20)] = "",
    after: After = None,
) -> Response:
    status_filter = status if status in queries.IMPORT_STATUSES else None
    page = _files(db, principal, vpd or None, status_filter, settings.page_size, after)
    return render(
        request,
        "imports/list.html",
        principal,
        "imports",
        page=page,
        vpd=vpd,
        status=status_filter or "",
        statuses=queries.IMPORT_STATUSES,
        trusts=queries.trust_vpds(db, principal.scope(Permission.IMPORTS_READ).sql_vpds()),
        after=after,
    )


@pages.get("/imports/{sha256}")
def import_page(request: Request, principal: Reader, db: DB, sha256: Sha, after: After = None) -> Response:
    row = _file(db, principal, sha256)
    lines = queries.line_errors(db, sha256, LINES_PAGE, after)
    return render(request, "imports/file.html", principal, "imports", file=row, lines=lines, after=after,
                  unmatched=queries.unmatched_vehicles(db, sha256))


@api.get("/imports", response_model=ImportFilePage, summary="Files received, newest first")
def imports_api(
    principal: ApiReader,
    db: DB,
    vpd: Annotated[str | None, Query(pattern=r"^[0-9A-Za-z]{3}$")] = None,
    status: Status = None,
    limit: Limit = 25,
    after: After = None,
) -> dict[str, Any]:
    page = _files(db, principal, vpd, status, limit, after)
    return {"items": page.items, "next_cursor": page.next_cursor}


@api.get("/imports/{sha256}", response_model=ImportFileDetail, summary="One file with its counts and outcome")
def import_api(principal: ApiReader, db: DB, sha256: Sha) -> dict[str, Any]:
    row = _file(db, principal, sha256)
    return {**row, "unmatched_vehicles": [dataclasses.asdict(v) for v in queries.unmatched_vehicles(db, sha256)]}


@api.get("/imports/{sha256}/lines", response_model=LineErrorPage, summary="Quarantined, warned and skipped lines")
def lines_api(
    principal: ApiReader, db: DB, sha256: Sha, limit: Limit = 100, after: After = None
) -> dict[str, Any]:
    _file(db, principal, sha256)
    page = queries.line_errors(db, sha256, limit, after)
    return {"items": page.items, "next_cursor": page.next_cursor}
