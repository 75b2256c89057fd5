"""A tiny Chaos Toolkit extension of gameday's own, for the python provider's tests (issue 16)."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def set_flag(path: str, value: str = "on") -> str:
    """An action: write ``value`` to the flag file; returns what it wrote."""
    Path(path).write_text(value)
    return value


def read_flag(path: str) -> str:
    """A probe: the flag file's text (``off`` when there is none)."""
    flag = Path(path)
    return flag.read_text() if flag.exists() else "off"


def token_length(secrets: dict[str, Any] | None = None, configuration: dict[str, Any] | None = None) -> int:
    """A probe taking secrets and configuration as chaoslib passes them: the token's length, never the token."""
    return len((secrets or {}).get("token", ""))


def is_even(value: Any) -> bool:
    """A probe tolerance's probe: called with the probed value."""
    return isinstance(value, int) and value % 2 == 0


RELEASE = __import__("threading").Event()
"""Set by a test to let every :func:`block` return."""


def block() -> str:
    """An action that never returns on its own (until a test sets :data:`RELEASE`): a stuck extension."""
    RELEASE.wait()
    return "released"
