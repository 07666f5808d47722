"""The deployment file is valid and runs every part of the pipeline (`docker compose config`).

Needs a compose client: Debian's `docker-compose` (installed by `.ci/run`) or `docker compose`; the test
skips, saying why, without one. No container is started.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _compose() -> list[str] | None:
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    if shutil.which("docker"):
        probe = subprocess.run(["docker", "compose", "version"], capture_output=True, check=False)
        if probe.returncode == 0:
            return ["docker", "compose"]
    return None


def test_compose_file_is_valid_and_runs_the_whole_pipeline() -> None:
    compose = _compose()
    if compose is None:
        pytest.skip("no compose client (apt-get install docker-compose)")
    run = [*compose, "--file", str(ROOT / "docker-compose.yml")]
    checked = subprocess.run([*run, "config", "--quiet"], capture_output=True, text=True, check=False)
    assert checked.returncode == 0, checked.stderr
    services = subprocess.run([*run, "--profile", "tools", "config", "--services"], capture_output=True,
                              text=True, check=True).stdout.split()
    assert set(services) == {"kafka", "postgres", "init", "worker", "mapping", "sink", "web", "watch", "esr"}
    rendered = subprocess.run([*run, "config"], capture_output=True, text=True, check=True).stdout
    assert "KAFKA_PROCESS_ROLES: broker,controller" in rendered  # KRaft, no ZooKeeper
    assert rendered.count("ESR_BOOTSTRAP_SERVERS: kafka:9092") >= 6
    assert rendered.count("ESR_METRICS_PORT") == 3  # worker, sink, watch
