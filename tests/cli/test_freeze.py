"""``gameday freeze`` / ``unfreeze``, the kill switch, against the session dev server and real ``gameday worker``
processes: real faults (a SIGSTOPped sleeping process, command faults leaving marker files) reverted by the freeze,
new drills, scheduled runs and game-day steps refused while frozen, team scope, and a freeze that outlives its
worker."""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gameday.activities.gameday_store import GameDays
from gameday.cli.schedules import TRIGGER_SKIPPED
from gameday.model.records import FaultState, RunRecord, Verdict
from tests.cli.conftest import Gameday
from tests.cli.test_cli_commands import last_json_line
from tests.cli.test_stop_gamedays import two_step_gameday
from tests.harness import WorkerProcesses, sleeping_process, wait_until

pytestmark = pytest.mark.integration

NEVER_SOON = "0 3 1 1 *"


def unique(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:6]}"


@pytest.fixture
def unfrozen(gameday: Gameday) -> Iterator[None]:
    """Every freeze of the module's task queue lifted after the test: the module's other tests must run."""
    yield
    gameday("unfreeze")


@pytest.fixture
def sleeper(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], Path]]:
    """A real sleeping process and its pidfile: the target of a process pause."""
    with sleeping_process(tmp_path) as sleeping:
        yield sleeping


def state_of(pid: int) -> str:
    """The process state letter from /proc: ``T`` while SIGSTOPped."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]


def marker_drill(name: str, team: str, marker: Path, observe: str = "5m") -> str:
    """A drill whose one fault creates ``marker`` (its revert deletes it); no hypothesis, so it injects at once."""
    return f"""
name: {name}
team: {team}
targets: {{sh: {{command: {{}}}}}}
faults:
  - {{target: sh, action: run, run: "touch {marker} && echo on >> {marker}.log", revert: "rm -f {marker}"}}
observe: {{duration: {observe}, interval: 100ms}}
recovery: {{within: 10s, interval: 100ms}}
"""


def pause_drill(name: str, team: str, pidfile: Path) -> str:
    return f"""
name: {name}
team: {team}
targets: {{proc: {{process: {{pidfile: {pidfile}}}}}}}
faults: [{{target: proc, action: pause}}]
observe: {{duration: 5m, interval: 100ms}}
recovery: {{within: 10s, interval: 100ms}}
"""


def start(gameday: Gameday, text: str) -> str:
    started = gameday("run", str(gameday.drill(text)), "--json")
    assert started.exit_code == 0, started.output
    return str(last_json_line(started.stdout)["run_id"])


def stopped_by_freeze(record: RunRecord, reason: str) -> None:
    assert record.verdict == Verdict.ABORTED, record.summary
    assert record.stop is not None and record.stop.by == "freeze", record.stop
    assert record.stop.reason.startswith(f"frozen: {reason}"), record.stop.reason


def test_freeze_reverts_every_fault_of_running_drills_and_refuses_new_ones_until_unfreeze(
    gameday: Gameday, unfrozen: None, sleeper: tuple[subprocess.Popen[bytes], Path]
) -> None:
    proc, pidfile = sleeper
    team = unique("team")
    markers = [gameday.workdir / unique("marker") for _ in range(2)]
    paused = start(gameday, pause_drill(unique("pause"), team, pidfile))
    commands = [start(gameday, marker_drill(unique("cmd"), team, m)) for m in markers]
    wait_until(lambda: state_of(proc.pid) == "T", what="the sleeping process to be paused", timeout=60)
    wait_until(lambda: all(m.exists() for m in markers), what="the command faults' markers", timeout=60)

    frozen = gameday("freeze", "--reason", "incident INC-1")
    assert frozen.exit_code == 0, frozen.output
    for run_id in (paused, *commands):
        assert f"stopped drill {run_id}" in frozen.stdout
    assert "3 fault(s) reverted in 3 drill(s)" in frozen.stdout, frozen.stdout
    # Reverted by the time the command returns: the process runs again, the markers are gone.
    assert state_of(proc.pid) != "T"
    assert not any(m.exists() for m in markers)
    for run_id in (paused, *commands):
        record = gameday.recorded(run_id)
        stopped_by_freeze(record, "incident INC-1")
        assert [f.state for f in record.faults] == [FaultState.REVERTED]

    # Visible in status (a line per freeze) for any run.
    status = gameday("status", paused)
    assert "FROZEN: every team frozen by" in status.stdout and "incident INC-1" in status.stdout, status.output
    workers = gameday("workers")
    assert workers.exit_code == 0 and "FROZEN: every team frozen by" in workers.stdout, workers.output

    # A drill started now injects nothing: recorded ABORTED by the freeze, run --wait exits 4.
    refused_marker = gameday.workdir / unique("refused")
    refused = gameday("run", str(gameday.drill(marker_drill(unique("late"), team, refused_marker, "1s"))), "--wait")
    assert refused.exit_code == 4, refused.output
    assert "frozen:" in refused.stdout
    assert not refused_marker.exists() and not Path(f"{refused_marker}.log").exists()

    lifted = gameday("unfreeze")
    assert lifted.exit_code == 0, lifted.output
    assert "every freeze lifted" in lifted.stdout
    assert "FROZEN" not in gameday("status", paused).stdout
    assert "FROZEN" not in gameday("workers").stdout
    again_marker = gameday.workdir / unique("again")
    again = gameday("run", str(gameday.drill(marker_drill(unique("again"), team, again_marker, "200ms"))), "--wait")
    assert again.exit_code == 0, again.output
    assert Path(f"{again_marker}.log").read_text().split() == ["on"] and not again_marker.exists()


def test_a_team_freeze_leaves_other_teams_drills_running(gameday: Gameday, unfrozen: None) -> None:
    frozen_team, other_team = unique("frozen"), unique("other")
    mine, theirs = gameday.workdir / unique("mine"), gameday.workdir / unique("theirs")
    stopped = start(gameday, marker_drill(unique("mine"), frozen_team, mine))
    running = start(gameday, marker_drill(unique("theirs"), other_team, theirs))
    wait_until(lambda: mine.exists() and theirs.exists(), what="both drills' faults", timeout=60)

    frozen = gameday("freeze", "--reason", "their deploy", "--team", frozen_team)
    assert frozen.exit_code == 0, frozen.output
    assert "1 fault(s) reverted in 1 drill(s)" in frozen.stdout, frozen.stdout
    assert running not in frozen.stdout
    stopped_by_freeze(gameday.recorded(stopped), "their deploy")
    assert not mine.exists()
    assert theirs.exists() and gameday.store.get(running) is not None
    assert gameday.store.get(running).verdict is None  # type: ignore[union-attr]

    # The other team may still start drills; the frozen one may not.
    other_ok = gameday.workdir / unique("other-ok")
    ok = gameday("run", str(gameday.drill(marker_drill(unique("ok"), other_team, other_ok, "200ms"))), "--wait")
    assert ok.exit_code == 0, ok.output
    refused = gameday.workdir / unique("refused")
    no = gameday("run", str(gameday.drill(marker_drill(unique("no"), frozen_team, refused, "200ms"))), "--wait")
    assert no.exit_code == 4, no.output
    assert not refused.exists()

    assert gameday("unfreeze", "--team", frozen_team).exit_code == 0
    done = gameday("stop", running, "--reason", "test over", "--wait")
    assert done.exit_code == 0, done.output
    assert not theirs.exists()


def test_a_scheduled_run_during_a_freeze_records_itself_skipped(gameday: Gameday, unfrozen: None) -> None:
    marker = gameday.workdir / unique("sched")
    sid = unique("sched")
    drill = gameday.drill(marker_drill(unique("sched"), "cli-tests", marker, "200ms"))
    assert gameday("schedule", "add", str(drill), "--id", sid, "--cron", NEVER_SOON).exit_code == 0
    try:
        assert gameday("freeze", "--reason", "change freeze", "--no-wait").exit_code == 0
        listed = gameday("schedule", "list")
        assert "FROZEN: every team frozen by" in listed.stdout and "change freeze" in listed.stdout, listed.output

        triggered = gameday("schedule", "trigger", sid)
        assert triggered.exit_code == TRIGGER_SKIPPED, triggered.output
        assert "skipped: frozen: change freeze" in triggered.stdout
        run_id = triggered.stdout.split("started ", 1)[1].split()[0]
        record = gameday.recorded(run_id)
        stopped_by_freeze(record, "change freeze")
        assert "skipped" in record.stop.reason  # type: ignore[union-attr]
        assert record.faults == [] and not marker.exists() and not Path(f"{marker}.log").exists()
    finally:
        gameday("schedule", "delete", sid)


def test_a_game_day_during_a_freeze_starts_no_further_step(gameday: Gameday, unfrozen: None) -> None:
    team = unique("day")
    days = GameDays(gameday.store)
    log = gameday.workdir / f"{team}.log"
    file = two_step_gameday(gameday, team, log)
    started = gameday("run", str(file), "--json")
    assert started.exit_code == 0, started.output
    running_day = str(json.loads(started.stdout.strip().splitlines()[-1])["gameday_id"])
    wait_until(lambda: log.exists() and "one-on" in log.read_text(), what="stage one's fault", timeout=60)

    frozen = gameday("freeze", "--reason", "game over", "--team", team)
    assert frozen.exit_code == 0, frozen.output
    assert f"stopped game day {running_day}" in frozen.stdout
    wait_until(lambda: days.get(running_day) is not None, what="the game day's record", timeout=60)
    record = days.get(running_day)
    assert record is not None and record.outcome == "stopped", record
    entries = {e.drill_name: e for e in record.entries}
    assert entries["stage-one"].verdict == Verdict.ABORTED
    assert entries["stage-two"].verdict is None and "frozen: game over" in entries["stage-two"].skipped
    assert log.read_text().split() == ["one-on", "one-off"]

    # A game day started during the freeze (as an older CLI would) checks it before its first step: nothing runs.
    late_log = gameday.workdir / f"{team}-late.log"
    late = gameday("run", str(two_step_gameday(gameday, team, late_log)), "--wait")
    assert late.exit_code == 4, late.output
    late_id = next(line.split()[1] for line in late.stdout.splitlines() if line.startswith("started "))
    wait_until(lambda: days.get(late_id) is not None, what="the late game day's record", timeout=60)
    late_record = days.get(late_id)
    assert late_record is not None and late_record.outcome == "stopped"
    assert all(e.skipped.startswith("stopped by freeze: frozen: game over") for e in late_record.entries)
    assert not late_log.exists()


def test_a_freeze_survives_a_worker_restart(gameday: Gameday, tmp_path: Path) -> None:
    queue = f"test-freeze-restart-{uuid.uuid4()}"
    env = {**gameday.env, "GAMEDAY_TASK_QUEUE": queue}

    def cli(*args: str) -> object:
        return gameday(*args, GAMEDAY_TASK_QUEUE=queue)

    workers = WorkerProcesses(env["GAMEDAY_TEMPORAL_ADDRESS"], queue, env["GAMEDAY_DATABASE_URL"], tmp_path)
    try:
        first = workers.start()
        assert cli("freeze", "--reason", "durable").exit_code == 0  # type: ignore[attr-defined]
        workers.kill(first)  # SIGKILL: nothing of the freeze lives in the worker
        workers.start()
        marker = tmp_path / "after-restart"
        drill = gameday.drill(marker_drill(unique("restart"), "any", marker, "200ms"))
        refused = cli("run", str(drill), "--wait")
        assert refused.exit_code == 4, refused.output  # type: ignore[attr-defined]
        assert not marker.exists()
        assert cli("unfreeze").exit_code == 0  # type: ignore[attr-defined]
        allowed = cli("run", str(drill), "--wait")
        assert allowed.exit_code == 0, allowed.output  # type: ignore[attr-defined]
    finally:
        workers.stop_all()


@pytest.mark.parametrize("when", ["before its first task", "after it recorded the freeze"])
def test_a_freeze_workflow_terminated_by_someone_still_refuses_and_unfreeze_lifts_it(
    gameday: Gameday, tmp_path: Path, when: str
) -> None:
    """Someone terminates the freeze workflow (to 'unfreeze' by hand): the checks still read its last state, or
    fail closed when it has none, and 'gameday unfreeze' lifts it (it answered 'nothing is frozen (this task queue
    was never frozen)' while every run stayed refused)."""
    import asyncio

    queue = f"test-freeze-terminated-{uuid.uuid4()}"
    env = {**gameday.env, "GAMEDAY_TASK_QUEUE": queue}

    def cli(*args: str) -> Any:
        return gameday(*args, GAMEDAY_TASK_QUEUE=queue)

    async def terminate() -> None:
        await _terminate_freeze_workflow(env["GAMEDAY_TEMPORAL_ADDRESS"], queue)

    workers = WorkerProcesses(env["GAMEDAY_TEMPORAL_ADDRESS"], queue, env["GAMEDAY_DATABASE_URL"], tmp_path)
    try:
        if when == "before its first task":  # no worker yet: the freeze workflow never ran a task
            assert cli("freeze", "--reason", "terminated later").exit_code == 0
            asyncio.run(terminate())
            workers.start()
        else:
            workers.start()
            assert cli("freeze", "--reason", "terminated later").exit_code == 0
            wait_until(lambda: "FROZEN" in cli("schedule", "list").stdout, what="the freeze's memo", timeout=30)
            asyncio.run(terminate())
        marker = tmp_path / "after-terminate"
        drill = gameday.drill(marker_drill(unique("terminated"), "any", marker, "200ms"))
        refused = cli("run", str(drill), "--wait")
        assert refused.exit_code == 4, refused.output  # its last state still holds, or fail closed
        assert not marker.exists()

        lifted = cli("unfreeze")
        assert lifted.exit_code == 0, lifted.output
        assert "nothing is frozen" not in lifted.stdout, lifted.stdout
        allowed = cli("run", str(drill), "--wait")
        assert allowed.exit_code == 0, allowed.output
        assert "FROZEN" not in cli("schedule", "list").stdout
    finally:
        workers.stop_all()


def test_a_freeze_after_the_workflow_was_terminated_keeps_the_freezes_it_held(gameday: Gameday, tmp_path: Path) -> None:
    """Team a frozen, the workflow terminated by hand, then team b frozen: team a must stay frozen (a
    signal-with-start of an empty state dropped it)."""
    import asyncio

    queue = f"test-freeze-refreeze-{uuid.uuid4()}"
    env = {**gameday.env, "GAMEDAY_TASK_QUEUE": queue}
    team_a, team_b = unique("a"), unique("b")

    def cli(*args: str) -> Any:
        return gameday(*args, GAMEDAY_TASK_QUEUE=queue)

    async def terminate() -> None:
        await _terminate_freeze_workflow(env["GAMEDAY_TEMPORAL_ADDRESS"], queue)

    workers = WorkerProcesses(env["GAMEDAY_TEMPORAL_ADDRESS"], queue, env["GAMEDAY_DATABASE_URL"], tmp_path)
    try:
        workers.start()
        assert cli("freeze", "--reason", "first", "--team", team_a).exit_code == 0
        wait_until(lambda: team_a in cli("schedule", "list").stdout, what="the freeze's memo", timeout=30)
        asyncio.run(terminate())
        assert cli("freeze", "--reason", "second", "--team", team_b).exit_code == 0

        marker = tmp_path / "team-a"
        refused = cli("run", str(gameday.drill(marker_drill(unique("a"), team_a, marker, "200ms"))), "--wait")
        assert refused.exit_code == 4, refused.output
        assert not marker.exists()
        assert cli("unfreeze").exit_code == 0
    finally:
        workers.stop_all()


@pytest.mark.parametrize("command", ["freeze", "unfreeze"])
@pytest.mark.parametrize("team", ["", "  ", "*"])
def test_an_empty_or_wildcard_team_is_a_usage_error_before_anything_is_sent(command: str, team: str) -> None:
    """``--team ""`` froze every team (the workflow keys a missing team as '*') but stopped only runs of team '':
    none. Refused before Temporal is even reached (the address here answers nothing)."""
    from typer.testing import CliRunner

    from gameday.cli.main import app

    args = [command, "--team", team] + (["--reason", "r"] if command == "freeze" else [])
    result = CliRunner().invoke(app, args, env={"GAMEDAY_TEMPORAL_ADDRESS": "127.0.0.1:1"})
    assert result.exit_code == 1, result.output
    assert "name one team" in result.output and "cannot reach" not in result.output


async def _terminate_freeze_workflow(address: str, queue: str) -> None:
    """Terminate the task queue's freeze workflow by hand, as an operator might (reason "by hand")."""
    from temporalio.client import Client

    from gameday.model.freeze_names import freeze_workflow_id

    client = await Client.connect(address)
    await client.get_workflow_handle(freeze_workflow_id(queue)).terminate(reason="by hand")
