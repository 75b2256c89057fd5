"""FreezeWorkflow: the kill switch's durable state, one long-running workflow per task queue with a fixed id.

Signals ``freeze`` and ``unfreeze`` change it (durable even with no worker running, like ``emergency_stop``);
the query ``freezes`` reads it (``check_freeze``, ``gameday status``, ``schedule list``). It never ends on its
own: after :data:`~model.freeze_records.CHANGES_PER_RUN` changes, or when Temporal suggests it, it continues
as new with the freezes in force as its input, so its history stays bounded however long it lives.
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from gameday.model.freeze_records import (
        ALL_TEAMS,
        CHANGES_PER_RUN,
        MEMO_KEY,
        Freeze,
        FreezeRequest,
        FreezeState,
        UnfreezeRequest,
    )


@workflow.defn(name="FreezeWorkflow")
class FreezeWorkflow:
    """The freezes in force on one task queue. Signals ``freeze``, ``unfreeze``; query ``freezes``."""

    @workflow.init
    def __init__(self, state: FreezeState) -> None:
        # Taken in __init__, before any signal is handled: a signal-with-start's freeze lands on this state.
        self._freezes: dict[str, Freeze] = {f.team: f for f in state.freezes}
        self._changes = 0

    @workflow.run
    async def run(self, state: FreezeState) -> None:
        self._show()
        await workflow.wait_condition(
            lambda: self._changes >= CHANGES_PER_RUN or workflow.info().is_continue_as_new_suggested()
        )
        await workflow.wait_condition(workflow.all_handlers_finished)
        workflow.continue_as_new(self.freezes())

    @workflow.signal(name="freeze")
    def freeze(self, request: FreezeRequest) -> None:
        """Freeze a team (or every team): a second freeze of the same scope replaces its reason."""
        team = request.team or ALL_TEAMS
        self._freezes[team] = Freeze(team=team, reason=request.reason, by=request.by, since=workflow.now())
        self._changes += 1
        self._show()

    @workflow.signal(name="unfreeze")
    def unfreeze(self, request: UnfreezeRequest) -> None:
        """Lift one team's freeze, or (no team) every freeze."""
        if request.team is None:
            self._freezes.clear()
        else:
            self._freezes.pop(request.team, None)
        self._changes += 1
        self._show()

    def _show(self) -> None:
        # The memo, which ``describe`` returns without a worker: what ``gameday status`` and ``schedule list`` show.
        workflow.upsert_memo({MEMO_KEY: self.freezes().model_dump(mode="json")})

    @workflow.query(name="freezes")
    def freezes(self) -> FreezeState:
        return FreezeState(freezes=sorted(self._freezes.values(), key=lambda f: f.team))
