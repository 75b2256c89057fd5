"""``gameday history DRILL``: one drill's runs oldest to newest, their resilience score, and the trend."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from gameday.cli.context import console, fail, settings_of

if TYPE_CHECKING:
    from gameday.activities.history import DrillHistory


def register(app: typer.Typer) -> None:
    app.command()(history)


def history(
    ctx: typer.Context,
    drill: Annotated[str, typer.Argument(help="The drill's name (as in its file's `name:`).")],
    team: Annotated[str | None, typer.Option(help="Only this team's runs of the drill.")] = None,
    limit: Annotated[int, typer.Option(min=1, help="How many of the most recent runs.")] = 20,
    fmt: Annotated[str, typer.Option("--format", "-f", help="table or json.")] = "table",
) -> None:
    """The trend of one drill: verdicts, time to recovery, time to safe, faults reverted and the resilience score.

    The score (0-100, formula in docs/SCORE.md) is per run; the drill's is the mean of its last 5 scored runs,
    and the trend compares them with the 5 before. Example: gameday history checkout-db-outage --team payments
    """
    if fmt not in ("table", "json"):
        fail(f"unknown format {fmt!r}: expected table or json")
    settings = settings_of(ctx)
    from gameday.activities.history import load_history
    from gameday.activities.migrations import SchemaError
    from gameday.activities.store import Store

    try:
        found = load_history(Store(settings.config.resolved_database_url), drill, team=team, limit=limit)
    except SchemaError as err:  # a shared database behind the code: name the command that fixes it
        fail(str(err))
    if fmt == "json":
        print(found.model_dump_json(indent=2))
        return
    if not found.entries:
        where = f" for team {team}" if team else ""
        fail(f"no recorded runs of drill {drill!r}{where} in {settings.config.database_label}")
    _print_table(found)


def _print_table(found: DrillHistory) -> None:
    from gameday.cli.context import print_columns
    from gameday.model.score import format_score

    title = f"{found.drill}" + (f" (team {found.team})" if found.team else "")
    rows = [("started (UTC)", "run", "verdict", "recovery", "to safe", "reverted", "score", "drill score")]
    for entry in found.entries:
        rows.append(
            (
                entry.started_at.strftime("%Y-%m-%d %H:%M"),
                entry.run_id,
                entry.verdict.value if entry.verdict else entry.phase.value,
                _seconds(entry.time_to_recovery),
                _seconds(entry.time_to_safe),
                f"{entry.faults_reverted}/{entry.faults}" if entry.faults else "-",
                format_score(entry.score),
                format_score(entry.drill_score),
            )
        )
    console.print(title, markup=False)
    print_columns(rows)  # never cropped, as `gameday list`: run ids are meant to be copied into the next command
    console.print(summary_line(found), markup=False)


def summary_line(found: DrillHistory) -> str:
    """The runs in one line: how many, share RESILIENT, median/p90 time to recovery, the score and its trend."""
    from gameday.model.score import format_score

    s = found.summary
    resilient = f"{s.resilient} RESILIENT" + (
        f" ({s.resilient_share:.0%} of finished)" if s.resilient_share is not None else ""
    )
    recovery = "no recovery times"
    if s.recovery_median is not None and s.recovery_p90 is not None:
        recovery = f"recovery median {s.recovery_median:.2f}s, p90 {s.recovery_p90:.2f}s"
    trend = f"no trend yet (needs more than {s.window} scored runs)"
    if s.trend is not None:
        trend = f"trend {s.trend:+.0f} (last {s.window} scored runs vs the {s.window} before)"
    return f"{s.runs} run(s), {resilient}; {recovery}; score {format_score(s.score)}; {trend}"


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}s"
