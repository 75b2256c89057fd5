"""``gameday schedule ...``: recurring drills as Temporal Schedules (add, list, show, pause, resume, trigger, delete).

A schedule holds a snapshot of the validated drill; each time it fires, Temporal starts ``DrillWorkflow`` on the
configured task queue with the id ``<schedule id>-<start time>``, overlap policy SKIP (a drill never runs twice
at once), and skips every time that falls in a blackout window.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer
from rich.markup import escape

from gameday.cli.command import GamedayTyper
from gameday.cli.context import console, run_async, settings_of

if TYPE_CHECKING:
    from temporalio.client import Client, ScheduleActionResult, ScheduleDescription, ScheduleHandle, ScheduleSpec

    from gameday.cli.context import Settings

DRILL_WORKFLOW = "DrillWorkflow"
SCHEDULED_RUN_ID = ""
"""``DrillInput.run_id`` of a scheduled run: empty, so that the workflow takes its own id (``<schedule id>-<start
time>``, chosen by Temporal when the schedule fires) as the run id, keeping the results database, the fault ledger
and the sweep keyed by the workflow id as for ``gameday run``."""
UPCOMING = 8
TRIGGER_SKIPPED = 8
"""Exit code of ``schedule trigger`` when no drill runs for real: inside a blackout, or an overlap skip (README)."""

app = GamedayTyper(
    name="schedule",
    help=(
        "Recurring drills with Temporal Schedules: a drill every sprint, never two copies at once, never in a "
        "blackout window. Example: [bold]gameday schedule add drills/checkout.yaml --cron '0 14 * * TUE' "
        "--timezone Europe/Paris --blackout 2026-12-24..2026-12-26[/]"
    ),
    no_args_is_help=True,
    rich_markup_mode="rich",
)


def register(parent: typer.Typer) -> None:
    parent.add_typer(app, name="schedule")


@app.command()
def add(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="The drill file (YAML); validated as by 'gameday run'.")],
    cron: Annotated[
        str,
        typer.Option(
            help="When: minute hour day-of-month month day-of-week, e.g. '0 14 * * TUE' (Tuesdays 14:00), or @daily."
        ),
    ],
    timezone: Annotated[
        str, typer.Option(help="IANA time zone of the cron and the blackout windows, e.g. Europe/Paris.")
    ] = "UTC",
    schedule_id: Annotated[
        str | None, typer.Option("--id", help="Schedule id (default: drill-<name>); runs get '-<start time>'.")
    ] = None,
    jitter: Annotated[
        str | None, typer.Option(help="Start each run up to this much later, at random (e.g. 5m), to spread load.")
    ] = None,
    blackout: Annotated[
        list[str] | None,
        typer.Option(
            metavar="DATES", help="Dates when no run starts, both days included: 2026-12-24..2026-12-26 or 2026-12-25."
        ),
    ] = None,
    blackout_cron: Annotated[
        list[str] | None,
        typer.Option(
            metavar="CRON",
            help="Recurring blackout: every minute matching all five cron fields, e.g. '* * * * SAT,SUN'.",
        ),
    ] = None,
) -> None:
    """Run a drill on a calendar: Temporal starts it at each cron time, even with this machine off.

    Overlap policy SKIP: a time that comes while the previous run of this schedule still runs is skipped. A time
    inside a blackout window (--blackout, --blackout-cron; repeatable; in --timezone) still fires: its run records
    itself skipped (ABORTED, "skipped: now is in blackout ...") and touches nothing, so every skip is on record;
    'gameday schedule show' marks the upcoming times a blackout covers. The drill is copied into the schedule:
    after editing the file, delete the schedule and add it again.

    Example: gameday schedule add drills/checkout.yaml --cron '0 14 * * TUE' --timezone Europe/Paris --jitter 5m
    --blackout 2026-12-21..2027-01-03 --blackout-cron '* * * * SAT,SUN'
    """
    from gameday.activities import schedule_times
    from gameday.cli.drills import load_drill
    from gameday.model.errors import GamedayError

    settings = settings_of(ctx)
    drill = load_drill(file)
    try:
        schedule_times.validate_cron(cron)
        schedule_times.time_zone(timezone)
        windows = [schedule_times.blackout_dates(b) for b in blackout or []]
        windows += [schedule_times.blackout_cron(b) for b in blackout_cron or []]
        spread = _jitter(jitter) if jitter else None
    except GamedayError as err:
        _fail(settings, err)
    sid = schedule_id or f"drill-{drill.name}"

    async def go() -> None:
        from temporalio.client import (
            Schedule,
            ScheduleActionStartWorkflow,
            ScheduleAlreadyRunningError,
            ScheduleOverlapPolicy,
            SchedulePolicy,
            ScheduleSpec,
        )
        from temporalio.common import TypedSearchAttributes
        from temporalio.service import RPCError, RPCStatusCode

        from gameday.cli.launch import current_user, warn_no_attributes
        from gameday.model.records import DrillInput
        from gameday.worker.client import connect
        from gameday.workflows import search

        # Blackouts are not Temporal skip calendars: a skipped time would leave no trace. The run starts, finds
        # itself in a blackout (check_blackout), records itself skipped (ABORTED, by schedule) and touches nothing.
        spec = ScheduleSpec(cron_expressions=[cron], time_zone_name=timezone, jitter=spread)
        action = ScheduleActionStartWorkflow(
            DRILL_WORKFLOW,
            DrillInput(
                run_id=SCHEDULED_RUN_ID,
                drill=drill,
                source=str(file),
                started_by=f"schedule {sid}",
                blackouts=[w.text for w in windows],
                time_zone=timezone,
            ),
            id=sid,
            task_queue=settings.config.task_queue,
            static_summary=f"drill {drill.name}" + (f" ({drill.team})" if drill.team else "") + f", schedule {sid}",
            static_details=drill.description or None,
            memo={"drill": drill.name, "team": drill.team, "schedule": sid},  # `gameday stop --all --team`
            # Each run carries DrillName/DrillTeam/DrillEnvironment, as from `gameday run`; DrillVerdict at its end.
            typed_search_attributes=search.at_start(drill.name, drill.team, settings.config.environment),
        )
        client = await connect(settings.config)
        while True:
            try:
                handle = await client.create_schedule(
                    sid,
                    Schedule(action=action, spec=spec, policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP)),
                    memo={
                        "drill": drill.name,
                        "team": drill.team,
                        "source": str(file),
                        "cron": cron,
                        "blackouts": [w.text for w in windows],
                        "added_by": current_user(),
                    },
                )
                break
            except ScheduleAlreadyRunningError:
                exists = f"schedule {sid!r} already exists: delete it first, or choose another --id"
                raise GamedayError(exists) from None
            except RPCError as err:
                if err.status != RPCStatusCode.INVALID_ARGUMENT:
                    raise
                if action.typed_search_attributes and "search attribute" in err.message.lower():
                    # A cluster without gameday's attributes: schedule it anyway, and say how to add them.
                    warn_no_attributes(err.message)
                    action.typed_search_attributes = TypedSearchAttributes.empty
                    continue
                raise GamedayError(f"Temporal refused the schedule: {err.message}") from err
        desc = await handle.describe()
        console.print(f"scheduled [bold]{escape(sid)}[/]: drill {escape(drill.name)}, {escape(cron)} ({timezone})")
        _print_next(desc, [w.text for w in windows])

    run_async(settings, go())


@app.command("list")
def list_schedules(ctx: typer.Context) -> None:
    """Every drill schedule: id, drill, cron, time zone, paused?, blackouts, next runs and the last run's result.

    Under the table: each paused schedule with its note (pause --note), and each schedule's blackouts. Next runs
    already leave out blacked-out times. Above it, while frozen ('gameday freeze'), a FROZEN line per freeze: every
    scheduled run then records itself skipped. Example: gameday schedule list
    """
    settings = settings_of(ctx)

    async def go() -> None:
        from temporalio.client import ScheduleListActionStartWorkflow

        client = await _connect(settings)
        rows: list[tuple[str, ...]] = [("schedule", "drill", "cron", "zone", "state", "next runs (UTC)", "last run")]
        entries = []
        async for entry in await client.list_schedules():
            if entry.schedule is None or not isinstance(entry.schedule.action, ScheduleListActionStartWorkflow):
                continue
            if entry.schedule.action.workflow == DRILL_WORKFLOW:
                entries.append(entry)
        entries.sort(key=lambda e: e.id)
        lasts = await asyncio.gather(
            *(
                _result_of(client, e.info.recent_actions[-1]) if e.info and e.info.recent_actions else _none()
                for e in entries
            )
        )
        notes: list[str] = []
        for entry, last in zip(entries, lasts, strict=True):
            memo = await entry.memo()
            assert entry.schedule is not None
            blackouts = [str(b) for b in memo.get("blackouts", [])]
            nexts = _firing(entry.schedule.spec, blackouts, 2)
            rows.append(
                (
                    entry.id,
                    str(memo.get("drill", "?")),
                    str(memo.get("cron", "calendar")),
                    entry.schedule.spec.time_zone_name or "UTC",
                    "paused" if entry.schedule.state.paused else "active",
                    ", ".join(_stamp(t) for t in nexts[:2]) or "-",
                    last,
                )
            )
            state = entry.schedule.state
            if state.paused:
                notes.append(f"{entry.id}: paused" + (f": {state.note}" if state.note else ""))
            if memo.get("blackouts"):
                notes.append(f"{entry.id}: blackouts {', '.join(memo['blackouts'])}")
        from gameday.cli.freeze import print_frozen

        await print_frozen(client, settings.config.task_queue)  # frozen: every scheduled run records itself skipped
        if not entries:
            console.print("no drill schedules (add one with 'gameday schedule add FILE --cron ...')")
            return
        _print_columns(rows)
        for line in notes:
            console.print(line, markup=False)

    run_async(settings, go())


@app.command()
def show(
    ctx: typer.Context,
    schedule_id: Annotated[str, typer.Argument(help="The schedule id (see 'gameday schedule list').")],
) -> None:
    """One schedule in full: its drill, cron, blackouts, the next cron times (blacked-out ones marked), recent runs.

    A time in a blackout window still starts a run, which records itself skipped and touches nothing (it is listed
    among the recent runs); the upcoming times shown as 'skipped (blackout ...)' are computed here from the
    schedule's own calendars. Example: gameday schedule show drill-checkout
    """
    settings = settings_of(ctx)

    async def go() -> None:
        from gameday.activities import schedule_times
        from gameday.model.units import format_duration

        client = await _connect(settings)
        async with _known(schedule_id):
            desc = await client.get_schedule_handle(schedule_id).describe()
        memo = await desc.memo()
        spec = desc.schedule.spec
        state = desc.schedule.state
        blackouts: list[str] = list(memo.get("blackouts", []))
        console.print(f"[bold]{escape(desc.id)}[/]: drill [bold]{escape(str(memo.get('drill', '?')))}[/]", end="")
        console.print(f" (team {memo['team']})" if memo.get("team") else "", markup=False)
        console.print(f"  source: {memo.get('source', '?')}, added by {memo.get('added_by', '?')}", markup=False)
        jitter = f", jitter up to {format_duration(spec.jitter)}" if spec.jitter else ""
        zone = spec.time_zone_name or "UTC"
        console.print(f"  cron: {memo.get('cron', 'calendar')} ({zone}){jitter}; overlap: skip", markup=False)
        paused = f"paused: {state.note}" if state.paused and state.note else "paused" if state.paused else "active"
        console.print(f"  state: {paused}", markup=False)
        console.print(f"  blackouts: {', '.join(blackouts) or 'none'}", markup=False)
        now_in = schedule_times.blackout_now(spec, blackouts)
        if now_in:
            console.print(f"  [yellow]now in blackout {escape(now_in)}[/]: a run starting now records itself skipped")
        _print_next(desc, blackouts)
        console.print(f"  upcoming cron times ({zone}):")
        for t in schedule_times.upcoming(spec, blackouts, datetime.now(UTC), UPCOMING):
            local = t.at.astimezone(schedule_times.time_zone(zone)).strftime("%a %Y-%m-%d %H:%M")
            mark = f"[yellow]skipped (blackout {escape(t.blackout)})[/]" if t.blackout else "runs"
            console.print(f"    {local}  {mark}")
        info = desc.info
        console.print(
            f"  runs started: {info.num_actions}, skipped while one was running: {info.num_actions_skipped_overlap}",
            markup=False,
        )
        for execution in info.running_actions:
            console.print(f"  running: {getattr(execution, 'workflow_id', '?')}", markup=False)
        results = await asyncio.gather(*(_result_of(client, a) for a in info.recent_actions))
        for action, result in zip(info.recent_actions, results, strict=True):
            run = getattr(action.action, "workflow_id", "?")
            console.print(f"  {_stamp(action.started_at)}  {run}  {result}", markup=False)

    run_async(settings, go())


@app.command()
def pause(
    ctx: typer.Context,
    schedule_id: Annotated[str, typer.Argument(help="The schedule id.")],
    note: Annotated[str | None, typer.Option(help="Why, shown by list and show (default: who paused it).")] = None,
) -> None:
    """Stop starting runs until 'gameday schedule resume'; a run already going continues (stop it with 'gameday stop').

    Example: gameday schedule pause drill-checkout --note 'freeze during the migration'
    """
    settings = settings_of(ctx)

    async def go() -> None:
        from gameday.cli.launch import current_user

        handle = await _handle(settings, schedule_id)
        async with _known(schedule_id):
            await handle.pause(note=note or f"paused by {current_user()}")
        console.print(f"paused [bold]{escape(schedule_id)}[/]")

    run_async(settings, go())


@app.command()
def resume(
    ctx: typer.Context,
    schedule_id: Annotated[str, typer.Argument(help="The schedule id.")],
) -> None:
    """Start runs again at the next cron time (times missed while paused are not made up).

    Example: gameday schedule resume drill-checkout
    """
    settings = settings_of(ctx)

    async def go() -> None:
        from gameday.cli.launch import current_user

        handle = await _handle(settings, schedule_id)
        async with _known(schedule_id):
            await handle.unpause(note=f"resumed by {current_user()}")
            desc = await handle.describe()
        console.print(f"resumed [bold]{escape(schedule_id)}[/]")
        _print_next(desc, [str(b) for b in (await desc.memo()).get("blackouts", [])])

    run_async(settings, go())


@app.command()
def trigger(
    ctx: typer.Context,
    schedule_id: Annotated[str, typer.Argument(help="The schedule id.")],
    ignore_blackout: Annotated[
        bool,
        typer.Option(
            "--ignore-blackout",
            help="Start it anyway inside a blackout window: the run records itself skipped and touches nothing.",
        ),
    ] = False,
) -> None:
    """Start the schedule's drill now, as if its time had come: skipped if its previous run still runs.

    Refused inside a blackout window unless --ignore-blackout. Prints the run id (follow it with 'gameday status').
    Exits 8 when no drill runs for real: inside a blackout (refused, or started to record itself skipped), during
    a freeze (started: it records itself skipped), or skipped because the previous run still runs.
    Example: gameday schedule trigger drill-checkout
    """
    settings = settings_of(ctx)

    async def go() -> None:
        from gameday.activities import schedule_times

        handle = await _handle(settings, schedule_id)
        async with _known(schedule_id):
            before = await handle.describe()
        blackouts = list((await before.memo()).get("blackouts", []))
        now_in = schedule_times.blackout_now(before.schedule.spec, blackouts)
        if now_in and not ignore_blackout:
            console.print(
                f"skipped: now is in blackout {escape(now_in)} of {escape(schedule_id)}: nothing started "
                "(--ignore-blackout starts a run that records itself skipped)"
            )
            raise typer.Exit(code=TRIGGER_SKIPPED)
        from gameday.cli.freeze import schedule_frozen

        frozen = await schedule_frozen(settings, before)
        await handle.trigger()
        after = await _settled(handle, before)
        if after.info.num_actions > before.info.num_actions:
            run = getattr(after.info.recent_actions[-1].action, "workflow_id", "?")
            console.print(f"started [bold]{escape(run)}[/]  {escape(settings.config.workflow_url(run))}")
            if frozen:
                console.print(
                    f"skipped: {escape(frozen)}: the run records itself skipped (ABORTED) and touches nothing"
                )
                raise typer.Exit(code=TRIGGER_SKIPPED)
            if now_in:
                console.print(
                    f"skipped: now is in blackout {escape(now_in)}: the run records itself skipped (ABORTED) "
                    "and touches nothing"
                )
                raise typer.Exit(code=TRIGGER_SKIPPED)
        elif after.info.num_actions_skipped_overlap > before.info.num_actions_skipped_overlap:
            running = ", ".join(getattr(r, "workflow_id", "?") for r in after.info.running_actions)
            console.print(
                f"skipped: {escape(running or 'a run')} is still running (overlap policy skip): nothing started"
            )
            raise typer.Exit(code=TRIGGER_SKIPPED)
        else:
            console.print(f"trigger sent to [bold]{escape(schedule_id)}[/]; no run seen yet")

    run_async(settings, go())


@app.command()
def delete(
    ctx: typer.Context,
    schedule_id: Annotated[str, typer.Argument(help="The schedule id.")],
) -> None:
    """Remove the schedule; a run already going continues (stop it with 'gameday stop'), recorded runs stay.

    Example: gameday schedule delete drill-checkout
    """
    settings = settings_of(ctx)

    async def go() -> None:
        handle = await _handle(settings, schedule_id)
        async with _known(schedule_id):
            await handle.delete()
        console.print(f"deleted schedule [bold]{escape(schedule_id)}[/]")

    run_async(settings, go())


# --- shared ------------------------------------------------------------------------------------------------


async def _connect(settings: Settings) -> Client:
    from gameday.worker.client import connect

    return await connect(settings.config)


async def _handle(settings: Settings, schedule_id: str) -> ScheduleHandle:
    return (await _connect(settings)).get_schedule_handle(schedule_id)


@asynccontextmanager
async def _known(schedule_id: str) -> AsyncIterator[None]:
    """Turn Temporal's "not found" for a schedule into one line naming it."""
    from temporalio.service import RPCError, RPCStatusCode

    try:
        yield
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            raise _user_error(f"no schedule {schedule_id!r} (see 'gameday schedule list')") from err
        raise


async def _settled(handle: ScheduleHandle, before: ScheduleDescription) -> ScheduleDescription:
    """The description once the trigger shows (a run started or skipped); the scheduler acts within a second."""
    after = before
    for _ in range(50):
        await asyncio.sleep(0.1)
        after = await handle.describe()
        if (after.info.num_actions, after.info.num_actions_skipped_overlap) != (
            before.info.num_actions,
            before.info.num_actions_skipped_overlap,
        ):
            break
    return after


async def _result_of(client: Client, action: ScheduleActionResult) -> str:
    """A scheduled run's state: running, its verdict once completed, or how it ended."""
    from temporalio.client import WorkflowExecutionStatus
    from temporalio.service import RPCError

    from gameday.model.records import RunRecord

    run = getattr(action.action, "workflow_id", "")
    handle = client.get_workflow_handle(run, result_type=RunRecord)
    try:
        desc = await handle.describe()
        if desc.status == WorkflowExecutionStatus.COMPLETED:
            record = await handle.result()
            return f"{record.verdict.value if record.verdict else 'no verdict'} ({run})"
    except RPCError:
        return f"unknown ({run})"
    status = desc.status.name.lower() if desc.status else "unknown"
    return f"{status} ({run})"


async def _none() -> str:
    return "-"


def _firing(spec: ScheduleSpec, blackouts: list[str], count: int) -> list[datetime]:
    """The next times that will run a drill: the schedule's times, without those inside a blackout.

    Computed from the spec (Temporal's own next times include blacked-out ones: a run that starts in a blackout
    records itself skipped), far enough ahead to get past a long blackout.
    """
    from gameday.activities import schedule_times

    upcoming = schedule_times.upcoming(spec, blackouts, datetime.now(UTC), count * 2000)
    return [u.at for u in upcoming if not u.blackout][:count]


def _print_next(desc: ScheduleDescription, blackouts: list[str]) -> None:
    times = _firing(desc.schedule.spec, blackouts, 3)
    if desc.schedule.state.paused:
        console.print("  next runs: none while paused")
    else:
        console.print(f"  next runs (UTC, blackouts left out): {', '.join(_stamp(t) for t in times[:3]) or 'none'}")


def _print_columns(rows: Sequence[tuple[str, ...]]) -> None:
    # Plain aligned columns, never cropped: schedule ids are meant to be copied into the next command.
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for n, row in enumerate(rows):
        line = "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        console.print(f"[bold]{escape(line)}[/]" if n == 0 else line, markup=n == 0)


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M")


def _jitter(text: str) -> timedelta:
    from gameday.model.errors import GamedayError
    from gameday.model.units import parse_duration

    try:
        value = parse_duration(text)
    except ValueError as err:
        raise GamedayError(f"--jitter: {err}") from None
    if not isinstance(value, timedelta):
        raise GamedayError(f"--jitter: expected a duration like 30s or 5m, got {text!r}")
    return value


def _user_error(message: str) -> Exception:
    from gameday.model.errors import GamedayError

    return GamedayError(message)


def _fail(settings: Settings, err: Exception) -> NoReturn:
    from gameday.cli.context import fail

    if settings.debug:
        raise err
    fail(str(err))
