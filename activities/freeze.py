"""Reading the kill switch: the ``check_freeze`` activity a drill and a game day run before they start anything.

An activity because workflow code cannot query another workflow. It asks the task queue's ``FreezeWorkflow``
(``workflows/freeze_workflow.py``) for the freezes in force. No such workflow means nobody ever froze this
queue: nothing blocks. Any other failure is raised as the retryable ``FreezeUnknown``: the workflow retries it a
few times and then refuses to start (fail closed), never starts as if there were no freeze.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import activity
from temporalio.client import Client
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from gameday.model.freeze_records import MEMO_KEY, FreezeCheck, FreezeState, freeze_workflow_id, refusal

QUERY_TIMEOUT = timedelta(seconds=5)
"""One read of the freeze state; the activity's own timeout and retries bound the whole check."""


async def read_freezes(client: Client, task_queue: str, query_timeout: timedelta = QUERY_TIMEOUT) -> FreezeState:
    """The freezes in force on ``task_queue``; empty when it was never frozen. Raises ``RPCError`` otherwise
    (``query_timeout``: how long the query may wait for an answer)."""
    handle = client.get_workflow_handle(freeze_workflow_id(task_queue))
    try:
        state: FreezeState = await handle.query("freezes", result_type=FreezeState, rpc_timeout=query_timeout)
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            return FreezeState()
        raise
    return state


class FreezeActivities:
    """``check_freeze``, with the worker's Temporal client (the one it polls with).

    ``query_timeout``: one read of the freeze state (:data:`QUERY_TIMEOUT`; tests that make it unreadable set
    it lower, so the workflow's retries, and its fail-closed refusal, come sooner).
    """

    def __init__(self, client: Client, query_timeout: timedelta = QUERY_TIMEOUT) -> None:
        self._client = client
        self._query_timeout = query_timeout

    @activity.defn(name="check_freeze")
    async def check_freeze(self, check: FreezeCheck) -> str:
        """The reason a run of ``check.team`` must not start (it begins ``frozen:``), or ``""`` when it may."""
        try:
            state = await read_freezes(self._client, check.task_queue, self._query_timeout)
        except RPCError as err:
            raise ApplicationError(f"freeze state unreadable: {err.message}", type="FreezeUnknown") from err
        freeze = state.blocking(check.team)
        return refusal(freeze) if freeze is not None else ""


async def shown_freezes(client: Client, task_queue: str) -> FreezeState:
    """The freezes as the freeze workflow last wrote them in its memo: read without a worker (``describe``).

    For display (``gameday status``, ``schedule list``); the check before a start queries the workflow itself.
    """
    try:
        desc = await client.get_workflow_handle(freeze_workflow_id(task_queue)).describe(rpc_timeout=QUERY_TIMEOUT)
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            return FreezeState()
        raise
    shown = (await desc.memo()).get(MEMO_KEY)
    return FreezeState.model_validate(shown) if shown else FreezeState()
