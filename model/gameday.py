"""Game days: several drills in a planned order, as one workflow (``GameDayWorkflow``) with one record.

A game-day file names the game day, its team, and an ordered list of steps; each step is one drill (``file:``
relative to the game-day file, or ``drill:`` inline) or a ``parallel:`` group of drills run at once. After each
step, a drill whose verdict is in ``stop_on`` ends the game day: the remaining drills are skipped (never
started), and the record says which verdict stopped it. ``gameday stop GAMEDAY_ID`` stops the running drills
(each rolls back) and skips the rest.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import Discriminator, Field, Tag, field_validator, model_validator

from gameday.model.base import Record, Strict
from gameday.model.drill import NAME_PATTERN, Approval, Drill
from gameday.model.notify_records import Notify
from gameday.model.records import EXIT_CODES, StopRequest, Verdict


class DrillStep(Strict):
    """One drill: ``{file: drills/db.yaml}`` or ``{drill: {name: ..., ...}}``."""

    file: str | None = None
    drill: Drill | None = None

    @model_validator(mode="after")
    def _one_source(self) -> DrillStep:
        if (self.file is None) == (self.drill is None):
            raise ValueError("a game-day step needs exactly one of 'file' or 'drill' (or 'parallel')")
        return self


class ParallelStep(Strict):
    """Drills started together; the next step waits for all of them."""

    parallel: list[DrillStep] = Field(min_length=2)


def _step_kind(value: object) -> str:
    """Which kind of step a value is, by its keys: a ``parallel:`` group, else a drill (``file:`` or ``drill:``).

    A step is judged as the kind its keys say, so a mistake in it is reported once, against that kind, never as
    errors for every kind of step it is not. (Named after the classes: the error messages' walker reads them.)
    """
    if isinstance(value, ParallelStep) or (isinstance(value, dict) and "parallel" in value):
        return "ParallelStep"
    return "DrillStep"


Step = Annotated[
    Annotated[DrillStep, Tag("DrillStep")] | Annotated[ParallelStep, Tag("ParallelStep")],
    Discriminator(_step_kind),
]
"""One step of a game day: a drill (``file:``/``drill:``) or a ``parallel:`` group."""


DEFAULT_STOP_ON = [Verdict.NOT_RECOVERED, Verdict.ERROR, Verdict.ABORTED]
"""ABORTED included: a drill stopped by a person or a guardrail (a declared incident) must not be followed, seconds
later, by the next step injecting its faults."""


class GameDaySpec(Strict):
    """A whole game-day file."""

    version: int = 1
    gameday: str
    """The game day's name (letters, digits, ``.``, ``_``, ``-``)."""
    description: str = ""
    team: str = ""
    notify: Notify | None = None
    """Applied to every drill of the game day that has no ``notify`` of its own."""
    stop_on: list[Verdict] = Field(default_factory=lambda: list(DEFAULT_STOP_ON))
    """Verdicts after which the remaining drills are skipped."""
    approval: Approval | None = None
    """A go/no-go gate before the first drill: ``gameday approve GAMEDAY_ID``; without it in time, nothing runs."""
    drills: list[Step] = Field(min_length=1)

    @field_validator("gameday")
    @classmethod
    def _name(cls, value: str) -> str:
        if not NAME_PATTERN.match(value):
            raise ValueError("expected 1-63 letters, digits, '.', '_' or '-', starting with a letter or digit")
        return value


# --- what the workflow gets, and what it records --------------------------------------------------------


class PlannedDrill(Record):
    """A drill of the game day, resolved (files read by the CLI, never by the workflow)."""

    drill: Drill
    source: str = ""


class GameDayInput(Record):
    gameday_id: str
    name: str
    team: str = ""
    description: str = ""
    stop_on: list[Verdict]
    approval: Approval | None = None
    stages: list[list[PlannedDrill]]
    """Steps in order; a step of several drills runs them in parallel."""
    source: str = ""
    started_by: str = ""


class GameDayEntry(Record):
    """One drill of the game day, as it went."""

    stage: int
    drill_name: str
    run_id: str = ""
    verdict: Verdict | None = None
    skipped: str = ""
    """Why it never started (a stop, a stop_on verdict), when it did not."""
    started_at: datetime | None = None
    ended_at: datetime | None = None
    time_to_recovery: float | None = None
    time_to_safe: float | None = None
    summary: str = ""


class GameDayRecord(Record):
    """The game day's record: its drills, how it ended, and why."""

    gameday_id: str
    name: str
    team: str = ""
    source: str = ""
    started_by: str = ""
    started_at: datetime
    ended_at: datetime | None = None
    entries: list[GameDayEntry] = Field(default_factory=list)
    stop: StopRequest | None = None
    halted_by: str = ""
    """The ``stop_on`` verdict that ended the game day early, in words."""
    outcome: str = ""
    """``completed``, ``halted`` (stop_on), ``stopped`` (gameday stop), ``cancelled`` or ``not approved``."""
    approved_by: str = ""


class RunningDrill(Record):
    """A drill of the game day running now (a child workflow started and not finished)."""

    stage: int
    drill_name: str
    run_id: str


class GameDayStatus(Record):
    """Answer of the game day's ``status`` query: its record so far, and what it is doing now."""

    record: GameDayRecord
    awaiting_approval: bool = False
    """Waiting at the game day's go/no-go gate for ``gameday approve GAMEDAY_ID``."""
    running: list[RunningDrill] = Field(default_factory=list)


STOPPED_OUTCOMES = ("stopped", "cancelled", "not approved")


def gameday_verdict(record: GameDayRecord) -> Verdict:
    """The game day's verdict, for ``DrillVerdict`` and ``run --wait``'s exit code: its most severe drill verdict.

    Severity is the verdict's exit code (:data:`~model.records.EXIT_CODES`). A drill that ended with no
    verdict (its workflow failed) counts as ERROR. A game day stopped, cancelled or never approved is at least
    ABORTED, like a drill stopped before its observation ended; one where nothing ran at all is ABORTED.
    """
    verdicts = [e.verdict or Verdict.ERROR for e in record.entries if not e.skipped]
    if record.outcome in STOPPED_OUTCOMES or not verdicts:
        verdicts.append(Verdict.ABORTED)
    return max(verdicts, key=lambda v: EXIT_CODES[v])
