"""The connection pool. Every query in the web package passes its values as parameters, never as text."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, LiteralString

import psycopg
from psycopg.rows import DictRow, dict_row
from psycopg_pool import ConnectionPool

Row = dict[str, Any]


class Database:
    def __init__(self, url: str, *, min_size: int = 1, max_size: int = 10, timezone: str = "Europe/London") -> None:
        self.pool: ConnectionPool[psycopg.Connection[DictRow]] = ConnectionPool(
            url,
            min_size=min_size,
            max_size=max_size,
            open=False,
            kwargs={"row_factory": dict_row, "application_name": "esr-web", "options": f"-c TimeZone={timezone}"},
            connection_class=psycopg.Connection[DictRow],
            name="esr-web",
        )

    def open(self) -> None:
        self.pool.open(wait=True, timeout=30)

    def close(self) -> None:
        self.pool.close()

    @contextmanager
    def connection(self) -> Iterator[psycopg.Connection[DictRow]]:
        """A pooled connection in a transaction, committed when the block ends without error."""
        with self.pool.connection() as conn:
            yield conn

    def all(self, query: LiteralString, params: dict[str, Any] | tuple[Any, ...] | None = None) -> list[Row]:
        with self.connection() as conn:
            return conn.execute(query, params).fetchall()

    def one(self, query: LiteralString, params: dict[str, Any] | tuple[Any, ...] | None = None) -> Row | None:
        with self.connection() as conn:
            return conn.execute(query, params).fetchone()
