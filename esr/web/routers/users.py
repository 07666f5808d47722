"""User Management: users, their roles and the trusts each role is limited to. Needs USERS_MANAGE.

A user manager limited to some trusts grants and revokes roles for those trusts only, never a role for every
trust, and may disable or reset the password of a user only when all that user's grants are within those
trusts (so a trust's manager cannot lock out a manager of all trusts). Nobody disables themselves.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, HTTPException, Path, Request
from fastapi.responses import RedirectResponse
from starlette.responses import Response

from esr.web import accounts, queries
from esr.web.db import Database, Row
from esr.web.deps import DB, Forbidden, csrf_protect, requires_api, requires_page
from esr.web.models import GrantCreate, GrantOut, UserCreate, UserOut, UserPatch
from esr.web.roles import Grant, Permission, Principal, Role, Scope
from esr.web.templating import render

pages = APIRouter(dependencies=[Depends(csrf_protect)])
api = APIRouter(prefix="/api", tags=["users"])

Manager = Annotated[Principal, requires_page(Permission.USERS_MANAGE)]
ApiManager = Annotated[Principal, requires_api(Permission.USERS_MANAGE)]
UserId = Annotated[int, Path(ge=1, le=2**62)]
GrantId = Annotated[int, Path(ge=1, le=2**62)]

MESSAGES = {
    "created": "User created.",
    "granted": "Role granted.",
    "revoked": "Role removed.",
    "enabled": "User enabled.",
    "disabled": "User disabled; their sessions have ended.",
    "password": "Password set; the user's sessions have ended.",
}


def _scope(principal: Principal) -> Scope:
    return principal.scope(Permission.USERS_MANAGE)


def _visible(principal: Principal, row: Row) -> Row:
    """The user as this manager sees them: grants outside the manager's trusts are counted, not listed."""
    scope = _scope(principal)
    grants: list[Grant] = row["grants"]
    row["grants"] = [g for g in grants if scope.all_trusts or (g.vpd is not None and scope.allows(g.vpd))]
    row["hidden_grants"] = len(grants) - len(row["grants"])
    return row


def _load(db: Database, user_id: int) -> Row:
    row = accounts.user(db, user_id)
    if row is None:
        raise HTTPException(404, "No such user.")
    return row


def _check_manageable(principal: Principal, row: Row) -> None:
    scope = _scope(principal)
    if not scope.all_trusts and any(g.vpd is None or not scope.allows(g.vpd) for g in row["grants"]):
        raise Forbidden("That user has roles outside your trusts.")


def _check_grantable(principal: Principal, vpd: str | None) -> str | None:
    try:
        code = accounts.normalise_vpd(vpd)
    except accounts.AccountError as exc:
        raise HTTPException(400, str(exc)) from None
    scope = _scope(principal)
    if code is None and not scope.all_trusts:
        raise Forbidden("You may grant roles for your own trusts only.")
    if code is not None and not scope.allows(code):
        raise Forbidden("You may grant roles for your own trusts only.")
    return code


def _create(db: Database, principal: Principal, username: str, password: str, display_name: str | None) -> int:
    try:
        return accounts.create_user(db, username, password, display_name=display_name, actor_id=principal.user_id)
    except accounts.AccountError as exc:
        raise HTTPException(409 if "taken" in str(exc) else 400, str(exc)) from None


def _grant(db: Database, principal: Principal, user_id: int, role: Role, vpd: str | None) -> None:
    _load(db, user_id)
    code = _check_grantable(principal, vpd)
    accounts.add_grant(db, user_id, role, code, principal.user_id)


def _revoke(db: Database, principal: Principal, user_id: int, grant_id: int) -> None:
    _load(db, user_id)
    found = accounts.grant(db, grant_id)
    if found is None:
        raise HTTPException(404, "No such grant.")
    scope = _scope(principal)
    if not scope.all_trusts and (found.vpd is None or not scope.allows(found.vpd)):
        raise Forbidden("That grant is outside your trusts.")
    if not accounts.remove_grant(db, user_id, grant_id, principal.user_id):
        raise HTTPException(404, "No such grant.")


def _set_active(db: Database, principal: Principal, user_id: int, active: bool) -> None:
    row = _load(db, user_id)
    _check_manageable(principal, row)
    if user_id == principal.user_id and not active:
        raise HTTPException(400, "You cannot disable yourself.")
    accounts.set_active(db, user_id, active, principal.user_id)


def _set_password(db: Database, principal: Principal, user_id: int, password: str) -> None:
    row = _load(db, user_id)
    _check_manageable(principal, row)
    try:
        accounts.set_password(db, user_id, password, principal.user_id)
    except accounts.AccountError as exc:
        raise HTTPException(400, str(exc)) from None


# -- pages ------------------------------------------------------------------------------------------


def _done(user_id: int | None, what: str) -> Response:
    return RedirectResponse(f"/users/{user_id}?done={what}" if user_id else f"/users?done={what}", status_code=303)


@pages.get("/users")
def users_page(request: Request, principal: Manager, db: DB, done: str = "") -> Response:
    rows = [_visible(principal, r) for r in accounts.users(db)]
    return render(
        request, "users/list.html", principal, "users", users=rows, roles=list(Role),
        message=MESSAGES.get(done), audit=accounts.recent_audit(db) if _scope(principal).all_trusts else [],
    )


@pages.post("/users")
def create_user_form(
    principal: Manager,
    db: DB,
    username: Annotated[str, Form(max_length=64)],
    password: Annotated[str, Form(max_length=256)],
    display_name: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    user_id = _create(db, principal, username, password, display_name.strip() or None)
    return _done(user_id, "created")


@pages.get("/users/{user_id}")
def user_page(request: Request, principal: Manager, db: DB, user_id: UserId, done: str = "") -> Response:
    row = _load(db, user_id)
    try:
        _check_manageable(principal, row)
        manageable = True
    except Forbidden:
        manageable = False
    scope = _scope(principal)
    return render(
        request, "users/user.html", principal, "users", user=_visible(principal, row), roles=list(Role),
        message=MESSAGES.get(done), manageable=manageable, all_trusts=scope.all_trusts,
        vpds=queries.trust_vpds(db, None) if scope.all_trusts else sorted(scope.vpds),
    )


@pages.post("/users/{user_id}/grants")
def grant_form(
    principal: Manager,
    db: DB,
    user_id: UserId,
    role: Annotated[Role, Form()],
    vpd: Annotated[str, Form(max_length=3)] = "",
) -> Response:
    _grant(db, principal, user_id, role, vpd or None)
    return _done(user_id, "granted")


@pages.post("/users/{user_id}/grants/{grant_id}/delete")
def revoke_form(principal: Manager, db: DB, user_id: UserId, grant_id: GrantId) -> Response:
    _revoke(db, principal, user_id, grant_id)
    return _done(user_id, "revoked")


@pages.post("/users/{user_id}/active")
def active_form(principal: Manager, db: DB, user_id: UserId, active: Annotated[bool, Form()]) -> Response:
    _set_active(db, principal, user_id, active)
    return _done(user_id, "enabled" if active else "disabled")


@pages.post("/users/{user_id}/password")
def password_form(
    principal: Manager, db: DB, user_id: UserId, password: Annotated[str, Form(max_length=256)]
) -> Response:
    _set_password(db, principal, user_id, password)
    return _done(user_id, "password")


# -- API --------------------------------------------------------------------------------------------


def _out(principal: Principal, row: Row) -> dict[str, Any]:
    visible = _visible(principal, row)
    visible["grants"] = [GrantOut(grant_id=g.grant_id, role=g.role, vpd=g.vpd) for g in visible["grants"]]
    return visible


@api.get("/users", response_model=list[UserOut], summary="Users and their roles")
def users_api(principal: ApiManager, db: DB) -> list[dict[str, Any]]:
    return [_out(principal, r) for r in accounts.users(db)]


@api.post("/users", response_model=UserOut, status_code=201, summary="Create a user (no roles yet)")
def create_user_api(principal: ApiManager, db: DB, body: UserCreate) -> dict[str, Any]:
    user_id = _create(db, principal, body.username, body.password, body.display_name)
    return _out(principal, _load(db, user_id))


@api.get("/users/{user_id}", response_model=UserOut, summary="A user and their roles")
def user_api(principal: ApiManager, db: DB, user_id: UserId) -> dict[str, Any]:
    return _out(principal, _load(db, user_id))


@api.patch("/users/{user_id}", response_model=UserOut, summary="Enable or disable a user, or set their password")
def patch_user_api(principal: ApiManager, db: DB, user_id: UserId, body: UserPatch) -> dict[str, Any]:
    if body.active is not None:
        _set_active(db, principal, user_id, body.active)
    if body.password is not None:
        _set_password(db, principal, user_id, body.password)
    return _out(principal, _load(db, user_id))


@api.post("/users/{user_id}/grants", response_model=UserOut, status_code=201, summary="Grant a role")
def grant_api(principal: ApiManager, db: DB, user_id: UserId, body: GrantCreate) -> dict[str, Any]:
    _grant(db, principal, user_id, body.role, body.vpd)
    return _out(principal, _load(db, user_id))


@api.delete("/users/{user_id}/grants/{grant_id}", status_code=204, summary="Remove a role")
def revoke_api(principal: ApiManager, db: DB, user_id: UserId, grant_id: GrantId) -> Response:
    _revoke(db, principal, user_id, grant_id)
    return Response(status_code=204)
