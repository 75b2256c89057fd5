"""``gameday stop --all`` stops game days, not only their drills, and a game day whose drill a person stopped goes
no further (real dev server, a ``gameday worker`` process)."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from gameday.activities.gameday_store import GameDays
from gameday.model.records import Verdict
from tests.cli.conftest import Gameday
from tests.harness import wait_until

pytestmark = pytest.mark.integration


def two_step_gameday(gameday: Gameday, team: str, log: Path) -> Path:
    """Two steps: a drill holding its fault for minutes, then one that would inject at once."""

    def fault(name: str) -> str:
        return f'{{target: sh, action: run, run: "echo {name}-on >> {log}", revert: "echo {name}-off >> {log}"}}'

    name = f"incident-{uuid.uuid4().hex[:6]}"
    path = gameday.workdir / f"{name}.yaml"
    path.write_text(
        f"""
gameday: {name}
team: {team}
drills:
  - drill:
      name: stage-one
      targets: {{sh: {{command: {{}}}}}}
      faults: [{fault("one")}]
      observe: {{duration: 5m}}
  - drill:
      name: stage-two
      targets: {{sh: {{command: {{}}}}}}
      faults: [{fault("two")}]
      observe: {{duration: 200ms}}
"""
    )
    return path


def _start(gameday: Gameday, file: Path, log: Path) -> str:
    started = gameday("run", str(file), "--json")
    assert started.exit_code == 0, started.output
    gameday_id = str(json.loads(started.stdout.strip().splitlines()[-1])["gameday_id"])
    wait_until(lambda: log.exists() and "one-on" in log.read_text(), what="stage one's fault", timeout=60)
    return gameday_id


def _finished(gameday: Gameday, gameday_id: str):  # type: ignore[no-untyped-def]
    days = GameDays(gameday.store)
    wait_until(lambda: days.get(gameday_id) is not None, what=f"the record of {gameday_id}", timeout=60)
    return days.get(gameday_id)


def test_stop_all_for_a_team_stops_its_game_day_so_the_next_step_never_injects(gameday: Gameday) -> None:
    team = f"team-{uuid.uuid4().hex[:6]}"
    log = gameday.workdir / f"{team}.log"
    gameday_id = _start(gameday, two_step_gameday(gameday, team, log), log)
    # Visibility lags starts by ~0.2 s; stage one's fault being applied means the game day started well before.
    stopped = gameday("stop", "--all", "--team", team, "--reason", "declared incident", "--wait")
    assert stopped.exit_code == 0, stopped.output
    assert f"stop sent to {gameday_id}" in stopped.stdout

    record = _finished(gameday, gameday_id)
    assert record.outcome == "stopped", record
    entries = {e.drill_name: e for e in record.entries}
    assert entries["stage-one"].verdict == Verdict.ABORTED
    assert entries["stage-two"].verdict is None and "declared incident" in entries["stage-two"].skipped
    assert log.read_text().split() == ["one-on", "one-off"]


def test_a_person_stopping_a_game_days_drill_halts_the_game_day_by_default(gameday: Gameday) -> None:
    log = gameday.workdir / f"direct-{uuid.uuid4().hex[:6]}.log"
    gameday_id = _start(gameday, two_step_gameday(gameday, "direct", log), log)

    stopped = gameday("stop", f"{gameday_id}.stage-one", "--reason", "pager fired", "--by", "bob", "--wait")
    assert stopped.exit_code == 0, stopped.output

    record = _finished(gameday, gameday_id)
    assert record.outcome == "halted", record
    entries = {e.drill_name: e for e in record.entries}
    assert entries["stage-one"].verdict == Verdict.ABORTED
    assert "stopped by bob: pager fired" in record.halted_by
    assert entries["stage-two"].verdict is None and entries["stage-two"].skipped
    assert log.read_text().split() == ["one-on", "one-off"]
