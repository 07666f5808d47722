"""Jinja2 templates (autoescaped) and the context every page gets."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.templating import Jinja2Templates
from starlette.responses import Response

from esr.web.roles import Permission, Principal
from esr.web.security import MASK

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=HERE / "templates")

SENSITIVE = ("ni_number", "date_of_birth")


def _date(value: object) -> str:
    if value is None or value == "":
        return ""
    if isinstance(value, dt.datetime):
        return value.strftime("%d %b %Y %H:%M")
    if isinstance(value, dt.date):
        return value.strftime("%d %b %Y")
    return str(value)


def _number(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, Decimal):
        if value == value.to_integral_value():
            return f"{int(value):,}"
        return f"{value.normalize():,f}"
    return str(value)


def _rate(value: object) -> str:
    """A rate in pounds per mile: £0.45 (more places only when there are more)."""
    if not isinstance(value, Decimal):
        return "" if value is None else f"£{value}"
    return f"£{value:.2f}" if value == value.quantize(Decimal("0.01")) else f"£{value.normalize()}"


def _engine(value: object) -> str:
    """An engine size as ESR sends it: cc, or litres when under 10 (as the mileage view reads it)."""
    if value is None or value == "":
        return ""
    if isinstance(value, Decimal | int | float) and 0 < value < 10:
        return f"{Decimal(str(value)).normalize()} litres"
    return f"{_number(value)} cc"


def _person_name(row: dict[str, Any], prefix: str = "") -> str:
    parts = [row.get(f"{prefix}title"), row.get(f"{prefix}first_name"), row.get(f"{prefix}last_name")]
    return " ".join(p for p in parts if p) or "(no name)"


def _json(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    import json

    return json.dumps(value, default=str, ensure_ascii=False)


templates.env.filters["d"] = _date
templates.env.filters["n"] = _number
templates.env.filters["rate"] = _rate
templates.env.filters["engine"] = _engine
templates.env.filters["json"] = _json
templates.env.globals["person_name"] = _person_name
templates.env.globals["MASK"] = MASK
templates.env.globals["Permission"] = Permission


def nav(principal: Principal | None) -> list[tuple[str, str, str]]:
    """(section, label, path) of the sections the principal may open."""
    if principal is None:
        return []
    items = [
        ("employees", "Employees", "/employees", Permission.EMPLOYEES_READ),
        ("imports", "Imports", "/imports", Permission.IMPORTS_READ),
        ("tailoring", "Tailoring", "/tailoring", Permission.TAILORING_READ),
        ("users", "User Management", "/users", Permission.USERS_MANAGE),
    ]
    return [(key, label, path) for key, label, path, permission in items if principal.can(permission)]


def render(
    request: Request,
    name: str,
    principal: Principal | None,
    section: str = "",
    status_code: int = 200,
    **context: Any,
) -> Response:
    context.update(
        principal=principal,
        nav=nav(principal),
        section=section,
        csrf_token=principal.csrf_token if principal else context.get("csrf_token"),
    )
    return templates.TemplateResponse(request, name, context, status_code=status_code)


def mask_person(row: dict[str, Any], principal: Principal) -> dict[str, Any]:
    """Hide the NI number and date of birth unless the principal may see them in this person's trust."""
    masked: list[str] = []
    if not principal.can(Permission.PERSONAL_IDENTIFIERS, row.get("vpd")):
        for key in SENSITIVE:
            if key in row:
                masked.append(key)
                row[key] = None
    row["masked"] = masked
    return row
