"""Employee search and the employee record: Work, Work & Home Addresses, Vehicles (ESR Details, NHS Mileage)
and change history. Needs EMPLOYEES_READ in the employee's trust; NI number and date of birth need
PERSONAL_IDENTIFIERS (see roles.py)."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from starlette.responses import Response

from esr.web import queries
from esr.web.db import Database, Row
from esr.web.deps import DB, Forbidden, Settings, csrf_protect, require, requires_api, requires_page
from esr.web.models import Addresses, Assignment, Employee, EmployeePage, HistoryPage, Vehicle
from esr.web.pagination import Page
from esr.web.roles import Permission, Principal, Scope
from esr.web.security import mask_sensitive, normalise_ni
from esr.web.templating import mask_person, render

pages = APIRouter(dependencies=[Depends(csrf_protect)])
api = APIRouter(prefix="/api", tags=["employees"])

Reader = Annotated[Principal, requires_page(Permission.EMPLOYEES_READ)]
ApiReader = Annotated[Principal, requires_api(Permission.EMPLOYEES_READ)]
Vpd = Annotated[str, Path(pattern=r"^[0-9A-Za-z]{3}$", description="The trust's VPD code")]
PersonId = Annotated[str, Path(min_length=1, max_length=30, pattern=r"^[0-9A-Za-z._-]+$")]
After = Annotated[str | None, Query(max_length=1000, description="Cursor from the previous page's next_cursor")]
Limit = Annotated[int, Query(ge=1, le=200)]
SEARCH = queries.MAX_SEARCH_LENGTH
HISTORY_PAGE = 20


# -- shared -----------------------------------------------------------------------------------------


def _search(
    db: Database,
    principal: Principal,
    *,
    text: str = "",
    name: str = "",
    employee_number: str = "",
    assignment_number: str = "",
    ni_number: str = "",
    vpd: str | None,
    limit: int,
    after: str | None,
) -> Page[Row]:
    """Searches within the trusts the principal may read. An NI number (given, or typed in the search box by
    someone allowed to search by it) limits the search to the trusts where they may see NI numbers."""
    scope: Scope = principal.scope(Permission.EMPLOYEES_READ)
    if ni_number:
        require(Permission.PERSONAL_IDENTIFIERS, principal)
    elif text and principal.can(Permission.PERSONAL_IDENTIFIERS) and normalise_ni(text):
        ni_number, text = text, ""
    if ni_number:
        scope = principal.scope(Permission.PERSONAL_IDENTIFIERS)
    if vpd is not None and not scope.allows(vpd):
        raise Forbidden("You may not search that trust.")
    criteria = queries.EmployeeSearch(
        text=text, name=name, employee_number=employee_number, assignment_number=assignment_number,
        ni_number=ni_number, vpd=vpd,
    )
    page = queries.search_employees(db, criteria, scope.sql_vpds(), limit, after)
    for row in page.items:
        mask_person(row, principal)
    return page


def _person(db: Database, principal: Principal, vpd: str, person_id: str) -> Row:
    # Checked before looking: a 403 for a trust outside the grant says nothing about who is in it.
    require(Permission.EMPLOYEES_READ, principal, vpd)
    row = queries.person(db, vpd, person_id)
    if row is None:
        raise HTTPException(404, "No such employee.")
    row["url"] = f"/employees/{quote(vpd, safe='')}/{quote(person_id, safe='')}"
    return mask_person(row, principal)


def _assignments(db: Database, vpd: str, person_id: str) -> list[Row]:
    rows = queries.assignments(db, vpd, person_id)
    for row in rows:
        manager = None
        if row["supervisor_person_id"]:
            name = " ".join(p for p in (row["manager_first_name"], row["manager_last_name"]) if p) or None
            manager = {
                "person_id": row["supervisor_person_id"],
                "employee_number": row["manager_employee_number"],
                "name": name,
            }
        row["line_manager"] = manager
    return rows


def _history(db: Database, principal: Principal, vpd: str, person_id: str, limit: int, after: str | None) -> Page[Row]:
    page = queries.change_history(db, vpd, person_id, limit, after)
    if not principal.can(Permission.PERSONAL_IDENTIFIERS, vpd):
        for row in page.items:
            row["changes"] = mask_sensitive(row["changes"])
    return page


def _change_rows(changes: Any) -> list[dict[str, Any]]:
    """A change event's `changes` as rows of field / old / new for display, whatever its exact shape."""
    if isinstance(changes, dict) and "changes" in changes:
        changes = changes["changes"]
    if isinstance(changes, list):
        out = []
        for item in changes:
            if isinstance(item, dict) and "field" in item:
                out.append({"field": item.get("field"), "old": item.get("old"), "new": item.get("new")})
            else:
                out.append({"field": "", "old": None, "new": item})
        return out
    if isinstance(changes, dict):
        before = changes.get("before") if isinstance(changes.get("before"), dict) else None
        after = changes.get("after") if isinstance(changes.get("after"), dict) else None
        if before is not None or after is not None:
            keys = sorted(set(before or {}) | set(after or {}))
            return [
                {"field": k, "old": (before or {}).get(k), "new": (after or {}).get(k)}
                for k in keys
                if (before or {}).get(k) != (after or {}).get(k)
            ]
        return [{"field": k, "old": None, "new": v} for k, v in changes.items()]
    return []


# -- pages ------------------------------------------------------------------------------------------


@pages.get("/employees")
def search_page(
    request: Request,
    principal: Reader,
    db: DB,
    settings: Settings,
    q: Annotated[str, Query(max_length=SEARCH)] = "",
    vpd: Annotated[str, Query(max_length=3)] = "",
    after: After = None,
) -> Response:
    page = _search(db, principal, text=q, vpd=vpd or None, limit=settings.page_size, after=after)
    return render(
        request,
        "employees/search.html",
        principal,
        "employees",
        q=q,
        vpd=vpd,
        page=page,
        trusts=queries.trust_vpds(db, principal.scope(Permission.EMPLOYEES_READ).sql_vpds()),
        ni_search=principal.can(Permission.PERSONAL_IDENTIFIERS),
        after=after,
    )


@pages.get("/employees/{vpd}/{person_id}")
def work_page(request: Request, principal: Reader, db: DB, vpd: Vpd, person_id: PersonId) -> Response:
    person = _person(db, principal, vpd, person_id)
    rows = _assignments(db, vpd, person_id)
    return render(request, "employees/work.html", principal, "employees", person=person, tab="work", assignments=rows)


@pages.get("/employees/{vpd}/{person_id}/addresses")
def addresses_page(request: Request, principal: Reader, db: DB, vpd: Vpd, person_id: PersonId) -> Response:
    person = _person(db, principal, vpd, person_id)
    return render(
        request,
        "employees/addresses.html",
        principal,
        "employees",
        person=person,
        tab="addresses",
        home=queries.home_addresses(db, vpd, person_id),
        work=queries.work_addresses(db, vpd, person_id),
        phones=queries.phones(db, vpd, person_id),
    )


@pages.get("/employees/{vpd}/{person_id}/vehicles")
def vehicles_page(request: Request, principal: Reader, db: DB, vpd: Vpd, person_id: PersonId) -> Response:
    person = _person(db, principal, vpd, person_id)
    return render(
        request, "employees/vehicles.html", principal, "employees", person=person, tab="vehicles", subtab="esr",
        vehicles=queries.vehicles(db, vpd, person_id),
    )


@pages.get("/employees/{vpd}/{person_id}/vehicles/mileage")
def mileage_page(request: Request, principal: Reader, db: DB, vpd: Vpd, person_id: PersonId) -> Response:
    person = _person(db, principal, vpd, person_id)
    return render(
        request, "employees/mileage.html", principal, "employees", person=person, tab="vehicles", subtab="mileage",
        vehicles=queries.vehicles(db, vpd, person_id),
    )


@pages.get("/employees/{vpd}/{person_id}/history")
def history_page(
    request: Request, principal: Reader, db: DB, vpd: Vpd, person_id: PersonId, after: After = None
) -> Response:
    person = _person(db, principal, vpd, person_id)
    page = _history(db, principal, vpd, person_id, HISTORY_PAGE, after)
    for row in page.items:
        row["rows"] = _change_rows(row["changes"])
    return render(
        request, "employees/history.html", principal, "employees", person=person, tab="history", page=page,
        after=after,
    )


# -- API --------------------------------------------------------------------------------------------


@api.get("/employees", response_model=EmployeePage, summary="Search employees (keyset pagination)")
def search_api(
    principal: ApiReader,
    db: DB,
    q: Annotated[str, Query(max_length=SEARCH, description="Name words, an employee/assignment number prefix, "
                            "or (roles allowing) an NI number")] = "",
    name: Annotated[str, Query(max_length=SEARCH)] = "",
    employee_number: Annotated[str, Query(max_length=30)] = "",
    assignment_number: Annotated[str, Query(max_length=30)] = "",
    ni_number: Annotated[str, Query(max_length=20, description="Needs the Imports/Exports role")] = "",
    vpd: Annotated[str | None, Query(pattern=r"^[0-9A-Za-z]{3}$")] = None,
    limit: Limit = 25,
    after: After = None,
) -> dict[str, Any]:
    page = _search(
        db, principal, text=q, name=name, employee_number=employee_number, assignment_number=assignment_number,
        ni_number=ni_number, vpd=vpd, limit=limit, after=after,
    )
    return {"items": page.items, "next_cursor": page.next_cursor}


@api.get("/employees/{vpd}/{person_id}", response_model=Employee, summary="An employee's personal details")
def employee_api(principal: ApiReader, db: DB, vpd: Vpd, person_id: PersonId) -> Row:
    return _person(db, principal, vpd, person_id)


@api.get(
    "/employees/{vpd}/{person_id}/assignments",
    response_model=list[Assignment],
    summary="Employee Details › Work: every assignment with position, grade, organisation, line manager, costing",
)
def assignments_api(principal: ApiReader, db: DB, vpd: Vpd, person_id: PersonId) -> list[Row]:
    _person(db, principal, vpd, person_id)
    return _assignments(db, vpd, person_id)


@api.get(
    "/employees/{vpd}/{person_id}/addresses",
    response_model=Addresses,
    summary="Work & Home Addresses (and phone numbers)",
)
def addresses_api(principal: ApiReader, db: DB, vpd: Vpd, person_id: PersonId) -> dict[str, Any]:
    _person(db, principal, vpd, person_id)
    return {
        "home": queries.home_addresses(db, vpd, person_id),
        "work": queries.work_addresses(db, vpd, person_id),
        "phones": queries.phones(db, vpd, person_id),
    }


@api.get(
    "/employees/{vpd}/{person_id}/vehicles",
    response_model=list[Vehicle],
    summary="Vehicles › ESR Details, each with its NHS Mileage categories",
)
def vehicles_api(principal: ApiReader, db: DB, vpd: Vpd, person_id: PersonId) -> list[Row]:
    _person(db, principal, vpd, person_id)
    return queries.vehicles(db, vpd, person_id)


@api.get("/employees/{vpd}/{person_id}/history", response_model=HistoryPage, summary="Change events, newest first")
def history_api(
    principal: ApiReader, db: DB, vpd: Vpd, person_id: PersonId, limit: Limit = 50, after: After = None
) -> dict[str, Any]:
    _person(db, principal, vpd, person_id)
    page = _history(db, principal, vpd, person_id, limit, after)
    return {"items": page.items, "next_cursor": page.next_cursor}
