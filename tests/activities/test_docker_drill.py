"""A whole drill on a real container: DrillWorkflow pauses an HTTP container, observes the outage, unpauses it,
and verifies recovery. The docker provider plugs into apply_fault/revert_fault: no workflow change needed."""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.client import Client

from gameday.activities.store import Store
from gameday.model.records import FaultState, Phase, Verdict
from tests.docker_support import Containers
from tests.harness import finish, running_worker, start_drill, wait_until_async

pytestmark = pytest.mark.integration


async def test_a_drill_pausing_a_container_deviates_then_recovers_after_the_unpause(
    client: Client, containers: Containers, tmp_path: Path
) -> None:
    web = await containers.http()
    drill = f"""
name: docker-pause
targets:
  web: {{docker: {{container: {web.name}}}}}
hypothesis:
  - name: web answers
    http: {{url: "http://127.0.0.1:{web.port}/", timeout: 300ms}}
    samples: 2
faults:
  - {{target: web, action: pause}}
observe: {{duration: 2s, interval: 250ms}}
recovery: {{within: 10s, interval: 100ms}}
"""
    store = Store(f"sqlite:///{tmp_path / 'results.db'}")
    async with running_worker(client, store) as queue:
        handle = await start_drill(client, queue, drill)
        await wait_until_async(lambda: web.status() == "paused", what="the drill to pause the container")
        record = await finish(handle, "docker_pause")

    assert record.verdict == Verdict.DEVIATED, record.summary
    assert web.status() == "running"
    [fault] = record.faults
    assert fault.state == FaultState.REVERTED and fault.kind == "docker"
    assert fault.changed["containers"] == web.id and "unpaused" in fault.output
    observed = [p for p in record.probes if p.phase == Phase.OBSERVE]
    assert observed and observed[0].failures > 0
    assert all(p.ok for p in record.probes if p.phase == Phase.VERIFY)
