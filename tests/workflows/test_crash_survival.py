"""The worker running a drill is SIGKILLed while a fault is held: a new worker finishes the drill and reverts it."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import sysconfig
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from temporalio.client import Client

from activities.store import Store
from tests.harness import HttpService, start_drill, wait_until, wait_until_async
from workflows.drill_workflow import DrillWorkflow
from workflows.records import FaultState, Phase, Verdict

pytestmark = pytest.mark.integration


def _worker(address: str, queue: str, database_url: str, log: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "GAMEDAY_TEMPORAL_ADDRESS": address,
        "GAMEDAY_TASK_QUEUE": queue,
        "GAMEDAY_DATABASE_URL": database_url,
    }
    gameday = Path(sysconfig.get_path("scripts")) / "gameday"
    command = [str(gameday)] if gameday.exists() else [sys.executable, "-m", "cli.main"]
    with open(log, "ab") as out:
        return subprocess.Popen([*command, "worker"], env=env, stdout=out, stderr=subprocess.STDOUT)


@pytest.fixture
def service(tmp_path: Path) -> Iterator[HttpService]:
    svc = HttpService.start(tmp_path)
    yield svc
    svc.stop()


async def test_worker_killed_mid_observation_a_new_worker_finishes_the_drill_and_reverts_the_fault(
    client: Client, service: HttpService, tmp_path: Path
) -> None:
    queue = f"crash-{uuid.uuid4()}"
    database_url = f"sqlite:///{tmp_path / 'results.db'}"
    address = client.service_client.config.target_host
    drill = f"""
name: crash-mid-observe
targets:
  svc: {{process: {{pidfile: "{service.pidfile}"}}}}
hypothesis:
  - name: service answers
    http: {{url: "{service.url}", timeout: 300ms}}
faults:
  - {{target: svc, action: pause}}
observe: {{duration: 3s, interval: 250ms}}
recovery: {{within: 10s, interval: 100ms}}
"""
    first = _worker(address, queue, database_url, tmp_path / "worker-1.log")
    second = None
    try:
        handle = await start_drill(client, queue, drill)
        await wait_until_async(lambda: service.state() == "T", what="the fault to be applied")
        for _ in range(500):
            if (await handle.query(DrillWorkflow.status)).phase == Phase.OBSERVE:
                break
            await asyncio.sleep(0.02)
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
        assert service.state() == "T", "the fault is still applied once its worker is dead"

        second = _worker(address, queue, database_url, tmp_path / "worker-2.log")
        record = await handle.result()
    finally:
        for proc in (first, second):
            if proc is not None and proc.poll() is None:
                proc.terminate()
                proc.wait(timeout=15)

    wait_until(lambda: service.state() in ("S", "R"), what="the service to run again", timeout=1)
    assert record.verdict == Verdict.DEVIATED, record.summary
    assert [f.state for f in record.faults] == [FaultState.REVERTED]
    store = Store(database_url)
    saved = store.get(record.run_id)
    assert saved is not None and saved.verdict == Verdict.DEVIATED
    assert store.counts(record.run_id)["runs"] == 1 and store.counts(record.run_id)["faults"] == 1
