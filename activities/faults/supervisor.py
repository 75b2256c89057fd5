"""The supervisor of one fault shell command: its whole process tree dies with the worker, on cancel and on revert.

Run as a script (``python -I -S supervisor.py MODE WORKER_PID SHELL COMMAND``), never imported by the worker:
it uses the standard library only, so it starts in a few milliseconds. ``activities.faults.command.run_shell``
starts one per command, as a child of the worker, with the command's output file as stderr and a pipe as stdout
on which it reports, one line each::

    exit CODE done          the shell exited (CODE as Popen's returncode) and nothing it started is left
    exit CODE guarding      the shell exited; processes it started are still running (MODE ``guard`` only)
    error MESSAGE           the shell could not be started

How it holds the tree: it is a child subreaper (``PR_SET_CHILD_SUBREAPER``), so every orphan of the command
(pipeline members, subshells, ``&`` jobs, double-forked daemons) becomes its child rather than init's; the shell
runs in a session of its own. It gets SIGTERM when the worker thread that started it dies
(``PR_SET_PDEATHSIG``: a SIGKILLed worker included), and the worker sends SIGTERM on cancel, timeout and revert:
on SIGTERM it SIGKILLs every descendant, rescanning until none is left, then exits. A ``setpriv --pdeathsig``
shell alone was not enough: ``{ sleep 15; touch F; } | cat`` outlived its worker and touched F after the revert.

MODE ``guard`` (a fault's ``run``): once the shell exits, the processes it left keep running under guard until
the revert stops them or the worker dies. MODE ``detach`` (a revert, a ``restart``): they are let go, so a
daemon a revert starts outlives the worker.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys
import time

PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36


class _Stop(Exception):
    """SIGTERM (from the worker, or the parent-death signal): kill the tree and leave."""


def _stop(signum: int, _frame: object) -> None:
    for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        signal.signal(sig, signal.SIG_IGN)  # we are leaving anyway: a second signal must not cut the killing short
    raise _Stop()


def _children_of() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                text = f.read()
        except OSError:
            continue
        fields = text[text.rindex(")") + 2 :].split()
        if fields[0] not in ("Z", "X"):
            children.setdefault(int(fields[1]), []).append(int(entry))
    return children


def descendants(root: int) -> list[int]:
    """Every live (not zombie) process below ``root``."""
    children, found, stack = _children_of(), [], [root]
    while stack:
        for child in children.get(stack.pop(), []):
            found.append(child)
            stack.append(child)
    return found


def _reap() -> None:
    with contextlib.suppress(ChildProcessError):
        while os.waitpid(-1, os.WNOHANG)[0] > 0:
            pass


def kill_tree(group: int | None) -> None:
    """SIGKILL the shell's process group and every descendant, again and again until none is left."""
    me = os.getpid()
    for _ in range(500):
        if group is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(group, signal.SIGKILL)
        left = descendants(me)
        if not left:
            break
        for pid in left:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        _reap()
        time.sleep(0.01)
    _reap()


def _executable(name: str) -> bool:
    paths = [""] if "/" in name else os.environ.get("PATH", os.defpath).split(os.pathsep)
    return any(os.access(os.path.join(p, name), os.X_OK) for p in paths)


def _say(line: str) -> None:
    with contextlib.suppress(OSError):
        os.write(1, (line + "\n").encode())


def main(argv: list[str]) -> int:
    mode, worker, shell, command = argv[1], int(argv[2]), argv[3], argv[4]
    for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        signal.signal(sig, _stop)
    group: int | None = None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        if os.getppid() != worker:
            return 0  # the worker died before the parent-death signal was armed: run nothing
        if not _executable(shell):
            _say(f"error {shell}: no such executable")
            return 0
        launcher = argv[5:]  # e.g. setpriv --pdeathsig KILL --: the shell dies too if this supervisor is SIGKILLed
        try:
            shell_pid = os.posix_spawnp(
                launcher[0] if launcher else shell,
                [*launcher, shell, "-c", command],
                os.environ,
                setsid=True,
                file_actions=[
                    (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
                    (os.POSIX_SPAWN_DUP2, 2, 1),
                ],
            )
        except OSError as err:
            _say(f"error {shell}: {err.strerror or err}")
            return 0
        group = shell_pid
        while True:
            try:
                pid, status = os.waitpid(-1, 0)
            except ChildProcessError:
                return 0  # guarding, and the last process the command left has exited
            if pid != shell_pid:
                continue  # an orphan of the command, reaped
            code = os.waitstatus_to_exitcode(status)
            group = None
            if mode == "detach" or not descendants(os.getpid()):
                _say(f"exit {code} done")
                return 0
            _say(f"exit {code} guarding")
    except _Stop:
        kill_tree(group)
        return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
