"""Target locks between drills and the orphan sweep, on a real dev server with real processes and SQLite."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from temporalio.client import Client, WorkflowHandle

from gameday.activities.locks import TargetLocks
from gameday.activities.store import Store
from gameday.activities.sweep import sweep
from gameday.model.records import FaultState, Phase, RunRecord, StepStatus, StopRequest, Verdict
from gameday.workflows.drill_workflow import DrillWorkflow
from tests.docker_support import Containers, Engine, build_image, engine, free_port
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
        assert report.locks_released == {handle.id: 2}  # the pidfile's real path and the process it named
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


# --- two spellings of one resource are one target -----------------------------------------------------------


def _drill_on(name: str, target: str, fault: str, *, hold_preflight: bool = False) -> str:
    """A drill with one fault on ``target``; with ``hold_preflight`` it stays in preflight (its locks held)."""
    hold = (
        "hypothesis: [{name: hold, command: {run: 'sleep 300', timeout: 5m}, mode: before}]\n" if hold_preflight else ""
    )
    return f"""
name: {name}
targets:
  t: {target}
{hold}faults:
  - {{target: t, {fault}}}
observe: {{duration: 5m}}
"""


async def _second_is_refused(
    client: Client, queue: str, first: WorkflowHandle[DrillWorkflow, RunRecord], second_drill: str, name: str
) -> RunRecord:
    """Run the second drill to its end while ``first`` holds the target: it must be refused, touching nothing."""
    second = await finish(await start_drill(client, queue, second_drill), name, within=60)
    assert second.verdict == Verdict.ERROR, second.summary
    assert f"is held by run {first.id} (drill holder" in second.summary
    assert second.faults == []
    return second


async def _stop(first: WorkflowHandle[DrillWorkflow, RunRecord], name: str) -> RunRecord:
    await first.signal("emergency_stop", StopRequest(reason="end of test", by="test"))
    return await finish(first, name)


PROCESS_SPELLINGS: dict[str, tuple[Callable[[HttpService], str], Callable[[HttpService], str]]] = {
    "pid-then-pidfile": (lambda s: f"{{pid: {s.process.pid}}}", lambda s: f'{{pidfile: "{s.pidfile}"}}'),
    "pidfile-then-pid": (lambda s: f'{{pidfile: "{s.pidfile}"}}', lambda s: f"{{pid: {s.process.pid}}}"),
    "doubled-slash-then-plain": (
        lambda s: f'{{pidfile: "{s.pidfile.parent}//{s.pidfile.name}"}}',
        lambda s: f'{{pidfile: "{s.pidfile}"}}',
    ),
}


@pytest.mark.parametrize("spellings", PROCESS_SPELLINGS.values(), ids=PROCESS_SPELLINGS.keys())
async def test_a_second_drill_on_the_same_process_spelled_otherwise_is_refused_and_leaves_the_first_fault_alone(
    client: Client,
    store: Store,
    service: HttpService,
    spellings: tuple[Callable[[HttpService], str], Callable[[HttpService], str]],
) -> None:
    first_spec, second_spec = spellings
    async with running_worker(client, store) as queue:
        first = await start_drill(
            client, queue, _drill_on("holder", f"{{process: {first_spec(service)}}}", "action: pause")
        )
        await wait_phase(first, Phase.OBSERVE)
        second = await _second_is_refused(
            client, queue, first, _drill_on("other", f"{{process: {second_spec(service)}}}", "action: pause"), "pid_2nd"
        )
        assert service.state() == "T"  # the second drill's rollback did not SIGCONT the first drill's fault
        assert f"process:pid:{service.process.pid}@" in second.summary
        held = await _stop(first, "pid_1st")
    assert held.verdict == Verdict.ABORTED
    preflight = next(s for s in held.steps if s.phase == Phase.PREFLIGHT)
    assert "locked t (" in preflight.detail and f"process:pid:{service.process.pid}@" in preflight.detail
    assert service.state() in ("S", "R")


CALL = "action: call, request: {method: GET, path: /}, revert: {method: GET, path: /}"


async def test_a_second_drill_on_localhost_is_refused_while_one_on_127_0_0_1_holds_the_service(
    client: Client, store: Store, service: HttpService
) -> None:
    async with running_worker(client, store) as queue:
        first = await start_drill(
            client, queue, _drill_on("holder", f'{{http: {{base_url: "http://127.0.0.1:{service.port}"}}}}', CALL)
        )
        await wait_phase(first, Phase.OBSERVE)
        second = await _second_is_refused(
            client,
            queue,
            first,
            _drill_on("other", f'{{http: {{base_url: "http://localhost:{service.port}/"}}}}', CALL),
            "http_2nd",
        )
        assert f"http:http://127.0.0.1:{service.port}" in second.summary
        assert (await _stop(first, "http_1st")).verdict == Verdict.ABORTED


def _url_forms(port: int) -> dict[str, tuple[str, str]]:
    """Pairs of spellings of one http or proxy resource."""
    return {
        "default-port": ('{http: {base_url: "http://127.0.0.1"}}', '{http: {base_url: "http://127.0.0.1:80/"}}'),
        "host-case-and-path": (
            f'{{http: {{base_url: "http://LOCALHOST:{port}"}}}}',
            f'{{http: {{base_url: "http://127.0.0.1:{port}/api//"}}}}',
        ),
        "ipv6-spellings": (
            f'{{http: {{base_url: "http://[::1]:{port}"}}}}',
            f'{{http: {{base_url: "http://[0:0:0:0:0:0:0:1]:{port}/"}}}}',
        ),
        "proxy-listen-brackets": (
            f'{{proxy: {{listen: "[::1]:{port}", upstream: "127.0.0.1:9"}}}}',
            f'{{proxy: {{listen: "::1:{port}", upstream: "127.0.0.1:9"}}}}',
        ),
    }


@pytest.mark.parametrize("form", ["default-port", "host-case-and-path", "ipv6-spellings", "proxy-listen-brackets"])
async def test_a_second_drill_on_the_same_address_spelled_otherwise_is_refused(
    client: Client, store: Store, form: str
) -> None:
    first_target, second_target = _url_forms(free_port())[form]
    fault = "action: latency, latency: 100ms" if "proxy" in first_target else CALL
    locks = TargetLocks(store)
    async with running_worker(client, store) as queue:
        # The first drill holds its locks in preflight (a probe that waits): no server is needed at the address.
        first = await start_drill(client, queue, _drill_on("holder", first_target, fault, hold_preflight=True))
        await wait_until_async(lambda: any(h.run_id == first.id for h in locks.holders()), what="the first lock")
        await _second_is_refused(client, queue, first, _drill_on("other", second_target, fault), f"{form}_2nd")
        assert (await _stop(first, f"{form}_1st")).verdict == Verdict.ABORTED
    assert locks.holders() == []


async def test_a_drill_whose_pidfile_is_missing_fails_preflight_naming_the_target_and_injects_nothing(
    client: Client, store: Store, tmp_path: Path
) -> None:
    async with running_worker(client, store) as queue:
        record = await finish(
            await start_drill(
                client, queue, _drill_on("typo", f'{{process: {{pidfile: "{tmp_path}/no.pid"}}}}', "action: pause")
            ),
            "unresolved_pidfile",
        )
    assert record.verdict == Verdict.ERROR
    assert f"target not resolved: target 't' (process) cannot be resolved: cannot read pidfile {tmp_path}/no.pid" in (
        record.summary
    )
    assert record.faults == [] and TargetLocks(store).holders() == []


async def test_a_drill_with_lock_wait_waits_for_a_target_that_is_not_there_yet(
    client: Client, store: Store, tmp_path: Path
) -> None:
    workdir = tmp_path / "late"
    workdir.mkdir()
    drill = _drill_on("patient", f'{{process: {{pidfile: "{workdir}/service.pid"}}}}', "action: pause").replace(
        "observe: {duration: 5m}", "observe: {duration: 200ms}\nlock_wait: 1m"
    )
    async with running_worker(client, store) as queue:
        handle = await start_drill(client, queue, drill)

        async def retrying() -> bool:
            pending = (await handle.describe()).raw_description.pending_activities
            return any(a.activity_type.name == "resolve_targets" and a.attempt >= 2 for a in pending)

        await eventually(retrying, what="resolve_targets to be tried again", within=60)
        late = HttpService.start(workdir)  # e.g. another drill's kill, restarted by its revert
        try:
            record = await finish(handle, "resolve_waited")
        finally:
            late.stop()
    assert record.verdict == Verdict.RESILIENT, record.summary
    assert record.faults[0].changed["pid"] == str(late.process.pid)


@pytest.fixture(scope="module")
def docker_engine() -> Iterator[Engine]:
    yield from engine()


@pytest.fixture
def containers(docker_engine: Engine) -> Iterator[Containers]:
    made = Containers(docker_engine.client, build_image(docker_engine.client))
    try:
        yield made
    finally:
        made.cleanup()


async def test_a_second_drill_on_a_container_by_id_is_refused_while_one_by_name_holds_it(
    client: Client, store: Store, containers: Containers
) -> None:
    box = containers.sleeper()
    async with running_worker(client, store) as queue:
        first = await start_drill(
            client, queue, _drill_on("holder", f"{{docker: {{container: {box.name}}}}}", "action: pause")
        )
        await wait_phase(first, Phase.OBSERVE)
        second = await _second_is_refused(
            client,
            queue,
            first,
            _drill_on("other", f"{{docker: {{container: {box.id}}}}}", "action: pause"),
            "docker_2nd",
        )
        assert f"docker:{box.id}" in second.summary
        box.reload()
        assert box.status == "paused"  # the second drill's rollback did not unpause the first drill's fault
        assert (await _stop(first, "docker_1st")).verdict == Verdict.ABORTED
        unknown = await finish(
            await start_drill(
                client, queue, _drill_on("gone", "{docker: {container: gd-test-no-such}}", "action: pause")
            ),
            "docker_unresolved",
        )
    box.reload()
    assert box.status == "running"
    assert unknown.verdict == Verdict.ERROR and unknown.faults == []
    assert "target 't' (docker) cannot be resolved: no container named 'gd-test-no-such'" in unknown.summary
