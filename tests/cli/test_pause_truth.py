"""``gameday pause`` never answers "pause requested" for a pause that cannot hold the drill (real dev server and a
``gameday worker`` process): refused once the observation has started, with the way out; accepted before, saying
when it takes effect."""

from __future__ import annotations

import pytest

from gameday.model.records import Verdict
from tests.cli.conftest import Gameday
from tests.cli.test_cli_commands import command_drill, unique
from tests.harness import wait_until

pytestmark = pytest.mark.integration


def _start(gameday: Gameday, observe: str, extra: str = "") -> str:
    marker = gameday.workdir / unique("pause-marker")
    drill = gameday.drill(command_drill(unique("cli-pause"), marker, probe="true", observe=observe) + extra)
    run_id = unique("pause-run")
    started = gameday("run", str(drill), "--id", run_id)
    assert started.exit_code == 0, started.output
    return run_id


def test_a_pause_during_observe_is_refused_with_the_reason_and_the_stop_command_and_changes_nothing(
    gameday: Gameday,
) -> None:
    run_id = _start(gameday, observe="5m")
    wait_until(lambda: "phase: observe" in gameday("status", run_id).stdout, what="the observation", timeout=60)

    refused = gameday("pause", run_id)
    assert refused.exit_code == 1, refused.output
    line = " ".join(refused.stderr.split())
    assert f"pause refused: {run_id}: it is observing" in line
    assert "can no longer take effect" in line and f"gameday stop {run_id}" in line
    assert "pause requested" not in refused.output and "Traceback" not in refused.output
    assert "phase: observe" in gameday("status", run_id).stdout

    stopped = gameday("stop", run_id, "--reason", "test over", "--wait")
    assert stopped.exit_code == 0, stopped.output
    assert gameday.recorded(run_id).verdict == Verdict.ABORTED
    after = gameday("pause", run_id)
    assert after.exit_code == 1 and "already finished" in after.stderr


def test_a_pause_before_inject_says_when_it_holds_and_the_drill_holds_there_until_resume(gameday: Gameday) -> None:
    run_id = _start(gameday, observe="200ms", extra="approval: {timeout: 5m}\n")
    wait_until(lambda: "phase: approval" in gameday("status", run_id).stdout, what="the drill's gate", timeout=60)
    held = gameday("pause", run_id)
    assert held.exit_code == 0, held.output
    text = " ".join(held.stdout.split())
    expected = f"pause accepted: {run_id} holds once it is approved, before it injects; gameday resume {run_id} "
    assert text == expected + "continues it", text
    assert gameday("approve", run_id).exit_code == 0
    wait_until(lambda: "phase: paused" in gameday("status", run_id).stdout, what="the drill to hold", timeout=60)
    again = gameday("pause", run_id)
    assert again.exit_code == 0 and f"{run_id} is already paused: gameday resume {run_id}" in again.stdout
    assert gameday("resume", run_id).exit_code == 0
    record = gameday.recorded(run_id, timeout=60)
    assert record.verdict == Verdict.RESILIENT, record.summary
    [paused] = [s for s in record.steps if s.phase.value == "paused"]
    assert paused.detail.startswith("paused (no fault applied yet), resumed by "), paused.detail  # held before inject
