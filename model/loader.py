"""Drill files → :class:`~model.drill.Drill`, or every problem in them, each with file, line and field.

Pure: no Temporal and no I/O beyond reading the file in :func:`load_drill_file`, so the CLI, the worker and
tests all load drills the same way. A problem reads ``file:line:column: path: message``::

    drills/checkout.yaml:14:14: faults[1].duration: expected a duration like 250ms, 30s, 2m or 1h30m, got '5 minutes'

All problems of a file are reported at once (YAML syntax errors excepted: nothing after one can be read),
so a user fixes a file in one pass instead of one error per run.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import ValidationError

from gameday.model.drill import Drill
from gameday.model.errors import DrillFileError, Problem
from gameday.model.loader_limits import data_problems, drill_problems
from gameday.model.loader_messages import problems_from_validation
from gameday.model.loader_yaml import read_yaml

__all__ = ["DrillFileError", "Problem", "load_drill_file", "parse_drill"]


def parse_drill(text: str, file: str = "<drill>") -> Drill:
    """Read a drill from YAML text.

    Args:
        text: The drill file's contents.
        file: The name used in problems, usually the path the text was read from.

    Returns:
        The validated drill, cross-field checks included.

    Raises:
        DrillFileError: listing every problem found, in file order.
    """
    document = read_yaml(text, file)
    problems = list(document.problems)
    problems.extend(document.problem(path, message) for path, message in data_problems(document.data))
    try:
        # Cross-field checks are deferred so each comes back separately, with its own path and line.
        drill = Drill.model_validate(document.data, context={"defer_cross_checks": True})
    except ValidationError as exc:
        for found in problems_from_validation(exc, Drill):
            problems.append(document.problem(found.path, found.message, at_key=found.at_key))
    else:
        problems.extend(document.problem(path, message) for path, message in drill.cross_problems())
        if not problems:
            problems.extend(document.problem(path, message) for path, message in drill_problems(drill))
    if problems:
        raise DrillFileError(_in_file_order(problems))
    return drill


def load_drill_file(path: str | Path) -> Drill:
    """Read and validate the drill file at ``path`` (UTF-8 YAML).

    Raises:
        DrillFileError: when the file cannot be read, or for every problem in it.
    """
    from gameday.model.files import read_text  # files imports this module: read_text is shared

    return parse_drill(read_text(path), file=str(path))


def _in_file_order(problems: list[Problem]) -> list[Problem]:
    unique = list(dict.fromkeys(problems))
    return sorted(unique, key=lambda p: (p.line is None, p.line or 0, p.column or 0))
