"""DrillWorkflow end to end on a real Temporal dev server, with real processes, commands and SQLite."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from gameday.activities.store import Store
from gameday.model.records import FaultState, Phase, StepStatus, StopRequest, Verdict
from gameday.workflows.drill_workflow import DrillWorkflow
from tests.harness import HttpService, finish, running_worker, start_drill, wait_phase, wait_until_async

pytestmark = pytest.mark.integration


def _probe(url: str, samples: int = 2) -> str:
    return f"""
hypothesis:
  - name: service answers
    http: {{url: "{url}", timeout: 300ms}}
    samples: {samples}
"""


async def test_process_pause_breaks_the_probe_then_rollback_recovers_it(
    client: Client, store: Store, service: HttpService
) -> None:
    drill = f"""
name: pause-service
targets:
  svc: {{process: {{pidfile: "{service.pidfile}"}}}}
{_probe(service.url)}
faults:
  - {{target: svc, action: pause}}
observe: {{duration: 2s, interval: 250ms}}
recovery: {{within: 10s, interval: 100ms}}
"""
    async with running_worker(client, store) as queue:
        handle = await start_drill(client, queue, drill)
        await wait_until_async(lambda: service.state() == "T", what="the service to be paused by the drill")
        record = await finish(handle, "pause_deviated")

    assert record.verdict == Verdict.DEVIATED, record.summary
    assert service.state() in ("S", "R")
    assert [f.state for f in record.faults] == [FaultState.REVERTED]
    assert record.faults[0].changed["pid"] == str(service.process.pid)
    observed = [p for p in record.probes if p.phase == Phase.OBSERVE]
    assert observed and observed[0].failures > 0 and not observed[0].ok
    verified = [p for p in record.probes if p.phase == Phase.VERIFY]
    assert verified and all(p.ok for p in verified)
    assert record.time_to_recovery is not None
    assert [s.phase for s in record.steps] == [
        Phase.PREFLIGHT,
        Phase.INJECT,
        Phase.OBSERVE,
        Phase.ROLLBACK,
        Phase.VERIFY,
        Phase.RECORD,
    ]
    saved = store.get(record.run_id)
    assert saved is not None and saved.verdict == Verdict.DEVIATED
    assert saved.faults[0].state == FaultState.REVERTED and saved.faults[0].reverted_at is not None


async def test_fault_the_system_tolerates_is_resilient_and_saves_each_row_once(
    client: Client, store: Store, service: HttpService, tmp_path: Path
) -> None:
    (tmp_path / "other").mkdir()
    other = HttpService.start(tmp_path / "other")
    try:
        drill = f"""
name: pause-bystander
targets:
  bystander: {{process: {{pidfile: "{other.pidfile}"}}}}
{_probe(service.url)}
faults:
  - {{target: bystander, action: pause}}
observe: {{duration: 1s, interval: 250ms}}
"""
        async with running_worker(client, store) as queue:
            record = await finish(await start_drill(client, queue, drill), "pause_resilient")
        assert record.verdict == Verdict.RESILIENT, record.summary
        assert other.state() in ("S", "R")
        counts = store.counts(record.run_id)
        assert {name: counts[name] for name in ("runs", "phases", "faults", "probe_results")} == {
            "runs": 1,
            "phases": len(record.steps),
            "faults": 1,
            "probe_results": len({(p.phase, p.probe) for p in record.probes}),
        }
        assert all(count == 0 for name, count in counts.items() if name.startswith("traffic"))  # no traffic here
    finally:
        other.stop()


async def test_unhealthy_system_is_not_steady_and_nothing_is_injected(
    client: Client, store: Store, tmp_path: Path
) -> None:
    marker = tmp_path / "injected"
    drill = f"""
name: not-steady
targets:
  sh: {{command: {{}}}}
hypothesis:
  - name: closed port
    tcp: {{port: 9, timeout: 200ms}}
faults:
  - {{target: sh, action: run, run: "touch {marker}", revert: "rm -f {marker}"}}
observe: {{duration: 1s}}
"""
    async with running_worker(client, store) as queue:
        record = await finish(await start_drill(client, queue, drill), "not_steady")
    assert record.verdict == Verdict.NOT_STEADY
    assert not marker.exists()
    assert record.faults == []
    assert Phase.INJECT not in [s.phase for s in record.steps]


async def test_revert_that_does_not_restore_the_system_is_not_recovered(
    client: Client, store: Store, tmp_path: Path
) -> None:
    broken = tmp_path / "broken"
    drill = f"""
name: no-recovery
targets:
  sh: {{command: {{}}}}
hypothesis:
  - name: not broken
    command: {{run: "test ! -e {broken}"}}
faults:
  - {{target: sh, action: run, run: "touch {broken}", revert: "true"}}
observe: {{duration: 500ms, interval: 100ms}}
recovery: {{within: 1s, interval: 200ms}}
"""
    async with running_worker(client, store) as queue:
        record = await finish(await start_drill(client, queue, drill), "not_recovered")
    assert record.verdict == Verdict.NOT_RECOVERED, record.summary
    assert record.faults[0].state == FaultState.REVERTED
    verify = next(s for s in record.steps if s.phase == Phase.VERIFY)
    assert verify.status == StepStatus.FAILED and "not recovered" in verify.detail


async def test_emergency_stop_reverts_every_fault_and_ends_aborted(
    client: Client, store: Store, service: HttpService
) -> None:
    drill = f"""
name: stop-me
targets:
  svc: {{process: {{pidfile: "{service.pidfile}"}}}}
{_probe(service.url, samples=1)}
faults:
  - {{target: svc, action: pause}}
observe: {{duration: 5m, interval: 250ms}}
"""
    async with running_worker(client, store) as queue:
        handle = await start_drill(client, queue, drill)
        await wait_until_async(lambda: service.state() == "T", what="the fault to be applied")
        await wait_phase(handle, Phase.OBSERVE)  # stop during observation: wait for the phase, not for a time
        status = await handle.query(DrillWorkflow.status, rpc_timeout=timedelta(seconds=5))
        assert status.phase == Phase.OBSERVE and status.faults_active == ["pause svc"]
        await handle.signal("emergency_stop", StopRequest(reason="pager fired", by="alice"))
        record = await finish(handle, "emergency_stop")
    assert record.verdict == Verdict.ABORTED
    assert record.stop is not None and record.stop.reason == "pager fired" and record.stop.by == "alice"
    assert service.state() in ("S", "R")
    assert record.faults[0].state == FaultState.REVERTED
    observe = next(s for s in record.steps if s.phase == Phase.OBSERVE)
    assert observe.status == StepStatus.INTERRUPTED
    saved = store.get(record.run_id)
    assert saved is not None and saved.stop is not None and saved.stop.reason == "pager fired"


async def test_fault_that_fails_to_apply_is_error_and_earlier_faults_are_reverted_in_reverse(
    client: Client, store: Store, tmp_path: Path
) -> None:
    log = tmp_path / "log"
    drill = f"""
name: apply-fails
targets:
  sh: {{command: {{}}}}
faults:
  - {{target: sh, action: run, run: "echo apply-1 >> {log}", revert: "echo revert-1 >> {log}"}}
  - {{target: sh, action: run, run: "echo apply-2 >> {log}", revert: "echo revert-2 >> {log}"}}
  - {{target: sh, action: run, run: "echo apply-3 >> {log}; exit 3", revert: "echo revert-3 >> {log}"}}
  - {{target: sh, action: run, run: "echo apply-4 >> {log}", revert: "echo revert-4 >> {log}"}}
observe: {{duration: 1s}}
"""
    async with running_worker(client, store) as queue:
        record = await finish(await start_drill(client, queue, drill), "apply_fails")
    assert record.verdict == Verdict.ERROR
    assert log.read_text().split() == ["apply-1", "apply-2", "apply-3", "revert-3", "revert-2", "revert-1"]
    assert [f.state for f in record.faults] == [FaultState.REVERTED, FaultState.REVERTED, FaultState.FAILED]
    assert "exited with code 3" in record.faults[2].error


async def test_max_duration_forces_rollback_while_faults_are_held(client: Client, store: Store, tmp_path: Path) -> None:
    log = tmp_path / "log"
    drill = f"""
name: capped
max_duration: 6s
targets:
  sh: {{command: {{}}}}
faults:
  - {{target: sh, action: run, run: "sleep 1; echo applied >> {log}", revert: "echo reverted >> {log}"}}
observe: {{duration: 5800ms}}
"""
    # max_duration counts from submission: leave room for a loaded machine to pick the drill up and apply.
    async with running_worker(client, store) as queue:
        record = await finish(await start_drill(client, queue, drill), "max_duration")
    assert record.verdict == Verdict.ABORTED
    assert record.stop is not None and "max_duration" in record.stop.reason
    assert log.read_text().split() == ["applied", "reverted"]


async def test_two_hour_cap_fires_on_the_time_skipping_server(
    skipping_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    store = Store(f"sqlite:///{tmp_path / 'results.db'}")
    log = tmp_path / "log"
    drill = f"""
name: long-cap
max_duration: 2h
targets:
  sh: {{command: {{}}}}
faults:
  - {{target: sh, action: run, run: "sleep 1; echo applied >> {log}", revert: "echo reverted >> {log}"}}
observe: {{duration: 1h59m59500ms}}
"""
    async with running_worker(skipping_env.client, store) as queue:
        record = await (await start_drill(skipping_env.client, queue, drill)).result()
    assert record.verdict == Verdict.ABORTED
    assert record.stop is not None and "max_duration" in record.stop.reason
    assert log.read_text().split() == ["applied", "reverted"]


async def test_fault_with_a_duration_is_reverted_before_observation_ends(
    client: Client, store: Store, tmp_path: Path
) -> None:
    log = tmp_path / "log"
    drill = f"""
name: early-revert
targets:
  sh: {{command: {{}}}}
hypothesis:
  - name: always
    command: {{run: "true"}}
faults:
  - {{target: sh, action: run, run: "echo a1 >> {log}", revert: "echo r1 >> {log}"}}
  - {{target: sh, action: run, run: "echo a2 >> {log}", revert: "echo r2 >> {log}", duration: 200ms}}
observe: {{duration: 2s, interval: 500ms}}
"""
    async with running_worker(client, store) as queue:
        record = await finish(await start_drill(client, queue, drill), "early_revert")
    assert record.verdict == Verdict.RESILIENT
    assert log.read_text().split() == ["a1", "a2", "r2", "r1"]
    early = record.faults[1]
    observe = next(s for s in record.steps if s.phase == Phase.OBSERVE)
    assert early.reverted_at is not None and observe.ended_at is not None
    assert early.reverted_at < observe.ended_at


async def test_temporal_cancellation_takes_the_same_rollback_path_and_a_second_cancel_is_harmless(
    client: Client, store: Store, tmp_path: Path
) -> None:
    log = tmp_path / "log"
    drill = f"""
name: cancel-me
targets:
  sh: {{command: {{}}}}
faults:
  - {{target: sh, action: run, run: "echo a1 >> {log}", revert: "sleep 0.5; echo r1 >> {log}"}}
  - {{target: sh, action: run, run: "echo a2 >> {log}", revert: "sleep 0.5; echo r2 >> {log}"}}
observe: {{duration: 5m}}
"""
    async with running_worker(client, store) as queue:
        handle = await start_drill(client, queue, drill)
        await wait_until_async(lambda: log.exists() and "a2" in log.read_text(), what="both faults applied")
        await handle.cancel()
        await wait_phase(handle, Phase.ROLLBACK)  # cancel again while the rollback is running
        await handle.cancel()
        record = await finish(handle, "cancelled")
    assert record.verdict == Verdict.ABORTED
    assert record.stop is not None and record.stop.by == "temporal"
    assert log.read_text().split() == ["a1", "a2", "r2", "r1"]
    assert [f.state for f in record.faults] == [FaultState.REVERTED, FaultState.REVERTED]
