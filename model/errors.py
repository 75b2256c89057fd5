"""The errors gameday raises on purpose, as one tree, so callers can catch exactly what they mean.

::

    GamedayError                 root: anything gameday reports as a user-facing failure
     └── DrillFileError          a drill file cannot be used; carries every Problem found, located

The CLI prints ``str(error)`` (one problem per line) and exits non-zero; ``--debug`` adds the traceback.
"""

from __future__ import annotations

from dataclasses import dataclass


class GamedayError(Exception):
    """Root of every error gameday raises deliberately (as opposed to a bug)."""


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a drill file, located as precisely as the file allows.

    Attributes:
        file: The file name as the user gave it (``<drill>`` for text without a file).
        line: 1-based line, or ``None`` when the problem has no place in the file (e.g. unreadable).
        column: 1-based column, or ``None`` with ``line``.
        path: The field, written ``faults[1].latency``; empty for the file as a whole.
        message: What is wrong and what was expected, in one line.
    """

    file: str
    line: int | None
    column: int | None
    path: str
    message: str

    def __str__(self) -> str:
        where = self.file
        if self.line is not None:
            where += f":{self.line}"
            if self.column is not None:
                where += f":{self.column}"
        return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"


class DrillFileError(GamedayError):
    """A drill file that cannot be used: bad YAML, a bad value, or keys that contradict each other.

    Attributes:
        problems: Every problem found, in file order; never empty.
    """

    def __init__(self, problems: list[Problem]) -> None:
        if not problems:
            raise ValueError("a DrillFileError needs at least one problem")
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))
