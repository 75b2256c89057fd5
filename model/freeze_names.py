"""Names of the kill switch that need no model: what ``gameday freeze`` imports, so it starts fast.

The drill model (pydantic, ``model.records``) costs the command ~150 ms of imports before its first RPC; a freeze
that waits on imports is a slower kill switch. The models are in ``model/freeze_records.py``.
"""

from __future__ import annotations

ALL_TEAMS = "*"
"""The key of a freeze of every team (``gameday freeze`` without ``--team``)."""

FREEZE_PATCH = "freeze-check"
"""Drills and game days started before the kill switch existed replay without its check (``workflow.patched``)."""

FROZEN_BY = "freeze"
"""``StopRequest.by`` of a run stopped or refused by a freeze: what ``stopped by freeze: frozen: …`` reads."""

CHANGES_PER_RUN = 200
"""Freezes and unfreezes one ``FreezeWorkflow`` run takes before it continues as new: its history stays small."""

MEMO_KEY = "freezes"
"""The freeze workflow's memo key holding the freezes in force (a :class:`FreezeState` as JSON)."""


def freeze_workflow_id(task_queue: str) -> str:
    """The freeze state's fixed workflow id: one per task queue, i.e. per gameday installation in a namespace.

    Per task queue rather than per namespace: drills run on their installation's queue, and a freeze held by a
    workflow no worker of that queue runs could not be read (a read that fails refuses every start).
    """
    return f"gameday-freeze-{task_queue}"
