"""``gameday validate`` and ``gameday run``: from a drill file to a running, durable drill."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from gameday.cli.context import console, err_console, fail, run_async, settings_of

if TYPE_CHECKING:
    from rich.console import Console

    from gameday.model.ctk import Overrides
    from gameday.model.drill import Drill
    from gameday.model.files import LoadedFile


FILE_HELP = (
    "The drill file (YAML), or a game-day file (top-level 'gameday:'), or a Chaos Toolkit experiment (JSON or "
    "YAML, top-level 'method')."
)


def register(app: typer.Typer) -> None:
    app.command()(validate)
    app.command()(run)


def validate(
    file: Annotated[Path, typer.Argument(help=FILE_HELP)],
) -> None:
    """Check a drill, game-day or Chaos Toolkit experiment file; print every problem with its line and field.

    Touches nothing. An experiment's keys gameday does not act on are listed, and a method action with no rollback
    is warned about.

    Exit code 0 when the drill is valid, 1 otherwise.
    """
    from gameday.cli import gamedays
    from gameday.model.files import GameDayFile
    from gameday.model.units import format_duration

    loaded = load(file)
    say_experiment(loaded)
    if isinstance(loaded, GameDayFile):
        console.print(f"[green]valid[/]: {escape(str(file))}: {sum(len(s) for s in loaded.stages)} drill(s)")
        for line in gamedays.describe(loaded.spec, loaded.stages):
            console.print(line, markup=False)
        return
    drill = loaded.drill
    faults = ", ".join(f.label for f in drill.faults) or "none"
    cap = format_duration(drill.max_duration)
    console.print(
        f"[green]valid[/]: {escape(str(file))}: drill [bold]{drill.name}[/] — {len(drill.targets)} target(s), "
        f"{len(drill.hypothesis)} probe(s), faults: {escape(faults)}; max_duration {cap}"
    )


def run(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help=FILE_HELP)],
    wait: Annotated[
        bool, typer.Option("--wait", help="Follow the phases live and exit with the verdict's code.")
    ] = False,
    run_id: Annotated[
        str | None, typer.Option("--id", help="Run id to use instead of drill-<name>-<UTC time>.")
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the plan (targets, faults, reverts, timings) and touch nothing.")
    ] = False,
    as_json: Annotated[
        bool,
        typer.Option(
            "--json", help="Print one JSON object (run_id, verdict, started_at, ended_at, ui_url) as the last line."
        ),
    ] = False,
    start_deadline: Annotated[
        str | None,
        typer.Option(
            "--start-deadline",
            help="Override the drill's start_deadline (default 60s): not picked up by a worker by then, it ends "
            "ABORTED, touching nothing.",
        ),
    ] = None,
    junit: Annotated[
        Path | None,
        typer.Option(
            "--junit",
            help="With --wait: write the verdict as JUnit XML to this file (a testcase per check; docs/CI.md).",
        ),
    ] = None,
    max_duration: Annotated[
        str | None,
        typer.Option(
            "--max-duration", help="A Chaos Toolkit experiment: its hard cap (default 15m); rollbacks run then."
        ),
    ] = None,
    team: Annotated[str | None, typer.Option("--team", help="A Chaos Toolkit experiment: the run's team.")] = None,
    notify_slack: Annotated[
        str | None, typer.Option("--notify-slack", help="A Chaos Toolkit experiment: a Slack channel for the run.")
    ] = None,
    guardrail: Annotated[
        list[str] | None,
        typer.Option(
            "--guardrail",
            metavar="<kind:what>",
            help="A Chaos Toolkit experiment: stop the run (ABORTED, rollbacks run) when 'command:CMD' exits 0 or "
            "'http:URL' answers 200, checked every 0.5s while the method plays and during the hypothesis after. "
            "Repeatable.",
        ),
    ] = None,
) -> None:
    """Start a drill, or a game day, as a durable Temporal workflow; a worker must be running ('gameday worker' or
    'gameday dev').

    Without --wait it prints the run id and the Web UI link and returns. With --wait the exit code tells the
    verdict (a game day's: its worst drill's): 0 RESILIENT, 2 DEVIATED, 3 NOT_STEADY, 4 ABORTED, 5 NOT_RECOVERED,
    6 ERROR, 7 INCONCLUSIVE; 1 is a usage error or a file with problems. Ctrl-C once says how to stop the drill;
    twice within 5 s stops it and waits for the reverts. With no worker polling the task queue it says so at once;
    with --wait, a drill no worker picked up within its start_deadline exits 4 (it records itself ABORTED, touching
    nothing, whenever a worker polls).
    """
    if junit is not None and not wait and not dry_run:
        fail("--junit needs --wait: the verdict is only known once the run ends")
    settings = settings_of(ctx)
    from gameday.cli import gamedays
    from gameday.model.ctk import Overrides, guardrail_of
    from gameday.model.files import ExperimentFile, GameDayFile

    try:
        guards = tuple(guardrail_of(text) for text in guardrail or ())
    except ValueError as exc:
        fail(str(exc))
    wrapper = Overrides(team=team, max_duration=max_duration, notify_slack=notify_slack, guardrails=guards)
    loaded = load(file, wrapper if wrapper != Overrides() else None)
    if wrapper != Overrides() and not isinstance(loaded, ExperimentFile):
        fail(
            "--max-duration, --team, --notify-slack and --guardrail wrap a Chaos Toolkit experiment; a drill file "
            "says these itself"
        )
    say_experiment(loaded)
    if isinstance(loaded, GameDayFile):
        if dry_run:
            for line in gamedays.describe(loaded.spec, loaded.stages):
                console.print(line, markup=False)
            console.print("dry run: nothing was started or touched")
            return
        raise typer.Exit(code=gamedays.run(settings, loaded, wait=wait, run_id=run_id, as_json=as_json, junit=junit))
    drill = loaded.drill
    if start_deadline is not None:
        from gameday.model.units import parse_duration

        try:
            drill = drill.model_copy(update={"start_deadline": parse_duration(start_deadline)})
        except ValueError as err:
            fail(f"--start-deadline: {err}")
    if dry_run:
        from gameday.model.plan import plan_lines

        for line in plan_lines(drill):
            console.print(line, markup=False)
        console.print("dry run: nothing was started or touched")
        return
    config = settings.config
    out = err_console if as_json else console

    async def go() -> int:
        from gameday.cli import launch
        from gameday.model.records import EXIT_CODES, Verdict
        from gameday.worker.client import connect

        client = await connect(config)
        handle = await launch.start(client, config, drill, source=str(file), run_id=run_id)
        submitted = time.monotonic()
        ui_url = config.workflow_url(handle.id)
        out.print(f"started [bold]{escape(handle.id)}[/]  {escape(ui_url)}")
        silent = await launch.warn_if_no_worker(client, config.task_queue, drill)
        from gameday.cli.freeze import warn_if_frozen

        await warn_if_frozen(client, config.task_queue, drill.team, out)
        if not wait:
            if as_json:
                print(launch.contract_json(handle.id, None, ui_url))
            return 0
        if silent and not await launch.picked_up_in_time(handle, submitted, drill, out):
            if as_json:
                print(launch.contract_json(handle.id, None, ui_url))
            return EXIT_CODES[Verdict.ABORTED]
        record = await launch.follow(handle, out)
        out.print(launch.verdict_line(record))
        if junit is not None:
            from gameday.report.junit import render_junit

            write_junit(junit, render_junit(record), out)
        if as_json:
            print(launch.contract_json(handle.id, record, ui_url))
        return EXIT_CODES[record.verdict] if record.verdict else 6

    code = run_async(settings, go())
    raise typer.Exit(code=code)


def write_junit(path: Path, text: str, out: Console) -> None:
    """Write ``gameday run --junit``'s file; a file that cannot be written is said, the verdict's code kept."""
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as err:
        err_console.print(f"[red]cannot write {escape(str(path))}: {escape(err.strerror or str(err))}[/]")
        return
    out.print(f"JUnit XML written to {escape(str(path.resolve()))}")


def say_experiment(loaded: LoadedFile) -> None:
    """A Chaos Toolkit experiment's notes (keys not acted on, controls not run) and warnings, one line each."""
    from gameday.model.files import ExperimentFile

    if not isinstance(loaded, ExperimentFile):
        return
    console.print(f"Chaos Toolkit experiment, run as drill [bold]{escape(loaded.drill.name)}[/]")
    for note in loaded.notes:
        console.print(f"  note: {note}", markup=False)
    for warning in loaded.warnings:
        console.print(f"[yellow]  warning: {escape(warning)}[/]")


def load(file: Path, overrides: Overrides | None = None) -> LoadedFile:
    """The drill, game-day or experiment file at ``file``, its kind recognised once
    (:func:`~gameday.model.files.load_file`); on problems, prints each with its line and field and exits 1."""
    from gameday.model.errors import DrillFileError
    from gameday.model.files import load_file

    try:
        return load_file(file, overrides)
    except DrillFileError as err:
        for problem in err.problems:
            err_console.print(f"[red]{escape(str(problem))}[/]", soft_wrap=True)
        fail(f"{file}: {len(err.problems)} problem(s); nothing was started")


def load_drill(file: Path) -> Drill:
    """The drill file at ``file`` (a game-day file is refused: it is not one drill); exits 1 on problems."""
    from gameday.model.files import DrillFile

    loaded = load(file)
    if not isinstance(loaded, DrillFile):
        fail(f"{file}: a game-day file, not a drill file; give one drill file")
    return loaded.drill
