"""The sweep acts only on runs of its own namespace and cluster that it has seen closed, and never on a target
another live drill holds: a sweep in a mistyped namespace, a worker of another namespace, a dev server sharing the
team's results database, a workflow not found, and a stale ledger row all leave live drills alone (real dev
servers, real processes, SQLite)."""

from __future__ import annotations

import asyncio
import os
import sysconfig
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import pytest_asyncio
from google.protobuf.duration_pb2 import Duration
from sqlalchemy import text
from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.workflowservice.v1 import (
    DeleteWorkflowExecutionRequest,
    DescribeNamespaceRequest,
    RegisterNamespaceRequest,
)
from temporalio.client import Client, WorkflowHandle
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from gameday.activities.ledger import FaultLedger
from gameday.activities.locks import TargetLocks
from gameday.activities.store import Store
from gameday.activities.sweep import sweep
from gameday.model.records import FaultState, Phase, RunRecord, StopRequest, Verdict
from gameday.workflows.drill_workflow import DrillWorkflow
from tests.conftest import installed_binary
from tests.harness import (
    HttpService,
    eventually,
    finish,
    running_worker,
    start_drill,
    wait_phase,
    wait_until_async,
    worker_process,
)

pytestmark = pytest.mark.integration


def _pause_drill(name: str, service: HttpService) -> str:
    return f"""
name: {name}
targets:
  svc: {{process: {{pidfile: "{service.pidfile}"}}}}
faults:
  - {{target: svc, action: pause}}
observe: {{duration: 5m}}
"""


async def _stop(handle: WorkflowHandle[DrillWorkflow, RunRecord], name: str) -> None:
    await handle.signal("emergency_stop", StopRequest(reason="end of test", by="test"))
    await finish(handle, name)


async def _gameday(*args: str, **env: str) -> tuple[int, str]:
    """``gameday ARGS`` in a process of its own (the command runs its own event loop); exit code and output."""
    gameday = Path(sysconfig.get_path("scripts")) / "gameday"
    proc = await asyncio.create_subprocess_exec(
        str(gameday),
        *args,
        env={**os.environ, **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode is not None
    return proc.returncode, out.decode()


async def test_a_sweep_in_a_mistyped_namespace_lists_a_live_drill_and_reverts_nothing(
    client: Client, store: Store, service: HttpService
) -> None:
    async with running_worker(client, store) as queue:
        handle = await start_drill(client, queue, _pause_drill("live-typo", service))
        await wait_phase(handle, Phase.OBSERVE)

        code, out = await _gameday(
            "sweep",
            GAMEDAY_TEMPORAL_ADDRESS=client.service_client.config.target_host,
            GAMEDAY_NAMESPACE="typo",
            GAMEDAY_DATABASE_URL=str(store.engine.url),
        )

        assert code == 0, out
        assert "sweeping runs of namespace 'typo'" in out
        assert f"{handle.id}  pause svc: left alone (not this sweep's: a run of namespace 'default'" in out
        assert f"{handle.id}  2 target lock(s): left alone" in out
        assert service.state() == "T"
        assert FaultLedger(store).state(handle.id, 0) == FaultState.APPLIED
        assert {h.run_id for h in TargetLocks(store).holders()} == {handle.id}
        await _stop(handle, "sweep_typo_bystander")
    record = store.get(handle.id)
    assert record is not None and record.verdict == Verdict.ABORTED  # its own rollback, not the sweep's ERROR
    assert all(s.phase != Phase.SWEEP for s in record.steps)


async def _register_namespace(client: Client) -> str:
    name = f"other-{uuid.uuid4().hex[:8]}"
    await client.workflow_service.register_namespace(
        RegisterNamespaceRequest(namespace=name, workflow_execution_retention_period=Duration(seconds=86400))
    )

    async def registered() -> bool:
        await client.workflow_service.describe_namespace(DescribeNamespaceRequest(namespace=name))
        return True

    await eventually(registered, what=f"namespace {name} to be registered")
    return name


async def test_a_worker_started_in_another_namespace_leaves_a_live_drill_alone_at_start_up(
    client: Client, store: Store, service: HttpService, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    namespace = await _register_namespace(client)
    log = tmp_path / "worker.log"
    async with running_worker(client, store) as queue:
        handle = await start_drill(client, queue, _pause_drill("live-other-ns", service))
        await wait_phase(handle, Phase.OBSERVE)

        monkeypatch.setenv("GAMEDAY_NAMESPACE", namespace)
        worker = worker_process(client.service_client.config.target_host, f"other-{queue}", str(store.engine.url), log)
        try:
            left = f"sweep: left pause svc of run {handle.id}: not this sweep's: a run of namespace 'default'"
            await wait_until_async(lambda: left in log.read_text(), what="the start-up sweep's report", within=120)
        finally:
            worker.terminate()
            worker.wait(timeout=30)
        assert service.state() == "T"
        assert FaultLedger(store).state(handle.id, 0) == FaultState.APPLIED
        await _stop(handle, "sweep_other_namespace_bystander")
    assert "sweep: pause svc of run" not in log.read_text()  # nothing reverted


@pytest_asyncio.fixture
async def other_cluster() -> AsyncIterator[Client]:
    """A second Temporal dev server: a laptop's `gameday dev` next to the team's cluster, in the same namespace."""
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=installed_binary("temporal"),
        data_converter=pydantic_data_converter,
        dev_server_log_level="error",
    )
    yield env.client
    await env.shutdown()


async def test_a_sweep_on_another_cluster_sharing_the_results_database_leaves_a_live_drill_alone(
    client: Client, other_cluster: Client, store: Store, service: HttpService
) -> None:
    assert other_cluster.namespace == client.namespace  # only the cluster differs
    async with running_worker(client, store) as queue:
        handle = await start_drill(client, queue, _pause_drill("live-other-cluster", service))
        await wait_phase(handle, Phase.OBSERVE)

        dry = await sweep(store, other_cluster, dry_run=True)
        report = await sweep(store, other_cluster)

        for found in (dry, report):
            assert found.faults == [] and found.locks_released == {}
            assert [(left.run_id, left.what) for left in found.left] == [
                (handle.id, "pause svc"),
                (handle.id, "2 target lock(s)"),
            ]
            assert "not this sweep's: a run of namespace 'default' on cluster:" in found.left[0].reason
        assert service.state() == "T"
        assert {h.run_id for h in TargetLocks(store).holders()} == {handle.id}

        own = await sweep(store, client)  # the drill's own cluster sees it running: its rollback owns the fault
        assert own.faults == [] and own.left[0].reason.startswith("RUNNING")
        await _stop(handle, "sweep_other_cluster_bystander")
    record = store.get(handle.id)
    assert record is not None and record.verdict == Verdict.ABORTED


async def test_a_run_not_found_is_unknown_within_the_retention_and_gone_past_it(
    client: Client, store: Store, service: HttpService
) -> None:
    async with running_worker(client, store) as queue:
        handle = await start_drill(client, queue, _pause_drill("deleted", service))
        await wait_phase(handle, Phase.OBSERVE)
    # `temporal workflow delete`: the workflow ends without its rollback and its history goes at once.
    await client.workflow_service.delete_workflow_execution(
        DeleteWorkflowExecutionRequest(
            namespace=client.namespace, workflow_execution=WorkflowExecution(workflow_id=handle.id)
        )
    )

    async def not_found() -> bool:
        try:
            await handle.describe()
        except RPCError:
            return True
        return False

    await eventually(not_found, what="the workflow to be deleted", within=60)

    unknown = await sweep(store, client)
    assert unknown.faults == []
    assert "not certainly gone" in unknown.left[0].reason
    assert service.state() == "T"

    # Two days later (past the namespace's one-day retention), its history would be purged whatever it was.
    long_ago = datetime.now(UTC) - timedelta(days=2)
    with store.engine.begin() as connection:
        connection.execute(
            text("UPDATE fault_ledger SET updated_at = :t WHERE run_id = :r"), {"t": long_ago, "r": handle.id}
        )
        connection.execute(
            text("UPDATE target_locks SET acquired_at = :t WHERE run_id = :r"), {"t": long_ago, "r": handle.id}
        )
    gone = await sweep(store, client)

    assert [(s.run_id, s.workflow, s.reverted) for s in gone.faults] == [(handle.id, "gone", True)]
    assert gone.locks_released == {handle.id: 2}  # a pidfile target: its path and its process
    await wait_until_async(lambda: service.state() in ("S", "R"), what="the service to run again")


def _flag_drill(name: str, flag: Path, observe: str = "5m") -> str:
    return f"""
name: {name}
targets:
  flag: {{command: {{}}, lock: "flag-file"}}
faults:
  - {{target: flag, action: run, run: "touch {flag}", revert: "rm -f {flag}"}}
observe: {{duration: {observe}}}
"""


async def test_a_stale_row_of_a_closed_run_is_never_reverted_while_another_live_run_holds_its_target(
    client: Client, store: Store, tmp_path: Path
) -> None:
    flag = tmp_path / "flag"
    async with running_worker(client, store) as queue:
        old = await start_drill(client, queue, _flag_drill("old", flag))
        await wait_phase(old, Phase.OBSERVE)
        await old.terminate(reason="runner gone")
        # Its lock went (released by hand, as after a lost release), its ledger row did not: then another drill
        # takes the same target and applies the same fault.
        TargetLocks(store).release(old.id)
        flag.unlink()
        live = await start_drill(client, queue, _flag_drill("live", flag))
        await wait_phase(live, Phase.OBSERVE)
        assert flag.exists()

        report = await sweep(store, client)

        assert report.faults == []
        assert sorted({left.run_id for left in report.left}) == sorted([old.id, live.id])
        held = next(left for left in report.left if left.run_id == old.id)
        assert f"its target is now locked by run {live.id} (drill live, RUNNING" in held.reason
        assert flag.exists()  # the live drill's fault, untouched
        assert FaultLedger(store).state(old.id, 0) == FaultState.APPLIED

        await _stop(live, "sweep_lock_bystander")
        assert not flag.exists()
        after = await sweep(store, client)  # the target is free: the old run's fault is reverted (idempotent)
    assert [(s.run_id, s.reverted) for s in after.faults] == [(old.id, True)]


async def test_a_completed_drill_with_a_stale_ledger_row_is_reconciled_not_reverted_and_its_record_kept(
    client: Client, store: Store, tmp_path: Path
) -> None:
    flag = tmp_path / "flag"
    async with running_worker(client, store) as queue:
        done = await finish(await start_drill(client, queue, _flag_drill("done", flag, observe="200ms")), "sweep_done")
        assert done.verdict == Verdict.RESILIENT
        # A revert whose ledger write was lost, and whose final record never reconciled it.
        with store.engine.begin() as connection:
            connection.execute(text("UPDATE fault_ledger SET state = 'applied' WHERE run_id = :r"), {"r": done.run_id})
        flag.write_text("another drill's fault")

        report = await sweep(store, client)

    assert report.faults == []
    assert [(s.run_id, s.fault.index) for s in report.reconciled] == [(done.run_id, 0)]
    assert flag.exists()
    assert FaultLedger(store).state(done.run_id, 0) == FaultState.REVERTED
    record = store.get(done.run_id)
    assert record is not None and record.verdict == Verdict.RESILIENT
    assert all(s.phase != Phase.SWEEP for s in record.steps)


async def test_a_stale_row_is_never_reverted_while_a_live_run_holds_its_process_under_another_spelling(
    client: Client, store: Store, service: HttpService
) -> None:
    async with running_worker(client, store) as queue:
        old = await start_drill(client, queue, _pause_drill("old-pidfile", service))
        await wait_phase(old, Phase.OBSERVE)
        await old.terminate(reason="runner gone")
        TargetLocks(store).release(old.id)  # a lost release: the row stays, the lock went
        # The same process, spelled by its pid: the live drill's only key is the process identity.
        live = await start_drill(
            client,
            queue,
            f"""
name: live-pid
targets:
  svc: {{process: {{pid: {service.process.pid}}}}}
faults:
  - {{target: svc, action: pause}}
observe: {{duration: 5m}}
""",
        )
        await wait_phase(live, Phase.OBSERVE)

        report = await sweep(store, client)

        assert report.faults == []
        held = next(left for left in report.left if left.run_id == old.id)
        assert f"its target is now locked by run {live.id}" in held.reason
        assert service.state() == "T"  # the live drill's pause, untouched
        await _stop(live, "sweep_pid_bystander")
        # The live drill found the process already stopped (by the old run's fault) and leaves it as it found it.
        assert service.state() == "T"
        after = await sweep(store, client)  # the target is free now: the old run's fault is reverted
    assert [(s.run_id, s.reverted) for s in after.faults] == [(old.id, True)]
    assert service.state() in ("S", "R")
