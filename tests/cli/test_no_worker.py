"""With no worker: a drill nobody picked up touches nothing, and a stop is said to wait and is timed from when it was
sent (real dev server, ``gameday`` commands, ``gameday worker`` processes started and killed by the test)."""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from gameday.activities.store import Store
from gameday.cli.main import app
from gameday.model.records import Phase, RunRecord, Verdict
from tests.conftest import installed_binary
from tests.harness import WorkerProcesses, wait_until

pytestmark = pytest.mark.integration


@dataclass
class Setup:
    env: dict[str, str]
    workdir: Path
    store: Store
    workers: WorkerProcesses

    def __call__(self, *args: str) -> Result:
        return CliRunner().invoke(app, list(args), env=self.env)

    def worker(self) -> subprocess.Popen[bytes]:
        """A ``gameday worker``, returned once it polls the queue."""
        proc = self.workers.start()
        log = self.workdir / f"worker-{len(self.workers.started)}.log"
        wait_until(lambda: "worker polling task queue" in log.read_text(), what="the worker to poll", timeout=30)
        return proc

    def recorded(self, run_id: str) -> RunRecord:
        wait_until(lambda: (r := self.store.get(run_id)) is not None and r.verdict is not None, what="the record")
        record = self.store.get(run_id)
        assert record is not None
        return record


@pytest.fixture
def setup(temporal_address: str, tmp_path: Path) -> Iterator[Setup]:
    """The CLI on a fresh task queue that no worker polls until the test starts one."""
    queue = f"test-noworker-{uuid.uuid4()}"
    database_url = f"sqlite:///{tmp_path / 'results.db'}"
    env = {
        "GAMEDAY_TEMPORAL_ADDRESS": temporal_address,
        "GAMEDAY_NAMESPACE": "default",
        "GAMEDAY_TASK_QUEUE": queue,
        "GAMEDAY_DATA_DIR": str(tmp_path / "data"),
        "GAMEDAY_DATABASE_URL": database_url,
        "COLUMNS": "200",
    }
    workers = WorkerProcesses(temporal_address, queue, database_url, tmp_path)
    try:
        yield Setup(env, tmp_path, Store(database_url), workers)
    finally:
        workers.stop_all()


def _drill(setup: Setup, marker: Path, observe: str) -> Path:
    path = setup.workdir / f"drill-{uuid.uuid4().hex[:6]}.yaml"
    path.write_text(
        f"""
name: lonely-{uuid.uuid4().hex[:6]}
targets:
  sh: {{command: {{}}}}
faults:
  - {{target: sh, action: run, run: "touch {marker}", revert: "rm -f {marker}"}}
observe: {{duration: {observe}, interval: 100ms}}
"""
    )
    return path


def test_a_drill_no_worker_picked_up_by_its_start_deadline_ends_aborted_touching_nothing(setup: Setup) -> None:
    marker = setup.workdir / "never"
    drill = _drill(setup, marker, "500ms")

    ran = setup("run", str(drill), "--wait", "--json", "--start-deadline", "2s")
    assert ran.exit_code == 4, ran.output  # ABORTED: certain once the deadline passed with no worker
    assert "no worker polls task queue" in ran.stderr
    assert "no worker picked it up within 2s" in ran.output
    run_id = str(json.loads(ran.stdout.strip().splitlines()[-1])["run_id"])

    status = setup("status", run_id)
    assert status.exit_code == 1
    assert "no worker polls task queue" in status.stderr

    setup.worker()  # long after the deadline
    record = setup.recorded(run_id)
    assert record.verdict == Verdict.ABORTED, record.summary
    assert record.stop is not None and record.stop.by == "gameday"
    assert "no worker picked it up within 2s" in record.stop.reason
    assert not marker.exists()
    assert record.faults == []
    assert [s.phase for s in record.steps if s.phase in (Phase.PREFLIGHT, Phase.INJECT)] == []
    pending = record.steps[0]
    assert pending.phase == Phase.PENDING and pending.started_at == record.started_at  # the wait, visible
    assert pending.ended_at is not None and (pending.ended_at - record.started_at).total_seconds() > 2


def test_a_stop_with_no_worker_warns_and_its_time_to_safe_counts_from_when_it_was_sent(setup: Setup) -> None:
    marker = setup.workdir / "fault"
    first = setup.worker()
    started = setup("run", str(_drill(setup, marker, "5m")), "--json")
    assert started.exit_code == 0, started.output
    assert "no worker" not in started.output
    run_id = str(json.loads(started.stdout.strip().splitlines()[-1])["run_id"])
    wait_until(marker.exists, what="the fault to be applied")
    wait_until(lambda: "phase: observe" in setup("status", run_id).stdout, what="the observe phase")
    setup.workers.kill(first)

    stopped = setup("stop", run_id, "--reason", "pager fired", "--by", "alice")
    assert stopped.exit_code == 0, stopped.output
    assert f"stop sent to {run_id}" in stopped.stdout
    assert "warning" in stopped.stderr and "the stop is recorded" in stopped.stderr

    out = setup.workdir / "stop-wait.out"
    with out.open("wb") as sink:
        waiting = subprocess.Popen(
            [installed_binary("gameday"), "stop", run_id, "--reason", "again", "--wait"],
            env={**os.environ, **setup.env},
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_until(lambda: "waiting for a worker" in out.read_text(), what="stop --wait to say what it waits for")
        assert waiting.poll() is None and marker.exists()
        setup.worker()
        assert waiting.wait(timeout=120) == 0, out.read_text()
    finally:
        if waiting.poll() is None:
            waiting.kill()
    assert "every fault reverted" in out.read_text()
    assert not marker.exists()

    record = setup.recorded(run_id)
    stop = record.stop
    assert stop is not None and stop.reason == "pager fired"
    assert stop.sent_at is not None and stop.received_at is not None and stop.sent_at < stop.received_at
    assert record.time_to_safe is not None
    assert record.time_to_safe >= (stop.received_at - stop.sent_at).total_seconds()
    report = setup("report", run_id)
    assert "sent at" in report.stdout and "handled by the workflow at" in report.stdout
    assert "after the workflow handled the stop" in report.stdout
