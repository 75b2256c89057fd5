"""The kill switch as drills and game days read it: one ``check_freeze`` activity call, failing closed.

Shared by ``DrillWorkflow`` (before any policy check, lock, probe or fault) and ``GameDayWorkflow`` (before every
step), so both schedule the very same activity with the same options (their histories replay unchanged).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, is_cancelled_exception

with workflow.unsafe.imports_passed_through():
    from gameday.model.freeze_records import FreezeCheck
    from gameday.workflows import activity_stubs as stubs


async def freeze_refusal(
    team: str, *, summary: str, not_started: str, why: Callable[[ActivityError], str]
) -> str | None:
    """Why a run of ``team`` must not go on: the freeze's refusal, ``""`` when nothing blocks it, ``None`` when the
    check itself was cancelled (the caller treats it as its own cancellation).

    Fail closed: when the freeze state cannot be read, the answer is a refusal ``freeze state unknown (<why>):
    <not_started>``; a kill switch that lets runs through whenever it is unreadable is no kill switch.
    """
    try:
        frozen: str = await workflow.execute_activity(
            stubs.check_freeze,
            FreezeCheck(team=team, task_queue=workflow.info().task_queue),
            start_to_close_timeout=timedelta(seconds=10),
            schedule_to_close_timeout=timedelta(seconds=30),
            retry_policy=RetryPolicy(initial_interval=timedelta(milliseconds=500), maximum_attempts=4),
            summary=summary,
        )
    except ActivityError as err:  # never CancelledError itself: an eviction must propagate
        if is_cancelled_exception(err):
            return None
        return f"freeze state unknown ({why(err)}): {not_started}"
    return frozen
