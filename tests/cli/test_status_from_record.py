"""``gameday status RUN_ID`` from the run's record: the same lines as live status, every one of them the record's.

Temporal is unreachable here (an address nothing listens on), so ``status`` falls back to the results database:
a real SQLite store holding a record written through :meth:`Store.save`, exactly as the worker writes it.
"""

from __future__ import annotations

import socket
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from typer.testing import CliRunner

from gameday.activities.store import Store
from gameday.cli.main import app
from gameday.model.records import (
    DrillStatus,
    FaultRecord,
    FaultState,
    Phase,
    ProbeResult,
    RunRecord,
    StepStatus,
    StopRequest,
    Verdict,
)
from tests.harness import reverted_fault, step

T0 = datetime(2026, 11, 23, 14, 0, 0, tzinfo=UTC)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def env_for(tmp_path: Path) -> dict[str, str]:
    return {
        "GAMEDAY_TEMPORAL_ADDRESS": f"127.0.0.1:{closed_port()}",
        "GAMEDAY_NAMESPACE": "default",
        "GAMEDAY_DATA_DIR": str(tmp_path / "data"),
        "GAMEDAY_DATABASE_URL": f"sqlite:///{tmp_path / 'results.db'}",
        "COLUMNS": "200",
    }


def aborted_record(run_id: str) -> RunRecord:
    return RunRecord(
        run_id=run_id,
        drill_name="db-outage",
        team="payments",
        phase=Phase.DONE,
        verdict=Verdict.ABORTED,
        started_at=T0,
        ended_at=T0 + timedelta(seconds=95),
        steps=[
            step(T0, Phase.PREFLIGHT, 0, 2, "all probes healthy"),
            step(T0, Phase.INJECT, 2, 3, "1 fault(s) applied"),
            step(T0, Phase.OBSERVE, 3, 60, "stopped by alice", StepStatus.INTERRUPTED),
            step(T0, Phase.ROLLBACK, 60, 61, "1 fault(s) reverted, 1 not applied"),
        ],
        faults=[
            reverted_fault(T0, 0, "pause db", "db", "docker", "pause", applied=3, reverted=61),
            FaultRecord(
                index=1,
                label="kill api",
                target="api",
                kind="process",
                action="kill",
                state=FaultState.FAILED,
                error="kill api: not applied: no process in /run/api.pid",
            ),
        ],
        probes=[
            ProbeResult(probe="api", phase=Phase.PREFLIGHT, kind="http", ok=True, samples=3, failures=0, at=T0),
            ProbeResult(
                probe="api",
                phase=Phase.OBSERVE,
                kind="http",
                ok=False,
                samples=57,
                failures=12,
                at=T0 + timedelta(seconds=59),
            ),
        ],
        stop=StopRequest(reason="[inc-7] pager fired", by="alice", received_at=T0 + timedelta(seconds=60)),
        time_to_safe=1.25,
        time_to_healthy=4.5,
        summary="stopped by alice: [inc-7] pager fired",
    )


def test_status_of_an_ended_run_with_temporal_unreachable_shows_the_records_phases_verdict_faults_and_times(
    tmp_path: Path,
) -> None:
    env = env_for(tmp_path)
    record = aborted_record("drill-db-outage-20261123T140000Z")
    Store(env["GAMEDAY_DATABASE_URL"]).save(record)

    result = CliRunner().invoke(app, ["status", record.run_id], env=env)

    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "cannot reach Temporal" in result.stderr
    assert f"{record.run_id}  phase: done (ended)" in out
    assert "verdict: ABORTED (stopped by alice: [inc-7] pager fired)" in out
    assert "started: 2026-11-23 14:00:00 UTC  ended: 2026-11-23 14:01:35" in out
    assert "stop requested by alice: [inc-7] pager fired" in out
    assert "time to safe: 1.250s" in out and "time to healthy: 4.500s" in out
    assert "faults active: none" in out
    assert "reverted    pause db" in out
    assert "failed      kill api: kill api: not applied" in out
    for phase, status, detail in [
        ("preflight", "ok", "all probes healthy"),
        ("inject", "ok", "1 fault(s) applied"),
        ("observe", "interrupted", "stopped by alice"),
        ("rollback", "ok", "1 fault(s) reverted, 1 not applied"),
    ]:
        assert f"  {phase:<9} {status:<11} {detail}" in out
    # The latest measurement of each probe, as recorded: observe's, not preflight's.
    assert "observe" in out.split("probe")[-1] and "57" in out and "12" in out
    assert "rolling back" not in out and "no verdict" not in out
    assert f"full record: gameday report {record.run_id}" in out


def test_status_of_a_run_last_recorded_mid_observe_invents_no_verdict(tmp_path: Path) -> None:
    env = env_for(tmp_path)
    record = aborted_record("drill-db-outage-20261123T150000Z").model_copy(
        update={
            "phase": Phase.OBSERVE,
            "verdict": None,
            "ended_at": None,
            "stop": None,
            "time_to_safe": None,
            "time_to_healthy": None,
            "summary": "",
        }
    )
    record.steps = record.steps[:2]
    record.faults = [record.faults[0].model_copy(update={"state": FaultState.APPLIED, "reverted_at": None})]
    Store(env["GAMEDAY_DATABASE_URL"]).save(record)

    result = CliRunner().invoke(app, ["status", record.run_id], env=env)

    assert result.exit_code == 0, result.output
    out = result.stdout
    assert f"{record.run_id}  phase: observe" in out
    assert "verdict:" not in out
    assert "ended: -" in out
    assert "faults active: pause db" in out
    assert "no verdict recorded yet: the last progress written was phase observe" in out
    assert "it may still be running" in out


def test_from_record_takes_everything_from_the_record() -> None:
    record = aborted_record("drill-x")
    status = DrillStatus.from_record(record)
    assert status.phase == Phase.DONE and status.verdict == Verdict.ABORTED
    assert status.steps == record.steps and status.faults == record.faults
    assert status.faults_active == [] and status.rolled_back
    assert (status.started_at, status.ended_at) == (record.started_at, record.ended_at)
    assert (status.time_to_safe, status.time_to_healthy) == (1.25, 4.5)
    assert [(m.probe, m.phase) for m in status.last_measurements] == [("api", Phase.OBSERVE)]
    assert status.recorded


def test_status_of_a_run_temporal_no_longer_has_says_so_not_that_temporal_is_unreachable(
    tmp_path: Path, temporal_address: str
) -> None:
    """Temporal answers (the session dev server) but has no such workflow; the record stopped mid-observe."""
    env = {**env_for(tmp_path), "GAMEDAY_TEMPORAL_ADDRESS": temporal_address}
    record = aborted_record(f"drill-gone-{uuid.uuid4().hex[:8]}").model_copy(
        update={"phase": Phase.OBSERVE, "verdict": None, "ended_at": None, "stop": None, "summary": ""}
    )
    Store(env["GAMEDAY_DATABASE_URL"]).save(record)

    result = CliRunner().invoke(app, ["status", record.run_id], env=env)

    assert result.exit_code == 0, result.output
    assert "the workflow closed (no longer in Temporal) with no verdict recorded" in result.stdout
    assert "unreachable" not in result.stdout
