"""`esr web` (serve the web application) and `esr users` (create the first users, grant roles, issue tokens).

Registered in esr/cli.py. esr.cli is imported lazily here (it imports this module at its end)."""

from __future__ import annotations

import datetime as dt
import logging
from typing import TYPE_CHECKING

import click

from esr.web.roles import Role

if TYPE_CHECKING:
    from esr.config import Settings
    from esr.web.db import Database

_ROLE = click.Choice([r.value for r in Role])


def _url(settings: Settings) -> str:
    from esr.cli import _database_url

    return _database_url(settings)


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, envvar="ESR_WEB_HOST", help="Address to bind.")
@click.option("--port", type=click.IntRange(1, 65535), default=8000, show_default=True, envvar="ESR_WEB_PORT")
@click.option(
    "--secure-cookies/--no-secure-cookies",
    default=False,
    envvar="ESR_WEB_SECURE_COOKIES",
    help="Mark cookies Secure and send HSTS: on whenever the site is reached over HTTPS (e.g. behind a proxy).",
)
@click.option("--session-minutes", type=click.IntRange(1, 1440), default=30, show_default=True,
              help="Idle time after which a session ends.")
@click.option("--session-hours", type=click.IntRange(1, 72), default=8, show_default=True,
              help="Time after sign-in at which a session ends regardless.")
@click.option("--forwarded-allow-ips", default="127.0.0.1", show_default=True,
              help="Proxies whose X-Forwarded-* headers are trusted.")
@click.pass_obj
def web(
    settings: Settings, host: str, port: int, secure_cookies: bool, session_minutes: int, session_hours: int,
    forwarded_allow_ips: str,
) -> None:
    """Serve the web pages and the JSON API (OpenAPI at /openapi.json)."""
    import uvicorn

    from esr.web.app import create_app
    from esr.web.settings import WebSettings

    web_settings = WebSettings(
        database_url=_url(settings),
        secure_cookies=secure_cookies,
        session_idle=dt.timedelta(minutes=session_minutes),
        session_lifetime=dt.timedelta(hours=session_hours),
    )
    app = create_app(web_settings)
    click.echo(f"serving on http://{host}:{port}/  (API document: /openapi.json)")
    # No access log: request lines carry search text and person ids. The app logs route templates instead.
    logging.getLogger("uvicorn.access").disabled = True
    uvicorn.run(
        app, host=host, port=port, access_log=False, log_level="info", proxy_headers=True,
        forwarded_allow_ips=forwarded_allow_ips, server_header=False,
    )


@click.group()
def users() -> None:
    """Web users, their roles and API tokens."""


def _db(settings: Settings) -> Database:
    from esr.web.db import Database

    db = Database(_url(settings), min_size=1, max_size=1)
    db.open()
    return db


@users.command("add")
@click.option("--username", required=True)
@click.option("--role", "roles", type=_ROLE, multiple=True, required=True,
              help="user_admin | tailoring | imports | viewer; repeat for several.")
@click.option("--vpd", "vpds", multiple=True, help="Limit the roles to this trust; repeat for several. Default: all.")
@click.option("--display-name")
@click.password_option(envvar="ESR_WEB_PASSWORD", help="Prompted for when not given (or ESR_WEB_PASSWORD).")
@click.pass_obj
def users_add(
    settings: Settings, username: str, roles: tuple[str, ...], vpds: tuple[str, ...], display_name: str | None,
    password: str,
) -> None:
    """Create a user with roles, e.g. the first user manager: esr users add --username admin --role user_admin"""
    from esr.web import accounts

    grants = [(Role(r), v) for r in roles for v in (vpds or (None,))]
    db = _db(settings)
    try:
        accounts.create_user(db, username, password, display_name=display_name, grants=grants)
    except accounts.AccountError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        db.close()
    scope = ", ".join(vpds) if vpds else "all trusts"
    click.echo(f"user {username.strip().lower()} created: {', '.join(roles)} for {scope}")


@users.command("list")
@click.pass_obj
def users_list(settings: Settings) -> None:
    """Users and their roles."""
    from esr.web import accounts

    db = _db(settings)
    try:
        for row in accounts.users(db):
            grants = ", ".join(f"{g.role.value}:{g.vpd or '*'}" for g in row["grants"]) or "no roles"
            state = "" if row["active"] else "  (disabled)"
            click.echo(f"{row['username']}  {grants}{state}")
    finally:
        db.close()


@users.command("grant")
@click.option("--username", required=True)
@click.option("--role", type=_ROLE, required=True)
@click.option("--vpd", help="Limit to this trust (default: all trusts).")
@click.pass_obj
def users_grant(settings: Settings, username: str, role: str, vpd: str | None) -> None:
    """Grant a role to an existing user."""
    from esr.web import accounts

    db = _db(settings)
    try:
        user_id = accounts.user_id_by_name(db, username)
        if user_id is None:
            raise click.ClickException(f"no user {username!r}")
        accounts.add_grant(db, user_id, Role(role), vpd, None)
    except accounts.AccountError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        db.close()
    click.echo(f"granted {role} for {vpd or 'all trusts'} to {username}")


@users.command("token")
@click.option("--username", required=True)
@click.option("--name", required=True, help="What the token is for.")
@click.option("--days", type=click.IntRange(1, 366), default=90, show_default=True)
@click.pass_obj
def users_token(settings: Settings, username: str, name: str, days: int) -> None:
    """Issue an API token for a user (printed once; only its digest is stored)."""
    from esr.web import accounts

    db = _db(settings)
    try:
        user_id = accounts.user_id_by_name(db, username)
        if user_id is None:
            raise click.ClickException(f"no user {username!r}")
        _, token = accounts.create_token(db, user_id, name, days, None)
    except accounts.AccountError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        db.close()
    click.echo(token)
