"""Faults on a local ``process`` target: ``pause`` (SIGSTOP, revert SIGCONT) and ``kill`` (revert: ``restart``).

The process is found by ``pid`` or by a ``pidfile`` read at the moment of the fault. Apply records the pid
and the process start time (``/proc/<pid>/stat`` field 22): a revert never signals a process that merely
reuses the pid. When the record is empty (the worker died mid-apply) the revert finds the target again from
the spec, and every revert is a no-op on a process that is already as it should be.
"""

from __future__ import annotations

import asyncio
import os
import signal
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from activities.faults.command import run_shell
from activities.faults.errors import ApplyError, NothingChanged, RevertError, TargetNotFound, UnsupportedFault
from workflows.drill import KillFault, PauseFault, ProcessTarget
from workflows.records import FaultInput, FaultRecord

PROC = Path("/proc")
RESTART_TIMEOUT = timedelta(seconds=30)
"""How long the target's ``restart`` command may run."""
RESTART_WAIT = timedelta(seconds=10)
"""How long, after ``restart`` exits, the pidfile may take to name a live process."""
POLL_EVERY = 0.1
PIDFILE_BYTES = 32
"""A pid is a few digits: no more of a pidfile is read."""


@dataclass(frozen=True)
class ProcStat:
    """The two fields of ``/proc/<pid>/stat`` a fault needs.

    Attributes:
        state: field 3: ``R`` running, ``S`` sleeping, ``T`` stopped, ``Z`` zombie…
        starttime: field 22, clock ticks after boot; with the pid, it names one process for good.
    """

    state: str
    starttime: str

    @property
    def alive(self) -> bool:
        return self.state not in ("Z", "X", "x")


def read_stat(pid: int) -> ProcStat | None:
    """The state and start time of ``pid``, or ``None`` when there is no such process."""
    try:
        text = (PROC / str(pid) / "stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # Field 2 (the command name, in parentheses) may itself hold spaces and ')': split after the last one.
    fields = text[text.rindex(")") + 2 :].split()
    return ProcStat(state=fields[0], starttime=fields[19])


def resolve(target: ProcessTarget) -> int:
    """The pid the target names now: its ``pid``, or the number in its ``pidfile``.

    Raises:
        TargetNotFound: the pidfile is missing, unreadable or holds no pid.
        ApplyError: the pid is one gameday refuses to signal.
    """
    if target.pidfile is None:
        pid = target.pid or 0
    else:
        try:
            with open(target.pidfile, "rb") as pidfile:
                text = pidfile.read(PIDFILE_BYTES).strip()
        except OSError as err:
            raise TargetNotFound(f"cannot read pidfile {target.pidfile}: {err.strerror or err}") from err
        # Never quote what was read: a pidfile naming any readable file (a password file) must not print it.
        if not text.isdigit():
            raise TargetNotFound(f"pidfile {target.pidfile}: not a pid")
        pid = int(text)
    # kill(0) and kill(-1) signal a whole group or every process; stopping the worker would stall its own revert.
    if pid <= 1 or pid == os.getpid():
        raise ApplyError(f"refusing to signal pid {pid}")
    return pid


def _narrow(inp: FaultInput) -> ProcessTarget:
    if inp.target.process is None or not isinstance(inp.fault, PauseFault | KillFault):
        raise UnsupportedFault(f"action {inp.fault.action_name!r} does not apply to a {inp.target.kind} target")
    return inp.target.process


def _recorded(record: FaultRecord) -> tuple[int, str | None] | None:
    """The (pid, start time) apply recorded, or ``None`` when it recorded nothing."""
    pid = record.changed.get("pid", "")
    return (int(pid), record.changed.get("starttime")) if pid.isdigit() else None


def _running(pid: int, starttime: str | None) -> bool:
    stat = read_stat(pid)
    return stat is not None and stat.alive and (starttime is None or stat.starttime == starttime)


def _signal_target(pid: int, sig: signal.Signals) -> ProcStat:
    stat = read_stat(pid)
    if stat is None or not stat.alive:
        raise TargetNotFound(f"no running process with pid {pid}")
    try:
        os.kill(pid, sig)
    except ProcessLookupError as err:
        raise TargetNotFound(f"no running process with pid {pid}") from err
    except PermissionError as err:
        raise ApplyError(f"not allowed to send {sig.name} to pid {pid}") from err
    return stat


async def apply(inp: FaultInput) -> FaultRecord:
    """Send SIGSTOP (``pause``) or the fault's signal (``kill``) to the target, and record which process it was.

    Raises:
        NothingChanged: no such process, the pidfile cannot be read, or not allowed to signal it: the one change
            a process fault makes (a signal) was not made.
    """
    target = _narrow(inp)
    sig = signal.Signals[inp.fault.signal] if isinstance(inp.fault, KillFault) else signal.SIGSTOP
    try:
        pid = resolve(target)
        stat = _signal_target(pid, sig)
    except ApplyError as err:
        raise NothingChanged(str(err)) from err
    changed = {"pid": str(pid), "starttime": stat.starttime, "signal": sig.name}
    return inp.record.model_copy(update={"changed": changed, "output": f"sent {sig.name} to pid {pid}"})


async def revert(inp: FaultInput) -> FaultRecord:
    """Resume a paused process, or restart a killed one; harmless when there is nothing to undo.

    Raises:
        RevertError: not allowed to resume it, or the restart failed.
    """
    target = _narrow(inp)
    if isinstance(inp.fault, PauseFault):
        output = _resume(target, inp.record)
    else:
        output = await _restart(target, inp.record)
    return inp.record.model_copy(update={"output": output})


def _resume(target: ProcessTarget, record: FaultRecord) -> str:
    recorded = _recorded(record)
    if recorded is None:
        # Nothing recorded: the worker may have died between SIGSTOP and returning the record. SIGCONT is
        # harmless on a running process, so resume whatever the spec names now.
        try:
            pid, starttime = resolve(target), None
        except ApplyError as err:
            return f"nothing recorded, and the target is not there ({err}): nothing to resume"
    else:
        pid, starttime = recorded
    if not _running(pid, starttime):
        return f"pid {pid} is gone or now belongs to another process: nothing to resume"
    try:
        os.kill(pid, signal.SIGCONT)
    except ProcessLookupError:
        return f"pid {pid} is gone: nothing to resume"
    except PermissionError as err:
        raise RevertError(f"not allowed to send SIGCONT to pid {pid}") from err
    return f"sent SIGCONT to pid {pid}"


async def _restart(target: ProcessTarget, record: FaultRecord) -> str:
    recorded = _recorded(record)
    try:
        pid: int | None = resolve(target)
    except ApplyError:
        pid = None
    if pid is not None:
        # The recorded pid with another start time is a stranger that reused it: ours is still down.
        starttime = recorded[1] if recorded is not None and recorded[0] == pid else None
        if _running(pid, starttime):
            return f"pid {pid} is running: nothing to restart"
    if not target.restart:
        raise RevertError("the process is not running and the target has no 'restart' command")
    result = await run_shell(target.restart, timeout=RESTART_TIMEOUT)
    if not result.ok:
        raise RevertError(f"restart `{target.restart}` {result.describe()}: {result.output}")
    if target.pidfile is None:
        # A bare pid cannot be followed to the new process: the restart command's success is all we know.
        return _with_output(f"ran `{target.restart}`", result.output)
    new_pid = await _wait_for_pidfile(target)
    return _with_output(f"restarted as pid {new_pid}", result.output)


def _with_output(summary: str, output: str) -> str:
    return f"{summary}\n{output}" if output else summary


async def _wait_for_pidfile(target: ProcessTarget) -> int:
    deadline = asyncio.get_running_loop().time() + RESTART_WAIT.total_seconds()
    while True:
        try:
            pid = resolve(target)
            if _running(pid, None):
                return pid
        except ApplyError:
            pass  # not written yet
        if asyncio.get_running_loop().time() >= deadline:
            raise RevertError(
                f"restart `{target.restart}` exited 0 but {target.pidfile} named no live process "
                f"within {RESTART_WAIT.total_seconds():g}s"
            )
        await asyncio.sleep(POLL_EVERY)
