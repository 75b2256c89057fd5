"""A drill whose workflow task keeps failing never holds its faults forever: the sweep declares it lost after
``wedged_after``, terminates it, reverts its faults through the same providers, and alerts (real dev server)."""

from __future__ import annotations

import json
import logging
import threading
import uuid
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any

import pytest
from temporalio import workflow
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.common import RetryPolicy
from temporalio.worker import Worker

from gameday.activities.faults.activities import FaultActivities
from gameday.activities.ledger import FaultLedger
from gameday.activities.notify.alert import AlertActivities
from gameday.activities.store import Store
from gameday.activities.sweep import sweep
from gameday.model.records import FaultInput, FaultRecord, FaultState, Phase, StepStatus, Verdict
from tests.harness import drill_from_yaml, eventually

pytestmark = pytest.mark.integration


@workflow.defn(sandboxed=False)
class BrokenAfterInject:
    """A drill with a bug: it applies its fault through the real ``apply_fault``, then its code raises on every
    workflow task (as a payload over Temporal's limit does), so its own rollback can never run."""

    @workflow.run
    async def run(self, inp: FaultInput) -> None:
        await workflow.execute_activity(
            "apply_fault",
            inp,
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=RetryPolicy(maximum_attempts=1),
        )
        raise RuntimeError("deliberate bug after inject")


class AlertWebhook:
    """A real HTTP server on loopback that keeps the JSON bodies POSTed to it (where alerts go)."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        received = self.received

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/alert"

    def __enter__(self) -> AlertWebhook:
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: tuple[type[BaseException] | None, BaseException | None, TracebackType | None]) -> None:
        self._server.shutdown()
        self._server.server_close()


def _fault(run_id: str, marker: Path) -> FaultInput:
    drill = drill_from_yaml(
        f"""
name: wedged
targets:
  sh: {{command: {{}}}}
faults:
  - {{target: sh, action: run, run: "touch {marker}", revert: "rm -f {marker}"}}
"""
    )
    fault = drill.faults[0]
    target = drill.targets[fault.target]
    record = FaultRecord(index=0, label=fault.label, target=fault.target, kind=target.kind.value, action=fault.action)
    return FaultInput(run_id=run_id, index=0, target_name=fault.target, target=target, fault=fault, record=record)


async def test_a_drill_whose_workflow_task_keeps_failing_is_declared_lost_reverted_terminated_and_alerted(
    client: Client, store: Store, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    marker = tmp_path / "injected"
    run_id = f"drill-wedged-{uuid.uuid4().hex[:8]}"
    queue = f"test-{uuid.uuid4()}"
    faults = FaultActivities(FaultLedger(store))
    # workflow_failure_exception_types left empty: a bug fails the workflow *task*, retried forever (production).
    async with Worker(client, task_queue=queue, workflows=[BrokenAfterInject], activities=[faults.apply_fault]):
        handle = await client.start_workflow(BrokenAfterInject.run, _fault(run_id, marker), id=run_id, task_queue=queue)

        async def failing() -> bool:
            task = (await handle.describe()).raw_description.pending_workflow_task
            return marker.exists() and task.attempt >= 2

        await eventually(failing, what="the workflow task to fail again after the fault was applied", within=60)

        # Not yet failing for long enough: left, and said why.
        patient = await sweep(store, client, wedged_after=timedelta(hours=1))
        assert patient.faults == []
        assert [left.run_id for left in patient.left] == [run_id]
        assert "failing since" in patient.left[0].reason
        assert marker.exists()

        dry = await sweep(store, client, dry_run=True, wedged_after=timedelta(0))
        assert [(s.run_id, s.workflow, s.reverted) for s in dry.faults] == [(run_id, "WEDGED", False)]
        assert marker.exists()
        assert (await handle.describe()).status == WorkflowExecutionStatus.RUNNING

        with AlertWebhook() as hook, caplog.at_level(logging.CRITICAL, logger="gameday.alert"):
            report = await sweep(store, client, wedged_after=timedelta(0), alerts=AlertActivities(webhook_url=hook.url))

    assert [(s.run_id, s.workflow, s.reverted) for s in report.faults] == [(run_id, "WEDGED", True)]
    assert not marker.exists()
    assert report.terminated == [run_id]
    assert (await handle.describe()).status == WorkflowExecutionStatus.TERMINATED
    assert FaultLedger(store).state(run_id, 0) == FaultState.REVERTED
    assert [a["event"] for a in hook.received] == ["drill_wedged"]
    assert hook.received[0]["run_id"] == run_id and "declared lost" in hook.received[0]["summary"]
    assert any("drill_wedged" in r.getMessage() and run_id in r.getMessage() for r in caplog.records)
    record = store.get(run_id)
    assert record is not None and record.verdict == Verdict.ERROR
    assert record.faults[0].state == FaultState.REVERTED
    step = next(s for s in record.steps if s.phase == Phase.SWEEP)
    assert step.status == StepStatus.OK and "declared lost" in step.detail and "workflow WEDGED: 1/1" in step.detail
    assert (await sweep(store, client, wedged_after=timedelta(0))).faults == []  # nothing twice
