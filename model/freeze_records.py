"""The kill switch's records: who froze what and why, the freeze state, and the check a run makes at its start.

Pure models, shared by ``FreezeWorkflow`` (which holds the state), the ``check_freeze`` activity (which reads it
for a drill or a game day) and ``gameday freeze`` / ``unfreeze`` / ``status`` / ``schedule list``.
"""

from __future__ import annotations

from datetime import datetime

from gameday.model.freeze_names import ALL_TEAMS, CHANGES_PER_RUN, FREEZE_PATCH, FROZEN_BY, MEMO_KEY, freeze_workflow_id
from gameday.model.records import Reason, Record, Who

__all__ = [
    "ALL_TEAMS",
    "CHANGES_PER_RUN",
    "FREEZE_PATCH",
    "FROZEN_BY",
    "MEMO_KEY",
    "Freeze",
    "FreezeCheck",
    "FreezeRequest",
    "FreezeState",
    "UnfreezeRequest",
    "freeze_workflow_id",
    "refusal",
    "stopping",
]


class Freeze(Record):
    """One freeze in force: of one team, or of all (:data:`ALL_TEAMS`)."""

    team: str
    reason: Reason
    by: Who = "unknown"
    since: datetime | None = None
    """When the freeze workflow took it (its clock)."""

    def describe(self) -> str:
        scope = "every team" if self.team == ALL_TEAMS else f"team {self.team}"
        since = f" since {self.since:%Y-%m-%d %H:%M:%S} UTC" if self.since else ""
        return f"{scope} frozen by {self.by}{since}: {self.reason}"


class FreezeRequest(Record):
    """Signal ``freeze``: ``team`` ``None`` freezes every team."""

    reason: Reason
    by: Who = "unknown"
    team: str | None = None


class UnfreezeRequest(Record):
    """Signal ``unfreeze``: ``team`` ``None`` lifts every freeze (the global one and each team's)."""

    by: Who = "unknown"
    team: str | None = None


class FreezeState(Record):
    """The freezes in force: the freeze workflow's input (continue-as-new) and the answer of its query."""

    freezes: list[Freeze] = []

    def blocking(self, team: str) -> Freeze | None:
        """The freeze that stops a run of ``team``: the global one first, else the team's own, else ``None``."""
        by_team = {f.team: f for f in self.freezes}
        return by_team.get(ALL_TEAMS) or (by_team.get(team) if team else None)


class FreezeCheck(Record):
    """Argument of ``check_freeze``: a run of ``team`` about to start on ``task_queue``."""

    team: str
    task_queue: str


def refusal(freeze: Freeze) -> str:
    """The stop reason of a run refused at its start: it begins ``frozen: <reason>``."""
    return f"frozen: {freeze.reason} (skipped: started during a freeze of {_scope(freeze)}; nothing touched)"


def stopping(freeze: Freeze) -> str:
    """The stop reason ``gameday freeze`` sends to running drills and game days."""
    return f"frozen: {freeze.reason}"


def _scope(freeze: Freeze) -> str:
    return "every team" if freeze.team == ALL_TEAMS else f"team {freeze.team}"
