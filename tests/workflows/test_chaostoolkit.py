"""Chaos Toolkit experiments run by DrillWorkflow: verdicts and journals as `chaos run` gives them (issue 16).

One in-process worker per test; the experiments are gameday's own files under tests/experiments/.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from temporalio.client import Client, WorkflowHandle

from gameday.activities.store import Store
from gameday.model.ctk import Overrides, guardrail_of, parse_experiment, read_experiment_data
from gameday.model.records import DrillInput, FaultState, RunRecord, StopRequest, Verdict
from gameday.report.journal import journal, render_journal
from gameday.workflows.drill_workflow import DrillWorkflow
from tests.harness import WorkerProcesses, eventually, finish, running_worker, wait_until_async

pytestmark = pytest.mark.integration

EXPERIMENTS = Path(__file__).parents[1] / "experiments"


async def start_experiment(
    client: Client, queue: str, path: Path, prefix: str, overrides: Overrides | None = None
) -> WorkflowHandle[DrillWorkflow, RunRecord]:
    """The experiment at ``path``, translated into a drill, started on ``queue`` as run ``PREFIX-<random>``."""
    drill = parse_experiment(path.read_text(), str(path), overrides).drill
    run_id = f"{prefix}-{uuid.uuid4().hex[:8]}"
    return await client.start_workflow(
        DrillWorkflow.run,
        DrillInput(run_id=run_id, drill=drill, source=str(path), started_by="pytest"),
        id=run_id,
        task_queue=queue,
    )


async def run_experiment(client: Client, store: Store, name: str) -> dict:
    path = EXPERIMENTS / name
    async with running_worker(client, store) as queue:
        handle = await start_experiment(client, queue, path, "ctk")
        record = await finish(handle, f"ctk-{name}", within=60)
        history = (await handle.fetch_history()).to_json()
    return {"record": record, "journal": journal(record), "history": history}


def chaos_run(path: Path, workdir: Path, env: dict[str, str]) -> dict:
    """The same experiment under the real `chaos run`; its journal."""
    chaos = Path(sys.executable).with_name("chaos")
    out = workdir / "chaos-journal.json"
    subprocess.run(
        [str(chaos), "--no-log-file", "run", "--journal-path", str(out), str(path)],
        env=env,
        cwd=workdir,
        capture_output=True,
        timeout=60,
        check=False,
    )
    return json.loads(out.read_text())


def activity_names(entries: list[dict]) -> list[str]:
    return [e["activity"]["name"] for e in entries]


@pytest.mark.parametrize(
    ("name", "verdict"), [("exp_basic.json", Verdict.RESILIENT), ("exp_deviates.yaml", Verdict.DEVIATED)]
)
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

    env = {**os.environ, "CTK_TEST_WORKDIR": str(tmp_path / "chaos")}
    theirs = chaos_run(EXPERIMENTS / name, tmp_path / "chaos", env)
    assert (got["status"], got["deviated"]) == (theirs["status"], theirs["deviated"])
    assert activity_names(got["run"]) == activity_names(theirs["run"])
    assert activity_names(got["rollbacks"]) == activity_names(theirs["rollbacks"])
    assert [e["status"] for e in got["run"]] == [e["status"] for e in theirs["run"]]
    assert set(theirs) - set(got) <= {"chaoslib-version", "platform", "node"} or set(got) >= {
        "status",
        "deviated",
        "steady_states",
        "run",
        "rollbacks",
        "start",
        "end",
        "duration",
        "experiment",
    }
    # Both leave the target as the rollbacks left it.
    assert not (tmp_path / "gameday" / "injected").exists()
    assert (tmp_path / "gameday" / "health").read_text() == (tmp_path / "chaos" / "health").read_text()


async def test_stop_mid_method_runs_the_rollbacks_once(
    client: Client, store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CTK_TEST_WORKDIR", str(tmp_path))
    async with running_worker(client, store) as queue:
        handle = await start_experiment(client, queue, EXPERIMENTS / "exp_long_method.json", "ctk-stop")
        await wait_until_async(lambda: (tmp_path / "fault").exists(), what="the method's fault", within=30)
        await handle.signal("emergency_stop", StopRequest(reason="test stop", by="pytest"))
        record = await finish(handle, "ctk-stop", within=60)
    assert record.verdict == Verdict.ABORTED, record.summary
    assert not (tmp_path / "fault").exists()
    assert (tmp_path / "rollbacks.log").read_text() == "ran\n"
    assert journal(record)["status"] == "interrupted"
    assert activity_names(journal(record)["rollbacks"]) == ["remove-fault"]


async def test_a_wrapper_guardrail_stops_the_method_while_it_plays_and_the_rollbacks_run(
    client: Client, store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CTK_TEST_WORKDIR", str(tmp_path))
    guard = guardrail_of(f"command:test -e {tmp_path / 'stop'}")
    overrides = Overrides(guardrails=(guard,))
    async with running_worker(client, store) as queue:
        handle = await start_experiment(client, queue, EXPERIMENTS / "exp_long_method.json", "ctk-guard", overrides)
        await wait_until_async(lambda: (tmp_path / "fault").exists(), what="the method's fault", within=30)
        (tmp_path / "stop").touch()  # the method holds for 20 s: only the guardrail ends it now
        record = await finish(handle, "ctk-guard", within=30)
    assert record.verdict == Verdict.ABORTED, record.summary
    assert record.stop is not None and record.stop.by == "guardrail"
    assert "during the method" in record.stop.reason
    assert not (tmp_path / "fault").exists()
    assert (tmp_path / "rollbacks.log").read_text() == "ran\n"
    assert journal(record)["status"] == "interrupted"


async def heartbeated(handle: WorkflowHandle, activity_type: str, text: str) -> bool:
    """Whether the run's pending ``activity_type`` activity last heartbeated details containing ``text``."""
    described = await handle.describe()
    return any(
        pending.activity_type.name == activity_type
        and any(text.encode() in payload.data for payload in pending.heartbeat_details.payloads)
        for pending in described.raw_description.pending_activities
    )


async def test_worker_killed_mid_method_then_mid_rollbacks_each_rollback_done_once_and_journal_kept(
    client: Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CTK_TEST_WORKDIR", str(tmp_path))
    workers = WorkerProcesses.on_new_queue(client, "ctk-crash", tmp_path)
    queue = workers.queue
    log = tmp_path / "rollbacks.log"
    first = workers.start()
    try:
        handle = await start_experiment(client, queue, EXPERIMENTS / "exp_crash_rollbacks.json", "ctk-crash")
        # Killed mid-method once its first entry is heartbeated: the journal keeps that entry.
        await eventually(lambda: heartbeated(handle, "apply_fault", "inject-fault"), what="method heartbeat", within=30)
        workers.kill(first)
        assert (tmp_path / "fault").exists(), "the fault is in place once its worker is dead"
        second = workers.start()
        # Killed mid-rollbacks, the first one done and heartbeated: the next worker does not run it again.
        await eventually(
            lambda: heartbeated(handle, "revert_fault", "remove-fault"), what="revert heartbeat", within=30
        )
        await wait_until_async(lambda: (tmp_path / "settling").exists(), what="the second rollback", within=30)
        workers.kill(second)
        workers.start()
        record = await asyncio.wait_for(handle.result(), 90)
    finally:
        workers.stop_all()
    assert not (tmp_path / "fault").exists()
    # remove-fault once; settle twice: its worker died while it ran (at least once, never skipped).
    assert log.read_text() == "remove\nsettle\nsettle\n"
    # The method never finished (its worker died): the run is ERROR, its one fault failed to apply and reverted.
    assert record.verdict == Verdict.ERROR, record.summary
    assert [(f.state, f.reverted_at is not None) for f in record.faults] == [(FaultState.FAILED, True)]
    got = journal(record)
    assert activity_names(got["run"]) == ["inject-fault"]
    assert [e["status"] for e in got["run"]] == ["succeeded"]
    assert activity_names(got["rollbacks"]) == ["remove-fault", "settle"]


class _State(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body, kind = (b'{"state": "ok"}', "application/json") if self.path == "/state.json" else (b"up", "text/plain")
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


async def test_python_extension_every_tolerance_form_and_ref_rollback_match_chaos_run(
    client: Client, store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _State)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    root = str(Path(__file__).parents[2])
    try:
        monkeypatch.setenv("CTK_TEST_URL", f"http://127.0.0.1:{server.server_address[1]}")
        monkeypatch.setenv("CTK_TEST_TOKEN", "s3cr3t-token")  # 12 characters: an even length
        monkeypatch.setenv("GAMEDAY_DRILL_SECRETS", "CTK_TEST_TOKEN")
        monkeypatch.setenv("CTK_TEST_FLAG", str(tmp_path / "gameday-flag"))
        ours = await run_experiment(client, store, "exp_python.yaml")
        env = {**os.environ, "CTK_TEST_FLAG": str(tmp_path / "chaos-flag"), "PYTHONPATH": root}
        theirs = chaos_run(EXPERIMENTS / "exp_python.yaml", tmp_path, env)
    finally:
        server.shutdown()
    record, got = ours["record"], ours["journal"]
    assert record.verdict == Verdict.DEVIATED, record.summary
    assert (got["status"], got["deviated"]) == (theirs["status"], theirs["deviated"]) == ("completed", True)
    assert theirs["steady_states"]["before"]["steady_state_met"] and got["steady_states"]["before"]["steady_state_met"]
    with_names = journal(record, read_experiment_data(str(EXPERIMENTS / "exp_python.yaml")))
    for moment in ("before", "after"):  # the probes chaoslib ran, in order, up to the one out of tolerance
        ran = activity_names(theirs["steady_states"][moment]["probes"])
        assert activity_names(with_names["steady_states"][moment]["probes"]) == ran, moment
    assert activity_names(got["run"]) == activity_names(theirs["run"]) == ["flip-flag", "read-flag", "echo-token"]
    assert activity_names(got["rollbacks"]) == activity_names(theirs["rollbacks"]) == ["flag-back-off", "read-flag"]
    assert got["run"][1]["output"] == theirs["run"][1]["output"] == "on"
    assert (tmp_path / "gameday-flag").read_text() == "off"
    assert theirs["run"][2]["output"]["stdout"] == "token=s3cr3t-token\n"  # chaoslib keeps it; gameday never
    assert got["run"][2]["output"]["stdout"] == "token=[secret]\n"
    assert "s3cr3t-token" not in record.model_dump_json()
    assert "s3cr3t-token" not in ours["history"]
    assert "s3cr3t-token" not in render_journal(record)


async def test_hypothesis_not_met_before_runs_nothing_and_journal_loads_in_chaoslib(
    client: Client, store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from chaoslib.experiment import ensure_experiment_is_valid

    monkeypatch.setenv("CTK_TEST_WORKDIR", str(tmp_path))
    ours = await run_experiment(client, store, "exp_not_steady.json")
    theirs = chaos_run(EXPERIMENTS / "exp_not_steady.json", tmp_path, dict(os.environ))
    record = ours["record"]
    assert record.verdict == Verdict.NOT_STEADY, record.summary
    got = json.loads(render_journal(record, read_experiment_data(str(EXPERIMENTS / "exp_not_steady.json"))))
    assert (
        (got["status"], got["deviated"], got["run"])
        == (theirs["status"], theirs["deviated"], [])
        == ("completed", False, [])
    )
    assert not (tmp_path / "ran").exists()
    assert got["steady_states"]["before"]["steady_state_met"] is False
    assert activity_names(got["steady_states"]["before"]["probes"]) == ["missing-file"]
    assert set(theirs) - set(got) == set()
    ensure_experiment_is_valid(got["experiment"])  # chaostoolkit-lib takes the journal's experiment as its own

    # The same journal from the command line, out of the results database.
    from typer.testing import CliRunner

    from gameday.cli.main import app

    out = tmp_path / "journal.json"
    env = {"GAMEDAY_DATABASE_URL": f"sqlite:///{tmp_path / 'results.db'}", "COLUMNS": "400"}
    result = CliRunner().invoke(app, ["report", record.run_id, "-f", "journal", "-o", str(out)], env=env)
    assert result.exit_code == 0, result.output
    assert json.loads(out.read_text()) == got
