"""The ``command`` target kind: the local shell; a fault runs a command and reverts with another.

Faults: ``activities/faults/command.py``.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Literal

from gameday.model.base import Strict
from gameday.model.kinds.base import FaultBase, TargetKindSpec, timed
from gameday.model.units import Duration, format_duration


class CommandTarget(Strict):
    """The local shell: faults run a command and revert with another."""

    cwd: str | None = None
    shell: str = "/bin/sh"


class RunFault(FaultBase):
    """Run a shell command on a ``command`` target; ``revert`` undoes it and must be safe to run twice."""

    action: Literal["run"]
    run: str
    revert: str
    timeout: Duration = timedelta(seconds=30)

    def apply_budget(self) -> timedelta:
        return timed(self.timeout)


def describe(spec: CommandTarget) -> str:
    return f"local shell ({spec.shell})"


def describe_fault(fault: FaultBase) -> tuple[str, str]:
    assert isinstance(fault, RunFault)
    return f"run `{fault.run}` (timeout {format_duration(fault.timeout)})", f"run `{fault.revert}`"


def lock_key(spec: CommandTarget) -> None:
    """The shell is no resource of its own: a command target is locked only by its ``lock`` name."""
    return None


KIND = TargetKindSpec(
    key="command",
    model=CommandTarget,
    faults=(RunFault,),
    describe=describe,
    describe_fault=describe_fault,
    lock_key=lock_key,
    provider="gameday.activities.faults.command",
    host_local=True,
)
