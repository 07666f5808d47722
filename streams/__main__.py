"""`python -m streams worker [--id NAME]`: run one stream-processor worker against ESR_BOOTSTRAP_SERVERS."""

from __future__ import annotations

import os
import socket

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


if __name__ == "__main__":
    main()
