"""Replays recorded histories against today's workflows: a change that breaks determinism fails here.

The histories in tests/histories/ are recorded from the workflow tests themselves (every ``finish(handle, name)``
and ``save_history(handle, name)`` writes one when ``GAMEDAY_RECORD_HISTORIES=1``): ``make histories`` re-records
them all and writes the fingerprint of the workflow code they were recorded with (tests/histories_fingerprint.py).
A change to workflow code then fails here until the histories are recorded anew, so every branch a test takes is
checked against the code that runs, and a change that breaks replay of running drills is seen before it ships
(version it with ``workflow.patched`` when drills in flight must survive it).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from gameday.workflows.drill_workflow import DrillWorkflow
from gameday.workflows.gameday_workflow import GameDayWorkflow
from tests import histories_fingerprint

HISTORIES = sorted((Path(__file__).parent.parent / "histories").glob("*.json"))


def test_recorded_histories_cover_every_verdict_path_and_feature() -> None:
    names = {path.stem for path in HISTORIES}
    assert {
        "pause_deviated",
        "pause_resilient",
        "not_steady",
        "not_recovered",
        "emergency_stop",
        "apply_fails",
        "cancelled",
        "max_duration",
        "not_reverted",
        "guardrail_breach",
        "kill_switch",
        "early_revert",
        "lock_waited",
        "approved",
        "blackout_skip",
        "proxy_stop",
        "notify_full",
        "crash_with_traffic",
        "gameday_halted",
        "gameday_stopped",
        "gameday_approved",
    } <= names


def test_histories_were_recorded_from_todays_workflow_code() -> None:
    assert histories_fingerprint.current() == histories_fingerprint.stored(), (
        "the workflow code changed since tests/histories/ were recorded: run `make histories` (it re-records them "
        "from the tests and writes tests/histories/FINGERPRINT), check that the old ones still replay if running "
        "drills must survive the change, and commit the new histories"
    )


@pytest.mark.parametrize("path", HISTORIES, ids=[p.stem for p in HISTORIES])
async def test_recorded_history_replays_without_nondeterminism(path: Path) -> None:
    history = WorkflowHistory.from_json(f"replay-{path.stem}", path.read_text())
    replayer = Replayer(workflows=[DrillWorkflow, GameDayWorkflow], data_converter=pydantic_data_converter)
    result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
    assert result.replay_failure is None, f"{path.name}: {result.replay_failure}"
