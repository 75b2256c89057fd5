"""Chaos Toolkit experiments run by DrillWorkflow: verdicts and journals as `chaos run` gives them (issue 16).

One in-process worker per test; the experiments are gameday's own files under tests/experiments/.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from temporalio.client import Client

from gameday.activities.store import Store
from gameday.model.ctk import parse_experiment
from gameday.model.records import DrillInput, FaultState, StopRequest, Verdict
from gameday.report.journal import journal
from gameday.workflows.drill_workflow import DrillWorkflow
from tests.harness import WorkerProcesses, finish, running_worker, wait_until_async

pytestmark = pytest.mark.integration

EXPERIMENTS = Path(__file__).parents[1] / "experiments"


async def run_experiment(client: Client, store: Store, name: str) -> dict:
    path = EXPERIMENTS / name
    drill = parse_experiment(path.read_text(), str(path)).drill
    async with running_worker(client, store) as queue:
        run_id = f"ctk-{uuid.uuid4().hex[:8]}"
        handle = await client.start_workflow(
            DrillWorkflow.run,
            DrillInput(run_id=run_id, drill=drill, source=str(path), started_by="pytest"),
            id=run_id,
            task_queue=queue,
        )
        record = await finish(handle, f"ctk-{name}", within=60)
    return {"record": record, "journal": journal(record)}


def chaos_run(path: Path, workdir: Path, env: dict[str, str]) -> dict:
    """The same experiment under the real `chaos run`; its journal."""
    chaos = Path(sys.executable).with_name("chaos")
    out = workdir / "chaos-journal.json"
    subprocess.run([str(chaos), "--no-log-file", "run", "--journal-path", str(out), str(path)], env=env,
                   cwd=workdir, capture_output=True, timeout=60, check=False)
    return json.loads(out.read_text())


def activity_names(entries: list[dict]) -> list[str]:
    return [e["activity"]["name"] for e in entries]


@pytest.mark.parametrize(("name", "verdict"), [("exp_basic.json", Verdict.RESILIENT), ("exp_deviates.yaml", Verdict.DEVIATED)])
async def test_experiment_gives_chaos_runs_status_deviated_and_activity_sequence(
    client: Client, store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, verdict: Verdict
) -> None:
    for where in ("gameday", "chaos"):
        (tmp_path / where).mkdir()
        (tmp_path / where / "health").write_text("ok\n")
    monkeypatch.setenv("CTK_TEST_WORKDIR", str(tmp_path / "gameday"))
    ours = await run_experiment(client, store, name)
    record, got = ours["record"], ours["journal"]
    assert record.verdict == verdict, record.summary
    assert [f.state for f in record.faults] == [FaultState.REVERTED]

    env = {**__import__("os").environ, "CTK_TEST_WORKDIR": str(tmp_path / "chaos")}
    theirs = chaos_run(EXPERIMENTS / name, tmp_path / "chaos", env)
    assert (got["status"], got["deviated"]) == (theirs["status"], theirs["deviated"])
    assert activity_names(got["run"]) == activity_names(theirs["run"])
    assert activity_names(got["rollbacks"]) == activity_names(theirs["rollbacks"])
    assert [e["status"] for e in got["run"]] == [e["status"] for e in theirs["run"]]
    assert set(theirs) - set(got) <= {"chaoslib-version", "platform", "node"} or set(got) >= {
        "status", "deviated", "steady_states", "run", "rollbacks", "start", "end", "duration", "experiment"
    }
    # Both leave the target as the rollbacks left it.
    assert not (tmp_path / "gameday" / "injected").exists()
    assert (tmp_path / "gameday" / "health").read_text() == (tmp_path / "chaos" / "health").read_text()



async def test_stop_mid_method_runs_the_rollbacks_once(
    client: Client, store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CTK_TEST_WORKDIR", str(tmp_path))
    path = EXPERIMENTS / "exp_long_method.json"
    drill = parse_experiment(path.read_text(), str(path)).drill
    async with running_worker(client, store) as queue:
        run_id = f"ctk-stop-{uuid.uuid4().hex[:8]}"
        handle = await client.start_workflow(
            DrillWorkflow.run, DrillInput(run_id=run_id, drill=drill, source=str(path), started_by="pytest"),
            id=run_id, task_queue=queue,
        )
        await wait_until_async(lambda: (tmp_path / "fault").exists(), what="the method's fault", within=30)
        await handle.signal("emergency_stop", StopRequest(reason="test stop", by="pytest"))
        record = await finish(handle, "ctk-stop", within=60)
    assert record.verdict == Verdict.ABORTED, record.summary
    assert not (tmp_path / "fault").exists()
    assert (tmp_path / "rollbacks.log").read_text() == "ran\n"
    assert journal(record)["status"] == "interrupted"
    assert activity_names(journal(record)["rollbacks"]) == ["remove-fault"]


async def test_worker_killed_mid_method_next_worker_runs_the_rollbacks_exactly_once(
    client: Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CTK_TEST_WORKDIR", str(tmp_path))
    path = EXPERIMENTS / "exp_long_method.json"
    drill = parse_experiment(path.read_text(), str(path)).drill
    queue = f"ctk-crash-{uuid.uuid4()}"
    workers = WorkerProcesses(
        client.service_client.config.target_host, queue, f"sqlite:///{tmp_path / 'results.db'}", tmp_path
    )
    first = workers.start()
    try:
        run_id = f"ctk-crash-{uuid.uuid4().hex[:8]}"
        handle = await client.start_workflow(
            DrillWorkflow.run, DrillInput(run_id=run_id, drill=drill, source=str(path), started_by="pytest"),
            id=run_id, task_queue=queue,
        )
        await wait_until_async(lambda: (tmp_path / "fault").exists(), what="the method's fault", within=30)
        workers.kill(first)
        assert (tmp_path / "fault").exists(), "the fault is in place once its worker is dead"
        workers.start()
        record = await asyncio.wait_for(handle.result(), 90)
    finally:
        workers.stop_all()
    assert not (tmp_path / "fault").exists()
    assert (tmp_path / "rollbacks.log").read_text() == "ran\n"
    # The method never finished (its worker died): the run is ERROR, its one fault failed to apply and reverted.
    assert record.verdict == Verdict.ERROR, record.summary
    assert [(f.state, f.reverted_at is not None) for f in record.faults] == [(FaultState.FAILED, True)]
    assert activity_names(journal(record)["rollbacks"]) == ["remove-fault"]
