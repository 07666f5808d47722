"""`esr mapping show|set|history|diff|validate|catalogue` and `esr remap` (registered by `esr.cli`)."""

from __future__ import annotations

import getpass
import json
import os
from pathlib import Path
from typing import Any

import click

from esr.config import Settings
from esr.mapping.catalogue import SOURCE_FIELDS, STANDARD_FIELD_LIST, Scope
from esr.mapping.serde import template_from_json, template_to_dict
from esr.mapping.template import MappingTemplate
from esr.mapping.versions import TemplateVersion, diff_templates
from esr.validation import ValidationError

#: who a saved version is attributed to when --author is not given (else the login name)
AUTHOR_ENV = "ESR_AUTHOR"


def _url(settings: Settings) -> str:
    from esr.cli import _database_url

    return _database_url(settings)


def _connect(settings: Settings) -> Any:
    import psycopg

    return psycopg.connect(_url(settings))


def _load_file(path: Path) -> MappingTemplate:
    """The template in a JSON file; every problem printed on its own line with its rule path."""
    try:
        return template_from_json(path.read_bytes())
    except ValidationError as exc:
        lines = [f"{path}: {len(exc.problems)} problem(s) in the mapping template:"]
        lines += [f"  {p.path or '(template)'}: {p.message}" for p in exc.problems]
        raise click.ClickException("\n".join(lines)) from None


def _print_version(version: TemplateVersion) -> None:
    saved = "default template" if version.version == 0 else (
        f"by {version.author} at {version.created_at.isoformat(timespec='seconds')}"
    )
    click.echo(f"trust {version.vpd}  template {version.template.name!r}  version {version.version}  ({saved})")
    if version.note:
        click.echo(f"  note: {version.note}")
    for udf in version.template.udfs:
        click.echo(f"  udf {udf.name} ({udf.kind.value})" + (f": {udf.description}" if udf.description else ""))
    for rule in version.template.rules:
        click.echo(f"  {rule.describe()}")


def _version(conn: Any, vpd: str, number: int | None) -> TemplateVersion:
    from esr.mapping.store import current_version, load_version

    found = current_version(conn, vpd) if number is None else load_version(conn, vpd, number)
    if found is None:
        raise click.ClickException(f"trust {vpd} has no template version {number}")
    return found


@click.group()
def mapping() -> None:
    """A trust's mapping template: ESR fields -> its employee fields (versioned)."""


@mapping.command("show")
@click.option("--vpd", required=True)
@click.option("--version", "number", type=int, help="A saved version (default: the current one; 0: the default).")
@click.option("--json", "as_json", is_flag=True, help="The template as JSON (what `set` reads).")
@click.pass_obj
def mapping_show(settings: Settings, vpd: str, number: int | None, as_json: bool) -> None:
    """The template the trust maps with (the default template when it never saved one)."""
    with _connect(settings) as conn:
        version = _version(conn, vpd, number)
    if as_json:
        click.echo(json.dumps(template_to_dict(version.template), indent=2, ensure_ascii=False))
    else:
        _print_version(version)


@mapping.command("set")
@click.option("--vpd", required=True)
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False, exists=True))
@click.option("--note", default="", help="Why the template changed (kept with the version).")
@click.option("--author", help=f"Who changed it (default: ${AUTHOR_ENV}, else the login name).")
@click.pass_obj
def mapping_set(settings: Settings, vpd: str, file: Path, note: str, author: str | None) -> None:
    """Save FILE (template JSON) as the trust's next version and publish it to the mapping stage.

    It applies to the changes mapped from then on; `esr remap --vpd` rebuilds the existing rows with it."""
    from esr.mapping.store import UnknownTrust, save_template

    template = _load_file(file)
    who = author or os.environ.get(AUTHOR_ENV) or getpass.getuser()
    with _connect(settings) as conn:
        try:
            version, created = save_template(conn, vpd, template, who, note)
        except UnknownTrust as exc:
            raise click.ClickException(str(exc)) from None
        except ValidationError as exc:
            raise click.ClickException("\n".join([str(exc.what), *(f"  {p}" for p in exc.problems)])) from None
    if not created:
        click.echo(f"trust {vpd}: the template is unchanged (version {version.version})")
        return
    click.echo(f"trust {vpd}: saved template version {version.version} by {version.author}")
    _publish(settings, version)


def _publish(settings: Settings, version: TemplateVersion) -> None:
    from esr.kafka.config import client_config
    from esr.runtime.broker import background_broker
    from streams.mapping_stage import MappingStageError, publish_templates

    bootstrap = settings.bootstrap_servers
    if not bootstrap:
        broker = background_broker(settings.data_dir)
        bootstrap = broker.bootstrap_servers if broker is not None else None
    if not bootstrap:
        click.echo("no broker running: the pipeline publishes the template when it starts")
        return
    try:
        publish_templates(client_config(settings, bootstrap), [version])
    except MappingStageError as exc:
        raise click.ClickException(f"saved, but not published: {exc}") from None
    click.echo("published to the mapping stage")


@mapping.command("history")
@click.option("--vpd", required=True)
@click.pass_obj
def mapping_history(settings: Settings, vpd: str) -> None:
    """Every saved version: number, time, author, note."""
    from esr.mapping.store import history

    with _connect(settings) as conn:
        versions = history(conn, vpd)
    if not versions:
        click.echo(f"trust {vpd} has saved no template: it maps with the default template (version 0)")
        return
    for version in versions:
        click.echo(f"v{version.version:<4} {version.created_at.isoformat(timespec='seconds')}  {version.author:<16} "
                   f"{len(version.template.rules)} rules, {len(version.template.udfs)} udfs  {version.note}")


@mapping.command("diff")
@click.option("--vpd", required=True)
@click.option("--from", "old", type=int, help="Version to compare from (default: the one before --to).")
@click.option("--to", "new", type=int, help="Version to compare to (default: the current one).")
@click.option("--file", type=click.Path(path_type=Path, dir_okay=False, exists=True),
              help="Compare the current version with a template file instead.")
@click.pass_obj
def mapping_diff(settings: Settings, vpd: str, old: int | None, new: int | None, file: Path | None) -> None:
    """What changed between two versions (or between the current one and FILE)."""
    with _connect(settings) as conn:
        target = _version(conn, vpd, new)
        if file is not None:
            source, target_template, label = target.template, _load_file(file), f"v{target.version} -> {file}"
        else:
            base = _version(conn, vpd, old if old is not None else max(target.version - 1, 0))
            source, target_template, label = base.template, target.template, f"v{base.version} -> v{target.version}"
    diff = diff_templates(source, target_template)
    click.echo(f"trust {vpd}: {label}")
    if diff.empty:
        click.echo("  no change")
        return
    for line in diff.lines():
        click.echo(f"  {line}")
    click.echo(f"  targets affected: {', '.join(diff.targets_affected())}")


@mapping.command("validate")
@click.option("--vpd", help="Also show what saving it would change for this trust.")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False, exists=True))
@click.pass_obj
def mapping_validate(settings: Settings, vpd: str | None, file: Path) -> None:
    """Check a template file (every problem, with its rule path); exit 1 when it is invalid."""
    template = _load_file(file)
    click.echo(f"{file}: valid ({len(template.rules)} rules, {len(template.udfs)} udfs)")
    if vpd is not None:
        with _connect(settings) as conn:
            current = _version(conn, vpd, None)
        lines = diff_templates(current.template, template).lines()
        click.echo(f"compared with trust {vpd}'s version {current.version}: " + ("no change" if not lines else ""))
        for line in lines:
            click.echo(f"  {line}")


@mapping.command("catalogue")
@click.option("--vpd", help="Also list the trust's user-defined fields.")
@click.option("--scope", type=click.Choice([s.value for s in Scope]), help="Only the source fields of one scope.")
@click.pass_obj
def mapping_catalogue(settings: Settings, vpd: str | None, scope: str | None) -> None:
    """What a template may read (ESR fields by scope) and write (standard fields, udf.<name>)."""
    click.echo("ESR source fields (<scope>.<field>, or <record code>.<field>):")
    for key, source in SOURCE_FIELDS.items():
        if scope is None or source.scope.value == scope:
            click.echo(f"  {key:<48} {source.record_type}  {source.kind.value}")
    click.echo("standard target fields (a column each in esr.employee):")
    for standard in STANDARD_FIELD_LIST:
        click.echo(f"  {standard.name:<24} {standard.kind.value:<8} {standard.description}")
    if vpd is not None:
        with _connect(settings) as conn:
            current = _version(conn, vpd, None)
        click.echo(f"user-defined fields of trust {vpd} (udf.<name>, version {current.version}):")
        for udf in current.template.udfs:
            click.echo(f"  udf.{udf.name:<20} {udf.kind.value:<8} {udf.description}")
        if not current.template.udfs:
            click.echo("  none")


@click.command("remap")
@click.option("--vpd", required=True)
@click.pass_obj
def remap(settings: Settings, vpd: str) -> None:
    """Rebuild the trust's esr.employee from the current stream state with its current template.

    Reads the compacted esr.employees and the worker's reference state from the broker (nothing is
    re-ingested); needs the broker that holds them (ESR_BOOTSTRAP_SERVERS or `esr broker start`)."""
    from esr.cli import _bootstrap_servers
    from esr.kafka.config import client_config
    from esr.kafka.reading import TopicReadError
    from streams.mapping_remap import remap_trust

    url = _url(settings)
    bootstrap = _bootstrap_servers(settings)
    try:
        report = remap_trust(client_config(settings, bootstrap), url, vpd)
    except TopicReadError as exc:
        raise click.ClickException(f"cannot read the stream state: {exc}") from None
    click.echo(f"trust {vpd}: {report.mapped} employee(s) mapped with template version {report.template_version}, "
               f"{report.deleted} row(s) no longer in the state soft-deleted, {report.with_problems} with problems")
