"""A game day through the CLI, never silent and never untrue (real dev server, a ``gameday worker`` process, and
``gameday run --wait`` as a real subprocess): its gates, phases and pauses printed as they happen, ``status`` of a
game day live, after its end and with Temporal unreachable, its search attributes and those of its drills."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from gameday.activities.gameday_store import GameDays
from gameday.model.records import Verdict
from gameday.worker.devserver import free_port
from tests.cli.conftest import Gameday
from tests.conftest import installed_binary
from tests.harness import wait_until

pytestmark = pytest.mark.integration


@dataclass
class Following:
    """``gameday run GAMEDAY_FILE --wait`` running as a subprocess, its output in a file."""

    process: subprocess.Popen[bytes]
    output: Path
    gameday_id: str
    name: str
    log: Path

    def text(self) -> str:
        return self.output.read_text(errors="replace")

    def shows(self, needle: str, timeout: float = 60.0) -> None:
        def seen() -> bool:
            assert self.process.poll() is None or needle in self.text(), f"ended without {needle!r}:\n{self.text()}"
            return needle in self.text()

        wait_until(seen, what=f"run --wait to print {needle!r}", timeout=timeout)

    def run_id(self, drill: str) -> str:
        return f"{self.gameday_id}.{drill}"


def _fault(name: str, log: Path) -> str:
    return f'{{target: sh, action: run, run: "echo {name}-on >> {log}", revert: "echo {name}-off >> {log}"}}'


@pytest.fixture
def following(gameday: Gameday) -> Iterator[Following]:
    """A game day behind its own gate: a drill behind its own gate too, then a second drill."""
    name = f"live-{uuid.uuid4().hex[:6]}"
    log = gameday.workdir / f"{name}.log"
    file = gameday.workdir / f"{name}.yaml"
    file.write_text(
        f"""
gameday: {name}
team: live-team
approval: {{timeout: 5m}}
drills:
  - drill:
      name: gated
      targets: {{sh: {{command: {{}}}}}}
      hypothesis: [{{name: ok, command: {{run: "true"}}}}]
      faults: [{_fault("gated", log)}]
      approval: {{timeout: 5m}}
      observe: {{duration: 300ms, interval: 100ms}}
  - drill:
      name: second
      targets: {{sh: {{command: {{}}}}}}
      faults: [{_fault("second", log)}]
      observe: {{duration: 300ms, interval: 100ms}}
"""
    )
    gameday_id = f"gameday-{name}"
    output = gameday.workdir / f"{name}.out"
    with output.open("wb") as out:
        process = subprocess.Popen(
            [installed_binary("gameday"), "run", str(file), "--wait", "--id", gameday_id],
            env={**os.environ, **gameday.env},
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    following = Following(process, output, gameday_id, name, log)
    try:
        yield following
    finally:
        gameday("stop", gameday_id, "--reason", "test over", "--wait")  # exits 1, harmless, if it has ended
        if process.poll() is None:
            process.kill()
        process.wait(timeout=30)


def test_run_wait_of_a_game_day_prints_its_gates_a_pause_and_each_drills_phases_as_they_happen(
    gameday: Gameday, following: Following
) -> None:
    gated = following.run_id("gated")
    following.shows(f"waiting for approval: gameday approve {following.gameday_id}")
    assert gameday("approve", following.gameday_id).exit_code == 0

    following.shows(f"gated: started {gated}")
    following.shows(f"gated: waiting for approval: gameday approve {gated}")
    assert "gated preflight" in following.text(), "a phase is printed when it ends, before the drill does"
    # Pausing a game day as a whole is refused, naming the drill to pause instead.
    whole = gameday("pause", following.gameday_id)
    assert whole.exit_code == 1 and "is a game day" in whole.stderr and gated in whole.stderr, whole.output
    held = gameday("pause", gated)
    assert held.exit_code == 0, held.output
    assert f"pause accepted: {gated} holds once it is approved, before it injects" in held.stdout
    assert gameday("approve", gated).exit_code == 0

    following.shows(f"gated: paused: continue it with gameday resume {gated}")
    assert not following.log.exists(), "held before inject: nothing injected while paused"
    assert gameday("resume", gated).exit_code == 0

    assert following.process.wait(timeout=120) == 0, following.text()
    text = following.text()
    for needle in (
        "gated inject ",
        "gated observe ",
        "gated rollback ",
        "gated: RESILIENT",
        f"second: started {following.run_id('second')}",
        "second preflight ",
        "second observe ",
        "second: RESILIENT",
        f"game day {following.name}: completed",
    ):
        assert needle in text, f"{needle!r} not in:\n{text}"
    assert text.index("gated: RESILIENT") < text.index("second: started")


def test_status_of_a_game_day_live_at_its_gate_after_its_end_and_with_temporal_unreachable(
    gameday: Gameday, following: Following
) -> None:
    following.shows("waiting for approval")
    live = gameday("status", following.gameday_id)
    assert live.exit_code == 0, live.output
    assert f"game day {following.name}: waiting for approval: gameday approve {following.gameday_id}" in live.stdout

    assert gameday("approve", following.gameday_id).exit_code == 0
    following.shows("gated: waiting for approval")
    running = gameday("status", following.gameday_id)
    assert running.exit_code == 0, running.output
    assert re.search(rf"1\. gated\s+running: phase approval\s+{re.escape(following.run_id('gated'))}", running.stdout)
    assert gameday("approve", following.run_id("gated")).exit_code == 0
    assert following.process.wait(timeout=120) == 0, following.text()

    wait_until(lambda: GameDays(gameday.store).get(following.gameday_id) is not None, what="the game day's record")
    ended = gameday("status", following.gameday_id)
    assert ended.exit_code == 0, ended.output
    assert f"game day {following.name}: completed; verdict RESILIENT" in ended.stdout
    assert following.run_id("second") in ended.stdout

    nowhere = f"127.0.0.1:{free_port()}"
    offline = gameday("status", following.gameday_id, GAMEDAY_TEMPORAL_ADDRESS=nowhere)
    assert offline.exit_code == 0, offline.output
    assert f"cannot reach Temporal at {nowhere}" in offline.stderr
    assert f"game day {following.name}: completed; verdict RESILIENT" in offline.stdout
    drill = gameday("status", following.run_id("second"), GAMEDAY_TEMPORAL_ADDRESS=nowhere)
    assert drill.exit_code == 0, drill.output
    assert "RESILIENT" in drill.stdout and following.run_id("second") in drill.stdout


def test_a_game_day_and_its_drills_carry_search_attributes_and_the_game_day_is_listed_with_its_verdict(
    gameday: Gameday, following: Following
) -> None:
    following.shows("waiting for approval")
    assert gameday("approve", following.gameday_id).exit_code == 0
    following.shows("gated: waiting for approval")
    assert gameday("approve", following.run_id("gated")).exit_code == 0
    assert following.process.wait(timeout=120) == 0, following.text()

    def rows() -> dict[str, str]:
        listed = gameday("list", "--temporal", "--team", "live-team")
        assert listed.exit_code == 0, listed.output
        return {line.split()[0]: line for line in listed.stdout.splitlines() if following.gameday_id in line}

    ids = [following.gameday_id, following.run_id("gated"), following.run_id("second")]
    wait_until(lambda: all(i in rows() and "RESILIENT" in rows()[i] for i in ids), what="all three with their verdicts")
    found = rows()
    assert re.search(rf"game day\s+{following.name}\s+live-team\s+dev\s+COMPLETED\s+RESILIENT", found[ids[0]])
    assert re.search(r"drill\s+gated\s+live-team\s+dev\s+COMPLETED\s+RESILIENT", found[ids[1]])
    assert re.search(r"drill\s+second\s+live-team\s+dev\s+COMPLETED\s+RESILIENT", found[ids[2]])


def test_a_stopped_game_days_verdict_is_aborted(gameday: Gameday, following: Following) -> None:
    following.shows("waiting for approval")
    stopped = gameday("stop", following.gameday_id, "--reason", "not today", "--wait")
    assert stopped.exit_code == 0, stopped.output
    assert following.process.wait(timeout=60) == 4, following.text()
    assert "gated: skipped: stopped by" in following.text()
    wait_until(lambda: GameDays(gameday.store).get(following.gameday_id) is not None, what="the game day's record")
    assert f"verdict {Verdict.ABORTED.value}" in gameday("status", following.gameday_id).stdout


def test_ctrl_c_on_run_wait_of_a_game_day_says_it_goes_on_and_how_to_stop_it(
    gameday: Gameday, following: Following
) -> None:
    following.shows("waiting for approval")
    following.process.send_signal(signal.SIGINT)
    assert following.process.wait(timeout=30) == 130, following.text()
    text = " ".join(following.text().split())
    assert f"left {following.gameday_id}: the game day goes on" in text
    assert f'gameday stop {following.gameday_id} --reason "…"' in text
    assert gameday("status", following.gameday_id).exit_code == 0


def test_report_and_status_of_a_running_game_day_say_it_runs_and_invent_no_verdict(
    gameday: Gameday, following: Following
) -> None:
    following.shows("waiting for approval")

    report = gameday("report", following.gameday_id)
    assert report.exit_code == 0, report.output
    assert report.stdout.splitlines()[0] == f"game day {following.name}: still running, no verdict yet"
    assert f"game day {following.gameday_id} is still running" in report.stderr
    assert "verdict" not in report.stdout.replace("no verdict yet", "")

    nowhere = f"127.0.0.1:{free_port()}"
    offline = gameday("status", following.gameday_id, GAMEDAY_TEMPORAL_ADDRESS=nowhere)
    assert offline.exit_code == 1, offline.output
    note, *rest = offline.stderr.strip().splitlines()
    assert (
        note == f"note: cannot reach Temporal at {nowhere} (connection refused): what the results database last heard"
    )
    assert "a running game day is recorded there only when it ends" in " ".join(" ".join(rest).split())
    offline_report = gameday("report", following.gameday_id, GAMEDAY_TEMPORAL_ADDRESS=nowhere)
    assert offline_report.exit_code == 1, offline_report.output
    assert f"cannot reach Temporal at {nowhere} (connection refused)" in offline_report.stderr
    assert "verdict" not in offline_report.output
