"""Running the stream processor: in this process (`run_worker`) or as a child process (`WorkerProcess`).

`WorkerProcess` is what the tests, the bench and `esr run` use:

    with WorkerProcess(bootstrap, data_dir=tmp, worker_id="w1") as worker:
        worker.wait_ready()
        ...                      # leaving the block sends SIGTERM (clean stop), SIGKILL after a timeout
    worker.kill()                # SIGKILL now, for crash tests

The child is `python -m streams worker`, configured through the environment (ESR_BOOTSTRAP_SERVERS,
ESR_PARTITIONS, ESR_DATA_DIR, ESR_STREAMS_DOMAIN, ESR_STREAMS_*, ESR_METRICS_PORT); its log goes to a file.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

from esr.config import Settings
from esr.kafka.config import client_config
from esr.runtime.children import stop_child
from streams.topics import ensure_stream_topics

READY_LINE = "Worker ready"


def faust_worker(app: Any, loglevel: str) -> Any:
    """A `faust.Worker` without the terminal progress spinner.

    At a log level of WARNING or above Faust's Worker installs a spinner that sets the *root logger* to DEBUG
    (so that every log call spins it); every `log.debug` in aiokafka and Faust then builds a LogRecord, one
    per message sent: about 10 % of the worker's time, measured. Our workers log to files, not terminals.
    """
    import faust

    class Worker(faust.Worker):
        def on_setup_root_logger(self, logger: logging.Logger, level: int) -> None:
            self.spinner = None
            super().on_setup_root_logger(logger, level)

    return Worker(app, loglevel=loglevel, redirect_stdouts=False, quiet=True)


#: gen-0 threshold and the two older generations': a batch allocates ~100 objects per record (decoded events,
#: domain values, change dicts), almost all short-lived; at Python's default (700) the collector ran every few
#: records and its full collections walked Faust's buffered events: ~20 % of the worker's CPU, measured.
GC_THRESHOLD = (50_000, 20, 100)


def tune_gc() -> None:
    """Collect less often (`ESR_STREAMS_GC_THRESHOLD=a,b,c` overrides) and move start-up objects out of the
    collector's way (`gc.freeze`)."""
    import gc

    raw = os.environ.get("ESR_STREAMS_GC_THRESHOLD")
    threshold = tuple(int(part) for part in raw.split(",")) if raw else GC_THRESHOLD
    gc.set_threshold(*threshold)
    gc.collect()
    gc.freeze()


def run_worker(settings: Settings, *, worker_id: str, loglevel: str = "info") -> None:
    """Create the topics if missing, then run the worker until SIGTERM/SIGINT (blocks). With ESR_METRICS_PORT,
    Prometheus metrics on 127.0.0.1:<port>/metrics (`streams.metrics`)."""
    from esr.observability.metrics import serve
    from streams.app import create_app

    bootstrap = settings.bootstrap_servers
    if not bootstrap:
        raise SystemExit("ESR_BOOTSTRAP_SERVERS is not set: which Kafka should the worker use?")
    ensure_stream_topics(client_config(settings, bootstrap), settings.partitions, settings.replication_factor)
    app = create_app(settings, bootstrap, worker_id=worker_id)
    serve(settings.metrics_port)
    tune_gc()
    faust_worker(app, loglevel).execute_from_commandline()


class WorkerProcess:
    """A worker in a child process; a context manager that stops it (SIGTERM, then SIGKILL) on exit."""

    def __init__(
        self,
        bootstrap_servers: str,
        *,
        data_dir: Path,
        worker_id: str = "worker-1",
        partitions: int | None = None,
        domain: str | None = None,
        env: Mapping[str, str] | None = None,
        loglevel: str = "info",
    ) -> None:
        self.worker_id = worker_id
        self.data_dir = data_dir
        self.log_path = data_dir / f"{worker_id}.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.env = dict(os.environ)
        self.env.update({
            "ESR_BOOTSTRAP_SERVERS": bootstrap_servers,
            "ESR_DATA_DIR": str(data_dir),
            "PYTHONUNBUFFERED": "1",
        })
        if partitions is not None:
            self.env["ESR_PARTITIONS"] = str(partitions)
        if domain is not None:
            self.env["ESR_STREAMS_DOMAIN"] = domain
        self.env.update(env or {})
        self.loglevel = loglevel
        #: interpreter options before `-m streams`, e.g. ["-m", "cProfile", "-o", "worker.prof"]
        self.python_args: list[str] = []

    def start(self) -> WorkerProcess:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log_file:
            self.process = subprocess.Popen(
                [sys.executable, *self.python_args, "-m", "streams", "worker", "--id", self.worker_id,
                 "--loglevel", self.loglevel],
                stdout=log_file,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=self.env,
                cwd=Path(__file__).resolve().parent.parent,
            )
        return self

    @property
    def pid(self) -> int:
        assert self.process is not None, "not started"
        return self.process.pid

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def wait_ready(self, timeout: float = 60.0, *, times: int = 1) -> None:
        """Wait until the worker has finished (re)covering its tables `times` times since it started."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                raise RuntimeError(f"worker {self.worker_id} exited ({self.returncode}); log:\n{self.log_tail()}")
            if self.log_text().count(READY_LINE) >= times:
                return
            time.sleep(0.1)
        raise TimeoutError(f"worker {self.worker_id} not ready after {timeout:.0f} s; log:\n{self.log_tail()}")

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    @property
    def returncode(self) -> int | None:
        return None if self.process is None else self.process.poll()

    def stop(self, timeout: float = 30.0) -> int | None:
        """SIGTERM (Faust stops cleanly and commits), SIGKILL if it has not exited after `timeout`."""
        return stop_child(self.process, timeout)

    def kill(self) -> None:
        """SIGKILL: no commit, no flush; what a crash looks like."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def __enter__(self) -> WorkerProcess:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
