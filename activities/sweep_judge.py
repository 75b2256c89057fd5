"""What the sweep knows of a run's workflow, and how it finds out (see ``activities/sweep.py`` for what it does).

A run is judged only in the sweep's own scope (namespace and cluster): a run of another scope, or of none
recorded, is never described, since "not found" there says nothing. In scope, Temporal is asked: a closed status
is closed; "not found" is gone only past the namespace's retention; a running workflow whose workflow task keeps
failing (the newest task end in its history is a failure, and the task is being retried) for longer than
``wedged_after`` is wedged.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.enums.v1 import EventType
from temporalio.api.workflowservice.v1 import (
    DescribeNamespaceRequest,
    DescribeWorkflowExecutionResponse,
    GetWorkflowExecutionHistoryReverseRequest,
)
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from gameday.activities.ledger import LedgerEntry
from gameday.activities.run_scope import RunScope
from gameday.activities.tables import LockRow

DEFAULT_WEDGED_AFTER = timedelta(minutes=2)
"""How long a drill's workflow task may keep failing before the sweep declares the drill lost."""
RPC_TIMEOUT = timedelta(seconds=10)
"""Each call the sweep makes to Temporal."""
_HISTORY_TAIL = 20
"""Newest history events read to find why the pending workflow task is being retried."""
_TASK_ENDS = {
    EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED,
    EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED,
    EventType.EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT,
}


class RunState(StrEnum):
    """What the sweep knows of a run's workflow."""

    CLOSED = "closed"
    GONE = "gone"
    WEDGED = "wedged"
    RUNNING = "running"
    UNKNOWN = "unknown"
    OTHER_SCOPE = "other scope"
    UNSCOPED = "unscoped"


ACTED_ON = frozenset({RunState.CLOSED, RunState.GONE, RunState.WEDGED})
"""The states in which the sweep acts; every other run is listed and left alone."""


@dataclass(frozen=True)
class RunFate:
    """A run's state and the words for it.

    Attributes:
        state: what the sweep knows.
        workflow: ``TERMINATED``… for a closed run, ``gone``, ``WEDGED``, ``RUNNING``, ``unknown``…
        detail: why, for a person (empty when ``workflow`` says it all).
    """

    state: RunState
    workflow: str
    detail: str = ""

    @property
    def acted_on(self) -> bool:
        return self.state in ACTED_ON

    def reason(self) -> str:
        return f"{self.workflow}: {self.detail}" if self.detail else self.workflow


class RunJudge:
    """Decides each run's :class:`RunFate`, asking Temporal once per run (and once for the retention).

    Args:
        client: the sweep's client: its namespace and cluster are the scope.
        scope: that scope (:func:`activities.run_scope.scope_of`).
        wedged_after: how long a workflow task may keep failing before the run is lost; ``None``: never.
    """

    def __init__(self, client: Client, scope: RunScope, wedged_after: timedelta | None) -> None:
        self.client, self.scope, self.wedged_after = client, scope, wedged_after
        self._retention: timedelta | None = None
        self._retention_asked = False

    async def fate(self, run_id: str, entries: Sequence[LedgerEntry], locks: Sequence[LockRow]) -> RunFate:
        scopes = {e.scope for e in entries} | {RunScope(row.namespace, row.cluster) for row in locks}
        if any(not s.known for s in scopes):
            return RunFate(RunState.UNSCOPED, "unknown", RunScope("", "").describe())
        if scopes != {self.scope}:
            where = ", ".join(sorted(s.describe() for s in scopes))
            return RunFate(RunState.OTHER_SCOPE, "not this sweep's", f"a run of {where}")
        try:
            desc = await self.client.get_workflow_handle(run_id).describe(rpc_timeout=RPC_TIMEOUT)
        except RPCError as err:
            if err.status != RPCStatusCode.NOT_FOUND:
                return RunFate(RunState.UNKNOWN, "unknown", f"describe failed: {err.status.name} {err.message}")
            return await self._not_found(entries, locks)
        status = desc.status or WorkflowExecutionStatus.RUNNING
        if status != WorkflowExecutionStatus.RUNNING:
            return RunFate(RunState.CLOSED, status.name)
        failing_since = await self._failing_since(run_id, desc.raw_description)
        if failing_since is not None and self.wedged_after is not None:
            failing_for = datetime.now(UTC) - failing_since
            detail = f"its workflow task has been failing since {failing_since:%Y-%m-%d %H:%M:%SZ}"
            if failing_for >= self.wedged_after:
                return RunFate(RunState.WEDGED, "WEDGED", f"{detail}, longer than {self.wedged_after}")
            return RunFate(RunState.RUNNING, "RUNNING", f"{detail}; declared lost after {self.wedged_after}")
        return RunFate(RunState.RUNNING, "RUNNING", "its own rollback owns its faults")

    async def _not_found(self, entries: Sequence[LedgerEntry], locks: Sequence[LockRow]) -> RunFate:
        retention = await self._namespace_retention()
        if retention is None:
            return RunFate(RunState.UNKNOWN, "unknown", "workflow not found, and the namespace's retention unknown")
        newest = max([e.updated_at for e in entries] + [row.acquired_at for row in locks])
        if datetime.now(UTC) - newest > retention:
            return RunFate(RunState.GONE, "gone", f"workflow not found and last seen over the retention ({retention})")
        return RunFate(
            RunState.UNKNOWN,
            "unknown",
            f"workflow not found, but seen within the namespace's retention ({retention}): not certainly gone",
        )

    async def _namespace_retention(self) -> timedelta | None:
        if not self._retention_asked:
            self._retention_asked = True
            try:
                described = await self.client.workflow_service.describe_namespace(
                    DescribeNamespaceRequest(namespace=self.scope.namespace), timeout=RPC_TIMEOUT
                )
            except RPCError:
                return None
            ttl = described.config.workflow_execution_retention_ttl
            self._retention = ttl.ToTimedelta() if ttl.seconds or ttl.nanos else None
        return self._retention

    async def _failing_since(self, run_id: str, raw: DescribeWorkflowExecutionResponse) -> datetime | None:
        """When the run's workflow task started failing, if it is failing now.

        Failing means a retried task (attempt 2 or more: the server records only the first failed attempt) whose
        newest recorded end is a failure, not a time-out: a worker gone is not a broken workflow.
        """
        if not raw.HasField("pending_workflow_task") or raw.pending_workflow_task.attempt < 2:
            return None
        try:
            page = await self.client.workflow_service.get_workflow_execution_history_reverse(
                GetWorkflowExecutionHistoryReverseRequest(
                    namespace=self.scope.namespace,
                    execution=WorkflowExecution(workflow_id=run_id),
                    maximum_page_size=_HISTORY_TAIL,
                ),
                timeout=RPC_TIMEOUT,
            )
        except RPCError:
            return None
        for event in page.history.events:
            if event.event_type in _TASK_ENDS:
                if event.event_type != EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED:
                    return None
                return event.event_time.ToDatetime(tzinfo=UTC)
        return None
