"""Faults that expire: a worker that cannot reach Temporal for the drill's ``fault_lease`` reverts what it holds.

A real dev server started here (so it can be SIGSTOPped: unreachable, its port still open), a real worker process,
a real sleeping process paused by the drill; the results database is a SQLite file the test reads back.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from temporalio.client import WorkflowHandle

from gameday.activities.fault_lease import LEASE_BY, LEASE_EXPIRED
from gameday.config.app import GamedayConfig
from gameday.model.records import FaultState, Phase, RunRecord, Verdict
from gameday.worker.client import connect
from gameday.worker.devserver import DevServer, free_port
from gameday.workflows.drill_workflow import DrillWorkflow
from tests.harness import WorkerProcesses, finish, process_state, sleeping_process, start_drill, wait_phase, wait_until

pytestmark = pytest.mark.integration

LEASE = 3.0
"""The drills' ``fault_lease`` in seconds: short, so the test is."""
SHORT_OUTAGE = 1.0
"""Well inside the lease: the worker asks every second, each question waiting up to a second."""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevServer]:
    """One dev server for the module (each test has its own task queue and worker); every test leaves it running."""
    db_file = tmp_path_factory.mktemp("lease-server") / "temporal.db"
    dev = DevServer(db_file=db_file, port=free_port(), ui_port=free_port()).start()
    yield dev
    assert dev.process is not None
    os.kill(dev.process.pid, signal.SIGCONT)
    dev.stop()


@dataclass
class LeaseRun:
    """One test's parts: the server, a real sleeping process (the drill's target), a worker process, its database."""

    server: DevServer
    target: subprocess.Popen[bytes]
    pidfile: Path
    database: Path
    workers: WorkerProcesses

    @property
    def server_pid(self) -> int:
        assert self.server.process is not None
        return self.server.process.pid

    async def observing(self, drill: str) -> WorkflowHandle[DrillWorkflow, RunRecord]:
        """Start ``drill`` and return once its fault holds the target and it observes."""
        client = await connect(GamedayConfig(temporal_address=self.server.address), wait_ready=30)
        handle = await start_drill(client, self.workers.queue, drill)
        wait_until(lambda: process_state(self.target.pid) == "T", what="the fault to be applied")
        await wait_phase(handle, Phase.OBSERVE)
        return handle


@pytest.fixture
def lease_run(server: DevServer, tmp_path: Path) -> Iterator[LeaseRun]:
    """A worker process on a fresh task queue of the module's server, and a sleeping target; all stopped after."""
    database = tmp_path / "results.db"
    workers = WorkerProcesses(server.address, f"lease-{uuid.uuid4()}", f"sqlite:///{database}", tmp_path)
    with sleeping_process(tmp_path) as (target, pidfile):
        workers.start()
        try:
            yield LeaseRun(server, target, pidfile, database, workers)
        finally:
            assert server.process is not None
            os.kill(server.process.pid, signal.SIGCONT)  # never leave it stopped for the next test
            workers.stop_all()


def drill_text(name: str, pidfile: Path) -> str:
    return f"""
name: {name}
fault_lease: {LEASE:g}s
max_duration: 5m
targets:
  sleeper: {{process: {{pidfile: "{pidfile}"}}}}
faults:
  - {{target: sleeper, action: pause}}
observe: {{duration: 60s}}
"""


def ledger(database: Path, run_id: str) -> list[tuple[int, str, str]]:
    with sqlite3.connect(database) as db:
        query = "SELECT `index`, state, revert_reason FROM fault_ledger WHERE run_id = ? ORDER BY `index`"
        return list(db.execute(query, (run_id,)))


async def test_temporal_unreachable_longer_than_the_lease_the_worker_reverts_and_the_run_ends_aborted_by_lease(
    lease_run: LeaseRun,
) -> None:
    run = lease_run
    handle = await run.observing(drill_text("lease-expires", run.pidfile))

    os.kill(run.server_pid, signal.SIGSTOP)  # the control plane is gone; its port still accepts
    try:
        wait_until(
            lambda: process_state(run.target.pid) != "T",
            what="the worker to revert the fault once its lease expired",
            timeout=LEASE + 5,
        )
        assert process_state(run.server_pid) == "T", "reverted while the server was still unreachable"
    finally:
        os.kill(run.server_pid, signal.SIGCONT)

    record = await finish(handle, "lease_expired", within=120)

    assert process_state(run.target.pid) != "T"
    assert record.verdict == Verdict.ABORTED, record.summary
    assert record.stop is not None and record.stop.by == LEASE_BY
    assert record.stop.reason.startswith(LEASE_EXPIRED), record.stop.reason
    assert [f.state for f in record.faults] == [FaultState.REVERTED]
    # One revert on record, the worker's, with its reason: the drill's own revert afterwards changed nothing.
    assert ledger(run.database, record.run_id) == [(0, FaultState.REVERTED.value, LEASE_EXPIRED)]


async def test_temporal_unreachable_shorter_than_the_lease_changes_nothing(lease_run: LeaseRun) -> None:
    run = lease_run
    handle = await run.observing(drill_text("lease-holds", run.pidfile).replace("duration: 60s", "duration: 8s"))

    os.kill(run.server_pid, signal.SIGSTOP)
    try:
        await asyncio.sleep(SHORT_OUTAGE)  # the outage itself, not a wait for a condition
        assert process_state(run.target.pid) == "T", "the fault must stay while the lease holds"
    finally:
        os.kill(run.server_pid, signal.SIGCONT)

    record = await finish(handle, "lease_held", within=120)

    assert process_state(run.target.pid) != "T"
    assert record.verdict == Verdict.RESILIENT, record.summary
    assert record.stop is None
    assert ledger(run.database, record.run_id) == [(0, FaultState.REVERTED.value, "")]


async def test_an_observation_that_ended_during_the_outage_still_ends_aborted_by_lease(lease_run: LeaseRun) -> None:
    run = lease_run
    observe = 4.0
    drill = drill_text("lease-observe-ends", run.pidfile).replace("duration: 60s", f"duration: {observe:g}s")
    handle = await run.observing(drill)
    observing = time.monotonic()

    os.kill(run.server_pid, signal.SIGSTOP)
    try:
        wait_until(lambda: process_state(run.target.pid) != "T", what="the lease's revert", timeout=LEASE + 5)
        # The outage outlasts the observation: its timer fires, and the rollback starts, the moment the
        # server is back, racing the worker's next check.
        await asyncio.sleep(max(0.0, observing + observe + 1 - time.monotonic()))
    finally:
        os.kill(run.server_pid, signal.SIGCONT)

    record = await finish(handle, "lease_expired_observation_over", within=120)

    assert record.verdict == Verdict.ABORTED, record.summary
    assert record.stop is not None and record.stop.by == LEASE_BY
    assert ledger(run.database, record.run_id) == [(0, FaultState.REVERTED.value, LEASE_EXPIRED)]
