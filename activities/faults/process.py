"""Faults on a local ``process`` target: ``pause`` (SIGSTOP, revert SIGCONT) and ``kill`` (revert: ``restart``).

The process is found by ``pid`` or by a ``pidfile``. ``capture`` records, before the apply, the pid, the
process start time (``/proc/<pid>/stat`` field 22) and whether it was stopped already; the revert goes by that
identity, never by what an interrupted apply may have recorded (a worker can die between SIGSTOP and its
record), and never signals a process that merely reuses the pid. Without a capture (drills started before it)
the revert finds the target again from the record, else the spec; every revert is a no-op on a process that
is already as it should be. gameday itself (the worker, its parents, a Temporal server, init) is refused.
"""

from __future__ import annotations

import asyncio
import os
import signal
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from gameday.activities.faults import narrow
from gameday.activities.faults.command import run_shell
from gameday.activities.faults.errors import ApplyError, NothingChanged, RevertError, TargetNotFound
from gameday.model.drill import KillFault, PauseFault, ProcessTarget
from gameday.model.records import FaultInput, FaultRecord

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
    ppid: int = 0
    """field 4: the parent's pid."""

    @property
    def alive(self) -> bool:
        return self.state not in ("Z", "X", "x")

    @property
    def stopped(self) -> bool:
        return self.state in ("T", "t")


def read_stat(pid: int) -> ProcStat | None:
    """The state and start time of ``pid``, or ``None`` when there is no such process."""
    try:
        text = (PROC / str(pid) / "stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # Field 2 (the command name, in parentheses) may itself hold spaces and ')': split after the last one.
    fields = text[text.rindex(")") + 2 :].split()
    return ProcStat(state=fields[0], starttime=fields[19], ppid=int(fields[1]))


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
    # kill(0) and kill(-1) signal a whole group or every process; stopping gameday would stall its own revert.
    if pid <= 0:
        raise ApplyError(f"refusing to signal pid {pid}: not a single process")
    own = gameday_itself(pid)
    if own is not None:
        raise ApplyError(f"refusing to signal pid {pid}: it is {own}; a drill must never pause or kill gameday")
    return pid


def gameday_itself(pid: int) -> str | None:
    """What ``pid`` is to gameday, when signalling it could wedge the drill; ``None`` for any other process.

    Refused: the pid namespace's init, this worker, its parents up to init (the ``gameday dev``/``demo`` CLI
    that runs it, a supervisor…), and a Temporal dev server (the one ``gameday dev`` started as a child, or
    any other on this host: pausing the server a drill runs on holds the drill past its ``max_duration``).
    """
    if pid == 1:
        return "the init process of this pid namespace"
    me = os.getpid()
    if pid == me:
        return "this gameday worker"
    parent, seen = os.getppid(), {me}
    while parent > 0 and parent not in seen:
        if parent == pid:
            return "a parent of this gameday worker"
        seen.add(parent)
        stat = read_stat(parent)
        parent = stat.ppid if stat is not None else 0
    if _is_temporal_server(pid):
        return "a Temporal server"
    return None


def _is_temporal_server(pid: int) -> bool:
    try:
        argv = (PROC / str(pid) / "cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return bool(argv) and Path(argv[0].decode(errors="replace")).name.startswith("temporal") and b"server" in argv


def _narrow(inp: FaultInput) -> ProcessTarget:
    return narrow(inp, ProcessTarget, PauseFault, KillFault)[0]


def _recorded_in(facts: dict[str, str]) -> tuple[int, str | None] | None:
    """The (pid, start time) in captured or recorded facts, or ``None`` when they hold none."""
    pid = facts.get("pid", "")
    return (int(pid), facts.get("starttime")) if pid.isdigit() else None


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


def _signal_captured(pid: int, starttime: str | None, sig: signal.Signals) -> ProcStat:
    """Signal the process captured as (``pid``, ``starttime``), only if that pid still names that process.

    Raises:
        TargetNotFound: the captured process is gone (exited, or its pid now belongs to another process).
        ApplyError: the pid is gameday itself, or not allowed to signal it.
    """
    own = gameday_itself(pid)
    if own is not None:
        raise ApplyError(f"refusing to signal pid {pid}: it is {own}; a drill must never pause or kill gameday")
    try:
        # A pidfd pins the process: checked after opening it, the start time proves the pidfd is the captured
        # process, and a signal through it cannot reach a process that reuses the pid meanwhile.
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        pidfd = None
    except OSError:  # no pidfd support (an old kernel): the identity check just before the signal must do
        pidfd = -1
    try:
        stat = read_stat(pid) if pidfd is not None else None
        if stat is None or not stat.alive or (starttime is not None and stat.starttime != starttime):
            raise TargetNotFound(
                f"the process captured before the fault (pid {pid}) is gone"
                + (": that pid now belongs to another process" if stat is not None and stat.alive else "")
                + f"; nothing was sent {sig.name}"
            )
        if pidfd is None or pidfd < 0:
            return _signal_target(pid, sig)
        try:
            signal.pidfd_send_signal(pidfd, sig)
        except ProcessLookupError as err:
            raise TargetNotFound(f"the process captured before the fault (pid {pid}) exited") from err
        except PermissionError as err:
            raise ApplyError(f"not allowed to send {sig.name} to pid {pid}") from err
        return stat
    finally:
        if pidfd is not None and pidfd >= 0:
            os.close(pidfd)


async def capture(inp: FaultInput) -> dict[str, str]:
    """The process the fault will hit: pid, start time (its identity) and whether it is stopped already.

    Raises:
        TargetNotFound: no such process, or the pidfile cannot be read.
        ApplyError: the pid is gameday itself (see :func:`gameday_itself`).
    """
    pid = resolve(_narrow(inp))
    stat = read_stat(pid)
    if stat is None or not stat.alive:
        raise TargetNotFound(f"no running process with pid {pid}")
    return {"pid": str(pid), "starttime": stat.starttime, "stopped": "yes" if stat.stopped else "no"}


async def apply(inp: FaultInput) -> FaultRecord:
    """Send SIGSTOP (``pause``) or the fault's signal (``kill``) to the target, and record which process it was.

    The target is the process ``capture`` recorded (pid and start time), not whatever the pidfile names by now.

    Raises:
        NothingChanged: no such process, the pidfile cannot be read, or not allowed to signal it: the one change
            a process fault makes (a signal) was not made.
    """
    target = _narrow(inp)
    sig = signal.Signals[inp.fault.signal] if isinstance(inp.fault, KillFault) else signal.SIGSTOP
    captured = _recorded_in(inp.before)
    try:
        if captured is None:  # drills started before capture: the target as the spec names it now
            pid = resolve(target)
            stat = _signal_target(pid, sig)
        else:
            # The process captured before the fault, by its identity: never what the pidfile says now (rewritten
            # since, or its pid reused by another process), which is not the process the revert will look for.
            pid, starttime = captured
            stat = _signal_captured(pid, starttime, sig)
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
        output = _resume(target, inp)
    else:
        output = await _restart(target, inp)
    return inp.record.model_copy(update={"output": output})


def _identity(inp: FaultInput) -> tuple[int, str | None] | None:
    """The process as captured before the apply, else as the apply recorded it; ``None`` when neither ran."""
    return _recorded_in(inp.before) or _recorded_in(inp.record.changed)


def _resume(target: ProcessTarget, inp: FaultInput) -> str:
    # The apply's record is never trusted to say whether SIGSTOP went out (a worker can die between the two):
    # the captured identity is resumed whenever it still names the process, unless it was stopped before.
    if inp.before.get("stopped") == "yes":
        return f"pid {inp.before['pid']} was already stopped before the fault: left as it was"
    recorded = _identity(inp)
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


async def _restart(target: ProcessTarget, inp: FaultInput) -> str:
    recorded = _identity(inp)
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
