"""Faults on a ``command`` target: ``run`` a shell command; its revert is another shell command.

Also home of :func:`run_shell`, the one way gameday runs a shell command for a fault (the ``process``
provider's ``restart`` uses it too).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
from dataclasses import dataclass
from datetime import timedelta
from typing import IO

from activities.faults.errors import ApplyError, RevertError, UnsupportedFault
from workflows.drill import CommandTarget, RunFault
from workflows.records import FaultInput, FaultRecord

OUTPUT_LIMIT = 4096
"""Bytes of a command's output (or an HTTP body) kept for the report."""

_SETPRIV = shutil.which("setpriv")
_DIES_WITH_WORKER: tuple[str, ...] = (_SETPRIV, "--pdeathsig", "KILL", "--") if _SETPRIV else ()
"""Launcher that makes the shell die with the worker (Linux parent-death signal, util-linux ``setpriv``).

A fault command still running when its worker is SIGKILLed must not finish on its own: the drill's rollback
reverts it from another worker, and an apply that completed after that revert would leave the fault in place.
"""


@dataclass(frozen=True)
class ShellResult:
    """How a shell command ended.

    Attributes:
        exit_code: the shell's exit status (negative: killed by that signal); ``None`` when it timed out.
        output: stdout and stderr interleaved, the last :data:`OUTPUT_LIMIT` bytes.
        timeout: the time limit it ran under.
    """

    exit_code: int | None
    output: str
    timeout: timedelta

    @property
    def ok(self) -> bool:
        return self.exit_code == 0

    def describe(self) -> str:
        """How it ended, in words: ``exited with code 3`` or ``timed out after 30s…``."""
        if self.exit_code is None:
            return f"timed out after {self.timeout.total_seconds():g}s (its process group was killed)"
        return f"exited with code {self.exit_code}"


# ASYNC109 would have callers wrap this in asyncio.timeout(); but the limit is the child's, not ours: on
# timeout its process group is killed and its output kept for the report.
async def run_shell(
    command: str,
    *,
    timeout: timedelta,  # noqa: ASYNC109
    shell: str = "/bin/sh",
    cwd: str | None = None,
) -> ShellResult:
    """Run ``shell -c command`` in its own session and wait for the shell to exit.

    Args:
        command: the shell command line.
        timeout: after this long the whole process group is killed.
        shell: the shell binary.
        cwd: working directory; the worker's own when ``None``.

    Returns:
        The exit code (``None`` on timeout) and the tail of the output.

    Raises:
        OSError: the shell or ``cwd`` does not exist.
    """
    # Output goes to a file, not a pipe: a command that starts a daemon (``svc &``) would hold a pipe
    # open for the daemon's lifetime, and we would wait for that EOF instead of for the shell.
    with tempfile.TemporaryFile() as out:
        proc = await asyncio.create_subprocess_exec(
            *_DIES_WITH_WORKER,
            shell,
            "-c",
            command,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, so a timeout can kill everything it started
        )
        exit_code: int | None
        try:
            exit_code = await asyncio.wait_for(proc.wait(), timeout.total_seconds())
        except TimeoutError:
            _kill_group(proc.pid)
            await proc.wait()
            exit_code = None
        except BaseException:
            # A cancelled apply must not go on behind its revert's back: a fault applied after its revert leaks.
            _kill_group(proc.pid)
            raise
        return ShellResult(exit_code=exit_code, output=_tail(out), timeout=timeout)


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError):  # the whole group has already exited
        os.killpg(pgid, signal.SIGKILL)


def _tail(out: IO[bytes]) -> str:
    size = out.seek(0, os.SEEK_END)
    out.seek(max(0, size - OUTPUT_LIMIT))
    text = out.read().decode(errors="replace")
    return "…" + text if size > OUTPUT_LIMIT else text


def _narrow(inp: FaultInput) -> tuple[CommandTarget, RunFault]:
    target, fault = inp.target.command, inp.fault
    if target is None or not isinstance(fault, RunFault):
        raise UnsupportedFault(f"action {fault.action_name!r} does not apply to a {inp.target.kind} target")
    return target, fault


async def apply(inp: FaultInput) -> FaultRecord:
    """Run the fault's ``run`` command; a non-zero exit or a timeout is an :class:`ApplyError`.

    The record keeps the revert command, so the revert runs exactly what was declared when the fault was applied.
    """
    target, fault = _narrow(inp)
    result = await run_shell(fault.run, timeout=fault.timeout, shell=target.shell, cwd=target.cwd)
    if not result.ok:
        raise ApplyError(f"`{fault.run}` {result.describe()}: {result.output}")
    return inp.record.model_copy(update={"changed": {"revert": fault.revert}, "output": result.output})


async def revert(inp: FaultInput) -> FaultRecord:
    """Run the revert command (from the record, else the spec); a non-zero exit is a :class:`RevertError`.

    The drill format requires revert commands to be safe to run twice, and when apply never ran.
    """
    target, fault = _narrow(inp)
    command = inp.record.changed.get("revert", fault.revert)
    result = await run_shell(command, timeout=fault.timeout, shell=target.shell, cwd=target.cwd)
    if not result.ok:
        raise RevertError(f"`{command}` {result.describe()}: {result.output}")
    return inp.record.model_copy(update={"output": result.output})
