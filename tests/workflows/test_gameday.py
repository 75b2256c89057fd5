"""Game days on a real dev server: drills in order and in parallel, stop_on halting the rest, a stop mid-game-day
rolling back the running drills and skipping the others, and the record stored."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from temporalio.client import Client

from gameday.activities.gameday_store import GameDays
from gameday.activities.store import Store
from gameday.cli.gamedays import report_lines
from gameday.model.gameday import GameDayInput, GameDayRecord
from gameday.model.gameday_loader import load_gameday_file
from gameday.model.records import Approve, StopRequest, Verdict
from gameday.workflows.gameday_workflow import GameDayWorkflow
from tests.harness import eventually, running_worker, save_history

pytestmark = pytest.mark.integration


def _drill(name: str, log: Path) -> str:
    return f"""
name: {name}
targets:
  sh: {{command: {{}}}}
hypothesis:
  - {{name: check, command: {{run: "true"}}}}
faults:
  - {_fault(name, log)}
observe: {{duration: 200ms, interval: 50ms}}
"""


def _fault(name: str, log: Path) -> str:
    return f'{{target: sh, action: run, run: "echo {name}-on >> {log}", revert: "echo {name}-off >> {log}"}}'


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / f"gameday-{uuid.uuid4().hex[:6]}.yaml"
    path.write_text(text)
    return path


async def _start(client: Client, queue: str, file: Path) -> tuple[str, object]:
    spec, stages = load_gameday_file(file)
    gameday_id = f"gameday-{spec.gameday}-{uuid.uuid4().hex[:6]}"
    handle = await client.start_workflow(
        GameDayWorkflow.run,
        GameDayInput(
            gameday_id=gameday_id,
            name=spec.gameday,
            stop_on=spec.stop_on,
            approval=spec.approval,
            stages=stages,
            source=str(file),
        ),
        id=gameday_id,
        task_queue=queue,
    )
    return gameday_id, handle


async def test_drills_run_in_order_and_in_parallel_and_stop_on_skips_the_rest(client: Client, tmp_path: Path) -> None:
    log = tmp_path / "log"
    (tmp_path / "first.yaml").write_text(_drill("first", log))
    file = _write(
        tmp_path,
        f"""
gameday: sprint-42
team: payments
stop_on: [DEVIATED]
drills:
  - file: first.yaml
  - parallel:
      - drill:
          name: left
          targets: {{sh: {{command: {{}}}}}}
          faults: [{_fault("left", log)}]
          observe: {{duration: 300ms}}
      - drill:
          name: breaks
          targets: {{sh: {{command: {{}}}}}}
          hypothesis: [{{name: c, mode: during, command: {{run: "false"}}}}]
          faults: [{_fault("breaks", log)}]
          observe: {{duration: 300ms, interval: 50ms}}
  - drill: {{name: never, observe: {{duration: 0s}}}}
""",
    )
    store = Store(f"sqlite:///{tmp_path / 'results.db'}")
    async with running_worker(client, store) as queue:
        gameday_id, handle = await _start(client, queue, file)
        record: GameDayRecord = await handle.result()  # type: ignore[attr-defined]
        await save_history(handle, "gameday_halted")

    verdicts = {e.drill_name: (e.verdict, e.skipped) for e in record.entries}
    assert verdicts["first"] == (Verdict.RESILIENT, "")
    assert verdicts["left"] == (Verdict.RESILIENT, "")
    assert verdicts["breaks"] == (Verdict.DEVIATED, "")
    assert verdicts["never"][0] is None and "breaks ended DEVIATED (stop_on)" in verdicts["never"][1]
    assert record.outcome == "halted"
    lines = log.read_text().split()
    assert lines[:2] == ["first-on", "first-off"]
    # The parallel pair overlapped: both were applied before either was reverted.
    assert max(lines.index("left-on"), lines.index("breaks-on")) < min(
        lines.index("left-off"), lines.index("breaks-off")
    )
    assert GameDays(store).get(gameday_id) == record
    report = "\n".join(report_lines(record))
    assert "game day sprint-42: halted (breaks ended DEVIATED (stop_on)" in report
    assert "breaks" in report and "DEVIATED" in report and "skipped" in report
    assert all(store.get(e.run_id) is not None for e in record.entries if e.run_id)


async def test_a_stop_mid_game_day_rolls_back_the_running_drill_and_skips_the_rest(
    client: Client, tmp_path: Path
) -> None:
    log = tmp_path / "log"
    file = _write(
        tmp_path,
        f"""
gameday: stop-me
drills:
  - drill:
      name: long
      targets: {{sh: {{command: {{}}}}}}
      faults: [{_fault("long", log)}]
      observe: {{duration: 5m}}
  - drill: {{name: later, observe: {{duration: 0s}}}}
""",
    )
    store = Store(f"sqlite:///{tmp_path / 'results.db'}")
    async with running_worker(client, store) as queue:
        _, handle = await _start(client, queue, file)

        async def applied() -> bool:
            return log.exists() and "long-on" in log.read_text()

        await eventually(applied, what="the first drill's fault")
        await handle.signal("emergency_stop", StopRequest(reason="incident", by="alice"))  # type: ignore[attr-defined]
        record: GameDayRecord = await handle.result()  # type: ignore[attr-defined]
        await save_history(handle, "gameday_stopped")

    assert record.outcome == "stopped" and record.stop is not None and record.stop.reason == "incident"
    entries = {e.drill_name: e for e in record.entries}
    assert entries["long"].verdict == Verdict.ABORTED
    assert entries["later"].verdict is None and "stopped by alice: incident" in entries["later"].skipped
    assert log.read_text().split() == ["long-on", "long-off"]


async def test_a_game_day_gate_runs_nothing_without_approval_and_everything_with_it(
    client: Client, tmp_path: Path
) -> None:
    log = tmp_path / "log"
    text = f"""
gameday: gated
approval: {{timeout: 30s}}
drills:
  - drill:
      name: one
      targets: {{sh: {{command: {{}}}}}}
      faults: [{_fault("one", log)}]
      observe: {{duration: 100ms}}
"""
    store = Store(f"sqlite:///{tmp_path / 'results.db'}")
    async with running_worker(client, store) as queue:
        _, unapproved = await _start(client, queue, _write(tmp_path, text.replace("30s", "300ms")))
        skipped: GameDayRecord = await unapproved.result()  # type: ignore[attr-defined]
        await save_history(unapproved, "gameday_not_approved")
        _, handle = await _start(client, queue, _write(tmp_path, text))
        await handle.signal("approve", Approve(by="dana"))  # type: ignore[attr-defined]
        record: GameDayRecord = await handle.result()  # type: ignore[attr-defined]
        await save_history(handle, "gameday_approved")

    assert skipped.outcome == "not approved"
    assert [e.skipped for e in skipped.entries] == ["no approval within 300ms: nothing ran"]
    assert record.outcome == "completed" and record.approved_by == "dana"
    assert [e.verdict for e in record.entries] == [Verdict.RESILIENT]
    assert log.read_text().split() == ["one-on", "one-off"]
