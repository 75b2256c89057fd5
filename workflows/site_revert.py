"""SiteRevertWorkflow: one orphaned fault's revert, run by a worker of the fault's site (``gameday sweep``).

A client cannot send an activity to a task queue on its own; this workflow does, and nothing else: the sweep
that found the orphan (anywhere) starts it, and ``revert_fault`` (idempotent, marks the ledger) runs on the
site's queue, where the pid, the file or the Docker engine the fault changed is.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from gameday.model.records import FaultRecord
    from gameday.model.sites import SITE_REVERT_WINDOW, SITE_REVERT_WORKFLOW, SiteRevert, site_queue
    from gameday.workflows import activity_stubs as stubs


@workflow.defn(name=SITE_REVERT_WORKFLOW)
class SiteRevertWorkflow:
    """Reverts ``inp.fault`` on a worker of ``inp.site``; the result is the revert's record."""

    @workflow.run
    async def run(self, inp: SiteRevert) -> FaultRecord:
        return await workflow.execute_activity(
            stubs.revert_fault,
            inp.fault,
            task_queue=site_queue(workflow.info().task_queue, inp.site),
            start_to_close_timeout=timedelta(seconds=60),
            schedule_to_close_timeout=SITE_REVERT_WINDOW,
            heartbeat_timeout=timedelta(seconds=5),
            retry_policy=RetryPolicy(
                initial_interval=timedelta(milliseconds=500), maximum_interval=timedelta(seconds=10)
            ),
            summary=f"sweep: revert {inp.fault.record.label} on site {inp.site}",
        )
