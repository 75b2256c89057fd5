"""Time-to-safety on a real dev server: guardrails, stops in every phase, reverts that fail then succeed or never do."""

from __future__ import annotations

import json
import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client, WorkflowHandle

from gameday.activities.notify.alert import AlertActivities
from gameday.activities.store import Store
from gameday.model.records import FaultState, Phase, RunRecord, StepStatus, StopRequest, Verdict
from gameday.report.run import render_markdown
from gameday.workflows.drill_workflow import DrillWorkflow
from tests.harness import (
    HttpService,
    eventually,
    finish,
    running_worker,
    start_drill,
    wait_phase,
    wait_until_async,
)

pytestmark = pytest.mark.integration


# --- guardrails -----------------------------------------------------------------------------------------


async def test_guardrail_breach_aborts_and_reverts_with_the_guardrail_and_its_values_as_reason(
    client: Client, store: Store, service: HttpService
) -> None:
    drill = f"""
name: guarded-pause
targets:
  svc: {{process: {{pidfile: "{service.pidfile}"}}}}
hypothesis:
  - name: service answers
    http: {{url: "{service.url}", timeout: 200ms}}
faults:
  - {{target: svc, action: pause}}
observe:
  duration: 5m
  interval: 100ms
  guardrails:
    - {{name: service down, probe: service answers, failing: 3}}
recovery: {{within: 10s, interval: 100ms}}
"""
    async with running_worker(client, store) as queue:
        record = await finish(await start_drill(client, queue, drill), "guardrail_breach")

    assert record.verdict == Verdict.ABORTED, record.summary
    assert record.stop is not None and record.stop.by == "guardrail"
    assert "'service down' breached: 3 failed samples in a row" in record.stop.reason
    assert service.state() in ("S", "R")
    assert record.faults[0].state == FaultState.REVERTED
    observe = next(s for s in record.steps if s.phase == Phase.OBSERVE)
    assert observe.status == StepStatus.INTERRUPTED
    assert record.time_to_safe is not None and record.time_to_healthy is not None
    assert record.time_to_healthy >= record.time_to_safe >= 0
    saved = store.get(record.run_id)
    assert saved is not None and saved.time_to_safe == record.time_to_safe
    assert "Time to safe" in render_markdown(saved)


async def test_guardrails_that_never_cross_do_not_abort(client: Client, store: Store, tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    drill = f"""
name: guarded-calm
targets:
  sh: {{command: {{}}}}
hypothesis:
  - name: always
    command: {{run: "true"}}
faults:
  - {{target: sh, action: run, run: "touch {marker}", revert: "rm -f {marker}"}}
observe:
  duration: 1s
  interval: 100ms
  guardrails:
    - {{name: fails, probe: always, failing: 1}}
    - {{name: rate, probe: always, error_rate: 10%, window: 5}}
    - {{name: slow, probe: always, latency_p99: 5s}}
    - name: kill switch
      stop_when: {{command: {{run: "test -e {tmp_path / "no-such-flag"}"}}}}
"""
    async with running_worker(client, store) as queue:
        record = await finish(await start_drill(client, queue, drill), "guardrails_hold")
    assert record.verdict == Verdict.RESILIENT, record.summary
    assert record.stop is None and record.time_to_safe is None
    assert not marker.exists()


async def test_stop_when_guardrail_trips_on_a_kill_switch_flag(client: Client, store: Store, tmp_path: Path) -> None:
    flag, marker = tmp_path / "STOP", tmp_path / "marker"
    drill = f"""
name: kill-switch
targets:
  sh: {{command: {{}}}}
faults:
  - {{target: sh, action: run, run: "touch {marker}", revert: "rm -f {marker}"}}
observe:
  duration: 5m
  interval: 100ms
  guardrails:
    - name: big red button
      stop_when: {{command: {{run: "cat {flag}", stdout_contains: "abort"}}}}
"""
    async with running_worker(client, store) as queue:
        handle = await start_drill(client, queue, drill)
        await wait_until_async(marker.exists, what="the fault to be applied")
        flag.write_text("not yet\n")
        await wait_phase(handle, Phase.OBSERVE)
        flag.write_text("abort\n")
        record = await finish(handle, "kill_switch")
    assert record.verdict == Verdict.ABORTED
    assert record.stop is not None and "'big red button' breached: stop_when" in record.stop.reason
    assert not marker.exists()


# --- a stop in every phase ------------------------------------------------------------------------------


def _slow_drill(tmp_path: Path, name: str, *, probe: str = "true", apply: str = "", verify: str = "") -> str:
    log = tmp_path / "log"
    return f"""
name: {name}
targets:
  sh: {{command: {{}}}}
hypothesis:
  - name: check
    command: {{run: "{probe}", timeout: 30s}}
faults:
  - {{target: sh, action: run, run: "echo a1 >> {log}", revert: "echo r1 >> {log}"}}
  - {{target: sh, action: run, run: "echo a2 >> {log}; {apply or "true"}", revert: "echo r2 >> {log}"}}
observe: {{duration: 5m, interval: 200ms}}
recovery: {{within: 30s, interval: 100ms}}
"""


@pytest.mark.parametrize("phase", [Phase.PREFLIGHT, Phase.INJECT, Phase.OBSERVE, Phase.VERIFY])
async def test_stop_in_each_phase_reverts_every_applied_fault_and_records_aborted_with_the_reason(
    client: Client, store: Store, tmp_path: Path, phase: Phase
) -> None:
    log, gate = tmp_path / "log", tmp_path / "gate"
    # Each variant makes its phase last until the test has stopped the drill inside it.
    probe = {
        Phase.PREFLIGHT: f"while [ ! -e {gate} ]; do sleep 0.05; done",
        Phase.VERIFY: f"if grep -q r1 {log} 2>/dev/null; then while [ ! -e {gate} ]; do sleep 0.05; done; fi",
    }.get(phase, "true")
    apply = f"while [ ! -e {gate} ]; do sleep 0.05; done" if phase == Phase.INJECT else ""
    drill = _slow_drill(tmp_path, f"stop-in-{phase.value}", probe=probe, apply=apply)
    if phase == Phase.VERIFY:
        drill = drill.replace("duration: 5m", "duration: 300ms")
    async with running_worker(client, store) as queue:
        handle = await start_drill(client, queue, drill)
        await wait_phase(handle, phase)
        if phase == Phase.INJECT:
            await wait_until_async(lambda: log.exists() and "a2" in log.read_text(), what="the second apply to start")
        await handle.signal("emergency_stop", StopRequest(reason=f"stop in {phase.value}", by="test"))
        # Let the blocked step go: the stop must already have been taken, whatever the step does next.
        await eventually(lambda: _stop_seen(handle), what="the stop to be received")
        gate.touch()
        record = await finish(handle, f"stop_in_{phase.value}")

    assert record.verdict == Verdict.ABORTED, record.summary
    assert record.stop is not None and record.stop.reason == f"stop in {phase.value}"
    applied = log.read_text().split() if log.exists() else []
    expected = {
        Phase.PREFLIGHT: [],
        Phase.INJECT: ["a1", "a2", "r2", "r1"],
        Phase.OBSERVE: ["a1", "a2", "r2", "r1"],
        Phase.VERIFY: ["a1", "a2", "r2", "r1"],
    }[phase]
    assert applied == expected
    assert all(f.state == FaultState.REVERTED for f in record.faults)
    saved = store.get(record.run_id)
    assert saved is not None and saved.verdict == Verdict.ABORTED and saved.stop is not None
    assert saved.stop.reason == f"stop in {phase.value}"


# --- reverts that fail ----------------------------------------------------------------------------------


async def test_revert_that_fails_twice_then_succeeds_is_retried_to_success(
    client: Client, store: Store, tmp_path: Path
) -> None:
    marker, tries = tmp_path / "marker", tmp_path / "tries"
    revert = f"n=$(($(cat {tries} 2>/dev/null || echo 0) + 1)); echo $n > {tries}; [ $n -ge 3 ] && rm -f {marker}"
    drill = f"""
name: stubborn-revert
targets:
  sh: {{command: {{}}}}
faults:
  - {{target: sh, action: run, run: "touch {marker}", revert: "{revert}"}}
observe: {{duration: 200ms}}
"""
    async with running_worker(client, store) as queue:
        record = await finish(await start_drill(client, queue, drill), "revert_retried")
    assert record.verdict == Verdict.RESILIENT, record.summary
    assert tries.read_text().strip() == "3"
    assert not marker.exists()
    assert record.faults[0].state == FaultState.REVERTED


async def test_revert_that_never_succeeds_ends_error_with_the_fault_not_reverted_loudly(
    client: Client, store: Store, tmp_path: Path
) -> None:
    marker = tmp_path / "marker"
    drill = f"""
name: stuck-fault
max_duration: 6s
revert_grace: 1s
targets:
  sh: {{command: {{}}}}
faults:
  - {{name: stuck, target: sh, action: run, run: "touch {marker}", revert: "echo cannot undo >&2; exit 1"}}
observe: {{duration: 200ms}}
"""
    with _Webhook() as hook:
        alerts = AlertActivities(webhook_url=hook.url, ui_url="http://ui.test")
        async with running_worker(client, store, alerts=alerts) as queue:
            record = await finish(await start_drill(client, queue, drill), "not_reverted")
    assert [a["event"] for a in hook.received] == ["fault_not_reverted"]
    alert = hook.received[0]
    assert alert["run_id"] == record.run_id and "stuck" in alert["text"] and "NOT be reverted" in alert["text"]
    assert alert["url"] == f"http://ui.test/namespaces/default/workflows/{record.run_id}"
    assert record.verdict == Verdict.ERROR
    assert "NOT be reverted" in record.summary
    assert record.faults[0].state == FaultState.NOT_REVERTED
    assert "cannot undo" in record.faults[0].error
    rollback = next(s for s in record.steps if s.phase == Phase.ROLLBACK)
    assert rollback.status == StepStatus.FAILED and "NOT REVERTED: stuck" in rollback.detail
    saved = store.get(record.run_id)
    assert saved is not None and saved.faults[0].state == FaultState.NOT_REVERTED
    assert "not_reverted" in render_markdown(saved)


class _Webhook:
    """A real HTTP server on loopback that keeps the JSON bodies POSTed to it."""

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
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/hook"

    def __enter__(self) -> _Webhook:
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


async def _stop_seen(handle: WorkflowHandle[DrillWorkflow, RunRecord]) -> bool:
    status = await handle.query(DrillWorkflow.status, rpc_timeout=timedelta(seconds=3))
    return status.stop is not None


async def test_a_second_stop_while_rolling_back_is_harmless_and_the_first_reason_stands(
    client: Client, store: Store, tmp_path: Path
) -> None:
    log = tmp_path / "log"
    drill = f"""
name: stop-twice
targets:
  sh: {{command: {{}}}}
faults:
  - {{target: sh, action: run, run: "echo a >> {log}", revert: "sleep 0.5; echo r >> {log}"}}
observe: {{duration: 5m}}
"""
    async with running_worker(client, store) as queue:
        handle = await start_drill(client, queue, drill)
        await wait_phase(handle, Phase.OBSERVE)
        await handle.signal("emergency_stop", StopRequest(reason="first", by="alice"))
        await wait_phase(handle, Phase.ROLLBACK)
        await handle.signal("emergency_stop", StopRequest(reason="second", by="bob"))
        record = await finish(handle, "stop_twice")
    assert record.verdict == Verdict.ABORTED
    assert record.stop is not None and (record.stop.reason, record.stop.by) == ("first", "alice")
    assert log.read_text().split() == ["a", "r"]
