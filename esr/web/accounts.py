"""Users, role grants, login sessions and API tokens (tables esr.web_* of migration 0004)."""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from esr.web import security
from esr.web.db import Database, Row
from esr.web.roles import Grant, Principal, Role

log = logging.getLogger(__name__)

USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{2,63}$")
VPD = re.compile(r"^[0-9A-Z]{3}$")
MAX_TOKEN_DAYS = 366


class AccountError(ValueError):
    """A request that cannot be carried out, with a message fit to show the user."""


def normalise_username(username: str) -> str:
    name = username.strip().lower()
    if not USERNAME.match(name):
        raise AccountError("Usernames are 3-64 characters: letters, digits, '.', '_' or '-'.")
    return name


def normalise_vpd(vpd: str | None) -> str | None:
    if vpd is None or vpd.strip() == "":
        return None
    code = vpd.strip().upper()
    if not VPD.match(code):
        raise AccountError("A trust VPD is 3 letters or digits.")
    return code


def audit(
    conn: psycopg.Connection[Any], actor_id: int | None, action: str, target_user_id: int | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    conn.execute(
        "INSERT INTO esr.web_audit (actor_id, action, target_user_id, detail) VALUES (%s, %s, %s, %s)",
        (actor_id, action, target_user_id, Jsonb(detail) if detail is not None else None),
    )


# -- users and grants -------------------------------------------------------------------------------


def create_user(
    db: Database,
    username: str,
    password: str,
    *,
    display_name: str | None = None,
    grants: Sequence[tuple[Role, str | None]] = (),
    actor_id: int | None = None,
) -> int:
    name = normalise_username(username)
    problem = security.password_problem(password)
    if problem:
        raise AccountError(problem)
    if display_name is not None and len(display_name) > 200:
        raise AccountError("Display names are at most 200 characters.")
    with db.connection() as conn:
        try:
            row = conn.execute(
                "INSERT INTO esr.web_user (username, display_name, password_hash, created_by)"
                " VALUES (%s, %s, %s, %s) RETURNING user_id",
                (name, display_name or None, security.hash_password(password), actor_id),
            ).fetchone()
        except psycopg.errors.UniqueViolation:
            raise AccountError(f"The username {name!r} is taken.") from None
        assert row is not None
        user_id = int(row["user_id"])
        audit(conn, actor_id, "user.create", user_id)
        for role, vpd in grants:
            _insert_grant(conn, user_id, role, vpd, actor_id)
    return user_id


def _insert_grant(
    conn: psycopg.Connection[Any], user_id: int, role: Role, vpd: str | None, actor_id: int | None
) -> None:
    code = normalise_vpd(vpd)
    conn.execute(
        "INSERT INTO esr.web_role_grant (user_id, role, vpd, granted_by) VALUES (%s, %s, %s, %s)"
        " ON CONFLICT DO NOTHING",
        (user_id, role.value, code, actor_id),
    )
    audit(conn, actor_id, "grant.add", user_id, {"role": role.value, "vpd": code})


def add_grant(db: Database, user_id: int, role: Role, vpd: str | None, actor_id: int | None) -> None:
    with db.connection() as conn:
        _insert_grant(conn, user_id, role, vpd, actor_id)


def remove_grant(db: Database, user_id: int, grant_id: int, actor_id: int | None) -> bool:
    with db.connection() as conn:
        row = conn.execute(
            "DELETE FROM esr.web_role_grant WHERE grant_id = %s AND user_id = %s RETURNING role, vpd",
            (grant_id, user_id),
        ).fetchone()
        if row is None:
            return False
        audit(conn, actor_id, "grant.remove", user_id, {"role": row["role"], "vpd": row["vpd"]})
    return True


def grant(db: Database, grant_id: int) -> Grant | None:
    row = db.one("SELECT grant_id, role, vpd FROM esr.web_role_grant WHERE grant_id = %s", (grant_id,))
    return Grant(row["grant_id"], Role(row["role"]), row["vpd"]) if row else None


def grants_of(db: Database, user_id: int) -> tuple[Grant, ...]:
    rows = db.all(
        "SELECT grant_id, role, vpd FROM esr.web_role_grant WHERE user_id = %s ORDER BY role, vpd NULLS FIRST",
        (user_id,),
    )
    return tuple(Grant(r["grant_id"], Role(r["role"]), r["vpd"]) for r in rows)


def users(db: Database) -> list[Row]:
    rows = db.all(
        """
        SELECT u.user_id, u.username, u.display_name, u.active, u.locked_until, u.last_login_at, u.created_at,
               coalesce(json_agg(json_build_object('grant_id', g.grant_id, 'role', g.role, 'vpd', g.vpd)
                                 ORDER BY g.role, g.vpd NULLS FIRST)
                        FILTER (WHERE g.grant_id IS NOT NULL), '[]') AS grants
        FROM esr.web_user u LEFT JOIN esr.web_role_grant g ON g.user_id = u.user_id
        GROUP BY u.user_id ORDER BY u.username
        """
    )
    for row in rows:
        row["grants"] = [Grant(g["grant_id"], Role(g["role"]), g["vpd"]) for g in row["grants"]]
    return rows


def user(db: Database, user_id: int) -> Row | None:
    row = db.one(
        "SELECT user_id, username, display_name, active, locked_until, last_login_at, created_at"
        " FROM esr.web_user WHERE user_id = %s",
        (user_id,),
    )
    if row is not None:
        row["grants"] = list(grants_of(db, user_id))
    return row


def user_id_by_name(db: Database, username: str) -> int | None:
    row = db.one("SELECT user_id FROM esr.web_user WHERE username = %s", (username.strip().lower(),))
    return int(row["user_id"]) if row else None


def set_active(db: Database, user_id: int, active: bool, actor_id: int | None) -> None:
    with db.connection() as conn:
        conn.execute(
            "UPDATE esr.web_user SET active = %s, failed_logins = 0, locked_until = NULL WHERE user_id = %s",
            (active, user_id),
        )
        if not active:
            conn.execute("DELETE FROM esr.web_session WHERE user_id = %s", (user_id,))
        audit(conn, actor_id, "user.enable" if active else "user.disable", user_id)


def set_password(db: Database, user_id: int, password: str, actor_id: int | None) -> None:
    """Sets a password and ends the user's sessions (the caller starts a new one if it is their own)."""
    problem = security.password_problem(password)
    if problem:
        raise AccountError(problem)
    with db.connection() as conn:
        conn.execute(
            "UPDATE esr.web_user SET password_hash = %s, password_changed_at = now(), failed_logins = 0,"
            " locked_until = NULL WHERE user_id = %s",
            (security.hash_password(password), user_id),
        )
        conn.execute("DELETE FROM esr.web_session WHERE user_id = %s", (user_id,))
        audit(conn, actor_id, "user.password", user_id)


def recent_audit(db: Database, limit: int = 20) -> list[Row]:
    return db.all(
        """
        SELECT a.at, a.action, actor.username AS actor, target.username AS target, a.detail
        FROM esr.web_audit a
        LEFT JOIN esr.web_user actor ON actor.user_id = a.actor_id
        LEFT JOIN esr.web_user target ON target.user_id = a.target_user_id
        ORDER BY a.at DESC, a.audit_id DESC LIMIT %s
        """,
        (limit,),
    )


# -- login and sessions -----------------------------------------------------------------------------


@dataclass(frozen=True)
class NewSession:
    secret: str
    csrf_token: str
    expires_at: dt.datetime


def authenticate(
    db: Database, username: str, password: str, max_failures: int, lockout: dt.timedelta
) -> int | None:
    """The user id when the password is right and the account active and not locked; None otherwise.

    Every failure costs one Argon2 verification, so timing does not tell which check failed.
    """
    name = username.strip().lower()
    with db.connection() as conn:
        row = conn.execute(
            "SELECT user_id, password_hash, active, locked_until > now() AS locked FROM esr.web_user"
            " WHERE username = %s FOR UPDATE",
            (name,),
        ).fetchone()
        ok = security.verify_password(row["password_hash"] if row else None, password[: security.MAX_PASSWORD_LENGTH])
        if row is None:
            audit(conn, None, "login.unknown_user")
            return None
        user_id = int(row["user_id"])
        if not ok or not row["active"] or row["locked"]:
            if not ok:
                conn.execute(
                    "UPDATE esr.web_user SET failed_logins = failed_logins + 1,"
                    " locked_until = CASE WHEN failed_logins + 1 >= %s THEN now() + %s ELSE locked_until END"
                    " WHERE user_id = %s",
                    (max_failures, lockout, user_id),
                )
            reason = "bad_password" if not ok else ("inactive" if not row["active"] else "locked")
            audit(conn, user_id, "login.failed", user_id, {"reason": reason})
            return None
        if security.needs_rehash(row["password_hash"]):
            conn.execute(
                "UPDATE esr.web_user SET password_hash = %s WHERE user_id = %s",
                (security.hash_password(password), user_id),
            )
        conn.execute(
            "UPDATE esr.web_user SET failed_logins = 0, locked_until = NULL, last_login_at = now() WHERE user_id = %s",
            (user_id,),
        )
        audit(conn, user_id, "login", user_id)
    return user_id


def start_session(db: Database, user_id: int, lifetime: dt.timedelta) -> NewSession:
    secret = security.new_secret()
    csrf = security.new_secret()
    with db.connection() as conn:
        row = conn.execute(
            "INSERT INTO esr.web_session (session_hash, user_id, csrf_token, expires_at)"
            " VALUES (%s, %s, %s, now() + %s) RETURNING expires_at",
            (security.digest(secret), user_id, csrf, lifetime),
        ).fetchone()
        # Housekeeping: sessions that ended are of no further use.
        conn.execute("DELETE FROM esr.web_session WHERE expires_at < now() - interval '1 day'")
    assert row is not None
    return NewSession(secret, csrf, row["expires_at"])


def end_session(db: Database, session_hash: str) -> None:
    with db.connection() as conn:
        conn.execute("DELETE FROM esr.web_session WHERE session_hash = %s", (session_hash,))


def _principal(db: Database, row: Row, via: str, **extra: Any) -> Principal:
    return Principal(
        user_id=int(row["user_id"]),
        username=row["username"],
        display_name=row["display_name"],
        grants=grants_of(db, int(row["user_id"])),
        via=via,
        **extra,
    )


def session_principal(db: Database, secret: str, idle: dt.timedelta) -> Principal | None:
    """The principal of a live session (touching it), or None when it is unknown, expired or idle too long."""
    if not secret or len(secret) > 100:
        return None
    session_hash = security.digest(secret)
    with db.connection() as conn:
        row = conn.execute(
            """
            UPDATE esr.web_session s SET last_seen_at = now()
            FROM esr.web_user u
            WHERE s.session_hash = %s AND u.user_id = s.user_id AND u.active
              AND s.expires_at > now() AND s.last_seen_at > now() - %s
            RETURNING u.user_id, u.username, u.display_name, s.csrf_token
            """,
            (session_hash, idle),
        ).fetchone()
    if row is None:
        return None
    return _principal(db, row, "session", csrf_token=row["csrf_token"], session_hash=session_hash)


# -- API tokens -------------------------------------------------------------------------------------


def create_token(db: Database, user_id: int, name: str, days: int, actor_id: int | None) -> tuple[int, str]:
    """A new token for the user: (token id, the token). The token itself is shown once and not kept."""
    label = name.strip()
    if not label or len(label) > 100:
        raise AccountError("A token needs a name of at most 100 characters.")
    if not 1 <= days <= MAX_TOKEN_DAYS:
        raise AccountError(f"Tokens last 1 to {MAX_TOKEN_DAYS} days.")
    token = security.new_api_token()
    with db.connection() as conn:
        row = conn.execute(
            "INSERT INTO esr.web_api_token (user_id, name, token_hash, token_prefix, expires_at)"
            " VALUES (%s, %s, %s, %s, now() + %s) RETURNING token_id",
            (user_id, label, security.digest(token), token[:10], dt.timedelta(days=days)),
        ).fetchone()
        assert row is not None
        audit(conn, actor_id, "token.create", user_id, {"token_id": row["token_id"]})
    return int(row["token_id"]), token


def tokens(db: Database, user_id: int) -> list[Row]:
    return db.all(
        "SELECT token_id, name, token_prefix, created_at, expires_at, last_used_at, revoked_at,"
        " (revoked_at IS NULL AND expires_at > now()) AS usable"
        " FROM esr.web_api_token WHERE user_id = %s ORDER BY created_at DESC, token_id DESC",
        (user_id,),
    )


def revoke_token(db: Database, user_id: int, token_id: int, actor_id: int | None) -> bool:
    with db.connection() as conn:
        row = conn.execute(
            "UPDATE esr.web_api_token SET revoked_at = now()"
            " WHERE token_id = %s AND user_id = %s AND revoked_at IS NULL RETURNING token_id",
            (token_id, user_id),
        ).fetchone()
        if row is not None:
            audit(conn, actor_id, "token.revoke", user_id, {"token_id": token_id})
    return row is not None


def token_principal(db: Database, token: str) -> Principal | None:
    if not token.startswith(security.TOKEN_PREFIX) or len(token) > 100:
        return None
    with db.connection() as conn:
        row = conn.execute(
            """
            UPDATE esr.web_api_token t SET last_used_at = now()
            FROM esr.web_user u
            WHERE t.token_hash = %s AND u.user_id = t.user_id AND u.active
              AND t.revoked_at IS NULL AND t.expires_at > now()
            RETURNING u.user_id, u.username, u.display_name
            """,
            (security.digest(token),),
        ).fetchone()
    return _principal(db, row, "token") if row else None
