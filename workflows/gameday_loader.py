"""Game-day files → a :class:`~workflows.gameday.GameDaySpec` and its drills, every problem located.

Drill files a game day refers to are read relative to the game-day file and checked like ``gameday validate``
checks them: their problems point into their own files. Pure: the CLI does this, never the workflow.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import ValidationError

from workflows.drill import Drill
from workflows.errors import DrillFileError, Problem
from workflows.gameday import DrillStep, GameDaySpec, ParallelStep, PlannedDrill
from workflows.loader import load_drill_file
from workflows.loader_messages import problems_from_validation
from workflows.loader_yaml import read_yaml


def is_gameday_text(text: str) -> bool:
    """Whether YAML text is a game-day file (its top level has a ``gameday`` key) rather than a drill file."""
    import yaml

    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError:
        return False
    return isinstance(data, dict) and "gameday" in data


def load_gameday_file(path: str | Path) -> tuple[GameDaySpec, list[list[PlannedDrill]]]:
    """Read a game-day file and every drill it names.

    Returns:
        The spec, and its steps in order, each a list of resolved drills (several: run in parallel).

    Raises:
        DrillFileError: listing every problem, in the game-day file and in the drill files it names.
    """
    name = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise DrillFileError([Problem(name, None, None, "", f"cannot read: {exc.strerror or exc}")]) from exc
    document = read_yaml(text, name)
    problems = list(document.problems)
    try:
        spec = GameDaySpec.model_validate(document.data, context={"defer_cross_checks": True})
    except ValidationError as exc:
        problems += [
            document.problem(f.path, f.message, at_key=f.at_key) for f in problems_from_validation(exc, GameDaySpec)
        ]
        raise DrillFileError(problems) from None
    stages: list[list[PlannedDrill]] = []
    seen: dict[str, tuple[int, ...]] = {}
    base = Path(path).parent
    for i, step in enumerate(spec.drills):
        members = step.parallel if isinstance(step, ParallelStep) else [step]
        stage = []
        for j, member in enumerate(members):
            where: tuple[int | str, ...] = (
                ("drills", i, "parallel", j) if isinstance(step, ParallelStep) else ("drills", i)
            )
            planned = _resolve(member, base, where, document, problems)
            if planned is None:
                continue
            drill = planned.drill
            if drill.name in seen:
                problems.append(document.problem(where, f"drill {drill.name!r} appears twice: names must be unique"))
            seen[drill.name] = tuple(x for x in where if isinstance(x, int))
            if drill.notify is None and spec.notify is not None:
                planned = planned.model_copy(update={"drill": drill.model_copy(update={"notify": spec.notify})})
            stage.append(planned)
        stages.append(stage)
    if problems:
        raise DrillFileError(sorted(dict.fromkeys(problems), key=lambda p: (p.file, p.line or 0, p.column or 0)))
    return spec, stages


def _resolve(
    step: DrillStep, base: Path, where: tuple[int | str, ...], document: object, problems: list[Problem]
) -> PlannedDrill | None:
    from workflows.loader_yaml import YamlDocument

    assert isinstance(document, YamlDocument)
    if step.file is not None:
        file = base / step.file
        if not file.is_file():
            problems.append(document.problem((*where, "file"), f"no drill file at {file}"))
            return None
        try:
            return PlannedDrill(drill=load_drill_file(file), source=str(file))
        except DrillFileError as err:
            problems.extend(err.problems)
            return None
    assert step.drill is not None
    drill: Drill = step.drill
    cross = drill.cross_problems()
    problems.extend(document.problem((*where, "drill", *loc), message) for loc, message in cross)
    return None if cross else PlannedDrill(drill=drill, source=f"{document.file} (inline)")
