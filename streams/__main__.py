"""`python -m streams worker [--id NAME]`: run one stream-processor worker against ESR_BOOTSTRAP_SERVERS;
`python -m streams mapping`: the mapping stage (streams.mapping_stage)."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import click

from esr.config import Settings


@click.group()
def main() -> None:
    """The ESR stream processor (Faust)."""


@main.command()
@click.option("--id", "worker_id", default=None,
              help="Worker name: its data directory and log name (default: host-pid).")
@click.option("--loglevel", default="info", show_default=True)
def worker(worker_id: str | None, loglevel: str) -> None:
    """Run a worker until SIGTERM / Ctrl-C; more workers with the same broker share the partitions."""
    from streams.worker import run_worker

    run_worker(Settings(), worker_id=worker_id or f"{socket.gethostname()}-{os.getpid()}", loglevel=loglevel)


@main.command()
@click.option("--loglevel", default="info", show_default=True)
@click.option("--status-file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Keep the stage's positions in this file (what `esr run` reads to know it has caught up).")
def mapping(loglevel: str, status_file: Path | None) -> None:
    """Run the mapping stage (one for the cluster) until SIGTERM / Ctrl-C: esr.employees and the reference
    replicas -> each trust's template -> esr.mapped-changes (streams.mapping_stage)."""
    import logging
    import signal
    import threading
    from types import FrameType

    from esr.kafka.config import client_config
    from streams.mapping_stage import MappingStage
    from streams.worker import tune_gc

    logging.basicConfig(level=loglevel.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = Settings()
    if not settings.bootstrap_servers:
        raise click.ClickException("set ESR_BOOTSTRAP_SERVERS")
    stop = threading.Event()

    def on_signal(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    tune_gc()  # the directory holds every employee's rows: full collections would walk them all, often
    MappingStage(client_config(settings, settings.bootstrap_servers), status_path=status_file).run(stop)


if __name__ == "__main__":
    main()
