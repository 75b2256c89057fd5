"""The ``process`` target kind: a local process, frozen (``pause``) or signalled (``kill``).

Faults: ``activities/faults/process.py``. ``pause`` and ``kill`` apply to docker containers too
(``model.kinds.docker`` lists them with its own descriptions).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from gameday.model.base import Strict
from gameday.model.kinds.base import FaultBase, Location, TargetKindSpec


class ProcessTarget(Strict):
    """A local process, found by ``pid`` or by a ``pidfile`` read at the moment of the fault."""

    pid: int | None = Field(default=None, gt=1)
    pidfile: str | None = None
    restart: str | None = None
    """Shell command that starts the process again; the revert of ``kill``."""

    @model_validator(mode="after")
    def _one_locator(self) -> ProcessTarget:
        if (self.pid is None) == (self.pidfile is None):
            raise ValueError("a process target needs exactly one of 'pid' or 'pidfile'")
        return self


class PauseFault(FaultBase):
    """Freeze the target (process: SIGSTOP, revert SIGCONT; docker: pause, revert unpause)."""

    action: Literal["pause"]


class KillFault(FaultBase):
    """Send ``signal`` to the target; revert: a process's ``restart`` command, a container's start, if not running."""

    action: Literal["kill"]
    signal: str = "SIGKILL"

    @field_validator("signal")
    @classmethod
    def _known_signal(cls, value: str) -> str:
        import signal as _signal

        name = value.upper() if value.upper().startswith("SIG") else "SIG" + value.upper()
        if not hasattr(_signal, name):
            raise ValueError(f"unknown signal {value!r}; expected a name like SIGTERM or SIGKILL")
        return name


def describe(spec: ProcessTarget) -> str:
    where = f"pid {spec.pid}" if spec.pid else f"pidfile {spec.pidfile}"
    return f"process ({where})"


def describe_fault(fault: FaultBase) -> tuple[str, str]:
    if isinstance(fault, KillFault):
        return f"send {fault.signal}", "run the target's restart command if the process is not running"
    return "SIGSTOP the process", "SIGCONT the same process (checked by start time)"


def lock_key(spec: ProcessTarget) -> str:
    return f"process:{spec.pidfile}" if spec.pidfile else f"process:pid:{spec.pid}"


def problems(spec: ProcessTarget, fault: FaultBase) -> list[tuple[Location, str]]:
    if isinstance(fault, KillFault) and not spec.restart:
        return [(("restart",), "a killed process needs a 'restart' command")]
    return []


KIND = TargetKindSpec(
    key="process",
    model=ProcessTarget,
    faults=(PauseFault, KillFault),
    describe=describe,
    describe_fault=describe_fault,
    lock_key=lock_key,
    provider="gameday.activities.faults.process",
    problems=problems,
    host_local=True,
)
