"""Faults on a ``command`` target: ``run`` a shell command; its revert is another shell command.

Also home of :func:`run_shell`, the one way gameday runs a shell command for a fault (the ``process``
provider's ``restart`` uses it too). Each command runs under a supervisor of its own
(``activities.faults.supervisor``): everything it starts dies on timeout, on cancel, with the worker, and, for
what a fault's ``run`` leaves running, at its revert; so nothing it started can finish the fault after the revert.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import IO

from gameday.activities.faults import narrow
from gameday.activities.faults.errors import ApplyError, RevertError
from gameday.activities.secrets import command_env
from gameday.model.drill import CommandTarget, RunFault
from gameday.model.records import FaultInput, FaultRecord

OUTPUT_LIMIT = 4096
"""Bytes of a command's output (or an HTTP body) kept for the report."""

SUPERVISOR = str(Path(__file__).with_name("supervisor.py"))
"""The per-command supervisor (see ``activities.faults.supervisor``): the command's whole process tree dies with
the worker, on cancel, on timeout and (for a fault's ``run``) on revert."""
_SETPRIV = shutil.which("setpriv")
_SHELL_DIES_WITH_SUPERVISOR: tuple[str, ...] = (_SETPRIV, "--pdeathsig", "KILL", "--") if _SETPRIV else ()
STOP_WAIT = 5.0
"""Seconds a supervisor gets to kill its tree and exit once told to."""
_GUARDS: set[asyncio.Task[int]] = set()
"""Supervisors still guarding what an applied fault left running; held so they are reaped when they exit."""


@dataclass(frozen=True)
class ShellResult:
    """How a shell command ended.

    Attributes:
        exit_code: the shell's exit status (negative: killed by that signal); ``None`` when it timed out.
        output: stdout and stderr interleaved, the last :data:`OUTPUT_LIMIT` bytes.
        timeout: the time limit it ran under.
        guard: ``pid:starttime`` of the supervisor still guarding processes the command left running (``guard``
            runs only), for :func:`stop_guard`; empty when nothing was left.
    """

    exit_code: int | None
    output: str
    timeout: timedelta
    guard: str = ""

    @property
    def ok(self) -> bool:
        return self.exit_code == 0

    def describe(self) -> str:
        """How it ended, in words: ``exited with code 3`` or ``timed out after 30s…``."""
        if self.exit_code is None:
            return f"timed out after {self.timeout.total_seconds():g}s (everything it started was killed)"
        return f"exited with code {self.exit_code}"


# ASYNC109 would have callers wrap this in asyncio.timeout(); but the limit is the child's, not ours: on
# timeout its process tree is killed and its output kept for the report.
async def run_shell(
    command: str,
    *,
    timeout: timedelta,  # noqa: ASYNC109
    shell: str = "/bin/sh",
    cwd: str | None = None,
    guard: bool = False,
) -> ShellResult:
    """Run ``shell -c command`` under a supervisor of its own and wait for the shell to exit.

    Whatever the command starts (pipelines, subshells, ``&`` jobs) is killed with it on timeout, on
    cancellation and when the worker dies.

    Args:
        command: the shell command line.
        timeout: after this long the whole process tree is killed.
        shell: the shell binary.
        cwd: working directory; the worker's own when ``None``.
        guard: a fault's ``run``: what the command leaves running after the shell exits stays guarded (killed
            when the worker dies, or by :func:`stop_guard` at revert). Otherwise it is let go (a daemon a revert
            or a ``restart`` starts must outlive the worker).

    Returns:
        The exit code (``None`` on timeout), the tail of the output and the guard, if any.

    Raises:
        OSError: the shell or ``cwd`` does not exist.
    """
    # Output goes to a file, not a pipe: a command that starts a daemon (``svc &``) would hold a pipe
    # open for the daemon's lifetime, and we would wait for that EOF instead of for the shell.
    with tempfile.TemporaryFile() as out:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-I",
            "-S",
            SUPERVISOR,
            "guard" if guard else "detach",
            str(os.getpid()),
            shell,
            command,
            *_SHELL_DIES_WITH_SUPERVISOR,
            cwd=cwd,
            env=command_env(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=out,
        )
        assert proc.stdout is not None
        try:
            line = await asyncio.wait_for(proc.stdout.readline(), timeout.total_seconds())
        except TimeoutError:
            await _stop(proc)
            return ShellResult(exit_code=None, output=_tail(out), timeout=timeout)
        except BaseException:
            # A cancelled apply must not go on behind its revert's back: a fault applied after its revert leaks.
            await _stop(proc)
            raise
        word, _, rest = line.decode(errors="replace").strip().partition(" ")
        if word == "error":
            await proc.wait()
            raise FileNotFoundError(rest)
        if word != "exit":  # the supervisor itself was killed: count it as the command's end
            await _stop(proc)
            return ShellResult(exit_code=proc.returncode, output=_tail(out), timeout=timeout)
        code, _, state = rest.partition(" ")
        held = ""
        if state == "guarding":
            held = f"{proc.pid}:{_starttime(proc.pid)}"
            task = asyncio.create_task(proc.wait())
            _GUARDS.add(task)
            task.add_done_callback(_GUARDS.discard)
        else:
            await proc.wait()
        return ShellResult(exit_code=int(code), output=_tail(out), timeout=timeout, guard=held)


async def _stop(proc: asyncio.subprocess.Process) -> None:
    """Tell the supervisor to kill its tree, and wait (shielded from a second cancel) until it has."""
    with contextlib.suppress(ProcessLookupError):
        proc.send_signal(signal.SIGTERM)
    with contextlib.suppress(TimeoutError):
        await asyncio.shield(asyncio.wait_for(proc.wait(), STOP_WAIT))


async def stop_guard(guard: str) -> str:
    """Kill what a fault's ``run`` left running, through its supervisor (``pid:starttime`` from ShellResult).

    Harmless when it is gone (the worker that held it died, taking the tree with it) or the pid was reused.
    Returns what happened, in words.

    Raises:
        RevertError: the supervisor did not end within :data:`STOP_WAIT` (retried with the revert).
    """
    pid_text, _, starttime = guard.partition(":")
    pid = int(pid_text) if pid_text.isdigit() else 0
    if not _is_supervisor(pid, starttime):
        return "nothing the command started is still running"
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_WAIT
    while _is_supervisor(pid, starttime):
        if time.monotonic() > deadline:
            raise RevertError(f"what the command left running (supervisor pid {pid}) did not stop")
        await asyncio.sleep(0.02)
    return "stopped what the command left running"


def _stat_fields(pid: int) -> list[str]:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return []
    return text[text.rindex(")") + 2 :].split()


def _starttime(pid: int) -> str:
    fields = _stat_fields(pid)
    return fields[19] if fields else ""


def _is_supervisor(pid: int, starttime: str) -> bool:
    """``pid`` is still the supervisor that was recorded (same start time, running our script, not a zombie)."""
    fields = _stat_fields(pid) if pid > 0 else []
    if not fields or fields[0] in ("Z", "X") or fields[19] != starttime:
        return False
    try:
        return SUPERVISOR.encode() in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def _tail(out: IO[bytes]) -> str:
    size = out.seek(0, os.SEEK_END)
    out.seek(max(0, size - OUTPUT_LIMIT))
    text = out.read().decode(errors="replace")
    return "…" + text if size > OUTPUT_LIMIT else text


def _narrow(inp: FaultInput) -> tuple[CommandTarget, RunFault]:
    return narrow(inp, CommandTarget, RunFault)


async def capture(inp: FaultInput) -> dict[str, str]:
    """Nothing to read: the revert command always runs, whatever an interrupted apply did (it must be safe to
    run twice, and when the apply never ran)."""
    return {}


async def apply(inp: FaultInput) -> FaultRecord:
    """Run the fault's ``run`` command; a non-zero exit or a timeout is an :class:`ApplyError`.

    The record keeps the revert command, so the revert runs exactly what was declared when the fault was applied.
    """
    target, fault = _narrow(inp)
    result = await run_shell(fault.run, timeout=fault.timeout, shell=target.shell, cwd=target.cwd, guard=True)
    if not result.ok:
        if result.guard:
            await stop_guard(result.guard)
        raise ApplyError(f"`{fault.run}` {result.describe()}: {result.output}")
    changed = {"revert": fault.revert}
    if result.guard:
        changed["guard"] = result.guard
    return inp.record.model_copy(update={"changed": changed, "output": result.output})


async def revert(inp: FaultInput) -> FaultRecord:
    """Run the revert command (from the record, else the spec); a non-zero exit is a :class:`RevertError`.

    The drill format requires revert commands to be safe to run twice, and when apply never ran.
    """
    target, fault = _narrow(inp)
    stopped = await stop_guard(inp.record.changed["guard"]) if "guard" in inp.record.changed else ""
    command = inp.record.changed.get("revert", fault.revert)
    result = await run_shell(command, timeout=fault.timeout, shell=target.shell, cwd=target.cwd)
    if not result.ok:
        raise RevertError(f"`{command}` {result.describe()}: {result.output}")
    output = f"{stopped}\n{result.output}" if stopped else result.output
    return inp.record.model_copy(update={"output": output})
