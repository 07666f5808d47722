"""A trust's mapping template versions in PostgreSQL (`esr.mapping_template_version`): every change kept.

Saving goes through `esr.mapping.versions.next_version` under a lock on the trust's row, so two saves at
once number their versions 1, 2, ... without a gap or a clash, and saving the current template again makes
no new version. A trust that never saved a template maps with `default_template()`, shown as version 0.
"""

from __future__ import annotations

import datetime as dt
import functools
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from esr.mapping.serde import template_from_dict, template_to_dict
from esr.mapping.template import MappingTemplate, default_template
from esr.mapping.versions import TemplateVersion, next_version

#: the version number of the default template, for a trust that has saved none
DEFAULT_VERSION = 0
DEFAULT_AUTHOR = "(default)"
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)

_COLUMNS = "vpd, version, template, author, created_at, note"


class UnknownTrust(LookupError):
    pass


@functools.cache
def default_version(vpd: str) -> TemplateVersion:
    """What a trust without a saved template maps with (not a stored version: number 0). Immutable: cached."""
    return TemplateVersion(vpd, DEFAULT_VERSION, default_template(), DEFAULT_AUTHOR, _EPOCH,
                           "the default template")


def _version(row: tuple[Any, ...]) -> TemplateVersion:
    vpd, number, template, author, created_at, note = row
    return TemplateVersion(vpd, number, template_from_dict(template, strict=False), author, created_at, note)


def history(conn: psycopg.Connection[Any], vpd: str) -> list[TemplateVersion]:
    """Every saved version of the trust's template, oldest first."""
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM esr.mapping_template_version WHERE vpd = %s ORDER BY version", (vpd,)
    ).fetchall()
    return [_version(row) for row in rows]


def load_version(conn: psycopg.Connection[Any], vpd: str, number: int) -> TemplateVersion | None:
    """Version `number` (0: the default template, which every trust has)."""
    if number == DEFAULT_VERSION:
        return default_version(vpd)
    row = conn.execute(
        f"SELECT {_COLUMNS} FROM esr.mapping_template_version WHERE vpd = %s AND version = %s", (vpd, number)
    ).fetchone()
    return None if row is None else _version(row)


def saved_version(conn: psycopg.Connection[Any], vpd: str) -> TemplateVersion | None:
    """The latest saved version, None when the trust never saved one."""
    row = conn.execute(
        f"SELECT {_COLUMNS} FROM esr.mapping_template_version WHERE vpd = %s ORDER BY version DESC LIMIT 1",
        (vpd,),
    ).fetchone()
    return None if row is None else _version(row)


def current_version(conn: psycopg.Connection[Any], vpd: str) -> TemplateVersion:
    """The version the trust maps with now: the latest saved one, else the default template (version 0)."""
    return saved_version(conn, vpd) or default_version(vpd)


def latest_versions(conn: psycopg.Connection[Any]) -> list[TemplateVersion]:
    """The latest saved version of every trust that has one (what the mapping stage is told at start)."""
    rows = conn.execute(
        f"SELECT DISTINCT ON (vpd) {_COLUMNS} FROM esr.mapping_template_version ORDER BY vpd, version DESC"
    ).fetchall()
    return [_version(row) for row in rows]


def save_template(
    conn: psycopg.Connection[Any],
    vpd: str,
    template: MappingTemplate,
    author: str,
    note: str = "",
    now: dt.datetime | None = None,
) -> tuple[TemplateVersion, bool]:
    """Save `template` as the trust's next version; (the version, whether it is new). Raises `UnknownTrust`,
    or `esr.validation.ValidationError` for an invalid template, author or note (nothing is saved)."""
    with conn.transaction():
        if conn.execute("SELECT 1 FROM esr.trust WHERE vpd = %s FOR UPDATE", (vpd,)).fetchone() is None:
            raise UnknownTrust(f"no trust is registered for VPD {vpd}")
        previous = saved_version(conn, vpd)
        created = now or dt.datetime.now(dt.UTC)
        if previous is not None and created < previous.created_at:
            created = previous.created_at  # a clock behind the last save must not block saving
        version = next_version(previous, vpd, template, author, created, note)
        if version is previous:
            return version, False
        conn.execute(
            f"INSERT INTO esr.mapping_template_version ({_COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s)",
            (vpd, version.version, Jsonb(template_to_dict(version.template)), version.author, version.created_at,
             version.note),
        )
    return version, True
