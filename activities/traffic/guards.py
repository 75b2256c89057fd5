"""Guardrails on the traffic's own measurements (``{error_rate: "> 50%", for: 10s}``), judged where the traffic
is measured: in ``hold_traffic``, second by second, as each second of the timeline completes.

Only seconds of a ``during`` window count (a fault is in place): the baseline, the rollback and the recovery are
not what a guardrail guards. A second whose condition holds extends the streak; one where it does not breaks it;
a second in which no request completed is no evidence and changes nothing. When a streak has lasted the
guardrail's ``for``, the drill is stopped exactly as ``gameday stop`` would stop it: the ``emergency_stop``
signal, ``by: guardrail``, timed at the moment the breach was measured.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from temporalio import activity
from temporalio.client import Client
from temporalio.service import RPCError

from gameday.model.records import StopRequest
from gameday.model.traffic import SecondStats, TrafficGuardrail

log = logging.getLogger(__name__)

SIGNAL_EVERY = 1.0
"""Seconds between attempts to deliver the stop while Temporal cannot be reached."""


@dataclass
class _Streak:
    since: int | None = None
    """First second of the current run of seconds meeting the condition."""
    detail: str = ""


@dataclass
class TrafficGuards:
    """The guardrails of one traffic run, fed every completed second.

    Args:
        guardrails: the traffic's guardrails, judged in order.
        phase_at: the phase name of a second of the run (``TrafficRun.phase_at``).
    """

    guardrails: list[TrafficGuardrail]
    phase_at: Callable[[float], str]
    _streaks: dict[str, _Streak] = field(default_factory=dict)
    breached: tuple[TrafficGuardrail, str] | None = None

    def see(self, point: SecondStats) -> tuple[TrafficGuardrail, str] | None:
        """Judge one completed second; the guardrail it tripped, with the figures in words (once per run)."""
        if self.breached is not None or not self.guardrails:
            return None
        faulted = self.phase_at(point.second).startswith("during")
        for guard in self.guardrails:
            streak = self._streaks.setdefault(guard.name, _Streak())
            if not faulted:
                streak.since = None
                continue
            if not point.completed:
                continue  # no request completed: no evidence either way
            detail = guard.crossed(point)
            if detail is None:
                streak.since = None
                continue
            if streak.since is None:
                streak.since = point.second
            streak.detail = detail
            held = point.second + point.seconds - streak.since
            if held >= guard.for_.total_seconds():
                lasting = f" for {held}s" if guard.for_.total_seconds() > 0 else ""
                self.breached = (guard, f"traffic {detail}{lasting}")
                return self.breached
        return None


@dataclass(frozen=True)
class DrillHandle:
    """Where a breach is sent: taken in the activity's own context (the seconds arrive outside it)."""

    client: Client
    workflow_id: str

    @staticmethod
    def current() -> DrillHandle | None:
        """The drill whose activity this is; ``None`` outside a workflow's activity."""
        info = activity.info()
        return None if info.workflow_id is None else DrillHandle(activity.client(), info.workflow_id)


async def stop_the_drill(
    drill: DrillHandle, guard: TrafficGuardrail, detail: str, at: datetime, *, until: datetime
) -> bool:
    """Send the drill's workflow the stop a person would send, by ``guardrail``; retried until ``until``.

    Returns:
        Whether the workflow took the signal (``False``: it had already ended, or Temporal stayed unreachable).
    """
    handle = drill.client.get_workflow_handle(drill.workflow_id)
    request = StopRequest(reason=f"guardrail '{guard.name}' breached: {detail}", by="guardrail", received_at=at)
    log.warning("guardrail %r breached: %s; stopping drill %s", guard.name, detail, drill.workflow_id)
    while True:
        try:
            await handle.signal("emergency_stop", request)
            return True
        except RPCError as err:
            if "completed" in str(err).lower() or "not found" in str(err).lower():
                return False  # the drill ended meanwhile: nothing left to stop
            if datetime.now(UTC) >= until:
                log.error("guardrail %r: the stop could not be delivered: %s", guard.name, err)
                return False
            log.warning("guardrail %r: stop not delivered yet (%s); retrying", guard.name, err)
            await asyncio.sleep(SIGNAL_EVERY)
