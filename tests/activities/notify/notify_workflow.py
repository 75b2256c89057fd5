"""A stand-in for DrillWorkflow's use of notifications: events sent with ``NotifySender`` around a "rollback".

Its own module (not a test module) so the workflow sandbox can import it, checking that ``NotifySender`` and the
notify records are sandbox-safe.
"""

from __future__ import annotations

from datetime import timedelta

from pydantic import BaseModel
from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from gameday.model.notify_records import DrillFinished, DrillStarted, DrillStopped, Notify, PhaseDone, SlackThread
    from gameday.workflows.notify_sender import NotifyPolicy, NotifySender


class NotifyDrillInput(BaseModel):
    run_id: str
    notify: Notify
    events: list[DrillStarted | PhaseDone | DrillStopped | DrillFinished]
    rollback_after: int
    """Index of the event after which the "rollback" runs (a short timer): it must not wait on notifications."""
    schedule_to_close_seconds: float = 60.0


class NotifyDrillResult(BaseModel):
    log: list[str]
    thread: SlackThread | None
    failures: list[str]


@workflow.defn(name="NotifyDrillWorkflow")
class NotifyDrillWorkflow:
    @workflow.run
    async def run(self, inp: NotifyDrillInput) -> NotifyDrillResult:
        policy = NotifyPolicy(
            start_to_close=timedelta(seconds=10),
            schedule_to_close=timedelta(seconds=inp.schedule_to_close_seconds),
            flush=timedelta(seconds=30),
        )
        notes = NotifySender(inp.run_id, "checkout-db-outage", "payments", inp.notify, policy)
        log: list[str] = []
        for i, what in enumerate(inp.events):
            notes.send(what)
            if i == inp.rollback_after:
                await workflow.sleep(timedelta(milliseconds=100))
                log.append(f"rolled back; notification failures so far: {len(notes.failures)}")
        await notes.flush()
        log.append("flushed")
        return NotifyDrillResult(log=log, thread=notes.thread, failures=notes.failures)
