"""The load of one ``host`` fault: a small supervisor process, run as ``python -m gameday.activities.faults.host_load``.

Started by the worker that applies the fault (``activities/faults/host.py``), in a process group of its own, with
two arguments: a marker naming the run and the fault (``gameday-host-load:<run>-<index>``, how a revert on any worker
of the host finds the group in ``/proc``) and the load's spec as JSON. Its promises:

- it dies with the worker: first thing, it asks the kernel for SIGKILL when its parent dies
  (``prctl(PR_SET_PDEATHSIG)``) and exits if that parent is already gone; every process it forks (the CPU burners)
  does the same against it. A SIGKILLed worker takes the whole group with it, whatever the control plane does;
- it ends itself at ``deadline`` (seconds from its start) even if nobody stops it;
- on SIGTERM (the revert) it stops its load, closes its connections, removes the files it wrote, writes its last
  status and exits;
- it prints one JSON line on stdout once the load is in place (``{"ready": true, ...}``) or could not be
  (``{"error": "..."}``), and writes its status (what it holds: CPU seconds, bytes, connections) to ``status``
  every :data:`STATUS_EVERY` seconds, so a revert on another worker can still record what was held.

Only the standard library: it runs in the worker's interpreter without importing gameday.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import json
import mmap
import os
import resource
import signal
import socket
import struct
import sys
import time
from typing import Any

PR_SET_PDEATHSIG = 1
STATUS_EVERY = 0.5
"""Seconds between two status writes."""
TICK = 0.1
"""Seconds of one CPU duty cycle, and of one turn of the connections' and io loops."""
CHUNK = 1024 * 1024
CONNECT_TIMEOUT = 5.0
REOPEN_PER_TICK = 50
"""Connections re-opened at most per turn (a server refusing them all is not hammered)."""

_stop = False


def die_with(parent: int) -> None:
    """SIGKILL this process when ``parent`` dies; exit now if it is already gone (the race before prctl)."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        os._exit(3)
    if os.getppid() != parent:
        os._exit(3)


def _on_term(signum: int, frame: Any) -> None:
    global _stop
    _stop = True


def _ticks(pid: int) -> float:
    """CPU seconds (user + system) of one process, from ``/proc/<pid>/stat``."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rpartition(")")[2].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _rss() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


class Load:
    action = ""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec

    def start(self) -> dict[str, Any]:
        return {}

    def turn(self) -> None:
        time.sleep(TICK)

    def stop(self) -> None:
        pass

    def status(self) -> dict[str, Any]:
        return {}


class Cpu(Load):
    """``workers`` forked burners, each busy ``duty`` of every :data:`TICK` (its own CPU time, not the wall clock)."""

    def __init__(self, spec: dict[str, Any]) -> None:
        super().__init__(spec)
        self.children: list[int] = []
        self.done_seconds = 0.0

    def start(self) -> dict[str, Any]:
        me = os.getpid()
        for _ in range(int(self.spec["workers"])):
            pid = os.fork()
            if pid == 0:
                try:
                    die_with(me)
                    signal.signal(signal.SIGTERM, signal.SIG_DFL)
                    _burn(float(self.spec["duty"]))
                finally:
                    os._exit(0)
            self.children.append(pid)
        return {"workers": len(self.children), "pids": self.children}

    def stop(self) -> None:
        for pid in self.children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        for pid in self.children:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)
        self.children = []
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        self.done_seconds = usage.ru_utime + usage.ru_stime

    def status(self) -> dict[str, Any]:
        live = sum(_ticks(pid) for pid in self.children)
        return {"cpu_seconds": round(max(live, self.done_seconds), 3)}


def _burn(duty: float) -> None:
    while True:
        began, used = time.monotonic(), time.process_time()
        while time.process_time() - used < duty * TICK and time.monotonic() - began < TICK:
            pass
        rest = TICK - (time.monotonic() - began)
        if duty < 1 and rest > 0:
            time.sleep(rest)


class Memory(Load):
    """``bytes`` of anonymous memory, every page written, held by this process."""

    def start(self) -> dict[str, Any]:
        size = int(self.spec["bytes"])
        self.area = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
        ones = b"\x01" * CHUNK
        for offset in range(0, size, CHUNK):
            n = min(CHUNK, size - offset)
            self.area[offset : offset + n] = ones[:n]
        return self.status()

    def stop(self) -> None:
        self.area.close()

    def status(self) -> dict[str, Any]:
        return {"rss_bytes": _rss(), "bytes": int(self.spec["bytes"])}


class DiskFill(Load):
    """One file, ``bytes`` long (or until ``leave_free`` is left), allocated (``fallocate``) or written, synced."""

    def start(self) -> dict[str, Any]:
        path = self.spec["file"]
        directory = os.path.dirname(path)
        fs = os.statvfs(directory)
        free = fs.f_bavail * fs.f_frsize
        if self.spec.get("bytes") is not None:
            want = int(self.spec["bytes"])
            if want > free:
                raise RuntimeError(f"{directory} has {free} bytes free, less than the {want} asked for")
            keep = int(self.spec.get("keep_free") or 0)
            if free - want < keep:
                raise RuntimeError(
                    f"{directory} is on the file system of gameday's data directory: {want} bytes would leave less "
                    f"than {keep} free ({free} free now)"
                )
        else:
            want = free - int(self.spec["leave_free"])
            if want <= 0:
                raise RuntimeError(
                    f"{directory} already has only {free} bytes free (leave_free {self.spec['leave_free']})"
                )
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        self.path = path
        try:
            try:
                os.posix_fallocate(fd, 0, want)
            except OSError as err:
                if err.errno not in (errno.EOPNOTSUPP, errno.EINVAL):
                    raise
                zeros, left = bytes(CHUNK), want
                while left > 0 and not _stop:
                    left -= os.write(fd, zeros[: min(CHUNK, left)])
            os.fsync(fd)
        finally:
            os.close(fd)
        return self.status()

    def stop(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)

    def status(self) -> dict[str, Any]:
        try:
            st = os.lstat(self.spec["file"])
        except OSError:
            return {"bytes": 0}
        return {"bytes": st.st_blocks * 512, "size": st.st_size}


class Io(Load):
    """Writes of ``rate`` bytes per second, each turn's synced, into one file of ``size`` bytes, wrapping around."""

    def start(self) -> dict[str, Any]:
        self.path = self.spec["file"]
        fs = os.statvfs(os.path.dirname(self.path))
        if int(self.spec["size"]) > fs.f_bavail * fs.f_frsize:
            # Its file grows to its size: larger than the free space, an io load would be an unbounded disk fill.
            raise RuntimeError(f"a {self.spec['size']} B file asked for, {fs.f_bavail * fs.f_frsize} bytes free")
        self.fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        self.size, self.rate = int(self.spec["size"]), int(self.spec["rate"])
        self.written, self.offset, self.began = 0, 0, time.monotonic()
        self.buffer = os.urandom(CHUNK)
        return {"rate": self.rate}

    def turn(self) -> None:
        # One turn writes for at most a TICK: a disk slower than the rate never keeps the load from its deadline,
        # its status or a stop (it falls behind instead).
        until = time.monotonic() + TICK
        due = int((time.monotonic() - self.began) * self.rate) - self.written
        while due > 0 and not _stop and time.monotonic() < until:
            n = min(due, CHUNK, self.size - self.offset)
            n = os.pwrite(self.fd, self.buffer[:n], self.offset)
            self.written += n
            due -= n
            self.offset = (self.offset + n) % self.size
        os.fdatasync(self.fd)
        time.sleep(TICK)

    def stop(self) -> None:
        os.close(self.fd)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)

    def status(self) -> dict[str, Any]:
        return {"bytes": self.written}


def postgres_startup(user: str) -> bytes:
    """A PostgreSQL v3 startup packet for ``user`` (database of the same name)."""
    body = struct.pack("!I", 196608) + b"user\0" + user.encode() + b"\0database\0" + user.encode() + b"\0\0"
    return struct.pack("!I", len(body) + 4) + body


class Connections(Load):
    """``count`` TCP connections to ``host``:``port``, each sent ``greeting``, re-opened when the server closes one."""

    def __init__(self, spec: dict[str, Any]) -> None:
        super().__init__(spec)
        self.sockets: list[socket.socket | None] = []
        self.opened = self.closed_by_peer = self.failed = 0
        user = spec.get("postgres_user")
        self.greeting = postgres_startup(user) if user else bytes.fromhex(spec.get("send_hex") or "")

    def _open(self) -> socket.socket | None:
        try:
            sock = socket.create_connection((self.spec["host"], int(self.spec["port"])), timeout=CONNECT_TIMEOUT)
            if self.greeting:
                sock.sendall(self.greeting)
            sock.setblocking(False)
        except OSError:
            self.failed += 1
            return None
        self.opened += 1
        return sock

    def start(self) -> dict[str, Any]:
        for _ in range(int(self.spec["count"])):
            if _stop:
                break
            self.sockets.append(self._open())
        if not any(self.sockets):
            raise RuntimeError(f"no connection to {self.spec['host']}:{self.spec['port']} could be opened")
        return self.status()

    def turn(self) -> None:
        reopen = REOPEN_PER_TICK
        for i, sock in enumerate(self.sockets):
            if sock is not None:
                try:
                    # A bounded read per turn: a server that never stops sending cannot hold the loop.
                    if all(sock.recv(65536) for _ in range(16)):
                        continue
                except BlockingIOError:
                    continue  # open, nothing (more) to read
                except OSError:
                    pass
                sock.close()  # b"" (closed by the server) or an error: open it again
                self.sockets[i] = None
                self.closed_by_peer += 1
            if reopen > 0 and not _stop:
                reopen -= 1
                self.sockets[i] = self._open()
        time.sleep(TICK)

    def stop(self) -> None:
        for sock in self.sockets:
            if sock is not None:
                sock.close()
        self.sockets = []

    def status(self) -> dict[str, Any]:
        return {
            "connections_held": sum(1 for s in self.sockets if s is not None),
            "connections_opened": self.opened,
            "connections_closed_by_peer": self.closed_by_peer,
            "connections_failed": self.failed,
        }


LOADS: dict[str, type[Load]] = {
    "cpu": Cpu,
    "memory": Memory,
    "disk_fill": DiskFill,
    "connections": Connections,
    "io": Io,
}


def _write_status(path: str, facts: dict[str, Any]) -> None:
    """Best effort: a status that cannot be written (its file system full) never ends the load's hold or stop."""
    partial = f"{path}.{os.getpid()}.tmp"
    try:
        with open(partial, "w") as f:
            json.dump(facts, f)
        os.replace(partial, path)
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(partial)


def main(argv: list[str]) -> int:
    spec = json.loads(argv[2])
    die_with(int(spec["parent"]))
    signal.signal(signal.SIGTERM, _on_term)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a Ctrl-C at the worker's terminal goes to the worker only
    load = LOADS[spec["action"]](spec)
    began = time.monotonic()
    base = {"marker": argv[1], "pid": os.getpid(), "pgid": os.getpgid(0), "action": spec["action"]}
    try:
        facts = load.start()
    except Exception as err:
        with contextlib.suppress(Exception):
            load.stop()
        print(json.dumps({"error": f"{type(err).__name__}: {err}"}), flush=True)
        return 1
    status = spec["status"]
    _write_status(status, {**base, **load.status(), "state": "holding"})
    print(json.dumps({"ready": True, **facts}), flush=True)
    written = time.monotonic()
    deadline = began + float(spec["deadline"])
    ended = "stopped"
    while not _stop:
        if time.monotonic() >= deadline:
            ended = "deadline"
            break
        load.turn()
        if time.monotonic() - written >= STATUS_EVERY:
            _write_status(status, {**base, **load.status(), "state": "holding"})
            written = time.monotonic()
    last = load.status()
    load.stop()
    if isinstance(load, Cpu):
        last = load.status()  # every burner's CPU time, now that they are reaped
    _write_status(status, {**base, **last, "state": ended})
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
