"""Start a drill workflow and follow it live: shared by ``gameday run`` and ``gameday demo``."""

from __future__ import annotations

import asyncio
import getpass
import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console
from rich.markup import escape

if TYPE_CHECKING:
    from temporalio.client import Client, WorkflowHandle
    from temporalio.common import TypedSearchAttributes

    from gameday.config.app import GamedayConfig
    from gameday.model.drill import Drill
    from gameday.model.records import DrillStatus, RunRecord
    from gameday.workflows.drill_workflow import DrillWorkflow

STATUS_STYLE = {"ok": "green", "failed": "red", "interrupted": "yellow", "skipped": "dim"}
VERDICT_STYLE = {
    "RESILIENT": "bold green",
    "DEVIATED": "bold yellow",
    "NOT_STEADY": "bold yellow",
    "ABORTED": "bold magenta",
    "NOT_RECOVERED": "bold red",
    "ERROR": "bold red",
    "INCONCLUSIVE": "bold blue",
}


def new_run_id(drill_name: str, now: datetime | None = None) -> str:
    """A run id a person recognises: ``drill-<name>-<UTC timestamp>``."""
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    return f"drill-{drill_name}-{stamp}"


async def start(
    client: Client, config: GamedayConfig, drill: Drill, *, source: str, run_id: str | None
) -> WorkflowHandle[DrillWorkflow, RunRecord]:
    from temporalio.common import WorkflowIDReusePolicy
    from temporalio.exceptions import WorkflowAlreadyStartedError
    from temporalio.service import RPCError

    from gameday.model.errors import GamedayError
    from gameday.model.records import DrillInput
    from gameday.workflows.drill_workflow import DrillWorkflow

    base = run_id or new_run_id(drill.name)
    attributes: TypedSearchAttributes | None = _search_attributes(drill, config)
    for attempt in range(1, 20):
        candidate = base if attempt == 1 else f"{base}-{attempt}"
        try:
            return await client.start_workflow(
                DrillWorkflow.run,
                DrillInput(run_id=candidate, drill=drill, source=source, started_by=current_user()),
                id=candidate,
                task_queue=config.task_queue,
                # The run id is the results database's key: reusing a finished run's id would overwrite its record.
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                static_summary=f"drill {drill.name}" + (f" ({drill.team})" if drill.team else ""),
                static_details=_details(drill, source),
                memo={"drill": drill.name, "team": drill.team},  # lets `gameday stop --all --team` choose
                search_attributes=attributes,
            )
        except WorkflowAlreadyStartedError as err:
            if run_id:
                raise GamedayError(f"run id {run_id!r} is already used: choose another --id") from err
        except RPCError as err:
            if attributes is None or "search attribute" not in err.message.lower():
                raise
            # A cluster without gameday's attributes registered: run the drill anyway, and say how to add them.
            attributes = None
            warn_no_attributes(err.message)
    raise RuntimeError(f"could not find a free run id near {base}")


async def warn_if_no_worker(client: Client, queue: str, drill: Drill) -> bool:
    """Say at once when no worker polls the queue the drill was started on; returns whether none does."""
    from gameday.cli.pollers import no_worker
    from gameday.model.units import format_duration

    silent = await no_worker(client, queue)
    if silent is not None:
        Console(stderr=True).print(
            f"[yellow]warning:[/] {escape(silent)}: the drill waits for a worker (start one: gameday worker); if none "
            f"picks it up within {format_duration(drill.start_deadline)} it ends ABORTED, touching nothing",
        )
    return silent is not None


async def picked_up_in_time(
    handle: WorkflowHandle[DrillWorkflow, RunRecord], submitted: float, drill: Drill, out: Console
) -> bool:
    """``run --wait`` with no worker: wait out the start deadline for one, rather than hang with no word.

    Past the deadline with no worker having looked, the verdict is certain (the drill ends ABORTED, touching
    nothing, the moment a worker picks it up), so the command ends with it.
    """
    from gameday.cli.pollers import started_within
    from gameday.model.units import format_duration

    deadline = drill.start_deadline.total_seconds()
    out.print(f"waiting up to {format_duration(drill.start_deadline)} for a worker to pick up {escape(handle.id)}…")
    # A little past the deadline: the drill's own check uses the server's clock, which started first.
    if await started_within(handle, submitted + deadline + 2.0):
        return True
    out.print(
        f"[{VERDICT_STYLE['ABORTED']}]ABORTED[/]: no worker picked it up within "
        f"{format_duration(drill.start_deadline)}: nothing was touched; the run records itself ABORTED when a "
        "worker polls its task queue"
    )
    return False


def _search_attributes(drill: Drill, config: GamedayConfig) -> TypedSearchAttributes:
    from gameday.workflows import search

    return search.at_start(drill.name, drill.team, config.environment)


def warn_no_attributes(message: str) -> None:
    Console(stderr=True).print(
        f"[yellow]note:[/] started without search attributes ({escape(message)}); register them for the Web UI "
        "and `gameday list --temporal`: see workflows/search.py",
    )


def _details(drill: Drill, source: str) -> str:
    """The Web UI's details of the run, in Markdown: what it touches and breaks, from where."""
    lines = [drill.description] if drill.description else []
    lines.append(f"**targets:** {', '.join(f'{n} ({t.kind.value})' for n, t in drill.targets.items()) or 'none'}")
    lines.append(f"**faults:** {', '.join(f.label for f in drill.faults) or 'none'}")
    if source:
        lines.append(f"**file:** `{source}`")
    return "\n\n".join(lines)


RECORD_SETTLE = 5.0
"""Seconds ``--wait`` still waits for the workflow to complete once the verdict is set: the record normally lands
in milliseconds; past this, the database is slow and the verdict is returned without it. While notifications are
still being sent (phase ``notify``) it does not wait at all: Slack being down never holds a verdict."""

CTRL_C_WINDOW = 5.0
"""Seconds within which a second Ctrl-C on ``run --wait`` stops the drill."""


async def follow(handle: WorkflowHandle[DrillWorkflow, RunRecord], out: Console, poll: float = 0.25) -> RunRecord:
    """Print each phase as it completes; return the record once the drill is safe and judged.

    The workflow's result is the record once SQL has it; if the results database is down the workflow keeps
    retrying for days, so once the verdict is set (rollback and verify done) and the result is not in within
    :data:`RECORD_SETTLE` seconds, the workflow's own record (query ``record``) is returned instead.

    Ctrl-C (see :class:`CtrlC`): the first says the drill still runs and how to stop it; a second within
    :data:`CTRL_C_WINDOW` seconds stops it, and the following goes on until the reverts and the verdict.
    """
    from gameday.model.records import DrillStatus, Phase, RunRecord

    loop = asyncio.get_running_loop()
    ctrl_c = CtrlC(handle, out)
    ctrl_c.install()
    shown = 0
    judged_at: float | None = None
    status: DrillStatus | None = None
    result = asyncio.ensure_future(handle.result())
    try:
        while not result.done():
            try:
                status = await handle.query("status", result_type=DrillStatus)
            except Exception:
                status = None  # no worker answered this time (or the run just closed): the next poll says
            if status is not None:
                shown = _print_steps(out, status, shown)
                ctrl_c.rolled_back(status)
                if status.verdict is not None and judged_at is None:
                    judged_at = loop.time()
                if status.verdict is not None and status.phase == Phase.NOTIFY:
                    # Judged, safe, and only telling Slack or the webhook now: the verdict goes out first.
                    notifying: RunRecord | None = await handle.query("record", result_type=RunRecord)
                    if notifying is not None:
                        _print_steps_of(out, notifying, shown)
                        ctrl_c.rolled_back(_status_of(notifying))
                        _say_notifying(out, handle.id, status)
                        result.cancel()
                        return notifying
            if judged_at is not None and loop.time() - judged_at > RECORD_SETTLE:
                record: RunRecord | None = await handle.query("record", result_type=RunRecord)
                if record is not None:
                    _print_steps_of(out, record, shown)
                    ctrl_c.rolled_back(_status_of(record))
                    _say_record_pending(out, handle.id, status)
                    result.cancel()
                    return record
            waits: list[asyncio.Future[Any]] = [result, ctrl_c.leave]
            await asyncio.wait(waits, timeout=poll, return_when=asyncio.FIRST_COMPLETED)
            if ctrl_c.leave.done():
                result.cancel()
                ctrl_c.say_left()
                raise typer.Exit(code=130)
    finally:
        ctrl_c.remove()
    record = result.result()
    _print_steps_of(out, record, shown)
    ctrl_c.rolled_back(_status_of(record))
    return record


def _say_notifying(out: Console, run_id: str, status: DrillStatus) -> None:
    """The verdict is in while notifications are still being sent: say so, with what failed so far, in one line."""
    sending = [step for step in status.steps if step.phase.value == "notify" and step.ended_at is None]
    failed = sending[-1].detail if sending and sending[-1].detail != "sending the verdict" else ""
    out.print(
        "[yellow]note:[/] notifications are still being sent"
        + (f" ({escape(failed)})" if failed else "")
        + f"; the record is saved once they are sent or given up: `gameday report {escape(run_id)}` reads it"
    )


def _say_record_pending(out: Console, run_id: str, status: DrillStatus | None) -> None:
    from gameday.model.records import Phase
    from gameday.workflows.drill_workflow import GIVE_UP

    if status is not None and status.phase == Phase.RECORD:
        what = f"the results database has not taken the record yet: the worker keeps trying (for up to {GIVE_UP})"
    else:
        what = "the record is not saved yet (notifications still being sent)"
    out.print(
        f"[yellow]note:[/] {what}; meanwhile `gameday report {escape(run_id)}` and `gameday status "
        f"{escape(run_id)}` read it from Temporal"
    )


class CtrlC:
    """Ctrl-C while following a run: never leave a fault applied without a word.

    First press: say the drill is still running, its faults applied, and give the exact stop command. A second
    press within :data:`CTRL_C_WINDOW` seconds sends the stop (the same ``emergency_stop`` signal as
    ``gameday stop``) and the follower goes on until the reverts are done and the verdict is in. A press after the
    stop was sent leaves at once (the rollback goes on in the workflow).
    """

    def __init__(self, handle: WorkflowHandle[DrillWorkflow, RunRecord], out: Console) -> None:
        self._handle = handle
        self._out = out
        self._pressed_at: float | None = None
        self._stop: asyncio.Future[None] | None = None
        self._reverts_shown = False
        self._installed = False
        self.leave: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def install(self) -> None:
        import signal

        try:
            asyncio.get_running_loop().add_signal_handler(signal.SIGINT, self._pressed)
            self._installed = True
        except (NotImplementedError, RuntimeError, ValueError):
            pass  # not the main thread, or no signals here: Ctrl-C then interrupts as before

    def remove(self) -> None:
        import signal

        if self._installed:
            asyncio.get_running_loop().remove_signal_handler(signal.SIGINT)
            self._installed = False

    def _pressed(self) -> None:
        now = asyncio.get_running_loop().time()
        run_id = escape(self._handle.id)
        if self._stop is not None:
            if not self.leave.done():
                self.leave.set_result(None)
            return
        if self._pressed_at is not None and now - self._pressed_at <= CTRL_C_WINDOW:
            self._out.print(f"[bold magenta]stopping {run_id}[/]: stop sent, rolling back every fault…")
            self._stop = asyncio.ensure_future(self._send_stop())
            return
        self._pressed_at = now
        self._out.print(
            f"[yellow]Ctrl-C: the drill {run_id} is still running and its faults stay applied.[/] "
            f'To stop it and roll back: [bold]gameday stop {run_id} --reason "…"[/], or press Ctrl-C again '
            f"within {CTRL_C_WINDOW:.0f} s."
        )

    async def _send_stop(self) -> None:
        request = {"reason": "Ctrl-C twice on gameday run --wait", "by": current_user()}
        try:
            await self._handle.signal("emergency_stop", request)
        except Exception as err:  # the follower keeps going: the person can still use `gameday stop`
            self._out.print(
                f"[bold red]stop not sent[/] ({escape(str(err))}): "
                f'run [bold]gameday stop {escape(self._handle.id)} --reason "…"[/]'
            )
            self._stop = None

    def rolled_back(self, status: DrillStatus) -> None:
        """After a stop from here, print each revert once the rollback is done."""
        if self._stop is None or self._reverts_shown or not status.rolled_back:
            return
        self._reverts_shown = True
        stop_at = status.stop.received_at if status.stop else None
        self._out.print(f"[bold]{escape(status.run_id)}[/]: rolled back")
        for fault in status.faults:
            after = ""
            if stop_at is not None and fault.reverted_at is not None and fault.reverted_at >= stop_at:
                after = f" +{(fault.reverted_at - stop_at).total_seconds():.3f}s after the stop"
            self._out.print(f"  {fault.state.value:<12} {escape(fault.label)}{after}")
        if status.time_to_safe is not None:
            self._out.print(f"  time to safe: {status.time_to_safe:.3f}s (stop received → last revert done)")

    def say_left(self) -> None:
        run_id = escape(self._handle.id)
        self._out.print(
            f"left {run_id}: its rollback goes on in the workflow; follow it with [bold]gameday status {run_id}[/]"
        )


def _print_steps(out: Console, status: DrillStatus, shown: int) -> int:
    """Print the finished steps not shown yet; returns how many are shown (a step still running waits)."""
    for step in status.steps[shown:]:
        if step.ended_at is None:
            return shown
        shown += 1
        style = STATUS_STYLE.get(step.status.value, "")
        seconds = f"{step.seconds:.2f}s" if step.seconds is not None else ""
        out.print(f"  [{style}]{step.phase.value:<9}[/] {step.status.value:<11} {seconds:>8}  {escape(step.detail)}")
    return shown


def _print_steps_of(out: Console, record: RunRecord, shown: int) -> None:
    _print_steps(out, _status_of(record), shown)


def _status_of(record: RunRecord) -> DrillStatus:
    from gameday.model.records import DrillStatus

    return DrillStatus(
        run_id=record.run_id,
        phase=record.phase,
        faults_active=[],
        last_measurements=[],
        steps=record.steps,
        stop=record.stop,
        verdict=record.verdict,
        faults=record.faults,
        rolled_back=True,
        time_to_safe=record.time_to_safe,
    )


def verdict_line(record: RunRecord) -> str:
    verdict = record.verdict.value if record.verdict else "UNKNOWN"
    return f"[{VERDICT_STYLE.get(verdict, 'bold')}]{verdict}[/]: {escape(record.summary)}"


def contract_json(run_id: str, record: RunRecord | None, ui_url: str, started_at: datetime | None = None) -> str:
    """The one-line JSON object CI pipelines read from ``gameday run --json``."""
    payload: dict[str, object] = {
        "run_id": run_id,
        "verdict": record.verdict.value if record and record.verdict else None,
        "started_at": (record.started_at if record else started_at or datetime.now(UTC)).isoformat(),
        "ended_at": record.ended_at.isoformat() if record and record.ended_at else None,
        "ui_url": ui_url,
    }
    if record is not None:
        payload["summary"] = record.summary
        payload["time_to_recovery"] = record.time_to_recovery
        payload["time_to_safe"] = record.time_to_safe
        payload["time_to_detect"] = record.time_to_detect
        payload["not_reverted"] = [f.label for f in record.faults if f.state.value == "not_reverted"]
    return json.dumps(payload)


def current_user() -> str:
    try:
        return getpass.getuser()
    except Exception:
        return "unknown"
