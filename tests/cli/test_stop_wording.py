"""``gameday stop --wait`` says what it waited for and how the run ended, truthfully: the rollback, the faults it
reverted (never one that was not applied) and the verdict (real dev server and ``gameday worker`` process)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from gameday.cli.runs import NEVER_APPLIED, REVERTED, _stopped_line, fault_outcome
from gameday.model.records import NOT_APPLIED, DrillStatus, FaultRecord, FaultState, Phase, StopRequest, Verdict
from tests.cli.conftest import Gameday
from tests.cli.test_cli_commands import unique
from tests.harness import wait_until


@pytest.mark.integration
def test_stop_wait_names_the_rollback_the_faults_reverted_and_the_verdict(gameday: Gameday) -> None:
    one, two = gameday.workdir / unique("one"), gameday.workdir / unique("two")
    drill = gameday.drill(
        f"""
name: {unique("cli-stop-words")}
team: cli-tests
targets:
  sh: {{command: {{}}}}
hypothesis:
  - name: probe
    command: {{run: "true"}}
faults:
  - {{target: sh, action: run, run: "touch {one}", revert: "rm -f {one}"}}
  - {{target: sh, action: run, run: "touch {two}", revert: "rm -f {two}"}}
observe: {{duration: 5m, interval: 100ms}}
recovery: {{within: 10s, interval: 100ms}}
"""
    )
    run_id = unique("stop-words")
    assert gameday("run", str(drill), "--id", run_id).exit_code == 0
    wait_until(lambda: "phase: observe" in gameday("status", run_id).stdout, what="the observation", timeout=60)

    stopped = gameday("stop", run_id, "--reason", "pager fired", "--wait")

    assert stopped.exit_code == 0, stopped.output
    assert f"{run_id} stopped: rollback done, 2 fault(s) reverted, verdict ABORTED" in stopped.stdout
    assert "every fault reverted" in stopped.stdout
    assert not one.exists() and not two.exists()


def _fault(index: int, state: FaultState, *, applied: bool, reverted: bool, error: str = "") -> FaultRecord:
    at = datetime(2026, 11, 23, 14, 0, tzinfo=UTC)
    return FaultRecord(
        index=index,
        label=f"f{index}",
        target="api",
        kind="process",
        action="kill",
        state=state,
        applied_at=at if applied else None,
        reverted_at=at if reverted else None,
        error=error,
    )


def test_a_fault_never_applied_is_never_called_reverted() -> None:
    applied = _fault(0, FaultState.REVERTED, applied=True, reverted=True)
    missing = _fault(1, FaultState.FAILED, applied=False, reverted=False, error=f"f1: {NOT_APPLIED}no pidfile")
    # What revert_fault answers for such a fault: REVERTED in state, with no revert time and no apply.
    skipped = _fault(2, FaultState.REVERTED, applied=False, reverted=False)
    assert [fault_outcome(f) for f in (applied, missing, skipped)] == [REVERTED, NEVER_APPLIED, NEVER_APPLIED]

    status = DrillStatus(
        run_id="drill-x",
        phase=Phase.ROLLBACK,
        faults_active=[],
        last_measurements=[],
        faults=[applied, missing, skipped],
        stop=StopRequest(reason="r", by="me"),
        rolled_back=True,
    )
    assert _stopped_line(status, Verdict.ABORTED.value, gameday=False) == (
        "rollback done, 1 fault(s) reverted, 2 never applied (nothing to revert), verdict ABORTED"
    )
    assert _stopped_line(status, None, gameday=False).endswith(
        "verdict not decided yet (it checks recovery, then records it: gameday status drill-x)"
    )
