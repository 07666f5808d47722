"""`esr lifecycle run [--vpd VPD] [--date D]` (registered by `esr.cli`)."""

from __future__ import annotations

import datetime as dt

import click

from esr.config import Settings
from esr.lifecycle.evaluate import LifecycleEvent


@click.group()
def lifecycle() -> None:
    """The daily employee lifecycle: automatic activation and archiving (the trust's NHS options)."""


@lifecycle.command("run")
@click.option("--vpd", "vpds", multiple=True, help="A trust (repeatable; default: every active trust).")
@click.option("--date", "day", type=click.DateTime(["%Y-%m-%d"]), help="The day to evaluate (default: today).")
@click.pass_obj
def lifecycle_run(settings: Settings, vpds: tuple[str, ...], day: dt.datetime | None) -> None:
    """Activate and archive the trusts' employees due on the day; records EMPLOYEE_ACTIVATED / _ARCHIVED.
    With the option "vehicle automatic activation", also activates the trusts' live vehicles.

    Idempotent: a second run the same day changes nothing and records nothing."""
    import psycopg

    from esr.cli import _database_url
    from esr.lifecycle.run import UnknownTrust, run_lifecycle

    on = day.date() if day is not None else dt.date.today()
    with psycopg.connect(_database_url(settings)) as conn:
        trusts = list(vpds) or [row[0] for row in conn.execute(
            "SELECT vpd FROM esr.trust WHERE active ORDER BY vpd").fetchall()]
        for vpd in trusts:
            try:
                report = run_lifecycle(conn, vpd, on)
            except UnknownTrust as exc:
                raise click.ClickException(str(exc)) from None
            click.echo(
                f"trust {vpd} on {on.isoformat()}: {report.employees} employee(s); activation "
                f"{report.options.employee_activation.value}, archiving {report.options.employee_archiving.value} "
                f"(grace {report.options.archive_grace_days} d): "
                f"{report.count(LifecycleEvent.EMPLOYEE_ACTIVATED)} activated, "
                f"{report.count(LifecycleEvent.EMPLOYEE_ARCHIVED)} archived, {report.recorded} event(s) recorded; "
                f"{report.vehicles_activated} vehicle(s) activated"
            )
