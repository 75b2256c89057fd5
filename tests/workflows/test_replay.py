"""Replays recorded drill histories against today's DrillWorkflow: a change that breaks determinism fails here.

The histories in tests/histories/ were recorded from the workflow tests with
``GAMEDAY_RECORD_HISTORIES=1 pytest tests/workflows/test_drill_workflow.py``. Re-record them only when a change
is deliberately incompatible (and then version the workflow with ``workflow.patched``, so running drills survive).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from workflows.drill_workflow import DrillWorkflow

HISTORIES = sorted((Path(__file__).parent.parent / "histories").glob("*.json"))


def test_recorded_histories_cover_every_verdict_path() -> None:
    names = {path.stem for path in HISTORIES}
    assert {
        "pause_deviated",
        "pause_resilient",
        "not_steady",
        "not_recovered",
        "emergency_stop",
        "apply_fails",
    } <= names


@pytest.mark.parametrize("path", HISTORIES, ids=[p.stem for p in HISTORIES])
async def test_recorded_history_replays_without_nondeterminism(path: Path) -> None:
    history = WorkflowHistory.from_json(f"replay-{path.stem}", path.read_text())
    replayer = Replayer(workflows=[DrillWorkflow], data_converter=pydantic_data_converter)
    result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
    assert result.replay_failure is None, f"{path.name}: {result.replay_failure}"
