"""Game-day files → a :class:`~model.gameday.GameDaySpec` and its drills, every problem located.

Drill files a game day refers to are read relative to the game-day file and checked like ``gameday validate``
checks them: their problems point into their own files. Pure: the CLI does this, never the workflow.
"""

from __future__ import annotations

from collections.abc import Hashable
from pathlib import Path

from pydantic import ValidationError

from gameday.model import budget
from gameday.model.drill import Drill
from gameday.model.errors import DrillFileError, Problem
from gameday.model.gameday import DrillStep, GameDaySpec, ParallelStep, PlannedDrill
from gameday.model.loader import load_drill_file
from gameday.model.loader_limits import data_problems, too_big
from gameday.model.loader_messages import problems_from_validation
from gameday.model.loader_yaml import has_top_level_key, read_yaml


def is_gameday_text(text: str) -> bool:
    """Whether YAML text is a game-day file (its top level has a ``gameday`` key) rather than a drill file.

    Reads parser events only, never builds a value: a malformed, deep or alias-laden file is not a game day
    here, and the drill loader then reports what is wrong with it, located.
    """
    return has_top_level_key(text, ("gameday",))


def load_gameday_file(path: str | Path) -> tuple[GameDaySpec, list[list[PlannedDrill]]]:
    """Read a game-day file and every drill it names.

    Returns:
        The spec, and its steps in order, each a list of resolved drills (several: run in parallel).

    Raises:
        DrillFileError: listing every problem, in the game-day file and in the drill files it names.
    """
    from gameday.model.files import read_text

    return parse_gameday(read_text(path), str(path), Path(path).parent)


def parse_gameday(text: str, name: str, base: Path) -> tuple[GameDaySpec, list[list[PlannedDrill]]]:
    """A game day from its YAML text; the drill files it names are read relative to ``base``.

    Raises:
        DrillFileError: listing every problem, in the game-day file and in the drill files it names.
    """
    document = read_yaml(text, name)
    problems = list(document.problems)
    over = [document.problem(p, m) for p, m in _inline_limits(document.data)]
    if over:  # refused before the drill model reads them: they could be any size
        raise DrillFileError(problems + over)
    try:
        spec = GameDaySpec.model_validate(document.data, context={"defer_cross_checks": True})
    except ValidationError as exc:
        problems += [
            document.problem(f.path, f.message, at_key=f.at_key) for f in problems_from_validation(exc, GameDaySpec)
        ]
        raise DrillFileError(problems) from None
    stages: list[list[PlannedDrill]] = []
    seen: dict[str, tuple[int, ...]] = {}
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
    size = sum(len(p.drill.model_dump_json(by_alias=True)) for stage in stages for p in stage)
    if size > budget.MAX_GAMEDAY_BYTES:
        problems.append(document.problem(("drills",), too_big("the drills together", size, budget.MAX_GAMEDAY_BYTES)))
    if problems:
        raise DrillFileError(sorted(dict.fromkeys(problems), key=lambda p: (p.file, p.line or 0, p.column or 0)))
    return spec, stages


def _inline_limits(data: dict[Hashable, object]) -> list[tuple[tuple[Hashable, ...], str]]:
    """The drill limits, for drills written inline (``drill:``) in the game-day file."""
    steps = data.get("drills")
    problems: list[tuple[tuple[Hashable, ...], str]] = []
    if isinstance(steps, list) and len(steps) > budget.MAX_GAMEDAY_DRILLS:
        problems.append((("drills",), f"{len(steps)} steps; at most {budget.MAX_GAMEDAY_DRILLS}"))
    for i, step in enumerate(steps if isinstance(steps, list) else []):
        members = step.get("parallel") if isinstance(step, dict) else None
        for where, member in (
            [((("drills", i, "parallel", j)), m) for j, m in enumerate(members)]
            if isinstance(members, list)
            else [(("drills", i), step)]
        ):
            if isinstance(member, dict) and isinstance(member.get("drill"), dict):
                problems.extend(data_problems(member["drill"], at=(*where, "drill")))
    return problems


def _resolve(
    step: DrillStep, base: Path, where: tuple[int | str, ...], document: object, problems: list[Problem]
) -> PlannedDrill | None:
    from gameday.model.loader_yaml import YamlDocument

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
