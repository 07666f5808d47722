"""The `esr` command."""

from __future__ import annotations

import datetime as dt
import logging
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import click

from esr.config import Settings

if TYPE_CHECKING:
    from connectors.file_source.ingest import FileIngest, FileReport
    from esr.dlq import DeadLetters
    from esr.profiles import TrustProfile

log = logging.getLogger("esr")


def _setup_logging(verbose: bool) -> None:
    import os

    from esr.observability.logs import setup_logging

    setup_logging(verbose=verbose, json_lines=os.environ.get("ESR_LOG_FORMAT", "").lower() == "json")


@click.group()
@click.option("-v", "--verbose", is_flag=True, help="Debug logging.")
@click.pass_context
def main(ctx: click.Context, verbose: bool) -> None:
    """ESR Outbound Interface v2: ingest ESR files into Kafka and PostgreSQL."""
    _setup_logging(verbose)
    ctx.obj = Settings()


# -- shared plumbing -----------------------------------------------------------------------------


def _database_url(settings: Settings) -> str:
    from esr.db.migrate import upgrade
    from esr.runtime.database import resolve_database_url

    url = resolve_database_url(settings.database_url, settings.data_dir)
    for migration in upgrade(url):
        log.info("database upgraded to %04d_%s", migration.version, migration.name)
    return url


def _bootstrap_servers(settings: Settings) -> str:
    if settings.bootstrap_servers:
        return settings.bootstrap_servers
    from esr.runtime.broker import background_broker

    broker = background_broker(settings.data_dir)
    if broker is None:
        raise click.ClickException(
            "no Kafka broker: set ESR_BOOTSTRAP_SERVERS, or start the embedded one with `esr broker start` "
            "(or use `esr run`, which starts its own)"
        )
    return broker.bootstrap_servers


class _ProgressLine:
    """A one-line progress display on a terminal: lines done and records/s. Silent elsewhere."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.started = time.monotonic()
        self.enabled = sys.stderr.isatty()

    def __call__(self, done: int, total: int) -> None:
        if not self.enabled:
            return
        elapsed = max(time.monotonic() - self.started, 1e-6)
        width = 30
        filled = int(width * done / total) if total else width
        sys.stderr.write(
            f"\r{self.name} [{'#' * filled}{'.' * (width - filled)}] {done:,}/{total:,} lines "
            f"{done / elapsed:,.0f} records/s"
        )
        if done >= total:
            sys.stderr.write("\n")
        sys.stderr.flush()


def _report(report: FileReport) -> None:
    """Print a file's summary and count it in the metrics."""
    from esr.observability import metrics

    metrics.file_outcome(
        report.vpd, report.status, counts_by_code=report.counts_by_code, quarantined=report.quarantined_count,
        warnings=report.warning_count, skipped=report.unknown_count,
    )
    _print_report(report)


def _print_report(report: FileReport) -> None:
    status = report.status.upper()
    if report.rejection_code is not None:
        status += f" {report.rejection_code.name} ({report.rejection_code.value})"
    click.echo(f"{report.file_name}: {status}")
    if report.sequence is not None:
        click.echo(
            f"  trust {report.vpd}, sequence {report.sequence}, extract {report.extract_type}, "
            f"{report.line_count:,} lines in {report.seconds:.2f} s"
        )
    if report.status in ("published", "valid", "failed"):
        rate = report.record_count / report.seconds if report.seconds else 0.0
        click.echo(
            f"  records {report.record_count:,} ({rate:,.0f}/s), quarantined {report.quarantined_count:,}, "
            f"warnings {report.warning_count:,}, unknown codes {report.unknown_count:,}"
        )
        if report.counts_by_code:
            click.echo("  by code: " + ", ".join(f"{k} {v:,}" for k, v in report.counts_by_code.items()))
    for warning in report.file_warnings:
        click.echo(f"  warning: {warning}")
    if report.message and report.message not in report.file_warnings:
        click.echo(f"  {report.message}")


@contextmanager
def _file_ingest(settings: Settings, *, dry_run: bool, force: bool, strict_count: bool) -> Iterator[FileIngest]:
    from connectors.file_source.ingest import FileIngest, IngestSettings
    from connectors.file_source.ledger import Ledger
    from esr.codec import Registry
    from esr.kafka.config import client_config, producer_config
    from esr.kafka.producer import Publisher
    from esr.kafka.topics import ensure_topics

    url = _database_url(settings)
    publisher = None
    registry = Registry.from_url(settings.schema_registry_url) if settings.schema_registry_url else None
    if not dry_run:
        bootstrap = _bootstrap_servers(settings)
        ensure_topics(client_config(settings, bootstrap), settings.partitions, settings.replication_factor)
        publisher = Publisher(producer_config(settings, bootstrap))
    with Ledger(url) as ledger:
        yield FileIngest(
            ledger,
            publisher,
            IngestSettings(force=force, strict_count=strict_count, dry_run=dry_run),
            registry=registry,
        )


def _ingest_all(settings: Settings, files: Sequence[Path], *, dry_run: bool, force: bool, strict: bool) -> int:
    failures = 0
    with _file_ingest(settings, dry_run=dry_run, force=force, strict_count=strict) as job:
        for path in files:
            report = job.ingest(path, _ProgressLine(path.name))
            _report(report)
            failures += not report.ok
    return failures


# -- commands ------------------------------------------------------------------------------------

_files = click.argument(
    "files", nargs=-1, required=True, type=click.Path(path_type=Path, dir_okay=False)
)
_lenient = click.option(
    "--lenient-count", is_flag=True, help="Accept a trailer count that matches neither count (warn only)."
)


@main.command()
@_files
@click.option("--force", is_flag=True, help="Accept a file whose sequence is out of order.")
@_lenient
@click.pass_obj
def ingest(settings: Settings, files: tuple[Path, ...], force: bool, lenient_count: bool) -> None:
    """Validate and publish ESR files; exits non-zero if any file is rejected or fails."""
    failures = _ingest_all(settings, files, dry_run=False, force=force, strict=not lenient_count)
    if failures:
        raise SystemExit(1)


@main.command()
@_files
@_lenient
@click.pass_obj
def validate(settings: Settings, files: tuple[Path, ...], lenient_count: bool) -> None:
    """Run every check and parse every line, publishing nothing (needs no broker)."""
    failures = _ingest_all(settings, files, dry_run=True, force=False, strict=not lenient_count)
    if failures:
        raise SystemExit(1)


@main.command()
@click.argument("directory", type=click.Path(path_type=Path, file_okay=False, exists=True))
@click.option("--settle", type=float, default=5.0, show_default=True,
              help="Seconds a file must stay unchanged before it is picked up.")
@click.option("--interval", type=float, default=2.0, show_default=True, help="Seconds between scans.")
@click.option("--once", is_flag=True, help="One pass over the inbox, then exit (for cron).")
@click.pass_obj
def watch(settings: Settings, directory: Path, settle: float, interval: float, once: bool) -> None:
    """Ingest each trust's files from DIRECTORY as they arrive, in sequence order.

    Published files move to DIRECTORY/archive, rejected ones to DIRECTORY/rejected with the reason beside
    them; a file held for its sequence stays until the missing file arrives (or `esr ingest --force`).
    """
    import signal
    import threading

    from connectors.file_source.inbox import InboxWatcher
    from esr.observability import metrics

    metrics.serve(settings.metrics_port)
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    letters = _dead_letters(settings)

    def export_dead_letters() -> None:
        try:
            metrics.dead_letters_open(letters.open_counts())
        except Exception as exc:  # a metric must never stop the inbox
            log.warning("dead-letter counts not exported: %s", exc)

    with _file_ingest(settings, dry_run=False, force=False, strict_count=True) as job:
        watcher = InboxWatcher(directory, job, settle=0.0 if once else settle, poll_interval=interval,
                               on_report=_report, every_minute=export_dead_letters)
        if once:
            reports = watcher.poll_once()
            if watcher.failing or not all(report.ok for report in reports):
                raise SystemExit(1)
        else:
            watcher.run(stop)


@main.command()
@click.option("--vpd", required=True, help="The trust's 3-character VPD code.")
@click.option("--employees", type=click.IntRange(1, 10_000_000), default=1000, show_default=True)
@click.option("--days", type=click.IntRange(0, 3650), default=3, show_default=True, help="Change files.")
@click.option("--seed", type=int, default=1, show_default=True)
@click.option("--start", type=click.DateTime(["%Y-%m-%d"]), default="2026-01-05", show_default=True)
@click.option("--first-sequence", type=click.IntRange(1), default=1, show_default=True)
@click.option("--out", type=click.Path(path_type=Path, file_okay=False), required=True)
def generate(
    vpd: str, employees: int, days: int, seed: int, start: dt.datetime, first_sequence: int, out: Path
) -> None:
    """Write realistic, seeded ESR files: a full file, then one change file per day."""
    from esr.generate import generate_files

    out.mkdir(parents=True, exist_ok=True)
    for path in generate_files(
        vpd, employees, days, seed, out, start=start.date(), first_sequence=first_sequence
    ):
        click.echo(path)


@main.group()
def trust() -> None:
    """Register and list trusts."""


def _profile_publisher(settings: Settings) -> Callable[[TrustProfile], None] | None:
    """Publishes a saved profile to esr.trust-profiles for running workers; None without a broker (the
    pipeline publishes every profile when it starts). A failure is a warning: the profile is saved."""
    bootstrap = settings.bootstrap_servers
    if not bootstrap:
        from esr.runtime.broker import background_broker

        broker = background_broker(settings.data_dir)
        if broker is None:
            return None
        bootstrap = broker.bootstrap_servers
    from esr.kafka.config import producer_config
    from esr.kafka.profiles import ProfilePublisher, ProfilePublishError

    publish = ProfilePublisher(producer_config(settings, bootstrap), timeout=10.0)

    def publish_or_warn(profile: TrustProfile) -> None:
        try:
            publish(profile)
        except ProfilePublishError as exc:
            click.echo(f"warning: saved, but running workers do not know yet: {exc}", err=True)

    return publish_or_warn


@trust.command("add")
@click.option("--vpd", required=True)
@click.option("--name", required=True)
@click.option("--interface-version", type=click.Choice(["1", "2"]), default="2", show_default=True)
@click.option("--frequency", type=click.Choice(["daily", "weekly"]), default="daily", show_default=True)
@click.pass_obj
def trust_add(settings: Settings, vpd: str, name: str, interface_version: str, frequency: str) -> None:
    """Register a trust so its files are accepted."""
    import psycopg

    from connectors.file_source.ledger import Ledger, TrustExists

    with Ledger(_database_url(settings), on_profile_change=_profile_publisher(settings)) as ledger:
        try:
            added = ledger.add_trust(
                vpd, name, interface_version=int(interface_version), import_frequency=frequency
            )
        except TrustExists as exc:
            raise click.ClickException(str(exc)) from None
        except psycopg.errors.CheckViolation:
            raise click.ClickException(f"{vpd!r} is not a VPD (3 letters or digits)") from None
    click.echo(f"trust {added.vpd} registered: {added.name}")


@trust.command("list")
@click.pass_obj
def trust_list(settings: Settings) -> None:
    """List registered trusts."""
    from connectors.file_source.ledger import Ledger

    with Ledger(_database_url(settings)) as ledger:
        for t in ledger.trusts():
            state = "active" if t.active else "archived"
            click.echo(
                f"{t.vpd}  {t.name}  v{t.interface_version}  {t.import_frequency}  "
                f"last sequence {t.last_sequence if t.last_sequence is not None else '-'}  {state}"
            )


def _option_value(text: str) -> object:
    if text.lower() in ("true", "yes"):
        return True
    if text.lower() in ("false", "no"):
        return False
    return int(text) if text.isdigit() else text


@trust.command("show")
@click.option("--vpd", required=True)
@click.pass_obj
def trust_show(settings: Settings, vpd: str) -> None:
    """A trust's profile and NHS options."""
    from connectors.file_source.ledger import Ledger
    from esr.profiles import NhsOptions, nhs_options_from_dict, nhs_options_to_dict

    with Ledger(_database_url(settings)) as ledger:
        found = ledger.trust(vpd)
        profile = ledger.trust_profile(vpd)
    if found is None or profile is None:
        raise click.ClickException(f"no trust is registered for VPD {vpd}")
    inbox, stored = profile
    options = NhsOptions() if stored is None else nhs_options_from_dict(stored, strict=False)
    click.echo(f"{found.vpd}  {found.name}  v{found.interface_version}  {found.import_frequency}  "
               f"{'active' if found.active else 'archived'}  last sequence "
               f"{found.last_sequence if found.last_sequence is not None else '-'}  inbox {inbox or '-'}")
    for key, value in nhs_options_to_dict(options).items():
        click.echo(f"  {key} = {value}")


@trust.command("set")
@click.option("--vpd", required=True)
@click.option("--name")
@click.option("--frequency", type=click.Choice(["daily", "weekly"]))
@click.option("--inbox", type=click.Path(path_type=Path, file_okay=False))
@click.option("--archive/--activate", "archived", default=None, help="Stop (or resume) accepting its files.")
@click.option("--option", "options", multiple=True, metavar="KEY=VALUE",
              help="An NHS option, e.g. employee_archiving=automatic, archive_grace_days=30, "
                   "full_file_absence=delete (repeatable).")
@click.pass_obj
def trust_set(settings: Settings, vpd: str, name: str | None, frequency: str | None, inbox: Path | None,
              archived: bool | None, options: tuple[str, ...]) -> None:
    """Change a trust's profile; NHS options are validated as a whole before anything is saved."""
    from connectors.file_source.ledger import Ledger
    from esr.profiles import NhsOptions, nhs_options_from_dict, nhs_options_to_dict
    from esr.validation import ValidationError

    with Ledger(_database_url(settings), on_profile_change=_profile_publisher(settings)) as ledger:
        profile = ledger.trust_profile(vpd)
        if profile is None:
            raise click.ClickException(f"no trust is registered for VPD {vpd}")
        columns: dict[str, object] = {}
        if options:
            current = nhs_options_to_dict(
                NhsOptions() if profile[1] is None else nhs_options_from_dict(profile[1], strict=False)
            )
            for item in options:
                key, sep, value = item.partition("=")
                if not sep:
                    raise click.BadParameter(f"{item!r} is not KEY=VALUE", param_hint="--option")
                current[key.strip()] = _option_value(value.strip())
            try:
                columns["nhs_options"] = nhs_options_to_dict(nhs_options_from_dict(current))
            except ValidationError as exc:
                raise click.ClickException(str(exc)) from None
        if name is not None:
            columns["name"] = name
        if frequency is not None:
            columns["import_frequency"] = frequency
        if inbox is not None:
            columns["inbox_path"] = str(inbox)
        if archived is not None:
            columns["active"] = not archived
        ledger.update_trust(vpd, **columns)
    click.echo(f"trust {vpd} updated" if columns else "nothing to change")


@main.command("imports")
@click.option("--vpd")
@click.option("--limit", type=int, default=20, show_default=True)
@click.pass_obj
def imports(settings: Settings, vpd: str | None, limit: int) -> None:
    """The import ledger: latest files first, with their quarantined lines and the vehicles that match no
    mileage category of the trust."""
    from connectors.file_source.ledger import Ledger
    from esr.mileage.store import load_categories, unmatched_vehicles_of_file

    with Ledger(_database_url(settings)) as ledger:
        for f in ledger.import_files(vpd, limit):
            code = f" {f.rejection_code}" if f.rejection_code else ""
            click.echo(
                f"{f.received_at:%Y-%m-%d %H:%M:%S}  {f.file_name}  {f.status}{code}  "
                f"records {f.record_count if f.record_count is not None else '-'}  {f.sha256[:12]}"
            )
            if f.message:
                click.echo(f"    {f.message}")
            for e in ledger.line_errors(f.sha256)[:20]:
                click.echo(f"    line {e.line_no} [{e.severity}] {e.record_code or ''} {e.reason}")
            unmatched = unmatched_vehicles_of_file(ledger.conn, f.sha256)
            if unmatched and f.vpd is not None and not load_categories(ledger.conn, f.vpd):
                click.echo(f"    {len(unmatched)} vehicle(s) without a mileage rate: the trust has no NHS mileage "
                           "table yet (esr mileage import)")
                continue
            for vehicle in unmatched[:20]:
                click.echo(f"    {vehicle.describe()}")
            if len(unmatched) > 20:
                click.echo(f"    ... {len(unmatched) - 20} more vehicle(s) without a mileage rate")


@main.group()
def dlq() -> None:
    """Dead letters of the worker (process) and the sink: list, show, replay, discard."""


_stage = click.option("--stage", type=click.Choice(["process", "sink", "ingest"]), default="process",
                      show_default=True)


def _location(text: str) -> tuple[int, int]:
    try:
        partition, offset = text.split(":")
        return int(partition), int(offset)
    except ValueError:
        raise click.BadParameter(f"{text!r} is not PARTITION:OFFSET") from None


def _dead_letters(settings: Settings) -> DeadLetters:
    from esr.dlq import DeadLetters
    from esr.kafka.config import client_config

    return DeadLetters(client_config(settings, _bootstrap_servers(settings)), _database_url(settings))


@dlq.command("list")
@_stage
@click.option("--all", "show_all", is_flag=True, help="Resolved ones too.")
@click.pass_obj
def dlq_list(settings: Settings, stage: str, show_all: bool) -> None:
    """One line per dead letter: where it is, where it came from, why. An employee's open letters are
    grouped: the blocker, then the letters parked behind it (replayed or discarded with it)."""
    from esr.dlq import DeadLetter, DeadLetterError
    from esr.parking import Group

    def line(letter: DeadLetter, indent: str = "") -> str:
        origin = letter.origin
        came_from = f"{origin[0]}[{origin[1]}]@{origin[2]}" if origin else "?"
        state = f" [{letter.resolution}]" if letter.resolution else ""
        return (f"{indent}{letter.location}  from {came_from}  key {(letter.key or b'').decode()}"
                f"  {letter.reason}{state}")

    shown = 0
    try:
        groups, alone = _dead_letters(settings).groups(stage)
    except DeadLetterError as exc:
        raise click.ClickException(str(exc)) from None
    entries: list[tuple[tuple[int, int], Group[DeadLetter] | DeadLetter]] = [
        ((g.blocker.partition, g.blocker.offset), g) for g in groups]
    entries += [((letter.partition, letter.offset), letter) for letter in alone
                if letter.resolution is None or show_all]
    for _, entry in sorted(entries, key=lambda item: item[0]):
        if isinstance(entry, DeadLetter):
            click.echo(line(entry))
            shown += 1
            continue
        copies = entry.all_copies()
        parked = f"  ({len(entry.followers)} parked behind it)" if entry.followers else ""
        click.echo(line(entry.blocker) + parked)
        for follower in entry.followers:
            click.echo(line(follower, "    parked: "))
        shown_here = {letter.location for letter in entry.letters()}
        again = sorted(copy.location for copy in copies if copy.location not in shown_here)
        if again:
            click.echo(f"    dead-lettered again (same messages): {', '.join(again)}")
        shown += len(copies)
    click.echo(f"{shown} dead letter(s) in {stage}" + ("" if show_all else " still open"))


@dlq.command("show")
@_stage
@click.argument("location")
@click.pass_obj
def dlq_show(settings: Settings, stage: str, location: str) -> None:
    """One dead letter (LOCATION = PARTITION:OFFSET in the dead-letter topic), its payload decoded."""
    import json

    from esr.dlq import DeadLetterError

    try:
        letter = _dead_letters(settings).get(stage, *_location(location))
    except DeadLetterError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"reason: {letter.reason}")
    if letter.error:
        click.echo(f"error: {letter.error}")
    click.echo(f"status: {letter.resolution or 'open'}")
    for name, value in sorted(letter.headers.items()):
        click.echo(f"header {name}: {value.decode(errors='replace')}")
    click.echo(json.dumps(letter.payload(), indent=2, default=str, ensure_ascii=False))


@dlq.command("replay")
@_stage
@click.argument("location")
@click.pass_obj
def dlq_replay(settings: Settings, stage: str, location: str) -> None:
    """Send a dead letter back to its original topic (once its cause is fixed); a blocker goes back with
    the letters parked behind it, in their original order, and releases its employee."""
    from esr.dlq import DeadLetterError
    from esr.kafka.config import producer_config
    from esr.kafka.producer import Publisher

    letters = _dead_letters(settings)
    try:
        letter = letters.get(stage, *_location(location))
        origin, sent = letters.replay(letter, Publisher(producer_config(settings, _bootstrap_servers(settings))))
    except DeadLetterError as exc:
        raise click.ClickException(str(exc)) from None
    parked = f" with {sent - 1} parked letter(s) behind it, in order" if sent > 1 else ""
    click.echo(f"{location} sent back to {origin[0]}{parked}")


@dlq.command("discard")
@_stage
@click.argument("location")
@click.option("--reason", required=True, help="Why it is dropped (kept with your user name).")
@click.option("--with-followers", is_flag=True,
              help="A blocker: drop the letters parked behind it too (default: they are replayed in order).")
@click.pass_obj
def dlq_discard(settings: Settings, stage: str, location: str, reason: str, with_followers: bool) -> None:
    """Record that a dead letter is dropped on purpose. A blocker's employee is released: the letters
    parked behind it are replayed in their original order (or dropped too, `--with-followers`)."""
    from esr.dlq import DeadLetterError
    from esr.kafka.config import producer_config
    from esr.kafka.producer import Publisher

    letters = _dead_letters(settings)
    try:
        publisher = Publisher(producer_config(settings, _bootstrap_servers(settings)))
        sent = letters.discard(letters.get(stage, *_location(location)), reason, publisher,
                               with_followers=with_followers)
    except DeadLetterError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"{location} discarded" + (f"; {sent} parked letter(s) behind it sent back in order" if sent else ""))


@main.command()
@click.option("--from-beginning", is_flag=True, help="Everything in esr.records (esr.changes for the sink).")
@click.option("--from-file", "file_name", metavar="NAME", help="From the first record of this ingested file.")
@click.option("--from-sequence", "sequence", type=click.IntRange(0), metavar="N",
              help="From the file with this ESR sequence (with --vpd).")
@click.option("--vpd", help="The trust of --from-sequence.")
@click.option("--from-timestamp", "timestamp", metavar="ISO",
              help="From the files ingested at or after this time (the ledger's times; naive = UTC).")
@click.option("--mode", type=click.Choice(["re-emit", "rebuild-state"]), default="re-emit", show_default=True,
              help="re-emit: change events sent again with the same ids; rebuild-state: tables only, nothing sent.")
@click.option("--group", type=click.Choice(["streams", "sink"]), default="streams", show_default=True,
              help="The stream worker (esr-streams) or the PostgreSQL sink (its offsets in esr.sink_offset).")
@click.option("--execute", is_flag=True, help="Carry the plan out (default: print it and change nothing).")
@click.pass_obj
def replay(settings: Settings, from_beginning: bool, file_name: str | None, sequence: int | None,
           vpd: str | None, timestamp: str | None, mode: str, group: str, execute: bool) -> None:
    """Consume esr.records again: re-emit change events or rebuild the worker's tables (a dry run unless
    --execute). Refused while the group has live members."""
    from esr.codec import Registry
    from esr.kafka.config import client_config
    from esr.replay import SINK_GROUP, STREAMS_GROUP, Mode, Replay, ReplayError

    chosen = [from_beginning, file_name is not None, sequence is not None, timestamp is not None]
    if sum(chosen) != 1:
        raise click.UsageError("choose one of --from-beginning, --from-file, --from-sequence, --from-timestamp")
    if vpd is not None and sequence is None:
        raise click.UsageError("--vpd goes with --from-sequence")
    since = None
    if timestamp is not None:
        try:
            since = dt.datetime.fromisoformat(timestamp)
        except ValueError:
            raise click.BadParameter(f"{timestamp!r} is not an ISO date and time",
                                     param_hint="--from-timestamp") from None
    registry = Registry.from_url(settings.schema_registry_url) if settings.schema_registry_url else None
    job = Replay(client_config(settings, _bootstrap_servers(settings)), _database_url(settings),
                 settings.replication_factor, registry)
    try:
        cut = job.resolve(file_name=file_name, vpd=vpd, sequence=sequence, since=since)
        plan = job.plan(SINK_GROUP if group == "sink" else STREAMS_GROUP, Mode(mode), cut)
        for line in plan.describe():
            click.echo(line)
        if not execute:
            click.echo("dry run: nothing changed; add --execute to carry it out")
            return
        for line in job.execute(plan):
            click.echo(line)
    except ReplayError as exc:
        raise click.ClickException(str(exc)) from None


@main.group()
def mileage() -> None:
    """A trust's NHS mileage rate table (categories by user rates table and engine band)."""


@mileage.command("import")
@click.option("--vpd", required=True)
@click.argument("csv_file", type=click.Path(path_type=Path, dir_okay=False, exists=True))
@click.pass_obj
def mileage_import(settings: Settings, vpd: str, csv_file: Path) -> None:
    """Replace the trust's table with CSV_FILE (columns code, engine_from, engine_to, rate_per_mile[, description])."""
    import psycopg

    from esr.mileage import parse_categories_csv
    from esr.mileage.store import replace_categories, unmatched_vehicles
    from esr.validation import ValidationError

    try:
        categories = parse_categories_csv(csv_file.read_bytes())
    except ValidationError as exc:
        raise click.ClickException(f"{csv_file}: {exc}") from None
    with psycopg.connect(_database_url(settings)) as conn:
        if conn.execute("SELECT 1 FROM esr.trust WHERE vpd = %s", (vpd,)).fetchone() is None:
            raise click.ClickException(f"no trust is registered for VPD {vpd}")
        count = replace_categories(conn, vpd, categories)
        unmatched = unmatched_vehicles(conn, vpd)
    click.echo(f"trust {vpd}: {count} mileage categories imported")
    for allocation, _person, rates_table, engine_cc in unmatched:
        click.echo(f"  vehicle allocation {allocation}: no category for {rates_table or 'no rates table'}"
                   f" with an engine capacity of {engine_cc}")


@mileage.command("list")
@click.option("--vpd", required=True)
@click.pass_obj
def mileage_list(settings: Settings, vpd: str) -> None:
    """Print the trust's table as CSV (the format `esr mileage import` reads)."""
    import psycopg

    from esr.mileage import categories_to_csv
    from esr.mileage.store import load_categories

    with psycopg.connect(_database_url(settings)) as conn:
        click.echo(categories_to_csv(load_categories(conn, vpd)), nl=False)


@main.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
@click.pass_obj
def db_upgrade(settings: Settings) -> None:
    """Apply pending migrations."""
    _database_url(settings)
    click.echo("database is up to date")


@main.group()
def broker() -> None:
    """The embedded broker (Tansu, memory only) in the background."""


@broker.command("start")
@click.option("--port", type=int)
@click.pass_obj
def broker_start(settings: Settings, port: int | None) -> None:
    from esr.runtime.broker import start_background_broker

    started = start_background_broker(settings.data_dir, port)
    click.echo(f"embedded broker on {started.bootstrap_servers} (pid {started.pid}); it keeps nothing on disk")


@broker.command("stop")
@click.pass_obj
def broker_stop(settings: Settings) -> None:
    from esr.runtime.broker import stop_background_broker

    click.echo("stopped" if stop_background_broker(settings.data_dir) else "no embedded broker is running")


@broker.command("status")
@click.pass_obj
def broker_status(settings: Settings) -> None:
    from esr.runtime.broker import background_broker

    running = background_broker(settings.data_dir)
    click.echo(f"running on {running.bootstrap_servers}" if running else "not running")


@main.command("topics")
@click.pass_obj
def topics(settings: Settings) -> None:
    """Create the project's topics (idempotent)."""
    from esr.kafka.config import client_config
    from esr.kafka.topics import ensure_topics

    bootstrap = _bootstrap_servers(settings)
    created = ensure_topics(client_config(settings, bootstrap), settings.partitions, settings.replication_factor)
    click.echo("created: " + ", ".join(created) if created else "all topics exist")


@main.command()
@click.argument("files", nargs=-1, type=click.Path(path_type=Path, dir_okay=False, exists=True))
@click.option("--vpd", default="999", show_default=True, help="Trust of the generated sample.")
@click.option("--employees", type=click.IntRange(1), default=2000, show_default=True)
@click.option("--days", type=click.IntRange(0), default=3, show_default=True)
@click.option("--seed", type=int, default=1, show_default=True)
@click.option("--force", is_flag=True, help="Accept files whose sequence is out of order.")
@click.pass_obj
def run(
    settings: Settings, files: tuple[Path, ...], vpd: str, employees: int, days: int, seed: int, force: bool
) -> None:
    """The main job: broker, stream worker and sink up; files ingested; the database caught up; a summary.

    With no FILES it generates a sample trust's full file and change files (and registers the trust).
    On a fresh embedded broker it first rebuilds the stream state from the files of earlier runs.
    """
    from connectors.file_source.ledger import Ledger
    from connectors.sink.sink import tune_process
    from esr.generate import generate_files
    from esr.pipeline import Pipeline, PipelineError

    started = time.monotonic()
    url = _database_url(settings)
    click.echo(f"database: {_redact(url)}")
    paths = list(files)
    if not paths:
        sample_dir = settings.data_dir / "sample" / f"{vpd}-{employees}-{days}-{seed}"
        sample_dir.mkdir(parents=True, exist_ok=True)
        paths = generate_files(vpd, employees, days, seed, sample_dir)
        click.echo(f"generated {len(paths)} sample files for trust {vpd} in {sample_dir}")
        with Ledger(url) as ledger:
            if ledger.trust(vpd) is None:
                ledger.add_trust(vpd, f"Sample NHS Trust {vpd}")
                click.echo(f"registered sample trust {vpd}")
    since = _database_now(url)
    tune_process()  # this process runs the ingest job and both sinks
    try:
        with Pipeline.open(settings, url, echo=click.echo) as pipeline:
            pipeline.rebuild_state()
            reports = pipeline.ingest(paths, on_report=_report, force=force)
            click.echo("waiting for the stream worker and the sink to catch up...")
            pipeline.wait_until_caught_up()
            summary = pipeline.summary(reports, time.monotonic() - started, since)
    except PipelineError as exc:
        raise click.ClickException(str(exc)) from None
    failures = sum(not report.ok for report in summary.files)
    records = sum(report.record_count for report in summary.files)
    click.echo("")
    click.echo(f"{len(summary.files)} file(s), {failures} not accepted, {records:,} records")
    events = sum(summary.events_by_type.values())
    click.echo(f"change events recorded: {events:,}")
    for event_type, count in summary.events_by_type.items():
        click.echo(f"  {event_type:<28} {count:>9,}")
    click.echo("rows in the read model: " + ", ".join(f"{t} {n:,}" for t, n in summary.rows_by_table.items()))
    click.echo("time: " + ", ".join(f"{stage} {secs:.1f} s" for stage, secs in summary.stages.items())
               + f"; {summary.seconds:.1f} s in all")
    if failures:
        raise SystemExit(1)


def _database_now(url: str) -> dt.datetime:
    """The database's clock: change events recorded from then on belong to this run."""
    import psycopg

    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT now()").fetchone()
    assert row is not None
    now: dt.datetime = row[0]
    return now


def _redact(url: str) -> str:
    if "@" not in url or "://" not in url:
        return url
    scheme, rest = url.split("://", 1)
    credentials, host = rest.rsplit("@", 1)
    user = credentials.split(":", 1)[0]
    return f"{scheme}://{user}@{host}"


from esr.web.cli import users, web  # noqa: E402  (the web package registers its commands here)

main.add_command(web)
main.add_command(users)

from esr.lifecycle.cli import lifecycle  # noqa: E402
from esr.mapping.cli import mapping, remap  # noqa: E402

main.add_command(mapping)
main.add_command(remap)
main.add_command(lifecycle)
