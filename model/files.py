"""The one entry from a path to a typed file: ``load_file(path)`` reads the file once, recognises its kind
once, and returns a :class:`DrillFile` or a :class:`GameDayFile` (issue 13).

The kind is the file's top-level key: ``gameday:`` makes a game-day file, ``method`` or
``steady-state-hypothesis`` a Chaos Toolkit experiment (:class:`ExperimentFile`, issue 16), anything else is a
drill file. Recognising reads YAML parser events only, never builds a value, so a malformed file, a deep one or
one with tags (``!!python/object``) is never executed or crashed on: the drill loader then reports what is wrong
with it, located, as a :class:`~gameday.model.errors.DrillFileError`.

Pure apart from reading the file (and, for a game day, the drill files it names): the CLI calls it, never a
workflow.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from gameday.model import budget
from gameday.model.ctk import Overrides, is_experiment_text, parse_experiment, parse_sidecar
from gameday.model.drill import Drill
from gameday.model.errors import DrillFileError, Problem
from gameday.model.gameday import GameDaySpec, PlannedDrill
from gameday.model.gameday_loader import is_gameday_text, parse_gameday
from gameday.model.loader import parse_drill
from gameday.model.loader_limits import too_big


@dataclass(frozen=True)
class DrillFile:
    """A drill file, validated."""

    path: Path
    drill: Drill


@dataclass(frozen=True)
class GameDayFile:
    """A game-day file and every drill it names, validated; ``stages`` in order, each run in parallel."""

    path: Path
    spec: GameDaySpec
    stages: list[list[PlannedDrill]]


@dataclass(frozen=True)
class ExperimentFile(DrillFile):
    """A Chaos Toolkit experiment, validated and translated into a drill (``model/ctk.py``, issue 16).

    Attributes:
        notes: keys accepted but not acted on, controls not run.
        warnings: what to fix (a method action with no rollback).
    """

    notes: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()


LoadedFile = DrillFile | GameDayFile
"""What :func:`load_file` returns: match on the type to act on the file's kind."""


def read_text(path: str | Path) -> str:
    """The UTF-8 text of a drill or game-day file, refused before reading when over the size limit.

    Raises:
        DrillFileError: too big, unreadable or not UTF-8, said in one located problem.
    """
    name = str(path)
    try:
        size = Path(path).stat().st_size
        if size > budget.MAX_FILE_BYTES:  # refused before it is read: it could be any size
            raise DrillFileError([Problem(name, None, None, "", too_big("the file", size, budget.MAX_FILE_BYTES))])
        return Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        problem = Problem(name, None, None, "", f"not UTF-8 text: {exc.reason} at byte {exc.start}")
        raise DrillFileError([problem]) from exc
    except OSError as exc:
        raise DrillFileError([Problem(name, None, None, "", f"cannot read: {exc.strerror or exc}")]) from exc


def load_file(path: str | Path, overrides: Overrides | None = None) -> LoadedFile:
    """Read the file at ``path``, recognise its kind, and validate it as that kind.

    Raises:
        DrillFileError: every problem found (in a game day: in the drill files it names too), in file order.
    """
    text = read_text(path)
    if is_gameday_text(text):
        spec, stages = parse_gameday(text, str(path), Path(path).parent)
        return GameDayFile(Path(path), spec, stages)
    if is_experiment_text(text):
        found = parse_experiment(text, str(path), overrides)
        return ExperimentFile(Path(path), found.drill, tuple(found.notes), tuple(found.warnings))
    if is_experiment_text(text, ("experiment",)) and not is_experiment_text(text, ("faults", "targets")):
        found = parse_sidecar(text, str(path))
        return ExperimentFile(Path(path), found.drill, tuple(found.notes), tuple(found.warnings))
    return DrillFile(Path(path), parse_drill(text, file=str(path)))
