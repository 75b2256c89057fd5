"""The kill switch: ``gameday freeze`` and ``gameday unfreeze``.

``freeze`` records the freeze in the task queue's ``FreezeWorkflow`` first (so nothing new starts), then stops
every running game day and drill in scope through their ``emergency_stop`` signal (the stop path: each run
rolls back and reverts every fault), looks once more for runs visibility had not shown yet, and waits for the
rollbacks. The freeze itself is the durable state; this command only carries it out on what already runs.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape

from gameday.cli.context import Settings, console, err_console, fail, run_async, settings_of

if TYPE_CHECKING:
    from rich.console import Console
    from temporalio.client import Client, ScheduleDescription, WorkflowHandle

    from gameday.model.freeze_records import FreezeState
    from gameday.model.records import DrillStatus

FAULTS_LEFT = 6
"""Exit code when a stopped run's rollback left a fault (or was not confirmed in time): ERROR's, as ``stop``."""

READ_TIMEOUT = 5.0
"""Seconds a display of the freeze state may take before it is given up (with a note)."""

LATE_LOOK = 1.0
"""Seconds before the second look for running runs: visibility lags a few hundred ms behind a start."""


def register(app: typer.Typer) -> None:
    app.command()(freeze)
    app.command()(unfreeze)


def freeze(
    ctx: typer.Context,
    reason: Annotated[
        str, typer.Option("--reason", "-r", help="Why: stored with the freeze and with every run it stops.")
    ] = "",
    team: Annotated[
        str | None, typer.Option(help="Freeze only this team's drills and game days (default: every team).")
    ] = None,
    by: Annotated[str | None, typer.Option(help="Who is freezing (default: your user name).")] = None,
    no_wait: Annotated[
        bool, typer.Option("--no-wait", help="Return once the stops are sent, without waiting for the rollbacks.")
    ] = False,
    wait_timeout: Annotated[
        str, typer.Option(help="How long to wait for every stopped run's rollback before giving up (exit 6).")
    ] = "2m",
) -> None:
    """Kill switch: stop every running drill and game day, and refuse every new start until 'gameday unfreeze'.

    In this order: the freeze is recorded in Temporal (a workflow of this task queue and namespace, durable with no
    worker up, and read by every drill and game-day step before it touches anything); every running game day (so
    none starts its next step), then every running drill, gets the emergency stop, reverts all its faults and ends
    ABORTED "frozen: REASON"; then it waits (--wait-timeout, or not at all with --no-wait) for those rollbacks and
    prints how many faults were reverted. While frozen, 'gameday run', scheduled runs and game-day steps start
    nothing: each run records itself ABORTED by freeze, "frozen: ...", nothing touched ('run --wait' exits 4,
    'schedule trigger' exits 8), even when started by an older gameday CLI. A run that cannot read the freeze
    state does not start either (fail closed). 'gameday status' and 'schedule list' show a line per freeze.
    With --team, only that team is frozen. Exit 0 once every fault is reverted; 6 when one is not (or the wait
    timed out). Example: gameday freeze --reason "incident INC-42: hands off" --team payments
    """
    settings = settings_of(ctx)
    if not reason:
        fail("--reason is required: say why, it is stored with the freeze and every run it stops")
    _check_team(team)
    from gameday.model.units import parse_duration

    try:
        within = parse_duration(wait_timeout).total_seconds()
    except ValueError as err:
        fail(f"--wait-timeout: {err}")
    if within <= 0:
        fail("--wait-timeout must be longer than 0s")
    run_async(settings, _freeze(settings, reason, team, by, wait=not no_wait, wait_timeout=within))


def unfreeze(
    ctx: typer.Context,
    team: Annotated[
        str | None, typer.Option(help="Lift only this team's freeze (default: every freeze, global and per team).")
    ] = None,
    by: Annotated[str | None, typer.Option(help="Who is lifting it (default: your user name).")] = None,
) -> None:
    """Lift a freeze: drills, scheduled runs and game days may start again.

    Without --team every freeze is lifted; with --team only that team's (a freeze of every team still holds, and
    this command says so). Runs the freeze stopped stay stopped: start them again. Example: gameday unfreeze
    """
    settings = settings_of(ctx)
    _check_team(team)
    run_async(settings, _unfreeze(settings, team, by))


def _check_team(team: str | None) -> None:
    """An empty --team (``--team "$TEAM"`` with TEAM unset) or ``*`` was recorded as a freeze of every team while
    only that team's runs (none) were stopped: every team frozen, their running drills left running."""
    from gameday.model.freeze_names import ALL_TEAMS

    if team is not None and team.strip() in ("", ALL_TEAMS):
        fail(f"--team {team!r}: name one team, or leave --team out for every team")


# --- carrying it out --------------------------------------------------------------------------------------


async def _freeze(
    settings: Settings, reason: str, team: str | None, by: str | None, *, wait: bool, wait_timeout: float
) -> None:
    from gameday.cli.launch import current_user
    from gameday.cli.runs import client_for

    launched = time.perf_counter()
    client = await client_for(settings)
    # Plain JSON, the shapes of FreezeRequest and FreezeState: importing the drill model would cost ~150 ms
    # before the first RPC, and every one of them is faults held longer (as `gameday stop` does).
    done = await freeze_runs(client, settings.config.task_queue, reason, by or current_user(), team)
    stopped, drills, undelivered = done.stopped, done.drills, done.undelivered
    scope = f"team {team}" if team else "every team"
    console.print(
        f"[bold red]frozen[/] ({escape(scope)}): {escape(reason)}; new drills, scheduled runs and game-day steps "
        "are refused until 'gameday unfreeze" + (f" --team {escape(team)}" if team else "") + "'"
    )
    _say_stopped(stopped, drills)
    for line in undelivered:
        err_console.print(f"[bold red]error:[/] {escape(line)}")
    if not stopped and not undelivered:
        console.print("nothing was running" + (f" for team {escape(team)}" if team else ""))
        return
    if wait and drills:
        await _await_rollbacks(list(drills.values()), launched, wait_timeout)
    elif stopped:
        console.print(f"{len(stopped)} run(s) stopping; follow them with 'gameday status RUN_ID'")
    if undelivered:
        raise typer.Exit(code=FAULTS_LEFT)


@dataclass
class Frozen:
    """What :func:`freeze_runs` did: the runs stopped (in the order they were), the drills among them, and one
    line per stop that could not be delivered."""

    stopped: dict[str, WorkflowHandle[Any, Any]] = field(default_factory=dict)
    drills: dict[str, WorkflowHandle[Any, Any]] = field(default_factory=dict)
    undelivered: list[str] = field(default_factory=list)


async def freeze_runs(
    client: Client, queue: str, reason: str, by: str, team: str | None = None, *, late_look: float = LATE_LOOK
) -> Frozen:
    """Record a freeze, then stop what runs in its scope, twice: now and ``late_look`` seconds later (a run that
    started just before the freeze may not be listed yet). Prints nothing: ``gameday freeze``, the console's
    Freeze lever and Slack's ``/gameday freeze`` all carry a freeze out through here."""
    from gameday.model.freeze_names import FROZEN_BY, freeze_workflow_id

    sent_at = datetime.now(UTC)
    request = {"reason": reason, "by": by, "team": team}
    # A signal (durable with no worker running); signal-with-start when the workflow is not running.
    # The listing of what runs goes alongside; the stops are sent once the freeze is recorded.
    _, game_days, drills_now = await asyncio.gather(
        _record_freeze(client, queue, freeze_workflow_id(queue), request),
        running_runs(client, queue, "GameDayWorkflow", team),
        running_runs(client, queue, "DrillWorkflow", team),
    )
    stop = {"reason": f"frozen: {reason}", "by": FROZEN_BY, "sent_at": sent_at.isoformat()}
    done = Frozen()
    await _stop(game_days, drills_now, stop, done)
    await asyncio.sleep(late_look)
    game_days, drills_now = await asyncio.gather(
        running_runs(client, queue, "GameDayWorkflow", team), running_runs(client, queue, "DrillWorkflow", team)
    )
    await _stop(game_days, drills_now, stop, done)
    return done


async def _record_freeze(client: Client, queue: str, workflow_id: str, request: dict[str, Any]) -> None:
    """The freeze signalled to the running freeze workflow; else (never started, or closed by hand) the workflow
    started with the freezes its closed run still holds and this one on top (signal-with-start): a freeze of
    another team must not be dropped because someone terminated the workflow."""
    from temporalio.service import RPCError, RPCStatusCode

    try:
        await client.get_workflow_handle(workflow_id).signal("freeze", request)
        return
    except RPCError as err:
        if err.status != RPCStatusCode.NOT_FOUND:
            raise
    try:
        last = (await freshest_state(client, queue)).model_dump(mode="json")
    except RPCError:
        last = {"freezes": []}
    await client.start_workflow(
        "FreezeWorkflow",
        last,
        id=workflow_id,
        task_queue=queue,
        start_signal="freeze",
        start_signal_args=[request],
        static_summary="gameday freeze state (kill switch)",
    )


async def _stop(
    game_days: list[WorkflowHandle[Any, Any]],
    drills_now: list[WorkflowHandle[Any, Any]],
    stop: dict[str, str],
    done: Frozen,
) -> None:
    """Game days first (so none starts its next step), then drills; each run once, however often it is seen.

    A run that ended between the listing and its stop is left out (nothing of it to revert); any other failure to
    deliver a stop is said, and that run is not counted as stopped.
    """
    from temporalio.service import RPCError, RPCStatusCode

    for wave, are_drills in ((game_days, False), (drills_now, True)):
        fresh = [h for h in wave if h.id not in done.stopped]
        sent = await asyncio.gather(*(h.signal("emergency_stop", stop) for h in fresh), return_exceptions=True)
        for handle, outcome in zip(fresh, sent, strict=True):
            if isinstance(outcome, RPCError) and outcome.status == RPCStatusCode.NOT_FOUND:
                continue  # already completed: its own rollback has run
            if isinstance(outcome, BaseException):
                done.undelivered.append(f"{handle.id}: stop not delivered ({outcome}): stop it with gameday stop")
                continue
            done.stopped[handle.id] = handle
            if are_drills:
                done.drills[handle.id] = handle


def _say_stopped(stopped: dict[str, WorkflowHandle[Any, Any]], drills: dict[str, WorkflowHandle[Any, Any]]) -> None:
    for run_id in stopped:
        console.print(f"stopped {'drill' if run_id in drills else 'game day'} [bold]{escape(run_id)}[/]")


async def running_runs(client: Client, queue: str, kind: str, team: str | None) -> list[WorkflowHandle[Any, Any]]:
    """Running workflows of one type on this task queue, by visibility; the team comes from the start memo."""
    found = []
    query = f'WorkflowType = "{kind}" AND ExecutionStatus = "Running" AND TaskQueue = "{queue}"'
    async for execution in client.list_workflows(query):
        if team is not None and (await execution.memo()).get("team") != team:
            continue
        found.append(client.get_workflow_handle(execution.id, run_id=execution.run_id))
    return found


async def _await_rollbacks(drills: list[WorkflowHandle[Any, Any]], launched: float, wait_timeout: float) -> None:
    """Every stopped drill's rollback (a game day's are its drills'), bounded; then the count of faults reverted."""
    from gameday.model.records import FaultState

    console.print(f"waiting for {len(drills)} drill(s) to roll back (up to {wait_timeout:g}s)…")
    answers = await asyncio.gather(*(_rolled_back(h, wait_timeout) for h in drills), return_exceptions=True)
    seconds = time.perf_counter() - launched
    reverted = 0
    trouble: list[str] = []
    for handle, answer in zip(drills, answers, strict=True):
        if isinstance(answer, BaseException):
            trouble.append(f"{handle.id}: rollback not confirmed ({answer or type(answer).__name__})")
            continue
        reverted += sum(1 for f in answer.faults if f.state == FaultState.REVERTED)
        trouble += [f"{handle.id}: {f.label} NOT REVERTED" for f in answer.faults if f.state == FaultState.NOT_REVERTED]
    console.print(f"{reverted} fault(s) reverted in {len(drills)} drill(s), {seconds:.3f}s after 'gameday freeze'")
    if trouble:
        for line in trouble:
            err_console.print(f"[bold red]error:[/] {escape(line)}")
        raise typer.Exit(code=FAULTS_LEFT)


async def _rolled_back(handle: WorkflowHandle[Any, Any], within: float) -> DrillStatus:
    """The drill's state once its rollback ended: its ``wait_rolled_back`` update, or its result if it closed."""
    from temporalio.client import WorkflowUpdateFailedError
    from temporalio.service import RPCError

    from gameday.model.records import DrillStatus, Phase, RunRecord

    async def answer() -> DrillStatus:
        try:
            status: DrillStatus = await handle.execute_update("wait_rolled_back", result_type=DrillStatus)
            return status
        except (RPCError, WorkflowUpdateFailedError):
            pass  # closed meanwhile: its result says what was reverted
        record = RunRecord.model_validate(await handle.result())
        return DrillStatus(
            run_id=record.run_id, phase=Phase.DONE, faults_active=[], last_measurements=[], faults=record.faults
        )

    return await asyncio.wait_for(answer(), timeout=within)


async def _unfreeze(settings: Settings, team: str | None, by: str | None) -> None:
    from temporalio.service import RPCError, RPCStatusCode

    from gameday.cli.launch import current_user
    from gameday.cli.runs import client_for
    from gameday.model.freeze_names import freeze_workflow_id

    client = await client_for(settings)
    queue = settings.config.task_queue
    handle = client.get_workflow_handle(freeze_workflow_id(queue))
    request = {"by": by or current_user(), "team": team}
    try:
        await handle.signal("unfreeze", request)
    except RPCError as err:
        if err.status != RPCStatusCode.NOT_FOUND:
            raise
        if not await _unfreeze_closed(client, queue, request):
            console.print("nothing is frozen (this task queue was never frozen)")
            return
    console.print("unfrozen: " + (f"team {escape(team)}" if team else "every freeze lifted"))
    from gameday.activities.freeze import read_freezes

    try:
        left = await read_freezes(client, queue)
    except RPCError:
        return  # no worker to answer now: the signal is recorded all the same
    for line in frozen_lines(left):
        console.print(f"[yellow]still[/] {escape(line)}")


async def _unfreeze_closed(client: Client, queue: str, request: dict[str, Any]) -> bool:
    """A freeze workflow closed by hand (terminated, or failed): every check still reads its last state, or
    cannot read it and refuses to start (fail closed), so it is started again with that state and the unfreeze
    on top. ``False`` when there is nothing to lift (never frozen, or closed with nothing frozen).

    Raises:
        typer.Exit: 6, closed before it recorded any state and ``--team`` given (the other freezes are unknown).
    """
    from temporalio.service import RPCError, RPCStatusCode

    from gameday.activities.freeze import read_freezes
    from gameday.model.freeze_names import freeze_workflow_id
    from gameday.model.freeze_records import MEMO_KEY, FreezeState

    handle = client.get_workflow_handle(freeze_workflow_id(queue))
    try:
        desc = await handle.describe()
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            return False
        raise
    try:
        last: FreezeState | None = await read_freezes(client, queue)  # what the checks read
    except RPCError:  # closed before its first task: no state, no memo; the checks fail closed on it
        shown = (await desc.memo()).get(MEMO_KEY)
        last = FreezeState.model_validate(shown) if shown else None
    if last is None and request["team"] is not None:
        err_console.print(
            f"[bold red]error:[/] the freeze workflow {escape(handle.id)} was closed by hand before it recorded "
            "its freezes, so every run of this task queue is refused; 'gameday unfreeze' without --team lifts them"
        )
        raise typer.Exit(code=FAULTS_LEFT)
    if last is not None and not last.freezes:
        return False
    await client.start_workflow(
        "FreezeWorkflow",
        (last or FreezeState()).model_dump(mode="json"),
        id=handle.id,
        task_queue=queue,
        start_signal="unfreeze",
        start_signal_args=[request],
        static_summary="gameday freeze state (kill switch)",
    )
    return True


# --- shown elsewhere --------------------------------------------------------------------------------------


def frozen_lines(state: FreezeState) -> list[str]:
    """One line per freeze in force (``gameday status``, ``schedule list``), empty when nothing is frozen."""
    return [f"FROZEN: {f.describe()} (lift it: gameday unfreeze{_team_option(f.team)})" for f in state.freezes]


def _team_option(team: str) -> str:
    from gameday.model.freeze_names import ALL_TEAMS

    return "" if team == ALL_TEAMS else f" --team {team}"


async def print_frozen(client: Client, task_queue: str) -> None:
    """A line per freeze in force, from the freeze workflow's memo (no worker needed); quiet when unreadable."""
    from temporalio.service import RPCError

    from gameday.activities.freeze import shown_freezes

    try:
        state = await asyncio.wait_for(shown_freezes(client, task_queue), timeout=READ_TIMEOUT)
    except (RPCError, TimeoutError):
        err_console.print("note: the freeze state could not be read")
        return
    for line in frozen_lines(state):
        console.print(f"[bold red]{escape(line)}[/]")


async def schedule_frozen(settings: Settings, description: ScheduleDescription) -> str:
    """The freeze a run of this schedule would meet now (``FROZEN: …``), or ``""``; from the freeze memo."""
    from gameday.cli.runs import client_for

    client = await client_for(settings)
    action = description.schedule.action
    memo = getattr(action, "memo", None) or {}
    raw = memo.get("team")
    team = ""
    if raw is not None:
        team = raw if isinstance(raw, str) else str(client.data_converter.payload_converter.from_payload(raw))
    freeze = (await freshest_state(client, settings.config.task_queue)).blocking(team)
    return f"frozen: {freeze.reason} ({freeze.describe()})" if freeze is not None else ""


async def warn_if_frozen(client: Client, task_queue: str, team: str, out: Console) -> None:
    """Say at once when a drill just started meets a freeze: it records itself skipped (ABORTED by freeze)."""
    from temporalio.service import RPCError

    from gameday.activities.freeze import shown_freezes

    try:
        # The memo, not the query: with no worker up, a query would hold 'run' for its whole timeout.
        freeze = (await asyncio.wait_for(shown_freezes(client, task_queue), timeout=READ_TIMEOUT)).blocking(team)
    except (RPCError, TimeoutError):
        return  # the drill's own check decides (and refuses to start if it cannot read the state either)
    if freeze is not None:
        out.print(
            f"[yellow]frozen:[/] {escape(freeze.reason)} ({escape(freeze.describe())}): this run records itself "
            "skipped (ABORTED by freeze) and touches nothing; run --wait exits 4"
        )


async def freshest_state(client: Client, task_queue: str) -> FreezeState:
    """The freeze workflow's own answer (it has handled every signal sent before), else its memo."""
    from temporalio.service import RPCError

    from gameday.activities.freeze import read_freezes, shown_freezes

    try:
        return await read_freezes(client, task_queue)
    except RPCError:
        return await shown_freezes(client, task_queue)
