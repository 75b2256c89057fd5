"""``gameday run GAMEDAY_FILE --wait``: a game day followed live, never in silence.

A game day takes hours. The follower polls the game day's ``status`` query (its gate, the drills running now, the
entries of those done) and each running drill's own ``status`` query, and prints as they happen: the game day's
approval gate (with the command that opens it), each drill's start, its phases as they end, its own gate, a pause
(with the command that resumes it), its verdict, and the drills skipped. A drill that started and ended between two
polls is printed from its final record, so no drill's phases are left out.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.markup import escape

from gameday.cli.launch import STATUS_STYLE, VERDICT_STYLE

if TYPE_CHECKING:
    from temporalio.client import Client, WorkflowHandle

    from gameday.model.gameday import GameDayEntry, GameDayRecord, GameDayStatus
    from gameday.model.records import DrillStatus, RunRecord, StepRecord

POLL = 0.5
"""Seconds between two looks at the game day: its drills' phases last seconds to hours."""

QUERY_TIMEOUT = timedelta(seconds=5)


@dataclass
class _Drill:
    """What has been said of one drill of the game day."""

    name: str
    run_id: str
    steps_shown: int = 0
    said_gate: bool = False
    said_paused: bool = False


class GameDayFollower:
    """Prints a game day's progress; :meth:`follow` returns its record once it has ended."""

    def __init__(self, client: Client, handle: WorkflowHandle[Any, GameDayRecord], out: Console) -> None:
        self._client = client
        self._handle = handle
        self._out = out
        self._said_gate = False
        self._drills: dict[str, _Drill] = {}
        self._entries_shown = 0

    async def follow(self, poll: float = POLL) -> GameDayRecord:
        result: asyncio.Future[GameDayRecord] = asyncio.ensure_future(self._handle.result())
        try:
            while not result.done():
                status = await self._gameday_status()
                if status is not None:
                    await self._show(status)
                await asyncio.wait([result], timeout=poll)
        except asyncio.CancelledError:  # Ctrl-C: leaving never stops the game day, so say it goes on
            gameday_id = escape(self._handle.id)
            self._out.print(
                f"[yellow]left {gameday_id}: the game day goes on.[/] Follow it with [bold]gameday status "
                f'{gameday_id}[/]; stop it with [bold]gameday stop {gameday_id} --reason "…"[/]'
            )
            raise
        finally:
            if not result.done():
                result.cancel()
        record = result.result()
        await self._show_entries(record.entries)
        return record

    async def _show(self, status: GameDayStatus) -> None:
        gameday_id = escape(self._handle.id)
        if status.awaiting_approval and not self._said_gate:
            self._said_gate = True
            self._out.print(f"[yellow]waiting for approval:[/] [bold]gameday approve {gameday_id}[/]")
        await self._show_entries(status.record.entries)  # first: a step's verdicts come before the next step
        for running in status.running:
            drill = self._started(running.drill_name, running.run_id)
            live = await self._drill_status(running.run_id)
            if live is not None:
                self._show_live(drill, live)

    def _started(self, name: str, run_id: str) -> _Drill:
        drill = self._drills.get(run_id)
        if drill is None:
            drill = self._drills[run_id] = _Drill(name=name, run_id=run_id)
            self._out.print(f"[bold]{escape(name)}[/]: started {escape(run_id)}")
        return drill

    def _show_live(self, drill: _Drill, status: DrillStatus) -> None:
        from gameday.model.records import Phase

        self._show_steps(drill, status.steps)
        name, run_id = escape(drill.name), escape(drill.run_id)
        if status.phase == Phase.APPROVAL and not drill.said_gate:
            drill.said_gate = True
            self._out.print(f"[bold]{name}[/]: [yellow]waiting for approval:[/] [bold]gameday approve {run_id}[/]")
        paused = status.phase == Phase.PAUSED
        if paused and not drill.said_paused:
            self._out.print(f"[bold]{name}[/]: [yellow]paused[/]: continue it with [bold]gameday resume {run_id}[/]")
        drill.said_paused = paused

    def _show_steps(self, drill: _Drill, steps: list[StepRecord]) -> None:
        """Print the steps that ended and were not shown yet (a step still running waits for its end)."""
        for step in steps[drill.steps_shown :]:
            if step.ended_at is None:
                return
            drill.steps_shown += 1
            style = STATUS_STYLE.get(step.status.value, "")
            seconds = f"{step.seconds:.2f}s" if step.seconds is not None else ""
            self._out.print(
                f"  {escape(drill.name)} [{style}]{step.phase.value:<9}[/] {step.status.value:<11} {seconds:>8}  "
                f"{escape(step.detail)}"
            )

    async def _show_entries(self, entries: list[GameDayEntry]) -> None:
        for entry in entries[self._entries_shown :]:
            self._entries_shown += 1
            name = escape(entry.drill_name)
            if entry.skipped:
                self._out.print(f"[bold]{name}[/]: [dim]skipped[/]: {escape(entry.skipped)}")
                continue
            drill = self._started(entry.drill_name, entry.run_id)
            record = await self._final_record(entry.run_id)
            if record is not None:
                self._show_steps(drill, record.steps)
            if entry.verdict is None:
                self._out.print(f"[bold]{name}[/]: [{VERDICT_STYLE['ERROR']}]no verdict[/]: {escape(entry.summary)}")
                continue
            verdict = entry.verdict.value
            self._out.print(
                f"[bold]{name}[/]: [{VERDICT_STYLE.get(verdict, 'bold')}]{verdict}[/]: {escape(entry.summary)}"
            )

    async def _gameday_status(self) -> GameDayStatus | None:
        from gameday.model.gameday import GameDayStatus

        try:
            found: GameDayStatus | None = await self._handle.query(
                "status", result_type=GameDayStatus, rpc_timeout=QUERY_TIMEOUT
            )
        except Exception:  # no worker answered this time, or the game day just closed: the next poll says
            return None
        return found

    async def _drill_status(self, run_id: str) -> DrillStatus | None:
        from gameday.model.records import DrillStatus

        try:
            found: DrillStatus = await self._client.get_workflow_handle(run_id).query(
                "status", result_type=DrillStatus, rpc_timeout=QUERY_TIMEOUT
            )
        except Exception:  # not started by a worker yet, or just closed
            return None
        return found

    async def _final_record(self, run_id: str) -> RunRecord | None:
        from gameday.model.records import RunRecord

        try:
            found: RunRecord = await self._client.get_workflow_handle(run_id, result_type=RunRecord).result(
                rpc_timeout=QUERY_TIMEOUT
            )
        except Exception:  # a drill whose workflow failed: its entry says why
            return None
        return found
