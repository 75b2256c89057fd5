"""Target locks between drills and the orphan sweep, on a real dev server with real processes and SQLite."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from temporalio.client import Client

from activities.locks import TargetLocks
from activities.store import Store
from activities.sweep import sweep
from tests.harness import (
    HttpService,
    finish,
    running_worker,
    start_drill,
    wait_phase,
    wait_until_async,
    worker_process,
)
from workflows.records import FaultState, Phase, StepStatus, StopRequest, Verdict

pytestmark = pytest.mark.integration


def _pause_drill(name: str, service: HttpService, *, observe: str = "5m", lock_wait: str = "0s") -> str:
    return f"""
name: {name}
lock_wait: {lock_wait}
targets:
  svc: {{process: {{pidfile: "{service.pidfile}"}}}}
faults:
  - {{target: svc, action: pause}}
observe: {{duration: {observe}}}
"""


async def test_a_second_drill_on_a_held_target_is_refused_naming_the_holder_until_rollback_releases_it(
    client: Client, store: Store, service: HttpService
) -> None:
    async with running_worker(client, store) as queue:
        first = await start_drill(client, queue, _pause_drill("holder", service))
        await wait_phase(first, Phase.OBSERVE)
        second = await finish(await start_drill(client, queue, _pause_drill("latecomer", service)), "lock_refused")
        assert second.verdict == Verdict.ERROR
        assert f"is held by run {first.id} (drill holder" in second.summary
        assert second.faults == [] and service.state() == "T"  # the holder's fault, untouched by the latecomer

        await first.signal("emergency_stop", StopRequest(reason="done", by="test"))
        assert (await finish(first, "lock_holder")).verdict == Verdict.ABORTED
        assert TargetLocks(store).holders() == []
        third = await finish(
            await start_drill(client, queue, _pause_drill("next", service, observe="200ms")), "lock_next"
        )
    assert third.verdict == Verdict.RESILIENT, third.summary
    assert service.state() in ("S", "R")


async def test_a_drill_with_lock_wait_waits_for_the_holder_to_finish(
    client: Client, store: Store, service: HttpService
) -> None:
    async with running_worker(client, store) as queue:
        first = await start_drill(client, queue, _pause_drill("first", service, observe="1500ms"))
        await wait_phase(first, Phase.OBSERVE)
        second = await start_drill(client, queue, _pause_drill("patient", service, observe="200ms", lock_wait="1m"))
        first_record = await finish(first, "lock_first")
        second_record = await finish(second, "lock_waited")
    assert first_record.verdict == second_record.verdict == Verdict.RESILIENT
    first_reverted = first_record.faults[0].reverted_at
    second_applied = second_record.faults[0].applied_at
    assert first_reverted is not None and second_applied is not None and second_applied > first_reverted


async def test_sweep_reverts_the_fault_of_a_terminated_drill_records_it_and_releases_its_lock(
    client: Client, store: Store, service: HttpService
) -> None:
    async with running_worker(client, store) as queue:
        handle = await start_drill(client, queue, _pause_drill("terminated", service))
        await wait_phase(handle, Phase.OBSERVE)
        alive = await start_drill(client, queue, _other_drill())
        await wait_phase(alive, Phase.OBSERVE)
        # terminate() runs none of the workflow's code: no rollback. This is what the sweep is for.
        await handle.terminate(reason="runner gone")
        await asyncio.sleep(0.3)
        assert service.state() == "T"

        dry = await sweep(store, client, dry_run=True)
        assert [(s.run_id, s.workflow, s.reverted) for s in dry.faults] == [(handle.id, "TERMINATED", False)]
        assert service.state() == "T"

        report = await sweep(store, client)
        assert [(s.run_id, s.fault.label, s.reverted) for s in report.faults] == [(handle.id, "pause svc", True)]
        assert report.locks_released == {handle.id: 1}
        await wait_until_async(lambda: service.state() in ("S", "R"), what="the service to run again")
        assert (await sweep(store, client)).faults == []  # nothing twice

        await alive.signal("emergency_stop", StopRequest(reason="end of test", by="test"))
        await finish(alive, "sweep_bystander")

    record = store.get(handle.id)
    assert record is not None and record.verdict == Verdict.ERROR
    assert "without its rollback" in record.summary
    assert record.faults[0].state == FaultState.REVERTED and record.faults[0].output == "reverted by gameday sweep"
    step = next(s for s in record.steps if s.phase == Phase.SWEEP)
    assert step.status == StepStatus.OK and "workflow TERMINATED: 1/1" in step.detail


def _other_drill() -> str:
    return """
name: still-running
targets:
  sh: {command: {}}
faults:
  - {target: sh, action: run, run: "true", revert: "true"}
observe: {duration: 5m}
"""


async def test_a_worker_sweeps_orphans_when_it_starts(
    client: Client, store: Store, service: HttpService, tmp_path: Path
) -> None:
    async with running_worker(client, store) as queue:
        handle = await start_drill(client, queue, _pause_drill("orphaned", service))
        await wait_phase(handle, Phase.OBSERVE)
        await handle.terminate(reason="runner gone")
    assert service.state() == "T"
    address = client.service_client.config.target_host
    database_url = str(store.engine.url)
    worker = worker_process(address, f"sweeper-{handle.id}", database_url, tmp_path / "worker.log")
    try:
        # Bounds, not claims: a worker process takes seconds to import on a loaded machine.
        await wait_until_async(
            lambda: service.state() in ("S", "R"), what="the start-up sweep to revert the fault", within=120
        )
        await wait_until_async(lambda: _swept(store, handle.id), what="the sweep to be recorded", within=30)
    finally:
        worker.terminate()
        worker.wait(timeout=15)
    assert "sweep: pause svc of run " + handle.id in (tmp_path / "worker.log").read_text()


def _swept(store: Store, run_id: str) -> bool:
    record = store.get(run_id)
    return record is not None and any(s.phase == Phase.SWEEP for s in record.steps)
