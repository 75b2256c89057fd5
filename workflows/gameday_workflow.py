"""GameDayWorkflow: a game day's drills, in order, each a child DrillWorkflow that does its own rollback.

Reading guide. ``run`` walks the steps; a step starts its drills together and waits for all of them. A drill
ending with a verdict in ``stop_on`` halts the game day after its step; ``emergency_stop`` (``gameday stop
GAMEDAY_ID``) is passed to every running drill, each of which rolls back, and the rest are skipped. Children
are started with ``ParentClosePolicy.REQUEST_CANCEL``: if the game day itself is terminated, its drills get a
cancellation, which takes their rollback path, never a termination, which would skip it.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy, TypedSearchAttributes
from temporalio.exceptions import ActivityError, ChildWorkflowError
from temporalio.workflow import ParentClosePolicy

with workflow.unsafe.imports_passed_through():
    from gameday.model.freeze_records import FREEZE_PATCH, FROZEN_BY
    from gameday.model.gameday import (
        GameDayEntry,
        GameDayInput,
        GameDayRecord,
        GameDayStatus,
        PlannedDrill,
        RunningDrill,
        gameday_verdict,
    )
    from gameday.model.records import Approve, DrillInput, DrillStatus, Phase, RunRecord, StopRequest, Verdict
    from gameday.model.units import format_duration
    from gameday.workflows import activity_stubs as stubs
    from gameday.workflows import search
    from gameday.workflows.freeze_check import freeze_refusal


@workflow.defn(name="GameDayWorkflow")
class GameDayWorkflow:
    """One game day. Signal ``emergency_stop``; update ``wait_rolled_back``; queries ``status``, ``gameday_status``."""

    def __init__(self) -> None:
        self._record: GameDayRecord | None = None
        self._running: dict[str, workflow.ChildWorkflowHandle[object, RunRecord]] = {}
        self._running_drills: dict[str, RunningDrill] = {}
        self._awaiting_approval = False
        self._stop: StopRequest | None = None
        self._results: list[RunRecord] = []
        self._cancelled = False
        self._approved: Approve | None = None

    @workflow.run
    async def run(self, inp: GameDayInput) -> GameDayRecord:
        self._record = GameDayRecord(
            gameday_id=inp.gameday_id,
            name=inp.name,
            team=inp.team,
            source=inp.source,
            started_by=inp.started_by,
            started_at=workflow.now(),
        )
        halted = await self._await_approval(inp)
        for stage, drills in enumerate(inp.stages):
            if self._stop is None and not halted and not self._cancelled and workflow.patched(FREEZE_PATCH):
                await self._check_freeze(inp)  # before every step: a freeze starts no further one
            if self._stop is not None or halted or self._cancelled:
                reason = f"stopped by {self._stop.by}: {self._stop.reason}" if self._stop else halted or "cancelled"
                self._add(*(GameDayEntry(stage=stage, drill_name=p.drill.name, skipped=reason) for p in drills))
                continue
            await self._run_stage(inp, stage, drills)
            halted = halted or self._halt_reason(inp, stage)
        assert self._record is not None
        outcome = "cancelled" if self._cancelled else "stopped" if self._stop else "halted" if halted else "completed"
        if halted.startswith("no approval"):
            outcome = "not approved"
        self._record = self._record.model_copy(
            update={"ended_at": workflow.now(), "stop": self._stop, "halted_by": halted, "outcome": outcome}
        )
        self._set_verdict_attribute()
        await self._save()
        return self._record

    async def _await_approval(self, inp: GameDayInput) -> str:
        """The game day's go/no-go gate; returns why every drill is skipped, or ``""`` to go on."""
        if inp.approval is None:
            return ""
        self._awaiting_approval = True
        try:
            await workflow.wait_condition(
                lambda: self._approved is not None or self._stop is not None,
                timeout=inp.approval.timeout,
                timeout_summary="approval: waiting for gameday approve",
            )
        except TimeoutError:
            return f"no approval within {format_duration(inp.approval.timeout)}: nothing ran"
        finally:
            self._awaiting_approval = False
        if self._approved is not None:
            assert self._record is not None
            self._record = self._record.model_copy(update={"approved_by": self._approved.by})
        return ""

    async def _check_freeze(self, inp: GameDayInput) -> None:
        """A freeze of the game day's team (or of all) stops it before its next step (a stop by ``freeze``).

        Fail closed, as a drill's own check (``workflows/freeze_check.py``): a freeze state that cannot be read
        starts no further step.
        """
        frozen = await freeze_refusal(
            inp.team,
            summary="game day: frozen?",
            not_started="no further step started (fail closed)",
            why=lambda err: str(err.cause or err),
        )
        if frozen is None:
            self._cancelled = True
        elif frozen and self._stop is None:
            self._stop = StopRequest(reason=frozen, by=FROZEN_BY, received_at=workflow.now())

    async def _run_stage(self, inp: GameDayInput, stage: int, drills: list[PlannedDrill]) -> None:
        handles = []
        for planned in drills:
            run_id = f"{inp.gameday_id}.{planned.drill.name}"
            handle = await workflow.start_child_workflow(
                "DrillWorkflow",
                DrillInput(run_id=run_id, drill=planned.drill, source=planned.source, started_by=inp.started_by),
                id=run_id,
                result_type=RunRecord,
                parent_close_policy=ParentClosePolicy.REQUEST_CANCEL,
                static_summary=f"drill {planned.drill.name} (game day {inp.name})",
                memo={"drill": planned.drill.name, "team": planned.drill.team or inp.team, "gameday": inp.gameday_id},
                search_attributes=self._child_attributes(planned, inp),
            )
            self._running[run_id] = handle
            self._running_drills[run_id] = RunningDrill(stage=stage, drill_name=planned.drill.name, run_id=run_id)
            handles.append((planned, run_id, handle))
        if self._stop is not None:  # a stop that arrived while the step was being started
            await self._stop_running(self._stop)
        gathered = asyncio.gather(*(h for _, _, h in handles), return_exceptions=True)
        while True:
            try:
                # Shielded: a cancellation of the game day stops its drills, which roll back; their results stay.
                outcomes = await asyncio.shield(gathered)
                break
            except asyncio.CancelledError:
                self._cancelled = True
                await self._stop_running(StopRequest(reason="game day cancelled", by="temporal"))
        for (planned, run_id, _), outcome in zip(handles, outcomes, strict=True):
            self._running.pop(run_id, None)
            self._running_drills.pop(run_id, None)
            self._add(self._entry(stage, planned, run_id, outcome))

    def _entry(self, stage: int, planned: PlannedDrill, run_id: str, outcome: object) -> GameDayEntry:
        if isinstance(outcome, RunRecord):
            self._results.append(outcome)
            return GameDayEntry(
                stage=stage,
                drill_name=planned.drill.name,
                run_id=run_id,
                verdict=outcome.verdict,
                started_at=outcome.started_at,
                ended_at=outcome.ended_at,
                time_to_recovery=outcome.time_to_recovery,
                time_to_safe=outcome.time_to_safe,
                summary=outcome.summary,
            )
        why = outcome.cause if isinstance(outcome, ChildWorkflowError) and outcome.cause else outcome
        return GameDayEntry(stage=stage, drill_name=planned.drill.name, run_id=run_id, summary=f"failed: {why}")

    def _halt_reason(self, inp: GameDayInput, stage: int) -> str:
        assert self._record is not None
        for entry in self._record.entries:
            if entry.stage == stage and entry.verdict in inp.stop_on:
                # An ABORTED drill says who stopped it and why (a person's stop, a guardrail): the reason the rest
                # must not run.
                why = f"; {entry.summary}" if entry.verdict == Verdict.ABORTED and entry.summary else ""
                return f"{entry.drill_name} ended {entry.verdict} (stop_on){why}: the rest skipped"
        return ""

    def _add(self, *entries: GameDayEntry) -> None:
        assert self._record is not None
        self._record = self._record.model_copy(update={"entries": [*self._record.entries, *entries]})

    def _child_attributes(self, planned: PlannedDrill, inp: GameDayInput) -> TypedSearchAttributes | None:
        """A drill's own search attributes, in the game day's environment, when the game day was started with them.

        Only then: where they are not registered, starting a child with them would fail the game day's task.
        """
        environment = workflow.info().typed_search_attributes.get(search.ENVIRONMENT)
        if environment is None:
            return None
        return search.at_start(planned.drill.name, planned.drill.team or inp.team, environment)

    def _set_verdict_attribute(self) -> None:
        """``DrillVerdict`` of the game day (:func:`~model.gameday.gameday_verdict`), if started with them."""
        assert self._record is not None
        if workflow.info().typed_search_attributes.get(search.DRILL_NAME) is not None:
            workflow.upsert_search_attributes([search.VERDICT.value_set(gameday_verdict(self._record).value)])

    async def _stop_running(self, stop: StopRequest) -> None:
        for handle in list(self._running.values()):
            await handle.signal("emergency_stop", stop)

    async def _save(self) -> None:
        assert self._record is not None
        try:
            await workflow.execute_activity(
                stubs.record_gameday,
                self._record,
                start_to_close_timeout=timedelta(seconds=15),
                schedule_to_close_timeout=timedelta(hours=1),
                retry_policy=RetryPolicy(maximum_interval=timedelta(seconds=30)),
                summary=f"record: game day {self._record.name}",
            )
        except ActivityError as err:
            workflow.logger.error("game day record not saved: %s", err.cause or err)

    # --- messages -------------------------------------------------------------------------------------------

    @workflow.signal(name="emergency_stop")
    async def emergency_stop(self, stop: StopRequest) -> None:
        """Stop the running drills (each rolls back) and skip the rest."""
        if self._stop is None:
            self._stop = stop.model_copy(update={"received_at": stop.received_at or workflow.now()})
            await self._stop_running(self._stop)

    @workflow.signal(name="approve")
    def approve(self, approval: Approve) -> None:
        """The game day's go: its drills start (each with its own gate, if it has one)."""
        if self._approved is None:
            self._approved = approval

    @workflow.update(name="wait_rolled_back")
    async def wait_rolled_back(self) -> DrillStatus:
        """Returns once no drill of the game day is running: every fault of every drill reverted or given up on."""
        await workflow.wait_condition(lambda: not self._running and self._stop is not None)
        return self.gameday_status_as_drill()

    @workflow.query(name="gameday_status")
    def gameday_status(self) -> GameDayRecord | None:
        return self._record

    @workflow.query(name="status")
    def status(self) -> GameDayStatus | None:
        """Where the game day is: its record so far, its gate, and the drills running now (``gameday status``)."""
        if self._record is None:
            return None
        return GameDayStatus(
            record=self._record,
            awaiting_approval=self._awaiting_approval,
            running=list(self._running_drills.values()),
        )

    def gameday_status_as_drill(self) -> DrillStatus:
        """The game day in the shape ``gameday stop --wait`` prints: every fault of its drills."""
        faults = [f for r in self._results for f in r.faults]
        safe = [r.time_to_safe for r in self._results if r.time_to_safe is not None]
        return DrillStatus(
            run_id=self._record.gameday_id if self._record else "",
            phase=Phase.DONE,
            faults_active=[],
            last_measurements=[],
            stop=self._stop,
            faults=faults,
            rolled_back=True,
            time_to_safe=max(safe) if safe else None,
        )
