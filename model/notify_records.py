"""Telling people how a drill goes: the ``notify`` section of drill and game-day files, and the notify records.

Plain models, safe in the workflow sandbox. :class:`Notify` is the file section
(``notify: {slack: {channel: "#gameday"}, webhook: true}``). :class:`NotifyEvent` is the one argument of the
``notify_slack`` and ``notify_webhook`` activities: who (the run), where (the file's settings, the Slack thread
so far) and what happened (one of :class:`DrillStarted`, :class:`PhaseDone`, :class:`DrillStopped`,
:class:`DrillFinished`). :class:`NotifyResult` hands back the Slack thread, which the workflow keeps and puts in
every later event: the thread lives in workflow state, so it survives activity retries and worker crashes.

No secrets here: tokens and webhook URLs are the worker's configuration (``config/notify.py``).

This module imports nothing from ``model.drill`` or ``model.records`` because ``drill.py`` imports it
(for ``Drill.notify``); phases, step statuses and verdicts therefore travel as their string values
(``Phase.OBSERVE`` is a ``str``, so the workflow passes its enums as they are).
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Annotated, Literal

from pydantic import Field, field_validator

from gameday.model.base import Record, Strict
from gameday.model.units import Duration

CHANNEL_PATTERN = re.compile(r"^#?[\w.-]{1,80}$")
"""A channel name (``#gameday``, ``gameday``) or id (``C0123ABCD``): no spaces, at most 80 characters."""


class SlackNotify(Strict):
    """``notify.slack``: where the drill's Slack thread goes."""

    channel: str
    """Channel name or id the bot token posts to; an incoming webhook posts to its own channel instead."""

    @field_validator("channel")
    @classmethod
    def _channel_name(cls, value: str) -> str:
        if not CHANNEL_PATTERN.match(value):
            raise ValueError('expected a Slack channel such as "#gameday" or "C0123ABCD"')
        return value


class Notify(Strict):
    """The ``notify`` section of a drill or game-day file."""

    slack: SlackNotify | None = None
    """Post the drill to Slack: a parent message and a thread of updates (bot token) or one message per event
    (incoming webhook), as the worker is configured."""
    webhook: bool = False
    """POST every event as JSON to the worker's ``GAMEDAY_WEBHOOK_URL`` (for other chat tools)."""
    give_up_after: Duration = timedelta(seconds=60)
    """How long one notification keeps being retried (and how long the end of the drill waits for the last
    ones) before it is given up and recorded as not delivered: news of a phase is worth little later."""

    @field_validator("give_up_after")
    @classmethod
    def _positive(cls, value: timedelta) -> timedelta:
        if not timedelta(seconds=1) <= value <= timedelta(minutes=10):
            raise ValueError("expected a duration from 1s to 10m")
        return value


class DrillStarted(Record):
    """The drill started: becomes the thread's parent message."""

    kind: Literal["started"] = "started"
    description: str = ""
    started_by: str = ""
    targets: list[str] = Field(default_factory=list)
    """One line per target, e.g. ``db: docker shop-db``."""
    faults: list[str] = Field(default_factory=list)
    """The faults' labels, in order."""
    approval: bool = False
    """The drill waits at a go/no-go gate (``approval:``): its Slack parent gets an **Approve** button."""


class PhaseDone(Record):
    """A phase ended (a ``StepRecord`` of the drill log)."""

    kind: Literal["phase"] = "phase"
    phase: str
    """A ``model.records.Phase`` value: ``preflight``, ``inject``, ``observe``, ``rollback``, ``verify``…"""
    status: str
    """A ``model.records.StepStatus`` value: ``ok``, ``failed``, ``skipped``, ``interrupted``."""
    detail: str = ""
    seconds: float | None = None


class DrillStopped(Record):
    """The drill was stopped before its observation ended: emergency stop, guardrail, cancel, ``max_duration``."""

    kind: Literal["stopped"] = "stopped"
    reason: str
    by: str = "unknown"
    """Who or what stopped it: a person, ``guardrail``, ``temporal``, ``max_duration``."""


class DrillFinished(Record):
    """The verdict: a last reply, and the parent message rewritten with it."""

    kind: Literal["finished"] = "finished"
    verdict: str
    """A ``model.records.Verdict`` value."""
    summary: str = ""
    time_to_recovery: float | None = None
    time_to_safe: float | None = None
    faults_reverted: int = 0
    faults_total: int = 0
    coverage: str = ""
    """How much of the observation the probes covered, in words (empty without an observation)."""
    report_url: str = ""
    """A link to the run's report, when one is published; the Web UI link is added by the worker."""


NotifyWhat = Annotated[DrillStarted | PhaseDone | DrillStopped | DrillFinished, Field(discriminator="kind")]


class SlackThread(Record):
    """The drill's parent message, as Slack answered for it: what replies and ``chat.update`` need."""

    channel: str
    """The channel id (``C…``), not the name: ``chat.update`` wants the id."""
    ts: str


class NotifyEvent(Record):
    """Argument of ``notify_slack`` and ``notify_webhook``."""

    run_id: str
    drill_name: str
    team: str = ""
    at: datetime
    """When it happened (``workflow.now()``)."""
    notify: Notify
    """The file's settings: which channel."""
    thread: SlackThread | None = None
    """The thread from an earlier :class:`NotifyResult`; ``None`` until a message has been posted."""
    what: NotifyWhat


class NotifyResult(Record):
    """Result of ``notify_slack`` and ``notify_webhook``."""

    delivered: bool
    """False when nothing was sent because the worker has nowhere to send it (``note`` says why)."""
    thread: SlackThread | None = None
    """The Slack thread to pass in the next event: the first message posted becomes the parent."""
    note: str = ""
