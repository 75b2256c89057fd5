"""``gameday workers`` says what each site can do (issue 14): two real ``gameday worker --site`` processes on one
dev server, one reaching the machine's Docker engine, one whose ``DOCKER_HOST`` names a closed socket."""

from __future__ import annotations

import os
import signal
import subprocess
import sysconfig
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from gameday.model.sites import Capabilities, capabilities_of_identity, site_of_identity, worker_identity
from tests.docker_support import _missing, _ping
from tests.harness import wait_until

pytestmark = pytest.mark.integration


def test_capabilities_ride_in_the_identity_before_the_site_and_an_old_identity_says_unknown() -> None:
    identity = worker_identity("db-host-1", Capabilities(docker=False, proxy=True, version="0.1.0"))
    assert site_of_identity(identity) == "db-host-1"  # what an older CLI reads is unchanged
    assert capabilities_of_identity(identity) == Capabilities(docker=False, proxy=True, version="0.1.0")
    assert capabilities_of_identity("123@host site=db-host-1") == Capabilities()
    assert capabilities_of_identity("123@host") == Capabilities()


@pytest.fixture
def two_sites(dev_env: object, tmp_path: Path) -> Iterator[dict[str, str]]:
    if _ping() is None:
        _missing("a Docker engine")
    from temporalio.testing import WorkflowEnvironment

    assert isinstance(dev_env, WorkflowEnvironment)
    env = {
        **os.environ,
        "GAMEDAY_TEMPORAL_ADDRESS": dev_env.client.service_client.config.target_host,
        "GAMEDAY_TASK_QUEUE": f"test-caps-{uuid.uuid4()}",
        "GAMEDAY_DATABASE_URL": f"sqlite:///{tmp_path / 'results.db'}",
        "GAMEDAY_DATA_DIR": str(tmp_path / "data"),
    }
    gameday = str(Path(sysconfig.get_path("scripts")) / "gameday")
    closed = tmp_path / "no-engine.sock"  # nothing listens there
    workers = []
    try:
        for site, extra in (("with-docker", {}), ("no-docker", {"DOCKER_HOST": f"unix://{closed}"})):
            log = tmp_path / f"{site}.log"
            with log.open("wb") as out:
                proc = subprocess.Popen(
                    [gameday, "worker", "--site", site], env={**env, **extra}, stdout=out, stderr=subprocess.STDOUT
                )
            workers.append((proc, log))
        for _proc, log in workers:
            wait_until(lambda log=log: "worker polling task queue" in log.read_text(), what=str(log), timeout=60)
        yield env
    finally:
        for proc, _ in workers:
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=10)


def test_gameday_workers_says_which_site_reaches_docker_and_hosts_proxies(two_sites: dict[str, str]) -> None:
    gameday = str(Path(sysconfig.get_path("scripts")) / "gameday")
    done = subprocess.run([gameday, "workers"], env=two_sites, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    site_lines = {line.split(":", 1)[0]: line for line in lines if line.startswith("site ")}
    assert "docker: yes, proxy: yes, version " in site_lines["site with-docker"], done.stdout
    assert "docker: no, proxy: yes, version " in site_lines["site no-docker"], done.stdout
    worker_lines = [line for line in lines if line.startswith("  worker ")]
    assert len(worker_lines) == 2 and all("caps=" in line for line in worker_lines), done.stdout
