"""Crashes mid-drill: the worker SIGKILLed at each phase boundary, the Temporal server restarted; the drill still
finishes, every fault is reverted, and SQL holds one row per run and fault."""

from __future__ import annotations

import asyncio
import sqlite3
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from temporalio.client import Client

from gameday.activities.locks import TargetLocks
from gameday.activities.store import Store
from gameday.config.app import GamedayConfig
from gameday.model.records import FaultState, Phase, Verdict
from gameday.worker.client import connect
from gameday.worker.devserver import DevServer, free_port
from gameday.workflows.drill_workflow import DrillWorkflow
from tests.harness import (
    HttpService,
    WorkerProcesses,
    eventually,
    finish,
    start_drill,
    wait_phase,
    wait_until,
    wait_until_async,
)

pytestmark = pytest.mark.integration


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
observe:
  duration: 3s
  interval: 250ms
  watch: [{{name: answers, http: {{url: "{service.url}", timeout: 300ms}}}}]
recovery: {{within: 10s, interval: 100ms}}
"""
    workers = WorkerProcesses(address, queue, database_url, tmp_path)
    first = workers.start()
    try:
        handle = await start_drill(client, queue, drill)
        await wait_until_async(lambda: service.state() == "T", what="the fault to be applied")
        await wait_phase(handle, Phase.OBSERVE)
        killed_at = datetime.now(UTC)
        workers.kill(first)
        assert service.state() == "T", "the fault is still applied once its worker is dead"

        workers.start()
        record = await handle.result()
    finally:
        workers.stop_all()

    wait_until(lambda: service.state() in ("S", "R"), what="the service to run again", timeout=1)
    assert record.verdict == Verdict.DEVIATED, record.summary
    assert [f.state for f in record.faults] == [FaultState.REVERTED]
    store = Store(database_url)
    saved = store.get(record.run_id)
    assert saved is not None and saved.verdict == Verdict.DEVIATED
    assert store.counts(record.run_id)["runs"] == 1 and store.counts(record.run_id)["faults"] == 1
    # The watch (observe.watch) was retried on the new worker from its last heartbeat (the killed one returned
    # nothing): what the killed worker saw first, the service answering before the fault, is kept.
    [answers] = record.watch
    assert answers.changes[0].held and answers.changes[0].at < killed_at
    assert any(not change.held for change in answers.changes)  # and the pause was seen


# --- SIGKILL at each phase boundary ---------------------------------------------------------------------

_WAIT = "touch {reached}; while [ ! -e {gate} ]; do sleep 0.05; done"


def _boundary_drill(phase: Phase, tmp_path: Path, *, pipeline: bool = False) -> str:
    """A command drill that parks in ``phase`` (touching ``reached``) until the test opens ``gate``.

    With ``pipeline``, the apply parks inside a pipeline member (``{ park; apply; } | cat``), which outlives a
    shell killed with its worker unless everything the command started dies with it.
    """
    reached, gate, log, marker = (tmp_path / n for n in ("reached", "gate", "log", "marker"))
    park = _WAIT.format(reached=reached, gate=gate)
    once = f"[ -e {gate} ] || {{ {park}; }}"
    probe = {
        Phase.PREFLIGHT: once,
        Phase.VERIFY: f"if grep -q r {log} 2>/dev/null; then {once}; fi",
    }.get(phase, "true")
    apply = f"{park}; " if phase == Phase.INJECT else ""
    revert = f"{once}; " if phase == Phase.ROLLBACK else ""
    run = f"{apply}echo a >> {log}; touch {marker}"
    if pipeline:
        run = f"{{ {run}; }} | cat"
    return f"""
name: crash-in-{phase.value}
targets:
  sh: {{command: {{}}}}
hypothesis:
  - name: check
    command: {{run: "{probe}", timeout: 60s}}
faults:
  - target: sh
    action: run
    run: "{run}"
    revert: "{revert}echo r >> {log}; rm -f {marker}"
    timeout: 60s
observe: {{duration: 500ms, interval: 100ms}}
recovery: {{within: 60s, interval: 100ms}}
"""


@pytest.mark.parametrize(
    ("phase", "pipeline"),
    [
        (Phase.PREFLIGHT, False),
        (Phase.INJECT, False),
        (Phase.INJECT, True),
        (Phase.ROLLBACK, False),
        (Phase.VERIFY, False),
    ],
    ids=["preflight", "inject", "inject-pipeline", "rollback", "verify"],
)
async def test_worker_killed_in_each_phase_a_new_worker_finishes_the_drill_and_no_fault_stays(
    client: Client, tmp_path: Path, phase: Phase, pipeline: bool
) -> None:
    queue = f"crash-{uuid.uuid4()}"
    database_url = f"sqlite:///{tmp_path / 'results.db'}"
    address = client.service_client.config.target_host
    reached, gate, log, marker = (tmp_path / n for n in ("reached", "gate", "log", "marker"))
    workers = WorkerProcesses(address, queue, database_url, tmp_path)
    first = workers.start()
    try:
        handle = await start_drill(client, queue, _boundary_drill(phase, tmp_path, pipeline=pipeline))
        await wait_until_async(reached.exists, what=f"the drill to park in {phase.value}", within=30)
        workers.kill(first)
        gate.touch()
        workers.start()
        record = await finish(handle, f"crash_in_{phase.value}{'_pipeline' if pipeline else ''}", within=120)
    finally:
        workers.stop_all()

    steps = log.read_text().split() if log.exists() else []
    if phase == Phase.INJECT:
        # The apply died with its worker (its supervisor kills the whole tree, pipeline members included) and is
        # never retried: the rollback reverts it anyway, and nothing applies it behind the revert's back.
        assert record.verdict == Verdict.ERROR, record.summary
        assert steps == ["r"]
        assert record.faults[0].state == FaultState.FAILED and record.faults[0].reverted_at is not None
    else:
        assert record.verdict == Verdict.RESILIENT, record.summary
        assert steps == ["a", "r"]
        assert record.faults[0].state == FaultState.REVERTED
    assert not marker.exists()
    store = Store(database_url)
    assert store.counts(record.run_id)["runs"] == 1 and store.counts(record.run_id)["faults"] == 1
    saved = store.get(record.run_id)
    assert saved is not None and saved.verdict == record.verdict


# --- the Temporal server restarted mid-drill ------------------------------------------------------------


async def test_temporal_server_restarted_mid_observation_the_drill_finishes_and_reverts(
    service: HttpService, tmp_path: Path
) -> None:
    server = DevServer(db_file=tmp_path / "temporal.db", port=free_port(), ui_port=free_port()).start()
    queue = f"restart-{uuid.uuid4()}"
    database_url = f"sqlite:///{tmp_path / 'results.db'}"
    drill = f"""
name: server-restart
targets:
  svc: {{process: {{pidfile: "{service.pidfile}"}}}}
hypothesis:
  - name: service answers
    http: {{url: "{service.url}", timeout: 300ms}}
faults:
  - {{target: svc, action: pause}}
observe: {{duration: 4s, interval: 250ms}}
recovery: {{within: 20s, interval: 100ms}}
"""
    workers = WorkerProcesses(server.address, queue, database_url, tmp_path)
    first = workers.start()
    try:
        client = await connect(GamedayConfig(temporal_address=server.address), wait_ready=30)
        handle = await start_drill(client, queue, drill)
        await wait_until_async(lambda: service.state() == "T", what="the fault to be applied")
        await wait_phase(handle, Phase.OBSERVE)
        server.stop()  # history, timers and task queues are in its database file
        assert service.state() == "T"
        server.start()
        if first.poll() is not None:  # a worker that gave up while the server was away is replaced
            workers.start()
        client = await connect(GamedayConfig(temporal_address=server.address), wait_ready=30)
        record = await finish(
            client.get_workflow_handle_for(DrillWorkflow.run, handle.id), "server_restart", within=120
        )
    finally:
        workers.stop_all()
        server.stop()

    assert service.state() in ("S", "R")
    assert record.verdict in (Verdict.DEVIATED, Verdict.RESILIENT), record.summary
    assert [f.state for f in record.faults] == [FaultState.REVERTED]
    store = Store(database_url)
    assert store.counts(record.run_id)["runs"] == 1 and store.counts(record.run_id)["faults"] == 1


async def test_worker_killed_while_taking_target_locks_the_next_worker_takes_them_and_runs_the_drill(
    client: Client, service: HttpService, tmp_path: Path
) -> None:
    queue = f"crash-lock-{uuid.uuid4()}"
    database = tmp_path / "results.db"
    database_url = f"sqlite:///{database}"
    address = client.service_client.config.target_host
    Store(database_url)  # the schema exists before the database is locked
    drill = f"""
name: crash-in-locks
targets:
  svc: {{process: {{pidfile: "{service.pidfile}"}}}}
faults:
  - {{target: svc, action: pause}}
observe: {{duration: 500ms}}
"""
    workers = WorkerProcesses(address, queue, database_url, tmp_path)
    first = workers.start()
    blocker = sqlite3.connect(database, isolation_level=None)
    try:
        blocker.execute("BEGIN IMMEDIATE")  # writers wait: acquire_targets stays in flight
        handle = await start_drill(client, queue, drill)

        async def taking_locks() -> bool:
            pending = (await handle.describe()).raw_description.pending_activities
            return any(a.activity_type.name == "acquire_targets" and a.attempt >= 1 and a.state == 2 for a in pending)

        await eventually(taking_locks, what="acquire_targets to be running", within=60)
        workers.kill(first)
        blocker.execute("ROLLBACK")
        workers.start()
        record = await finish(handle, "crash_in_locks", within=120)
    finally:
        blocker.close()
        workers.stop_all()

    assert record.verdict == Verdict.RESILIENT, record.summary
    assert [f.state for f in record.faults] == [FaultState.REVERTED]
    assert service.state() in ("S", "R")
    assert TargetLocks(Store(database_url)).holders() == []


async def test_traffic_resumes_on_the_next_worker_after_its_worker_is_killed(
    client: Client, service: HttpService, tmp_path: Path
) -> None:
    queue = f"crash-traffic-{uuid.uuid4()}"
    database_url = f"sqlite:///{tmp_path / 'results.db'}"
    address = client.service_client.config.target_host
    drill = f"""
name: crash-with-traffic
targets:
  sh: {{command: {{}}}}
faults:
  - {{name: nothing, target: sh, action: run, run: "true", revert: "true"}}
observe:
  duration: 12s
  traffic: {{url: "{service.url}", rate: 20/s, baseline: 0s}}
recovery: {{within: 10s}}
"""
    workers = WorkerProcesses(address, queue, database_url, tmp_path)
    first = workers.start()
    try:
        handle = await start_drill(client, queue, drill)
        await wait_phase(handle, Phase.OBSERVE)
        await asyncio.sleep(2.5)  # a snapshot of the traffic is on a heartbeat by now (every 2 s)
        workers.kill(first)
        workers.start()
        record = await finish(handle, "crash_with_traffic", within=120)
    finally:
        workers.stop_all()

    assert record.verdict == Verdict.RESILIENT, record.summary
    traffic = record.traffic
    assert traffic is not None and traffic.finished
    assert traffic.gaps, "the seconds without a worker are recorded as a gap"
    windows = [w.name for w in traffic.phases]
    assert "during nothing" in windows and "after" in windows
    # Traffic before the kill (from the heartbeat) and after it (the new worker) are both in the total.
    first_gap = traffic.gaps[0]
    seconds = traffic.timeline.second
    assert any(s < first_gap.start for s in seconds) and any(s >= first_gap.end for s in seconds)
