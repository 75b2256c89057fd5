"""Workflow side of notifications: send a drill's events in order, in the background, never failing the drill.

A drill calls :meth:`NotifySender.send` at each transition; it only queues the event and returns at once, so
no phase, and above all no stop or rollback, ever waits on Slack. One workflow task (:meth:`_pump`) sends the
queue in order, because every reply needs the thread the start message created; it keeps that
:class:`SlackThread` in workflow state, so the thread survives activity retries and worker crashes. A
notification that still fails after its retries is recorded in :attr:`NotifySender.failures` and logged, never
raised; until that channel answers again its next events get one attempt each, so an outage does not pile up
a backlog, and it is logged once, not once per event. :meth:`flush` gives the queue a bounded time at the end of
the drill.

Sandbox-safe: activities are called through their typed stubs (``workflows.activity_stubs``); only plain
models are imported.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import timedelta
from itertools import groupby

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

from gameday.model.notify_records import Notify, NotifyEvent, NotifyWhat, SlackThread
from gameday.workflows import activity_stubs as stubs

NOTIFY_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=30),
    non_retryable_error_types=["NotifyRejected"],
)
"""A rate limit's ``Retry-After`` overrides the interval (``next_retry_delay``); a bad token is not retried."""
ONE_ATTEMPT = RetryPolicy(maximum_attempts=1)
"""For a channel whose last event was given up on: a long outage costs one attempt per event, not a backlog."""


@dataclass(frozen=True)
class NotifyPolicy:
    """How long one notification may take: a Slack outage costs the drill nothing but these bounds.

    Attributes:
        start_to_close: one attempt (≤ 2 short rate-limit waits of ≤ 5 s, and 10 s per HTTP request).
        schedule_to_close: all attempts of one event; after this it is given up and recorded.
        flush: how long :meth:`NotifySender.flush` waits for the queue at the end of the drill.
    """

    start_to_close: timedelta = timedelta(seconds=30)
    schedule_to_close: timedelta = timedelta(minutes=2)
    flush: timedelta = timedelta(minutes=2)
    retry: RetryPolicy = field(default_factory=lambda: NOTIFY_RETRY)


class NotifySender:
    """Sends one run's notify events through ``notify_slack`` / ``notify_webhook``, as the file asks.

    Args:
        run_id: the run (workflow id).
        drill_name: the drill's name.
        team: the drill's team.
        notify: the file's ``notify`` section; ``None`` sends nothing.
        policy: timeouts and retries of each notification.
    """

    def __init__(
        self, run_id: str, drill_name: str, team: str, notify: Notify | None, policy: NotifyPolicy | None = None
    ) -> None:
        self._base = {"run_id": run_id, "drill_name": drill_name, "team": team}
        self._notify = notify or Notify()
        self._policy = policy or NotifyPolicy()
        self._queue: list[NotifyEvent] = []
        self._busy = False
        self._pump_task: asyncio.Task[None] | None = None
        self._failing: set[str] = set()
        self._given_up: dict[tuple[str, str], list[str]] = {}
        self._left: list[str] = []
        self.thread: SlackThread | None = None
        """The drill's Slack thread, once a message is posted."""

    @property
    def failures(self) -> list[str]:
        """Notifications given up on, for the run's record: one line per channel and reason, with a count.

        ``notify_slack: 7 notification(s) not delivered (started, phase (5), finished): Slack chat.postMessage
        unreachable: ClientConnectorError``
        """
        lines = [
            f"{name}: {len(kinds)} notification(s) not delivered ({_kinds(kinds)}): {reason}"
            for (name, reason), kinds in self._given_up.items()
        ]
        return lines + self._left

    def send(self, what: NotifyWhat) -> None:
        """Queue ``what`` (stamped now) and return at once."""
        activities = self._activities()
        if not activities:
            return
        event = NotifyEvent(at=workflow.now(), notify=self._notify, what=what, **self._base)
        self._queue.append(event)
        if not self._busy:
            self._busy = True
            self._pump_task = asyncio.create_task(self._pump(activities))

    async def flush(self) -> None:
        """Wait until everything queued is sent or given up, at most ``policy.flush``; record what is left."""
        try:
            await workflow.wait_condition(lambda: not self._busy, timeout=self._policy.flush)
        except TimeoutError:
            left = _kinds([e.what.kind for e in self._queue]) or "one in flight"
            self._left.append(f"notifications not sent before the drill ended: {left}")

    def _activities(self) -> list[str]:
        names = ["notify_slack"] if self._notify.slack else []
        return names + (["notify_webhook"] if self._notify.webhook else [])

    async def _pump(self, activities: list[str]) -> None:
        try:
            while self._queue:
                event = self._queue.pop(0)
                for name in activities:
                    await self._deliver(name, event.model_copy(update={"thread": self.thread}))
        finally:
            self._busy = False  # also when cancelled: a later send() starts a new pump

    async def _deliver(self, name: str, event: NotifyEvent) -> None:
        try:
            result = await workflow.execute_activity(
                stubs.NOTIFIERS[name],
                event,
                start_to_close_timeout=self._policy.start_to_close,
                schedule_to_close_timeout=self._policy.schedule_to_close,
                retry_policy=ONE_ATTEMPT if name in self._failing else self._policy.retry,
                summary=f"{name}: {event.what.kind}",
            )
        except ActivityError as err:
            reason = _reason(err)
            if name not in self._failing:  # once per outage: the run's notify step counts the rest
                workflow.logger.warning(
                    "%s %s not delivered: %s; until it answers, each next event gets one attempt",
                    name,
                    event.what.kind,
                    reason,
                )
            self._failing.add(name)
            self._given_up.setdefault((name, reason), []).append(event.what.kind)
            return
        self._failing.discard(name)
        if name == "notify_slack" and result.thread is not None:
            self.thread = result.thread


def _kinds(kinds: list[str]) -> str:
    """``started, phase (5), finished``: event kinds in order, runs of one kind counted."""
    runs = [(kind, len(list(same))) for kind, same in groupby(kinds)]
    return ", ".join(f"{kind} ({count})" if count > 1 else kind for kind, count in runs)


def _reason(err: ActivityError) -> str:
    """The innermost application error's message (the last attempt's, behind a timeout), else the first cause."""
    cause: BaseException | None = err.cause
    first = str(cause or err)
    while cause is not None:
        if isinstance(cause, ApplicationError):
            return cause.message
        cause = cause.__cause__
    return first
