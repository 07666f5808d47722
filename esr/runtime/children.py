"""Child processes of the pipeline (the stream worker, the mapping stage): stopping them the same way."""

from __future__ import annotations

import signal
import subprocess
from typing import Any


def stop_child(process: subprocess.Popen[Any] | None, timeout: float = 30.0) -> int | None:
    """SIGTERM (the child finishes its step, flushes and commits), SIGKILL if it has not exited after
    `timeout`; the exit code, None when there was no child."""
    if process is None:
        return None
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return process.returncode
