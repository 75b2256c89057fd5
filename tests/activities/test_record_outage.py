"""The final record is never dropped: with the results database (a real PostgreSQL, stopped) unreachable for more
than an hour the record keeps trying and lands once the database is back, while the verdict is already readable
from Temporal (``run --wait``, ``report``, ``status`` do not wait for the database)."""

from __future__ import annotations

import os
import subprocess
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.testing import WorkflowEnvironment
from typer.testing import CliRunner

from gameday.activities.store import Store
from gameday.cli.main import app
from gameday.model.records import Phase, StepStatus, Verdict
from gameday.workflows.drill_workflow import DrillWorkflow
from tests.conftest import installed_binary
from tests.harness import WorkerProcesses, eventually, running_worker, start_drill, wait_phase, wait_until
from tests.pg_support import PostgresServer

pytestmark = pytest.mark.integration


def _drill(name: str, marker: Path, gate: Path) -> str:
    """A drill whose revert waits for ``gate``: the test takes the database down while the faults are held."""
    return f"""
name: {name}
targets:
  sh: {{command: {{}}}}
hypothesis:
  - name: check
    command: {{run: "true"}}
faults:
  - target: sh
    action: run
    run: "touch {marker}"
    revert: "while [ ! -e {gate} ]; do sleep 0.05; done; rm -f {marker}"
observe: {{duration: 300ms, interval: 100ms}}
recovery: {{within: 10s, interval: 100ms}}
"""


async def test_the_final_record_keeps_trying_past_an_hour_and_lands_once_the_database_is_back(
    skipping_env: WorkflowEnvironment, postgres_server: PostgresServer, postgres_url: str, tmp_path: Path
) -> None:
    store = Store(postgres_url, auto_upgrade=True)
    marker, gate = tmp_path / "marker", tmp_path / "gate"
    client = skipping_env.client
    async with running_worker(client, store) as queue:
        handle = await start_drill(client, queue, _drill("record-outage", marker, gate))
        await wait_phase(handle, Phase.ROLLBACK, within=60)
        postgres_server.stop()
        try:
            gate.touch()

            async def judged() -> bool:
                record = await handle.query(DrillWorkflow.record)
                return record is not None and record.verdict is not None

            await eventually(judged, what="the verdict", within=60)
            await skipping_env.sleep(timedelta(hours=2))  # the database stays down for two hours of workflow time

            waiting = await handle.query(DrillWorkflow.record)
            assert waiting is not None and waiting.verdict == Verdict.RESILIENT
            assert (await handle.describe()).status == WorkflowExecutionStatus.RUNNING, "the record gave up"
            status = await handle.query(DrillWorkflow.status)
            assert status.phase == Phase.RECORD and status.steps[-1].ended_at is None
            assert "saving to the results database" in status.steps[-1].detail
        finally:
            postgres_server.start()
        record = await handle.result()

    closed = (await handle.describe()).close_time
    assert waiting.ended_at is not None and closed is not None and closed - waiting.ended_at > timedelta(hours=2)
    assert record.verdict == Verdict.RESILIENT and not marker.exists()
    assert record.steps[-1].phase == Phase.RECORD and record.steps[-1].status == StepStatus.OK
    saved = store.get(record.run_id)
    assert saved is not None and saved == record


def test_run_wait_report_and_status_answer_from_temporal_while_the_database_is_down(
    client: Client, postgres_server: PostgresServer, postgres_url: str, tmp_path: Path
) -> None:
    assert Store(postgres_url, auto_upgrade=True).engine is not None  # the schema, as `gameday db upgrade` makes it
    marker, gate = tmp_path / "marker", tmp_path / "gate"
    address = client.service_client.config.target_host
    queue = f"record-outage-{uuid.uuid4()}"
    workers = WorkerProcesses(address, queue, postgres_url, tmp_path)
    workers.start()
    env = {
        "GAMEDAY_TEMPORAL_ADDRESS": address,
        "GAMEDAY_NAMESPACE": "default",
        "GAMEDAY_TASK_QUEUE": queue,
        "GAMEDAY_DATABASE_URL": postgres_url,
        "COLUMNS": "200",
    }
    drill = tmp_path / "drill.yaml"
    drill.write_text(_drill("record-outage-cli", marker, gate))
    run = subprocess.Popen(
        [installed_binary("gameday"), "run", str(drill), "--wait"],
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        wait_until(marker.exists, what="the fault to be applied", timeout=60)
        postgres_server.stop()
        try:
            gate.touch()
            out, _ = run.communicate(timeout=120)
            assert run.returncode == 0, out  # RESILIENT, though the record is not in SQL
            assert "RESILIENT" in out and "the results database has not taken the record yet" in out
            run_id = out.split("started ", 1)[1].split()[0]

            report = CliRunner().invoke(app, ["report", run_id], env=env)
            assert report.exit_code == 0, report.output
            assert "# Drill `record-outage-cli`: RESILIENT" in report.stdout
            assert "this record comes from Temporal" in report.stderr
            as_json = CliRunner().invoke(app, ["report", run_id, "-f", "json"], env=env)
            assert as_json.exit_code == 0 and '"verdict": "RESILIENT"' in as_json.stdout

            status = CliRunner().invoke(app, ["status", run_id], env=env)
            assert status.exit_code == 0, status.output
            assert "phase: record" in status.stdout and "saving to the results database" in status.stdout
        finally:
            postgres_server.start()
        store = Store(postgres_url)

        def landed() -> bool:
            record = store.get(run_id)
            return record is not None and record.verdict == Verdict.RESILIENT

        wait_until(landed, what="the record to land once the database is back", timeout=180)
        from_sql = CliRunner().invoke(app, ["report", run_id], env=env)
        assert from_sql.exit_code == 0 and "RESILIENT" in from_sql.stdout
        assert "comes from Temporal" not in from_sql.stderr
    finally:
        if run.poll() is None:
            run.kill()
        workers.stop_all()
