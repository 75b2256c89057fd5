"""``gameday import``: a Chaos Toolkit experiment rewritten as a native drill file (issue 16)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from gameday.cli.context import console, err_console, fail


def register(app: typer.Typer) -> None:
    app.command(name="import")(import_experiment)


def import_experiment(
    file: Annotated[Path, typer.Argument(help="The Chaos Toolkit experiment (JSON or YAML).")],
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write the drill file here instead of printing it.")
    ] = None,
) -> None:
    """Convert a Chaos Toolkit experiment into a drill file, saying line by line what it could not convert.

    http and process probes become http and command probes; process and http actions become command and http
    faults, each paired with a rollback of the same provider as its revert. What does not map is listed (also at
    the top of the drill file); 'gameday run experiment.json' runs the whole experiment as it is.
    """
    from gameday.model.ctk_import import parse_and_import
    from gameday.model.errors import DrillFileError
    from gameday.model.files import read_text

    try:
        imported = parse_and_import(read_text(file), str(file))
    except DrillFileError as err:
        for problem in err.problems:
            err_console.print(f"[red]{escape(str(problem))}[/]", soft_wrap=True)
        fail(f"{file}: {len(err.problems)} problem(s); nothing was converted")
    for line in imported.skipped:
        err_console.print(f"not converted: {line}", markup=False, soft_wrap=True)
    if output is None:
        print(imported.text, end="")
        return
    try:
        output.write_text(imported.text, encoding="utf-8")
    except OSError as err:
        fail(f"cannot write {output}: {err.strerror or err}")
    console.print(f"drill written to {output} ({len(imported.skipped)} part(s) not converted)", markup=False)
