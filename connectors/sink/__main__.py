"""`python -m connectors.sink`: run the PostgreSQL sink until stopped (SIGINT/SIGTERM), or `--drain` until
caught up. Broker and database as for `esr`: ESR_BOOTSTRAP_SERVERS (else the broker of `esr broker start`)
and ESR_DATABASE_URL (else the embedded server); the database is upgraded first. With ESR_METRICS_PORT set,
Prometheus metrics on 127.0.0.1:<port>/metrics (see connectors.sink.sink)."""

from __future__ import annotations

import logging
import signal
import sys
import threading
import time
from types import FrameType

import click

from connectors.sink.database import reset_offsets
from connectors.sink.employee import EmployeeSink
from connectors.sink.sink import DEFAULT_GROUP, Sink, SinkSettings, tune_process
from esr.config import Settings
from esr.kafka.topics import CHANGES


def _bootstrap(settings: Settings, given: str | None) -> str:
    if given:
        return given
    if settings.bootstrap_servers:
        return settings.bootstrap_servers
    from esr.runtime.broker import background_broker

    broker = background_broker(settings.data_dir)
    if broker is None:
        raise click.ClickException("no Kafka broker: set ESR_BOOTSTRAP_SERVERS or start one with `esr broker start`")
    return broker.bootstrap_servers


def _database(settings: Settings, given: str | None) -> str:
    from esr.db.migrate import upgrade
    from esr.runtime.database import resolve_database_url

    url = resolve_database_url(given or settings.database_url, settings.data_dir)
    upgrade(url)
    return url


@click.command()
@click.option("--bootstrap-servers", help="Kafka bootstrap servers (default: ESR_BOOTSTRAP_SERVERS).")
@click.option("--database-url", help="PostgreSQL URL (default: ESR_DATABASE_URL, else embedded).")
@click.option("--group", default=DEFAULT_GROUP, show_default=True, help="Consumer group (and offsets key).")
@click.option("--batch-size", default=10_000, show_default=True, help="Events per transaction at most.")
@click.option("--batch-wait", default=0.5, show_default=True, help="Seconds a batch may wait to fill.")
@click.option("--drain", is_flag=True, help="Exit once caught up (see connectors.sink.sink).")
@click.option("--idle", default=1.0, show_default=True, help="--drain: seconds at the end of every partition.")
@click.option("--timeout", default=600.0, show_default=True, help="--drain: give up after this many seconds.")
@click.option("--redeliver", is_flag=True, help="Forget the group's stored offsets first: read the topic again "
                                                "from the beginning (idempotent: changes nothing already written).")
@click.option("--employees/--no-employees", default=True, show_default=True,
              help="Also write esr.mapped-changes into esr.employee (connectors.sink.employee).")
@click.option("-v", "--verbose", is_flag=True)
def main(bootstrap_servers: str | None, database_url: str | None, group: str, batch_size: int, batch_wait: float,
         drain: bool, idle: float, timeout: float, redeliver: bool, employees: bool, verbose: bool) -> None:
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    tune_process()
    settings = Settings()
    from esr.observability import metrics

    metrics.serve(settings.metrics_port)
    bootstrap = _bootstrap(settings, bootstrap_servers)
    url = _database(settings, database_url)
    from esr.kafka.config import client_config
    from esr.kafka.topics import ensure_topics

    ensure_topics(client_config(settings, bootstrap), settings.partitions, settings.replication_factor)
    if redeliver:
        touched = reset_offsets(url, group, CHANGES)
        click.echo(f"forgot the stored offsets of {touched} partition(s) of {CHANGES} for group {group!r}")
    sink = Sink(SinkSettings(bootstrap, url, group_id=group, batch_size=batch_size, batch_wait=batch_wait,
                             kafka_overrides=settings.kafka_overrides))

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        logging.getLogger(__name__).info("signal %d: stopping after the current batch", signum)
        sink.stop()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    started = time.monotonic()
    employee_stop = threading.Event()
    employee_sink = EmployeeSink(bootstrap, url, kafka_overrides=settings.kafka_overrides) if employees else None
    employee_thread = None
    if employee_sink is not None and not drain:
        employee_thread = threading.Thread(target=employee_sink.run, args=(employee_stop,), daemon=True)
        employee_thread.start()
    try:
        with sink:
            if drain:
                sink.drain(idle=idle, timeout=timeout)
                if employee_sink is not None:
                    employee_sink.drain(settings.partitions, timeout)
            else:
                sink.run()
    except TimeoutError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        employee_stop.set()
        if employee_thread is not None:
            employee_thread.join(30)
    stats = sink.stats
    elapsed = time.monotonic() - started
    click.echo(
        f"{stats.messages} messages, {stats.events} events in {stats.batches} batches: {stats.change_events} "
        f"change_event rows, {stats.state_rows} state rows, {stats.cascaded} cascaded, {stats.dead_letters} dead "
        f"letters, {stats.outages} database outage(s); {elapsed:.1f} s"
    )


if __name__ == "__main__":
    sys.exit(main())
