"""The deployment examples under deploy/ are checked by the tools that will read them.

The systemd unit goes through `systemd-analyze verify` and the compose file through
`docker-compose config` (neither needs a running engine). The image itself cannot be built here:
no registry is reachable to pull its base image, and no Docker engine runs. So the Dockerfile is
checked for what the rest of the deployment relies on: the command, port, health check and user.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from streamer.api.app import create_app
from streamer.config import Settings
from streamer.service import Service

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"
INSTALLED = "/opt/streamer/bin/streamer"


def tool(*names: str) -> str:
    """The first of `names` on PATH; missing is a skip here and a failure in CI."""
    for name in names:
        found = shutil.which(name)
        if found is not None:
            return found
    if os.environ.get("CI"):
        pytest.fail(f"{' or '.join(names)} is required in CI")
    pytest.skip(f"{' or '.join(names)} is not installed")


def test_the_systemd_unit_verifies(tmp_path: Path) -> None:
    """`systemd-analyze verify` accepts the unit without a warning once its `streamer` exists
    (this checkout's own stands in for the one installed under /opt/streamer)."""
    analyze = tool("systemd-analyze")
    unit = (DEPLOY / "streamer.service").read_text()
    assert f"ExecStart={INSTALLED} run\n" in unit
    here = Path(sys.executable).with_name("streamer")
    (tmp_path / "streamer.service").write_text(unit.replace(INSTALLED, str(here)))

    result = subprocess.run(
        [analyze, "verify", str(tmp_path / "streamer.service")],
        capture_output=True,
        text=True,
        check=False,
    )

    assert (result.returncode, result.stdout + result.stderr) == (0, "")


def compose_config(token: str | None) -> subprocess.CompletedProcess[str]:
    """`docker-compose config` on the file, with STREAMER_TOKEN set to `token` or unset."""
    env = {key: value for key, value in os.environ.items() if key != "STREAMER_TOKEN"}
    if token is not None:
        env["STREAMER_TOKEN"] = token
    return subprocess.run(
        [tool("docker-compose"), "--file", str(DEPLOY / "compose.yaml"), "config"],
        capture_output=True,
        text=True,
        check=False,
        env=env,
    )


def test_the_compose_file_runs_streamer_beside_postgresql_and_nats() -> None:
    """`docker-compose config` accepts the file: streamer uses the PostgreSQL service for its
    settings and the NATS service as a sink, and waits for PostgreSQL to be healthy."""
    result = compose_config("a-secret")

    assert result.returncode == 0, result.stderr
    config = result.stdout
    services = set(re.findall(r"^  (\w+):$", config.split("\nvolumes:")[0], re.MULTILINE))
    assert services == {"streamer", "postgres", "nats"}
    assert "STREAMER_DATABASE_URL: postgresql://streamer:streamer@postgres:5432/streamer" in config
    assert "STREAMER_SINKS: nats://nats:4222" in config
    assert "STREAMER_TOKEN: a-secret" in config
    assert "condition: service_healthy" in config
    assert "--jetstream" in config


def test_the_compose_file_will_not_start_without_a_token() -> None:
    """Without STREAMER_TOKEN the compose file refuses, saying what to set: inside the container
    the API listens beyond loopback, where a token is required."""
    result = compose_config(None)

    assert result.returncode != 0
    assert "set STREAMER_TOKEN" in result.stderr


def test_the_image_runs_the_service_as_the_deployment_expects(tmp_path: Path) -> None:
    """The Dockerfile builds the wheel, runs `streamer run` as a non-root user on the port the
    compose file publishes, and its health check asks an endpoint the API has."""
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    instructions = re.findall(r"^([A-Z]+) ((?:.*\\\n)*.*)$", dockerfile, re.MULTILINE)
    last = dict(instructions)

    assert json.loads(last["CMD"]) == ["streamer", "run"]
    assert last["USER"] == "streamer"
    assert "STREAMER_PORT=8000" in last["ENV"]
    assert "STREAMER_HOST=0.0.0.0" in last["ENV"]
    assert last["EXPOSE"] == "8000"
    assert '"127.0.0.1:8000:8000"' in (DEPLOY / "compose.yaml").read_text()
    (health_url,) = re.findall(r"http://127\.0\.0\.1:8000(/[\w/]+)", last["HEALTHCHECK"])
    service = Service(Settings(database_url=f"sqlite:///{tmp_path / 'unused.db'}"))
    paths = {getattr(route, "path", None) for route in create_app(service).routes}
    assert health_url in paths
    ignored = (DEPLOY / "Dockerfile.dockerignore").read_text().split()
    assert {".venv", ".git"} <= set(ignored)
