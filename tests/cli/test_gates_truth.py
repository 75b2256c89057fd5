"""``gameday approve`` and ``gameday resume`` never answer "approved"/"resumed" for a signal that changes nothing
(real dev server and a ``gameday worker`` process): a run not waiting at its gate, or not paused, is refused
(exit 1) with what it is doing, and nothing is sent."""

from __future__ import annotations

import pytest

from gameday.model.records import Verdict
from tests.cli.conftest import Gameday
from tests.cli.test_cli_commands import command_drill, unique
from tests.harness import wait_until

pytestmark = pytest.mark.integration


def test_approve_and_resume_of_an_observing_drill_are_refused_saying_what_it_is_doing(gameday: Gameday) -> None:
    marker = gameday.workdir / unique("gates-marker")
    text = command_drill(unique("cli-gates"), marker, probe="true", observe="5m")
    watch = f'watch: [{{name: marker-there, command: {{run: "test -e {marker}"}}}}]}}'
    drill = gameday.drill(text.replace("interval: 100ms}\nrecovery", "interval: 100ms, " + watch + "\nrecovery"))
    run_id = unique("gates-run")
    assert gameday("run", str(drill), "--id", run_id).exit_code == 0
    wait_until(lambda: "phase: observe" in gameday("status", run_id).stdout, what="the observation", timeout=60)

    approved = gameday("approve", run_id)
    assert approved.exit_code == 1, approved.output
    line = " ".join(approved.stderr.split())
    assert f"{run_id} is not waiting at a go/no-go gate: it is in phase observe; nothing was approved" in line
    assert "approved " + run_id not in approved.stdout

    resumed = gameday("resume", run_id)
    assert resumed.exit_code == 1, resumed.output
    line = " ".join(resumed.stderr.split())
    assert f"{run_id} is not paused: it is in phase observe; nothing was resumed" in line
    assert "resumed " + run_id not in resumed.stdout

    # A long observation is not silent in status: its ticks and each probe's failures so far.
    wait_until(lambda: "observing: " in gameday("status", run_id).stdout, what="the observe progress", timeout=60)
    live = gameday("status", run_id).stdout
    assert "tick(s) so far" in live and "window ends in " in live
    assert "    probe: 0 of " in live and " sample(s) failed" in live
    # and so is its watch: each watch probe's state now (the fault's marker is there: held)
    wait_until(lambda: "watching: " in gameday("status", run_id).stdout, what="the watch progress", timeout=60)
    live = gameday("status", run_id).stdout
    assert "    marker-there: held since " in live, live
    stopped = gameday("stop", run_id, "--reason", "test over", "--wait")
    assert stopped.exit_code == 0, stopped.output
    assert gameday.recorded(run_id).verdict == Verdict.ABORTED
    for verb in ("approve", "resume", "pause"):
        late = gameday(verb, run_id)
        assert late.exit_code == 1, late.output
        assert f"has already finished (COMPLETED): there is nothing to {verb}" in " ".join(late.stderr.split())


def test_approve_at_the_gate_is_answered_approved(gameday: Gameday) -> None:
    marker = gameday.workdir / unique("gates-marker")
    drill = gameday.drill(
        command_drill(unique("cli-gate-ok"), marker, probe="true", observe="200ms") + "approval: {timeout: 5m}\n"
    )
    run_id = unique("gate-run")
    assert gameday("run", str(drill), "--id", run_id).exit_code == 0
    wait_until(lambda: "phase: approval" in gameday("status", run_id).stdout, what="the drill's gate", timeout=60)

    resumed = gameday("resume", run_id)
    assert resumed.exit_code == 1 and "is not paused: it is in phase approval" in " ".join(resumed.stderr.split())
    approved = gameday("approve", run_id, "--note", "on-call agrees")
    assert approved.exit_code == 0, approved.output
    assert f"approved {run_id}" in approved.stdout
    assert gameday.recorded(run_id, timeout=60).verdict == Verdict.RESILIENT


def test_approve_during_preflight_waits_for_the_gate_and_says_so(gameday: Gameday) -> None:
    marker = gameday.workdir / unique("gates-marker")
    drill = gameday.drill(
        command_drill(unique("cli-gate-early"), marker, probe="sleep 1", observe="200ms") + "approval: {timeout: 5m}\n"
    )
    run_id = unique("gate-early")
    assert gameday("run", str(drill), "--id", run_id).exit_code == 0

    approved = gameday("approve", run_id)

    assert approved.exit_code == 0, approved.output
    assert f"waiting for {run_id} to reach its go/no-go gate" in approved.stdout
    assert f"approved {run_id}: now in phase " in approved.stdout
    assert gameday.recorded(run_id, timeout=60).verdict == Verdict.RESILIENT
