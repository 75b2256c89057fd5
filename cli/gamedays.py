"""Game days from the command line: ``gameday run``/``validate`` of a game-day file, and its report.

A game-day file is recognised by its top-level ``gameday:`` key (once, by ``model/files.py``); ``gameday stop
GAMEDAY_ID`` needs nothing special (the game day answers the same ``emergency_stop`` signal as a drill).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from rich.markup import escape

from gameday.cli.context import Settings, console, err_console, run_async

if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path

    from temporalio.client import Client
    from temporalio.common import TypedSearchAttributes

    from gameday.model.files import GameDayFile
    from gameday.model.gameday import GameDayRecord, GameDaySpec, PlannedDrill
    from gameday.model.records import RunRecord
    from gameday.model.score import RunScore


def describe(spec: GameDaySpec, stages: list[list[PlannedDrill]]) -> list[str]:
    lines = [f"game day {spec.gameday}" + (f" (team {spec.team})" if spec.team else "")]
    for n, stage in enumerate(stages, start=1):
        names = ", ".join(p.drill.name for p in stage)
        lines.append(f"  {n}. {'in parallel: ' if len(stage) > 1 else ''}{names}")
    lines.append(f"  stops after a drill ends: {', '.join(v.value for v in spec.stop_on) or 'never'}")
    return lines


def run(
    settings: Settings,
    loaded: GameDayFile,
    *,
    wait: bool,
    run_id: str | None,
    as_json: bool,
    junit: Path | None = None,
) -> int:
    """Start the game day; with ``wait``, follow its drills live and return its verdict's exit code.

    The verdict is :func:`~model.gameday.gameday_verdict`: the most severe of its drills', at least ABORTED
    when the game day was stopped, cancelled or never approved.
    """
    file, spec, stages = loaded.path, loaded.spec, loaded.stages
    config = settings.config
    out = err_console if as_json else console

    async def go() -> int:
        from temporalio.service import RPCError

        from gameday.cli.gameday_follow import GameDayFollower
        from gameday.cli.launch import current_user, warn_no_attributes
        from gameday.cli.pollers import no_worker
        from gameday.model.gameday import GameDayInput, gameday_verdict
        from gameday.model.records import EXIT_CODES
        from gameday.worker.client import connect
        from gameday.workflows import search
        from gameday.workflows.gameday_workflow import GameDayWorkflow

        client = await connect(config)
        gameday_id = run_id or f"gameday-{spec.gameday}-{datetime.now(UTC):%Y%m%dT%H%M%SZ}"
        attributes: TypedSearchAttributes | None = search.at_start(spec.gameday, spec.team, config.environment)
        while True:
            try:
                handle = await client.start_workflow(
                    GameDayWorkflow.run,
                    GameDayInput(
                        gameday_id=gameday_id,
                        name=spec.gameday,
                        team=spec.team,
                        description=spec.description,
                        stop_on=spec.stop_on,
                        approval=spec.approval,
                        stages=stages,
                        source=str(file),
                        started_by=current_user(),
                    ),
                    id=gameday_id,
                    task_queue=config.task_queue,
                    static_summary=f"game day {spec.gameday}" + (f" ({spec.team})" if spec.team else ""),
                    memo={"gameday": spec.gameday, "team": spec.team},
                    # Its drills get theirs from these (the game day's environment); none where unregistered.
                    search_attributes=attributes,
                )
                break
            except RPCError as err:
                if attributes is None or "search attribute" not in err.message.lower():
                    raise
                attributes = None
                warn_no_attributes(err.message)
        started_at = datetime.now(UTC)
        ui_url = config.workflow_url(gameday_id)
        out.print(f"started [bold]{escape(gameday_id)}[/]  {escape(ui_url)}")
        silent = await no_worker(client, config.task_queue)
        if silent is not None:
            err_console.print(f"[yellow]warning:[/] {escape(silent)}: the game day waits for a worker (gameday worker)")
        if not wait:
            if as_json:
                print(contract_json(gameday_id, None, ui_url, started_at))
            return 0
        record: GameDayRecord = await GameDayFollower(client, handle, out).follow()
        for line in report_lines(record):
            out.print(line, markup=False)
        code = EXIT_CODES[gameday_verdict(record)]
        if junit is not None:
            from gameday.cli.drills import write_junit
            from gameday.report.junit import render_gameday_junit

            runs = await _drill_records(settings, client, record)
            write_junit(junit, render_gameday_junit(record, runs), out)
        if as_json:
            print(contract_json(gameday_id, record, ui_url, started_at))
        return code

    return run_async(settings, go())


async def _drill_records(settings: Settings, client: Client, record: GameDayRecord) -> dict[str, RunRecord]:
    """The game day's drill records: from the results database, else from each drill's workflow."""
    from gameday.activities.store import Store
    from gameday.cli.runs import recorded_in_temporal

    runs: dict[str, RunRecord] = {}
    store: Store | None = None
    try:
        store = Store(settings.config.resolved_database_url)
    except Exception:
        store = None
    for entry in record.entries:
        if not entry.run_id:
            continue
        found = None
        if store is not None:
            try:
                found = store.get(entry.run_id)
            except Exception:
                found = None
        if found is None:
            try:
                found = await recorded_in_temporal(client, entry.run_id)
            except Exception:
                found = None
        if found is not None:
            runs[entry.run_id] = found
    return runs


def contract_json(gameday_id: str, record: GameDayRecord | None, ui_url: str, started_at: datetime) -> str:
    """The one-line JSON of ``gameday run GAMEDAY_FILE --json``: the keys of a drill's (``run_id``, ``verdict``,
    ``started_at``, ``ended_at``, ``ui_url``), then the game day's own (``gameday_id`` and ``outcome``, kept
    from before as aliases, ``exit_code`` once it ended, and ``drills``: each drill's run id and verdict)."""
    from gameday.model.gameday import gameday_verdict
    from gameday.model.records import EXIT_CODES

    verdict = gameday_verdict(record) if record is not None else None
    payload: dict[str, object] = {
        "run_id": gameday_id,
        "verdict": verdict.value if verdict is not None else None,
        "started_at": (record.started_at if record is not None else started_at).isoformat(),
        "ended_at": record.ended_at.isoformat() if record is not None and record.ended_at else None,
        "ui_url": ui_url,
        "gameday_id": gameday_id,
        "outcome": record.outcome if record is not None else None,
    }
    if record is not None:
        payload["exit_code"] = EXIT_CODES[verdict] if verdict is not None else 0
        payload["drills"] = [
            {
                "drill": e.drill_name,
                "run_id": e.run_id or None,
                "verdict": e.verdict.value if e.verdict is not None else None,
                "skipped": e.skipped,
            }
            for e in record.entries
        ]
    return json.dumps(payload)


def report_lines(record: GameDayRecord, scores: Mapping[str, RunScore] | None = None) -> list[str]:
    """The game day in words: each drill's verdict, duration and recovery, then how it ended.

    Args:
        record: the game day.
        scores: each drill run's resilience score by run id (``model.score``); with them, a line gives the
            game day's score (the mean of its scored runs).
    """
    outcome = record.outcome or "still running, no verdict yet"  # the outcome is set only when it ends
    lines = [f"game day {record.name}: {outcome}" + (f" ({record.halted_by})" if record.halted_by else "")]
    if scores is not None:
        from gameday.model.score import format_score, gameday_score

        values = [scores[e.run_id].score for e in record.entries if e.run_id in scores]
        scored = sum(1 for value in values if value is not None)
        lines.append(
            f"  resilience score {format_score(gameday_score(values))} "
            f"(mean of {scored} scored drill run(s) of {len(record.entries)}; see docs/SCORE.md)"
        )
    if record.stop is not None:
        lines.append(f"  stopped by {record.stop.by}: {record.stop.reason}")
    for e in record.entries:
        if e.skipped:
            lines.append(f"  {e.stage + 1}. {e.drill_name:<24} skipped: {e.skipped}")
            continue
        took = f"{(e.ended_at - e.started_at).total_seconds():.1f}s" if e.ended_at and e.started_at else "-"
        ttr = f"recovery {e.time_to_recovery:.2f}s" if e.time_to_recovery is not None else ""
        verdict = e.verdict.value if e.verdict else "no verdict"
        lines.append(f"  {e.stage + 1}. {e.drill_name:<24} {verdict:<13} {took:>8}  {ttr}  {e.run_id}")
    return lines
