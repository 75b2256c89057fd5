"""Commands about runs: ``stop``, ``status``, ``list``, ``report`` and ``sweep``."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.markup import escape
from rich.table import Table

from gameday.cli.context import Settings, console, err_console, fail, run_async, settings_of

if TYPE_CHECKING:
    from pydantic import BaseModel
    from temporalio.api.workflow.v1 import PendingActivityInfo
    from temporalio.client import Client, WorkflowExecutionDescription, WorkflowHandle

    from gameday.model.gameday import GameDayRecord
    from gameday.model.records import DrillStatus, FaultRecord, RunRecord, StopRequest
    from gameday.model.traffic import TrafficSummary

_Progress = TypeVar("_Progress", bound="BaseModel")

TRAFFIC_ACTIVITY = "hold_traffic"
"""The activity sending a drill's traffic (``activities/traffic/activities.py``); its first heartbeat detail is
the latest :class:`~model.traffic.TrafficSummary`, which ``status`` shows."""


def register(app: typer.Typer) -> None:
    app.command()(stop)
    app.command()(status)
    app.command(name="list")(list_runs)
    app.command()(report)
    app.command()(sweep)


def stop(
    ctx: typer.Context,
    run_id: Annotated[
        str | None,
        typer.Argument(help="The run to stop (its workflow id, e.g. drill-db-outage-20261123T140000Z)."),
    ] = None,
    reason: Annotated[
        str, typer.Option("--reason", "-r", help="Why: stored with the run and shown in the report.")
    ] = "",
    by: Annotated[str | None, typer.Option(help="Who is stopping it (default: your user name).")] = None,
    wait: Annotated[bool, typer.Option("--wait", help="Return only when every fault has been reverted.")] = False,
    every: Annotated[
        bool, typer.Option("--all", help="Stop every running game day, then every running drill (of --team, if given).")
    ] = False,
    team: Annotated[str | None, typer.Option(help="With --all: only this team's game days and drills.")] = None,
) -> None:
    """Emergency stop: interrupt the drill, revert every fault in reverse order, record it ABORTED.

    A RUN_ID may be a game day's: its running drills stop and the rest are skipped. --all stops game days first
    (so none starts its next step), then drills. A second stop while rolling back is harmless. Stopping a run that
    has finished says so and exits 1. With no worker polling, the stop is still recorded (exit 0) and a warning
    says its rollback runs when a worker polls.
    """
    settings = settings_of(ctx)
    if not reason:
        fail("--reason is required: say why, it is stored with the run")
    if (run_id is None) == (not every):
        fail("name one RUN_ID, or use --all [--team T]")

    async def go() -> None:
        from gameday.cli.launch import current_user

        client = await client_for(settings)
        if run_id:
            waves = [[await running_handle(client, settings, run_id)]]
        else:
            # Game days first: a game day whose drill was stopped under it must not start its next step.
            waves = [await _running(client, "GameDayWorkflow", team), await _running(client, "DrillWorkflow", team)]
        handles = [h for wave in waves for h in wave]
        if not handles:
            console.print("no running drills" + (f" for team {escape(team)}" if team else ""))
            return
        started = time.perf_counter()
        # Plain JSON, the shape of model.records.StopRequest: importing the drill model would cost the
        # stop ~0.1 s of start-up, and every 0.1 s here is a fault held longer. `sent_at` is when time to safe
        # starts: a stop that waits for a worker to come back is not a fast stop.
        request = {"reason": reason, "by": by or current_user(), "sent_at": datetime.now(UTC).isoformat()}
        for wave in waves:
            await asyncio.gather(*(h.signal("emergency_stop", request) for h in wave))
        for handle in handles:
            console.print(f"stop sent to [bold]{escape(handle.id)}[/]: {escape(reason)}")
        unattended = await _unattended(client, handles)
        for handle in handles:
            if handle.id in unattended:
                err_console.print(
                    f"[yellow]warning:[/] {escape(handle.id)}: {escape(unattended[handle.id])}: the stop is recorded "
                    "and its rollback runs as soon as a worker polls; until then its faults stay applied"
                )
        if wait:
            for handle in handles:
                if handle.id in unattended:
                    console.print(
                        f"waiting for a worker to pick up the stop of {escape(handle.id)} and roll it back "
                        "(Ctrl-C ends this wait, not the stop)…"
                    )
            statuses = await asyncio.gather(*(_wait_rolled_back(h) for h in handles))
            seconds = time.perf_counter() - started
            for status in statuses:
                _print_time_to_safe(status)
            outcomes = [fault_outcome(f) for status in statuses for f in status.faults]
            left = [f.label for status in statuses for f in status.faults if fault_outcome(f) == NOT_REVERTED]
            if left:
                fail(f"rollback finished with faults NOT REVERTED: {', '.join(left)}: act now", code=6)
            kinds = await asyncio.gather(*(h.describe() for h in handles), return_exceptions=True)
            gamedays = [not isinstance(k, BaseException) and k.workflow_type == "GameDayWorkflow" for k in kinds]
            reverted = sum(1 for outcome in outcomes if outcome in (REVERTED, APPLY_FAILED))
            if any(gamedays):  # a game day's faults are its drills': their records have them
                console.print(f"rolled back: {seconds:.3f}s from this command's stop to the last revert")
            elif reverted == 0:
                console.print("nothing to revert: no fault had been applied")
            elif reverted == len(outcomes):
                console.print(f"every fault reverted: {seconds:.3f}s from this command's stop to the last revert")
            else:
                console.print(
                    f"every applied fault reverted ({len(outcomes) - reverted} never applied): {seconds:.3f}s from "
                    "this command's stop to the last revert"
                )
            verdicts = await asyncio.gather(*(_verdict_after(h, s) for h, s in zip(handles, statuses, strict=True)))
            for status, verdict, gameday in zip(statuses, verdicts, gamedays, strict=True):
                console.print(f"{status.run_id} stopped: {_stopped_line(status, verdict, gameday)}", markup=False)

    run_async(settings, go())


async def _unattended(client: Client, handles: list[WorkflowHandle[Any, Any]]) -> dict[str, str]:
    """The runs whose stop no worker will act on now, each with why (no poller, or the stop not picked up)."""
    from gameday.cli.pollers import PICKUP_WAIT, no_worker, picked_up

    async def why(handle: WorkflowHandle[Any, Any]) -> str | None:
        queue = (await handle.describe()).task_queue
        silent = await no_worker(client, queue)
        if silent is None and not await picked_up(client, handle):
            silent = f"no worker picked up the stop within {PICKUP_WAIT:g}s (task queue {queue!r})"
        return silent

    answers = await asyncio.gather(*(why(h) for h in handles), return_exceptions=True)
    return {h.id: answer for h, answer in zip(handles, answers, strict=True) if isinstance(answer, str)}


async def _running(client: Client, workflow_type: str, team: str | None) -> list[WorkflowHandle[Any, Any]]:
    """Running workflows of one type, by visibility; the team comes from the memo set at start."""
    found = []
    query = f'WorkflowType = "{workflow_type}" AND ExecutionStatus = "Running"'
    async for execution in client.list_workflows(query):
        if team is not None and (await execution.memo()).get("team") != team:
            continue
        found.append(client.get_workflow_handle(execution.id, run_id=execution.run_id))
    return found


def status(
    ctx: typer.Context,
    run_id: Annotated[str, typer.Argument(help="The run's id.")],
) -> None:
    """Where a drill or a game day is now: phase, faults, last measurements, traffic; a game day's drills.

    Live from the workflow; from the results database when Temporal cannot be reached or no longer has the run.
    While a freeze is in force ('gameday freeze'), a FROZEN line per freeze comes first.
    """
    settings = settings_of(ctx)

    async def go() -> None:
        from temporalio.client import WorkflowExecutionStatus

        from gameday.cli import gameday_status

        try:
            client = await client_for(settings)
        except Exception as err:
            if settings.debug:
                raise
            err_console.print(
                f"note: cannot reach Temporal at {settings.config.temporal_address} ({unreachable_why(err)}): "
                "what the results database last heard",
                markup=False,
            )
            _print_stored(settings, run_id, temporal_down=True)
            return
        from gameday.cli.freeze import print_frozen

        await print_frozen(client, settings.config.task_queue)  # a line per freeze in force, none otherwise
        handle = client.get_workflow_handle(run_id)
        try:
            desc = await handle.describe()
        except Exception:
            desc = None
        if desc is not None and desc.workflow_type == gameday_status.GAMEDAY_WORKFLOW:
            await gameday_status.print_gameday(settings, client, handle, desc)
            return
        if desc is not None and desc.status == WorkflowExecutionStatus.RUNNING:
            from datetime import timedelta

            from gameday.cli.pollers import no_worker

            silent = await no_worker(client, desc.task_queue)
            if silent is not None:
                # No worker to answer a query: say so at once, with what the database last heard of the run.
                snapshot = _stored(settings, run_id)
                if snapshot is not None:
                    from gameday.report.run import render_markdown

                    console.print(render_markdown(snapshot, settings.config.workflow_url(run_id)), markup=False)
                fail(
                    f"{run_id} is running but {silent}: nothing happens to it until a worker polls "
                    "(start one: gameday worker); a drill no worker picked up within its start_deadline then "
                    "ends ABORTED, touching nothing"
                )

            from temporalio.service import RPCError

            from gameday.model.records import DrillStatus

            try:
                # Bounded: a query needs a live worker, and a person at a terminal must not wait forever.
                live: DrillStatus = await handle.query(
                    "status", result_type=DrillStatus, rpc_timeout=timedelta(seconds=10)
                )
            except RPCError as err:
                fail(f"{run_id} is running but no worker answered its status query ({err.message}): is a worker up?")
            _print_status(live)
            await _print_live_observe(client, desc)
            await _print_live_watch(client, desc)
            await _print_live_traffic(client, desc)
            return
        record = _stored(settings, run_id)
        if record is None and desc is not None:
            record = await recorded_in_temporal(client, run_id)
        if record is None:
            _print_stored(settings, run_id, drill_checked=True)  # a game day Temporal no longer has
            return
        ended = "no longer in Temporal" if desc is None else desc.status.name if desc.status else "closed"
        _print_recorded(record, ended=ended)

    run_async(settings, go())


def _print_recorded(record: RunRecord, *, ended: str | None) -> None:
    """``status`` of a run from its record: the same lines as live, every one of them the record's.

    ``ended`` is how Temporal says the workflow closed, ``None`` when Temporal could not be asked.
    """
    from gameday.model.records import DrillStatus

    _print_status(DrillStatus.from_record(record))
    if record.verdict is None:
        if ended is None:
            console.print(
                f"  no verdict recorded yet: the last progress written was phase {record.phase.value} "
                "(Temporal unreachable: it may still be running)",
                markup=False,
            )
        else:
            console.print(f"  the workflow closed ({ended}) with no verdict recorded", markup=False)
    console.print(f"  full record: gameday report {record.run_id}", markup=False)


def unreachable_why(err: BaseException) -> str:
    """Why Temporal could not be reached, in a few words (the client's error nests a transport's debug output)."""
    text = str(err)
    for needle, words in (
        ("Connection refused", "connection refused"),
        ("timed out", "timed out"),
        ("dns error", "unknown host"),
        ("Name or service not known", "unknown host"),
    ):
        if needle in text:
            return words
    return text if len(text) <= 100 else text[:97] + "..."


def _print_stored(settings: Settings, run_id: str, *, drill_checked: bool = False, temporal_down: bool = False) -> None:
    """``status`` from the results database alone: a drill's record (or last progress), else a game day's."""
    from gameday.cli import gameday_status

    record = None if drill_checked else _stored(settings, run_id)
    if record is not None:
        _print_recorded(record, ended=None)
        return
    gameday = gameday_status.stored_gameday(settings, run_id)
    if gameday is not None:
        gameday_status.print_record(gameday)
        return
    if temporal_down:
        fail(
            f"no run {run_id!r} in the results database, and Temporal cannot be asked: a running game day is "
            "recorded there only when it ends"
        )
    fail(f"no run {run_id!r} in Temporal namespace {settings.config.namespace!r} nor in the results database")


def list_runs(
    ctx: typer.Context,
    team: Annotated[str | None, typer.Option(help="Only this team's runs.")] = None,
    drill: Annotated[str | None, typer.Option(help="Only runs of this drill.")] = None,
    verdict: Annotated[str | None, typer.Option(help="Only this verdict (RESILIENT, DEVIATED, ...).")] = None,
    since: Annotated[
        str | None,
        typer.Option(help="Only runs started since: a UTC date (2026-11-01) or that long ago (7d, 24h)."),
    ] = None,
    until: Annotated[
        str | None,
        typer.Option(help="Only runs started before: a UTC date (through its end) or that long ago (7d, 24h)."),
    ] = None,
    limit: Annotated[int, typer.Option(help="How many, newest first.")] = 50,
    temporal: Annotated[
        bool,
        typer.Option("--temporal", help="Ask Temporal's visibility (running drills too) instead of the database."),
    ] = False,
) -> None:
    """Recorded runs from the results database, newest first; with --temporal, drills and game days in Temporal.

    Example: gameday list --team payments --since 7d;  gameday list --temporal --team payments --verdict DEVIATED
    """
    settings = settings_of(ctx)
    if temporal:
        if since is not None or until is not None:
            fail("--since/--until read the results database: drop --temporal to use them")
        run_async(settings, _list_temporal(settings, team=team, drill=drill, verdict=verdict, limit=limit))
        return
    from datetime import UTC, datetime

    from gameday.activities.migrations import SchemaError
    from gameday.activities.store import Store
    from gameday.cli.dates import parse_range

    try:
        start, end = parse_range(since, until, now=datetime.now(UTC))
    except ValueError as err:
        fail(str(err))
    store = Store(settings.config.resolved_database_url)
    try:
        runs = store.list_runs(
            team=team,
            drill=drill,
            verdict=verdict.upper() if verdict else None,
            since=start,
            until=end,
            limit=limit,
        )
    except ValueError as err:  # an unknown verdict
        fail(str(err))
    except SchemaError as err:  # a shared database behind the code: name the command that fixes it
        fail(str(err))
    rows = [("run", "drill", "team", "started (UTC)", "verdict", "recovery")]
    for r in runs:
        rows.append(
            (
                r.run_id,
                r.drill_name,
                r.team or "-",
                r.started_at.strftime("%Y-%m-%d %H:%M:%S"),
                r.verdict.value if r.verdict else r.phase.value,
                f"{r.time_to_recovery:.2f}s" if r.time_to_recovery is not None else "-",
            )
        )
    if not runs:
        console.print("no runs recorded yet")
        return
    # Plain aligned columns, never cropped: run ids are meant to be copied into the next command.
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for n, row in enumerate(rows):
        line = "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        console.print(f"[bold]{line}[/]" if n == 0 else line, markup=n == 0)


def report(
    ctx: typer.Context,
    run_id: Annotated[str, typer.Argument(help="The run's id, or a game day's id (its drills listed).")],
    fmt: Annotated[
        str,
        typer.Option(
            "--format",
            "-f",
            help="md, html, json, junit (JUnit XML for CI) or journal (a Chaos Toolkit experiment's run).",
        ),
    ] = "md",
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write the report to this file instead of printing it.")
    ] = None,
) -> None:
    """The record of one run: Markdown drill log, one self-contained HTML page with charts, JSON, or JUnit XML.

    The HTML page loads nothing (no script, font or image from anywhere): it can be mailed or attached as is.
    """
    from gameday.report.run import FORMATS, render

    settings = settings_of(ctx)
    if fmt not in (*FORMATS, "journal"):
        fail(f"unknown format {fmt!r}: expected {', '.join(FORMATS[:-1])} or {FORMATS[-1]}")
    record = _stored(settings, run_id)
    gameday = _is_gameday(settings, run_id)
    if record is None and not gameday:
        # Not (yet) in SQL, the database down or the final record still retrying: the workflow has the record.
        record = run_async(settings, _from_temporal(settings, run_id))
        if record is None and gameday is None:
            fail(
                f"no run {run_id!r} in Temporal namespace {settings.config.namespace!r}, and the results database "
                f"({settings.config.database_label}) cannot be reached"
            )
    if record is not None and fmt == "journal":
        from gameday.report.journal import is_experiment_run, render_journal

        if not is_experiment_run(record):
            fail(f"{run_id} is a drill, not a Chaos Toolkit experiment: it has no journal (try -f json)")
        text = render_journal(record, _experiment_of(record.source))
    elif record is not None:
        text = render(record, fmt, settings.config.workflow_url(run_id))
    elif fmt == "journal":
        fail(f"{run_id} is a game day: a journal is one experiment's run")
    else:
        text = _gameday_report(settings, run_id, fmt)
    if output is None:
        print(text)
        return
    try:
        output.write_text(text if text.endswith("\n") else text + "\n", encoding="utf-8")
    except OSError as err:
        fail(f"cannot write {output}: {err.strerror or err}")
    console.print(f"{fmt} report of {run_id} written to {output.resolve()}", markup=False)


def _experiment_of(source: str) -> dict[str, object] | None:
    """The experiment file a run came from, as data, for its journal; ``None`` when it cannot be read now."""
    from gameday.model.ctk import read_experiment_data

    return read_experiment_data(source)


def _is_gameday(settings: Settings, gameday_id: str) -> bool | None:
    """Whether the results database has this game day; ``None`` when it cannot be reached."""
    from sqlalchemy.exc import DBAPIError

    from gameday.activities.gameday_store import GameDays
    from gameday.activities.store import Store

    try:
        return GameDays(Store(settings.config.resolved_database_url)).get(gameday_id) is not None
    except DBAPIError:
        return None


async def _from_temporal(settings: Settings, run_id: str) -> RunRecord | None:
    """The run's record from Temporal (see :func:`recorded_in_temporal`); ``None`` if Temporal cannot say."""
    try:
        client = await client_for(settings)
    except Exception as err:  # Temporal unreachable: say so once; the caller reports what SQL has, or nothing
        err_console.print(
            f"note: cannot reach Temporal at {settings.config.temporal_address} ({unreachable_why(err)}): "
            "only the results database was read",
            markup=False,
        )
        return None
    try:
        return await recorded_in_temporal(client, run_id)
    except Exception:
        return None


async def _running_gameday(settings: Settings, gameday_id: str) -> GameDayRecord | None:
    """A game day still running, its record so far from its workflow; ``None`` if Temporal has no such one."""
    from temporalio.client import WorkflowExecutionStatus

    from gameday.cli.gameday_status import GAMEDAY_WORKFLOW, QUERY_TIMEOUT
    from gameday.model.gameday import GameDayStatus

    try:
        client = await client_for(settings)
        handle = client.get_workflow_handle(gameday_id)
        desc = await handle.describe()
        if desc.workflow_type != GAMEDAY_WORKFLOW or desc.status != WorkflowExecutionStatus.RUNNING:
            return None
        status: GameDayStatus = await handle.query("status", result_type=GameDayStatus, rpc_timeout=QUERY_TIMEOUT)
    except Exception:
        return None
    return status.record


async def recorded_in_temporal(client: Client, run_id: str) -> RunRecord | None:
    """A drill's record as its workflow holds it: the ``record`` query while it runs, its result once completed.

    What ``report`` and ``status`` show while the row is not (yet) in SQL: the results database down, or the final
    record still being retried. ``None`` for a workflow that is no drill, or that answers neither.
    """
    from datetime import timedelta

    from temporalio.client import WorkflowExecutionStatus

    from gameday.model.records import RunRecord

    handle = client.get_workflow_handle(run_id, result_type=RunRecord)
    try:
        desc = await handle.describe()
        if desc.workflow_type != "DrillWorkflow":
            return None
        if desc.status == WorkflowExecutionStatus.RUNNING:
            found: RunRecord | None = await handle.query(
                "record", result_type=RunRecord, rpc_timeout=timedelta(seconds=10)
            )
        elif desc.status == WorkflowExecutionStatus.COMPLETED:
            found = await handle.result(rpc_timeout=timedelta(seconds=10))
        else:
            return None
    except Exception:  # not found, no worker to answer the query, a workflow of another shape: nothing to show
        return None
    if found is not None:
        err_console.print(
            f"note: {run_id} is not in the results database (yet): this record comes from Temporal", markup=False
        )
    return found


def _gameday_report(settings: Settings, gameday_id: str, fmt: str) -> str:
    """A game day's report: Markdown lines, one HTML page with each drill's report, or JSON with its score."""
    from gameday.activities.gameday_store import GameDays
    from gameday.activities.store import Store
    from gameday.cli.gamedays import report_lines
    from gameday.model.score import score_record
    from gameday.report.gameday import render_gameday_html, render_gameday_json

    store = Store(settings.config.resolved_database_url)
    gameday = GameDays(store).get(gameday_id)
    if gameday is None:
        gameday = run_async(settings, _running_gameday(settings, gameday_id))
        if gameday is not None:
            err_console.print(
                f"note: game day {gameday_id} is still running: its record so far (no verdict yet), from Temporal",
                markup=False,
            )
    if gameday is None:
        fail(f"no run or game day {gameday_id!r} in the results database ({settings.config.database_label})")
    found = [store.get(entry.run_id) for entry in gameday.entries if entry.run_id]
    runs = {run.run_id: run for run in found if run is not None}
    if fmt == "json":
        return render_gameday_json(gameday, runs)
    if fmt == "junit":
        from gameday.report.junit import render_gameday_junit

        return render_gameday_junit(gameday, runs)
    if fmt == "html":
        return render_gameday_html(gameday, runs, settings.config.workflow_url)
    return "\n".join(report_lines(gameday, {run_id: score_record(run) for run_id, run in runs.items()}))


def sweep(
    ctx: typer.Context,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="List orphans and stale locks; touch nothing.")] = False,
) -> None:
    """Revert faults left behind by drills whose workflow is closed, gone or wedged, and release their target locks.

    Reads the fault ledger in the results database: every fault applied (or maybe applied) and never reverted.
    Acts only on runs of this namespace on this Temporal cluster, and only when their workflow is seen closed,
    purged past the namespace's retention, or wedged (its workflow task failing for longer than
    GAMEDAY_SWEEP_WEDGED_AFTER, default 2m: the workflow is terminated and an alert sent). Everything else (drills
    running, not found, of another namespace or cluster, or on a target another live drill now holds) is listed
    with the reason, never touched. Reverts run from this machine, like a worker's, except a fault of a site (a
    process, command, docker or file target): a worker of that site reverts it. Every worker also sweeps its own
    site when it starts. Exits 6 if a fault could not be reverted.
    """
    settings = settings_of(ctx)

    async def go() -> None:
        from gameday.activities.notify.alert import AlertActivities
        from gameday.activities.store import Store
        from gameday.activities.sweep import sweep as sweep_orphans

        config = settings.config
        wedged_after = config.wedged_after
        client = await client_for(settings)
        alerts = AlertActivities(config.alert_webhook, config.ui_url, config.namespace)
        report = await sweep_orphans(
            Store(config.resolved_database_url),
            client,
            dry_run=dry_run,
            wedged_after=wedged_after,
            alerts=alerts,
            task_queue=config.task_queue,
        )
        if report.scope is not None:
            console.print(f"sweeping runs of {report.scope.describe()}", markup=False)
        if not (report.faults or report.locks_released or report.left or report.reconciled):
            console.print("no orphaned faults and no stale target locks")
            return
        for swept in report.faults:
            outcome = "orphaned" if dry_run else ("reverted" if swept.reverted else f"NOT REVERTED: {swept.error}")
            console.print(f"{swept.run_id}  {swept.fault.label}  (workflow {swept.workflow}): {outcome}", markup=False)
        for swept in report.reconciled:
            verb = "stale ledger row" if dry_run else "ledger row brought up to date"
            console.print(
                f"{swept.run_id}  {swept.fault.label}: reverted by its drill; {verb}, nothing reverted", markup=False
            )
        for run_id in report.terminated:
            console.print(f"{run_id}: wedged workflow terminated (declared lost)", markup=False)
        for run_id, count in report.locks_released.items():
            console.print(f"{run_id}: released {count} target lock(s)", markup=False)
        for left in report.left:
            console.print(f"{left.run_id}  {left.what}: left alone ({left.reason})", markup=False)
        failed = [s for s in report.faults if not dry_run and not s.reverted]
        if failed:
            fail(f"{len(failed)} orphaned fault(s) could NOT be reverted: act now", code=6)

    run_async(settings, go())


async def _list_temporal(
    settings: Settings, *, team: str | None, drill: str | None, verdict: str | None, limit: int
) -> None:
    """Drills and game days from Temporal's visibility, by gameday's search attributes (``workflows/search.py``).

    A game day's ``DrillName`` is its name and its ``DrillVerdict`` its most severe drill verdict
    (``model.gameday.gameday_verdict``); the ``kind`` column tells them apart.
    """
    from gameday.workflows import search

    clauses = ['WorkflowType IN ("DrillWorkflow", "GameDayWorkflow")']
    for key, value in ((search.TEAM, team), (search.DRILL_NAME, drill), (search.VERDICT, verdict and verdict.upper())):
        if value:
            clauses.append(f'{key.name} = "{value.replace(chr(34), "")}"')
    client = await client_for(settings)
    rows = [("run", "kind", "drill", "team", "env", "status", "verdict", "started (UTC)")]
    async for execution in client.list_workflows(" AND ".join(clauses), limit=limit):
        attrs = execution.typed_search_attributes
        rows.append(
            (
                execution.id,
                "game day" if execution.workflow_type == "GameDayWorkflow" else "drill",
                attrs.get(search.DRILL_NAME) or "-",
                attrs.get(search.TEAM) or "-",
                attrs.get(search.ENVIRONMENT) or "-",
                execution.status.name if execution.status else "-",
                attrs.get(search.VERDICT) or "-",
                execution.start_time.strftime("%Y-%m-%d %H:%M:%S"),
            )
        )
    if len(rows) == 1:
        console.print(
            "no drills or game days in Temporal match (are gameday's search attributes registered? see "
            "workflows/search.py)"
        )
        return
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for n, row in enumerate(rows):
        line = "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        console.print(f"[bold]{line}[/]" if n == 0 else line, markup=n == 0)


# --- shared pieces --------------------------------------------------------------------------------------


async def client_for(settings: Settings) -> Client:
    from gameday.worker.client import connect

    return await connect(settings.config)


async def running_handle(client: Client, settings: Settings, run_id: str, verb: str = "stop"):  # type: ignore[no-untyped-def]
    from temporalio.client import WorkflowExecutionStatus
    from temporalio.service import RPCError, RPCStatusCode

    handle = client.get_workflow_handle(run_id)
    try:
        desc = await handle.describe()
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            fail(f"no run {run_id!r} in namespace {settings.config.namespace!r}")
        raise
    if desc.status != WorkflowExecutionStatus.RUNNING:
        name = desc.status.name if desc.status else "closed"
        fail(f"run {run_id!r} has already finished ({name}): there is nothing to {verb}")
    return handle


async def _wait_rolled_back(handle: WorkflowHandle[Any, Any]) -> DrillStatus:
    """Block on the workflow's ``wait_rolled_back`` update; a run that closed meanwhile answers from its result.

    The update needs a live worker: without one, say so plainly. The stop signal is already durable.
    """
    from temporalio.client import WorkflowUpdateFailedError
    from temporalio.service import RPCError, RPCStatusCode

    from gameday.model.records import DrillStatus, Phase, RunRecord

    try:
        status: DrillStatus = await handle.execute_update("wait_rolled_back", result_type=DrillStatus)
        return status
    except (RPCError, WorkflowUpdateFailedError) as err:
        closed = isinstance(err, RPCError) and err.status == RPCStatusCode.NOT_FOUND
        if not closed and not (isinstance(err, RPCError) and "completed" in err.message):
            fail(
                f"{handle.id}: no worker confirmed the rollback ({err}); the stop is recorded and the rollback "
                "runs as soon as a worker polls: check with `gameday status`"
            )
    result = await handle.result()
    if isinstance(result, dict) and "gameday_id" in result:  # a game day: its drills' faults are in their records
        from gameday.model.gameday import GameDayRecord

        gameday = GameDayRecord.model_validate(result)
        safe = [e.time_to_safe for e in gameday.entries if e.time_to_safe is not None]
        return DrillStatus(
            run_id=gameday.gameday_id,
            phase=Phase.DONE,
            faults_active=[],
            last_measurements=[],
            stop=gameday.stop,
            rolled_back=True,
            time_to_safe=max(safe) if safe else None,
        )
    record = result if isinstance(result, RunRecord) else RunRecord.model_validate(result)
    return DrillStatus(
        run_id=record.run_id,
        phase=record.phase,
        faults_active=[],
        last_measurements=[],
        stop=record.stop,
        verdict=record.verdict,
        faults=record.faults,
        rolled_back=True,
        time_to_safe=record.time_to_safe,
        time_to_healthy=record.time_to_healthy,
    )


REVERTED = "reverted"
APPLY_FAILED = "apply failed, reverted"
NEVER_APPLIED = "never applied"
NOT_REVERTED = "NOT REVERTED"
VERDICT_WAIT = 30.0
"""Seconds ``stop --wait`` waits, after the rollback is reported, for the verdict (the recovery check, the record)."""


def fault_outcome(fault: FaultRecord) -> str:
    """How a fault ended a rollback, in words that never call reverted a fault that was not applied."""
    from gameday.model.records import FaultState

    if fault.state == FaultState.NOT_REVERTED:
        return NOT_REVERTED
    if fault.state == FaultState.REGISTERED:
        return "registered"  # its revert has not run: maybe applied (a crash mid-apply), never called reverted
    if fault.not_applied:
        return NEVER_APPLIED
    if fault.state == FaultState.REVERTED and fault.reverted_at is None and fault.applied_at is None:
        return NEVER_APPLIED  # its revert found nothing to undo (never applied, or refused by the worker policy)
    if fault.state == FaultState.FAILED:
        return APPLY_FAILED
    return REVERTED


async def _verdict_after(handle: WorkflowHandle[Any, Any], status: DrillStatus) -> str | None:
    """The run's verdict once it has ended (at most :data:`VERDICT_WAIT` seconds); ``None`` if not by then."""
    if status.verdict is not None:
        return status.verdict.value
    try:
        result = await asyncio.wait_for(handle.result(), timeout=VERDICT_WAIT)
    except Exception:  # still verifying, or it failed: status says which
        return None
    if isinstance(result, dict) and "gameday_id" in result:
        from gameday.model.gameday import GameDayRecord, gameday_verdict

        return gameday_verdict(GameDayRecord.model_validate(result)).value
    from gameday.model.records import RunRecord

    record = result if isinstance(result, RunRecord) else RunRecord.model_validate(result)
    return record.verdict.value if record.verdict is not None else None


def _stopped_line(status: DrillStatus, verdict: str | None, gameday: bool) -> str:
    """``rollback done, 2 fault(s) reverted, verdict ABORTED``: what was waited for, and how it ended."""
    counts: dict[str, int] = {}
    for fault in status.faults:
        outcome = fault_outcome(fault)
        counts[outcome] = counts.get(outcome, 0) + 1
    if gameday:
        parts = ["its running drills rolled back, the rest skipped"]
    else:
        parts = ["rollback done", f"{counts.get(REVERTED, 0) + counts.get(APPLY_FAILED, 0)} fault(s) reverted"]
    if counts.get(NEVER_APPLIED):
        parts.append(f"{counts[NEVER_APPLIED]} never applied (nothing to revert)")
    if counts.get(NOT_REVERTED):
        parts.append(f"{counts[NOT_REVERTED]} NOT REVERTED")
    parts.append(
        f"verdict {verdict}"
        if verdict is not None
        else f"verdict not decided yet (it checks recovery, then records it: gameday status {status.run_id})"
    )
    return ", ".join(parts)


def _print_time_to_safe(status: DrillStatus) -> None:
    """Each revert's time after the stop was sent, then the total: what ``stop --wait`` promises."""
    stop_at = status.stop.since if status.stop else None
    console.print(f"[bold]{escape(status.run_id)}[/]: rolled back")
    for fault in status.faults:
        after = ""
        if stop_at is not None and fault.reverted_at is not None and fault.reverted_at >= stop_at:
            after = f" +{(fault.reverted_at - stop_at).total_seconds():.3f}s after the stop"
        console.print(f"  {fault_outcome(fault):<12} {fault.label}{after}", markup=False)
    if status.time_to_safe is not None:
        console.print(f"  time to safe: {status.time_to_safe:.3f}s ({safe_basis(status.stop)})", markup=False)


def safe_basis(stop: StopRequest | None) -> str:
    """What a time to safe counts from, in words, with how long the workflow took to handle the stop."""
    if stop is None or stop.sent_at is None or stop.received_at is None:
        return "stop received → last revert done"
    handled = max(0.0, (stop.received_at - stop.sent_at).total_seconds())
    return f"stop sent → last revert done; the workflow handled the stop {handled:.3f}s after it was sent"


def _stored(settings: Settings, run_id: str) -> RunRecord | None:
    from sqlalchemy.exc import DBAPIError

    from gameday.activities.migrations import SchemaError
    from gameday.activities.store import Store

    store = Store(settings.config.resolved_database_url)
    try:
        return store.get(run_id)
    except SchemaError as err:  # a shared database behind the code: name the command that fixes it
        fail(str(err))
    except DBAPIError as err:  # unreachable: Temporal may still hold the record
        reason = store.unavailable(err).message
        err_console.print(f"note: {reason} ({settings.config.database_label})", markup=False)
        return None


def traffic_activity(desc: WorkflowExecutionDescription) -> PendingActivityInfo | None:
    """The drill's running ``hold_traffic`` activity, if it sends traffic and has not finished."""
    for pending in desc.raw_description.pending_activities:
        if pending.activity_type.name == TRAFFIC_ACTIVITY:
            return pending
    return None


async def live_traffic(client: Client, pending: PendingActivityInfo) -> TrafficSummary | None:
    """The traffic figures ``pending`` last heartbeated; ``None`` before its first snapshot.

    Raises:
        Exception: whatever the data converter raises for details it cannot read (a worker of another version).
    """
    from gameday.model.traffic import TrafficSummary

    payloads = pending.heartbeat_details.payloads
    if not payloads:
        return None
    # Only the first detail is the summary: later ones, if a newer worker adds any, are not ours to read.
    [summary] = await client.data_converter.decode(payloads[:1], [TrafficSummary])
    return summary if isinstance(summary, TrafficSummary) else TrafficSummary.model_validate(summary)


OBSERVE_ACTIVITY = "observe"
WATCH_ACTIVITY = "watch"
"""The drill's observation activity (``activities/probes/activities.py``); its first heartbeat detail is the
window's :class:`~model.records.ObserveProgress` so far, which ``status`` shows while it observes."""


async def _live_progress(
    client: Client,
    desc: WorkflowExecutionDescription,
    activity_name: str,
    model: type[_Progress],
    doing: str,
    no_beat_yet: str,
) -> _Progress | None:
    """The first heartbeat detail of the pending ``activity_name`` activity as ``model``; ``None`` (after one
    line saying why, where there is one) when it is not running, has not heartbeated or cannot be read."""
    pending = next((p for p in desc.raw_description.pending_activities if p.activity_type.name == activity_name), None)
    if pending is None:
        return None
    payloads = pending.heartbeat_details.payloads
    if not payloads:
        console.print(f"  {doing}: {no_beat_yet}", markup=False)
        return None
    try:
        [progress] = await client.data_converter.decode(payloads[:1], [model])
        if not isinstance(progress, model):
            progress = model.model_validate(progress)
    except Exception as err:  # a worker of another version: one line, not a failed command
        console.print(f"  {doing}: progress unreadable by this gameday ({type(err).__name__})", markup=False)
        return None
    return progress


async def _print_live_observe(client: Client, desc: WorkflowExecutionDescription) -> None:
    """The observation so far (ticks, each probe's failures), from the observe activity's last heartbeat: a
    long window is not silent in ``status`` until it ends."""
    from gameday.model.records import ObserveProgress

    progress = await _live_progress(
        client, desc, OBSERVE_ACTIVITY, ObserveProgress, "observing", "started, no tick reported yet"
    )
    if progress is None:
        return
    left = ""
    if progress.ends_at is not None:
        seconds = max(0.0, (progress.ends_at - datetime.now(UTC)).total_seconds())
        left = f", window ends in {seconds:.0f}s"
    missed = f", {progress.missed} missed" if progress.missed else ""
    console.print(f"  observing: {progress.ticks} tick(s) so far{missed}{left}", markup=False)
    for probe, count in progress.counts.items():
        failed = progress.failures.get(probe, 0)
        last = progress.problems.get(probe, [])
        why = f" (last problem: {last[-1]})" if failed and last else ""
        console.print(f"    {probe}: {failed} of {count} sample(s) failed{why}", markup=False)


async def _print_live_watch(client: Client, desc: WorkflowExecutionDescription) -> None:
    """``observe.watch`` so far (each watch probe's state now, alerts seen), from the watch activity's heartbeat."""
    from gameday.model.watch import WatchProgress

    progress = await _live_progress(
        client, desc, WATCH_ACTIVITY, WatchProgress, "watching", "started, no sample reported yet"
    )
    if progress is None:
        return
    console.print(f"  watching: {progress.ticks} tick(s) so far", markup=False)
    for probe in progress.probes:
        latest = probe.latest
        if latest is None:
            console.print(f"    {probe.name}: no sample yet", markup=False)
            continue
        value = f"{latest.value}, " if latest.value is not None else ""
        state = f"{value}{'held' if latest.held else 'not held'} since {latest.at:%H:%M:%S}"
        console.print(f"    {probe.name}: {state} ({probe.held} of {probe.samples} sample(s) held)", markup=False)
    for alert in progress.alerts:
        when = f"resolved at {alert.resolved_at:%H:%M:%S}" if alert.resolved_at else "firing"
        console.print(f"    alert {alert.name}: fired at {alert.fired_at:%H:%M:%S}, {when}", markup=False)
    if progress.alerts_problem:
        console.print(f"    alerts not read: {progress.alerts_problem}", markup=False)


async def _print_live_traffic(client: Client, desc: WorkflowExecutionDescription) -> None:
    pending = traffic_activity(desc)
    if pending is None:
        return
    try:
        summary = await live_traffic(client, pending)
    except Exception as err:  # the rest of the status is printed already: one line, not a failed command
        console.print(f"traffic: figures unreadable by this gameday ({type(err).__name__}): upgrade it", markup=False)
        return
    if summary is None:
        console.print("traffic: started, no figures yet (the first arrive within seconds)", markup=False)
        return
    from gameday.report.run import render_traffic_live

    for line in render_traffic_live(summary):
        console.print(line, markup=False)  # window names come from the drill file: never markup


def _print_status(status: DrillStatus) -> None:
    # Run ids, reasons, labels and details are user or command text: printed verbatim, never as markup.
    ended = " (ended)" if status.recorded and status.ended_at is not None else ""  # the record's last phase
    console.print(f"[bold]{escape(status.run_id)}[/]  phase: [bold]{status.phase.value}[/]{ended}")
    if status.verdict is not None:
        summary = f" ({status.summary})" if status.summary else ""
        console.print(f"  verdict: {status.verdict.value}{summary}", markup=False)
    if status.started_at is not None:
        ended = status.ended_at.strftime("%Y-%m-%d %H:%M:%S") if status.ended_at else "-"
        console.print(f"  started: {status.started_at.strftime('%Y-%m-%d %H:%M:%S')} UTC  ended: {ended}", markup=False)
    if status.time_to_recovery is not None:
        console.print(f"  time to recovery: {status.time_to_recovery:.3f}s", markup=False)
    if status.stop:
        console.print(f"  stop requested by {status.stop.by}: {status.stop.reason}", markup=False)
        if status.time_to_safe is not None:
            console.print(f"  time to safe: {status.time_to_safe:.3f}s ({safe_basis(status.stop)})", markup=False)
        elif not status.rolled_back and status.verdict is None:
            console.print("  rolling back…")
        if status.time_to_healthy is not None:
            console.print(f"  time to healthy: {status.time_to_healthy:.3f}s after the stop", markup=False)
    console.print(f"  faults active: {', '.join(status.faults_active) or 'none'}", markup=False)
    if status.recorded:  # the live view shows faults as they are now; a record, how each one ended
        for fault in status.faults:
            error = f": {fault.error}" if fault.error else ""
            console.print(f"  fault     {fault.state.value:<11} {fault.label}{error}", markup=False)
    for step in status.steps:
        console.print(f"  {step.phase.value:<9} {step.status.value:<11} {step.detail}", markup=False)
    if status.last_measurements:
        table = Table("probe", "phase", "ok", "samples", "failures", "p95", box=None)
        for m in status.last_measurements:
            p95 = f"{m.latency_p95 * 1000:.0f}ms" if m.latency_p95 is not None else "-"
            table.add_row(escape(m.probe), m.phase.value, "yes" if m.ok else "NO", str(m.samples), str(m.failures), p95)
        console.print(table)
